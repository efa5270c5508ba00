"""`core.sse.coalesce`: a stream's frames leave in one write per burst, never held back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from openresponses.core.sse import coalesce


async def _bursts(log: list[str]) -> AsyncIterator[bytes]:
    try:
        for burst in (b"abc", b"de", b"f"):
            for byte in burst:
                yield bytes([byte])
            await asyncio.sleep(0.01)  # a wait, as on the upstream
    finally:
        log.append("closed")


def test_frames_made_together_leave_as_one_chunk_and_each_wait_ends_a_chunk() -> None:
    async def collect() -> list[bytes]:
        return [chunk async for chunk in coalesce(_bursts([]))]

    assert asyncio.run(collect()) == [b"abc", b"de", b"f"]


def test_a_failure_of_the_producer_ends_the_stream_with_it_after_what_it_made() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"
        raise RuntimeError("upstream bug")

    async def collect(chunks: list[bytes]) -> None:
        async for chunk in coalesce(failing()):
            chunks.append(chunk)

    chunks: list[bytes] = []
    with pytest.raises(RuntimeError, match="upstream bug"):
        asyncio.run(collect(chunks))
    assert chunks == [b"ab"]


def test_a_consumer_that_stops_early_stops_the_producer_and_runs_its_cleanup() -> None:
    log: list[str] = []

    async def first_chunk_only() -> bytes:
        stream = coalesce(_bursts(log))
        chunk = await anext(stream)
        await stream.aclose()  # as when the client hangs up
        return chunk

    assert asyncio.run(first_chunk_only()) == b"abc"
    assert log == ["closed"]


def test_a_cancelled_consumer_cancels_the_producer_and_runs_its_cleanup() -> None:
    log: list[str] = []

    async def cancelled() -> None:
        async def consume() -> None:
            async for _ in coalesce(_bursts(log)):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.005)  # the producer waits inside its first burst's sleep
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert log == ["closed"]
