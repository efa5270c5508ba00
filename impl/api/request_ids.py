"""OpenAI's per-request headers on every answer: `x-request-id` (the one a client sent, if
sane, so its logs and ours agree; else a new `req_…`) and `openai-processing-ms` (the time
until the answer's headers left). The openai SDK reads the first as `response._request_id`.

The middleware wraps the whole app, so 401s, 429s, 404s and refused WebSocket upgrades carry
them too. Its cost per request is one header lookup, one `token_hex` and two clock reads.
"""

from __future__ import annotations

import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")
"""A client's id is echoed only if it cannot smuggle anything into a log line or a header."""

_STARTS = {"http.response.start", "websocket.http.response.start"}


def request_id(scope: Scope) -> bytes:
    """The client's `x-request-id` when it is sane, else a new one."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == HEADER and _SANE.fullmatch(value):
            return value
    return f"req_{secrets.token_hex(16)}".encode()


class RequestIds:
    """Adds `x-request-id` and `openai-processing-ms` to the start of every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        identifier = request_id(scope)

        async def sending(message: Message) -> None:
            if message["type"] in _STARTS:
                elapsed = int((time.perf_counter() - started) * 1000)
                added = [(HEADER, identifier), (b"openai-processing-ms", str(elapsed).encode())]
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        await self.app(scope, receive, sending)
