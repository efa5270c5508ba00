"""Server-sent events framing: the one function every stream is written through.

Each event is one complete frame: an `event:` line equal to the JSON `type`, the JSON on a
single `data:` line, a blank line. No `id:` lines (the Open Responses spec asks servers not
to use them, and OpenAI sends none either).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"
"""The last frame of every stream, in both dialects: the Open Responses spec requires it, and
OpenAI's SDKs (Python and Node) and the Vercel AI SDK stop at it or skip it."""

NO_BUFFERING = {"cache-control": "no-cache", "x-accel-buffering": "no"}
"""The headers of every stream: no cache or proxy may hold its events back."""


def frame(data: dict[str, Any]) -> bytes:
    kind: str = data["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventStream(Response):
    """The ASGI response of a stream: frames joined into one chunk per burst (all that were
    made before the producer next waited, on the upstream, a tool, the store), and the
    producer cancelled the moment the client goes away.

    One upstream chunk becomes several events (a text delta opens an item, a content part,
    then the delta), and a response's first and last events come in runs of three or four.
    Written one by one, each frame is an ASGI message through every middleware's `send`, a
    chunk header and a socket write on our side and a wake-up on the client's: the bulk of a
    short stream's cost. The producer runs in its own task so that "ready together" is known
    without guessing; events are never held back while the producer waits.

    A disconnect is watched on `receive` beside it, with plain asyncio: Starlette's
    StreamingResponse does the same through an anyio task group, whose setup and cancel
    scope cost a tenth of a short stream's CPU.
    """

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncIterator[bytes], headers: Mapping[str, str]) -> None:
        self.frames = frames
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ready: list[bytes] = []
        wake = asyncio.Event()
        gone = asyncio.Event()

        async def produce() -> None:
            try:
                async for chunk in self.frames:
                    ready.append(chunk)
                    wake.set()
            finally:
                wake.set()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            wake.set()

        producer = asyncio.create_task(produce())
        watcher = asyncio.create_task(watch())
        try:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            await send(start)
            while not gone.is_set() and (not producer.done() or ready):
                await wake.wait()
                wake.clear()
                if ready and not gone.is_set():
                    burst = b"".join(ready)
                    ready.clear()
                    await send({"type": "http.response.body", "body": burst, "more_body": True})
            if not gone.is_set():
                await producer  # a failure of the producer's is the stream's
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            if not producer.done():  # the client went away: stop the response
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
