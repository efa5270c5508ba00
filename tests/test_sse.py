"""`api.sse.EventStream`: a stream's frames leave in one write per burst, never held back,
and the response stops when its client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from openresponses.api.sse import EventStream


async def _bursts(log: list[str]) -> AsyncIterator[bytes]:
    try:
        for burst in (b"abc", b"de", b"f"):
            for byte in burst:
                yield bytes([byte])
            await asyncio.sleep(0.01)  # a wait, as on the upstream
    finally:
        log.append("closed")


class _Client:
    """The ASGI side of one connection: what was sent, and a hang-up on demand."""

    def __init__(self, *, hang_up_after: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.hang_up_after = hang_up_after
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if len(self.body()) == self.hang_up_after:
            self.gone.set()

    def body(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def _serve(stream: EventStream, client: _Client) -> None:
    await stream({"type": "http"}, client.receive, client.send)


def test_frames_made_together_leave_as_one_chunk_and_each_wait_ends_a_chunk() -> None:
    client = _Client()
    asyncio.run(_serve(EventStream(_bursts([]), {"cache-control": "no-cache"}), client))

    assert client.sent[0] == {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"cache-control", b"no-cache"),
            (b"content-type", b"text/event-stream; charset=utf-8"),
        ],
    }
    assert client.body() == [b"abc", b"de", b"f", b""]
    assert client.sent[-1]["more_body"] is False


def test_a_failure_of_the_producer_ends_the_stream_with_it_after_what_it_made() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"
        raise RuntimeError("upstream bug")

    client = _Client()
    with pytest.raises(RuntimeError, match="upstream bug"):
        asyncio.run(_serve(EventStream(failing(), {}), client))
    assert client.body() == [b"ab"]


def test_a_client_that_hangs_up_stops_the_producer_and_runs_its_cleanup() -> None:
    log: list[str] = []
    client = _Client(hang_up_after=1)

    asyncio.run(asyncio.wait_for(_serve(EventStream(_bursts(log), {}), client), 5))

    assert client.body() == [b"abc"]
    assert log == ["closed"]


def test_a_cancelled_response_cancels_the_producer_and_runs_its_cleanup() -> None:
    log: list[str] = []

    async def cancelled() -> None:
        task = asyncio.create_task(_serve(EventStream(_bursts(log), {}), _Client()))
        await asyncio.sleep(0.005)  # the producer waits inside its first burst's sleep
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert log == ["closed"]
