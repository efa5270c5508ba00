"""Server-sent events framing: the one function every stream is written through.

Each event is one complete frame: an `event:` line equal to the JSON `type`, the JSON on a
single `data:` line, a blank line. No `id:` lines (the Open Responses spec asks servers not
to use them, and OpenAI sends none either).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def frame(data: dict[str, Any]) -> bytes:
    kind: str = data["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def coalesce(frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The frames, joined into one chunk per burst: all that were made before the producer
    next waited (on the upstream, a tool, the store).

    One upstream chunk becomes several events (a text delta opens an item, a content part,
    then the delta), and a response's first and last events come in runs of three or four.
    Written one by one, each frame is an ASGI message through every middleware's `send`,
    a chunk header and a socket write on our side and a wake-up on the client's: the bulk
    of a short stream's cost. The producer runs in its own task so that "ready together"
    is known without guessing; events are never held back while the producer waits.
    """
    ready: list[bytes] = []
    wake = asyncio.Event()

    async def produce() -> None:
        try:
            async for chunk in frames:
                ready.append(chunk)
                wake.set()
        finally:
            wake.set()

    producer = asyncio.create_task(produce())
    try:
        while not producer.done() or ready:
            await wake.wait()
            wake.clear()
            if ready:
                burst = b"".join(ready)
                ready.clear()
                yield burst
        await producer  # a failure of the producer's is the stream's
    finally:
        if not producer.done():  # the client went away: stop the response the same way
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
