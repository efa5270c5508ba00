"""WebSocket mode at `/v1/responses` (Open Responses §WebSocket Transport).

A client opens one socket and sends `{"type": "response.create", ...}` messages, each a normal
create body; the server answers each with the same events a stream would carry, one JSON
message per event, and takes the next message only when the turn is over: one response in
flight per connection, by construction.

The connection remembers its most recent response (the spec's connection-local state), so
`previous_response_id` continues a `store: false` chain on the same socket without writing
anything; older ids, and ids from other connections, come from the store, where only
`store: true` responses are. A continuation that fails evicts the id it continued from.
Connections end after `websocket_max_seconds` (60 minutes) with
`websocket_connection_limit_reached`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from openresponses import tracing
from openresponses.api import auth
from openresponses.api.common import load_json, parse_body, until
from openresponses.api.dialects import error_body, error_type, event_body, select
from openresponses.api.responses import request_defaults
from openresponses.config import Dialect
from openresponses.core import pipeline
from openresponses.core.caller import Caller
from openresponses.core.services import Services
from openresponses.errors import APIError, ErrorKind, invalid
from openresponses.generated import openai_models as m

log = logging.getLogger("openresponses")

HARMLESS = {"stream": True, "background": False}
"""HTTP transport fields, and the one value of each that WebSocket mode can accept: every
response streams over the socket while the client waits. The spec tells clients not to send
them, but the OpenAI Agents SDK's WebSocket transport sends `stream: true` in every message;
a value that says otherwise (`stream: false`, `background: true`) is refused. The third,
`stream_options`, shapes a stream's events and is taken as over HTTP."""


def _envelope(error: APIError, dialect: Dialect) -> str:
    """The spec's WebSocket error envelope: the HTTP status beside the error object."""
    body = error_body(error, dialect)["error"]
    body["code"] = body["code"] or error_type(error, dialect)  # the spec requires a code
    return orjson.dumps({"type": "error", "status": error.status, "error": body}).decode()


class Connection:
    """One accepted socket: its turns, in order, and its most recent response (one caller's,
    so the response it keeps in memory is its project's)."""

    def __init__(self, websocket: WebSocket, services: Services, caller: Caller) -> None:
        self.websocket = websocket
        self.services = services
        self.caller = caller
        self.dialect = select(websocket.headers, services.settings.dialect)
        self.latest: tuple[str, list[Any]] | None = None
        """The most recent completed response's id and conversation."""
        self.received: list[Message] = []
        """Messages that arrived during a turn, taken in order once it is over."""

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.services.settings.websocket_max_seconds
        while True:
            try:
                message = await self._next(max(deadline - loop.time(), 0))
            except TimeoutError:
                await self._limit_reached()
                return
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is None:
                await self._refuse(invalid("Send each message as JSON in a text frame."))
                continue
            await self._unless_gone(self._traced(message["text"]))

    async def _next(self, within: float) -> Message:
        if self.received:
            return self.received.pop(0)
        return await asyncio.wait_for(self.websocket.receive(), within)

    async def _unless_gone(self, turn: Coroutine[Any, Any, None]) -> None:
        """Run a turn while reading the socket: a client that disconnects cancels it (a
        model call that never answers would otherwise hold its upstream connection, as
        nothing is sent that could fail); other messages wait for their turn."""
        task = asyncio.ensure_future(turn)
        await until(task, self._read_until_gone())
        if not task.cancelled():
            task.result()

    async def _read_until_gone(self) -> None:
        while True:
            self.received.append(await self.websocket.receive())
            if self.received[-1]["type"] == "websocket.disconnect":
                return

    async def _limit_reached(self) -> None:
        limit = self.services.settings.websocket_max_seconds
        span = f"{limit / 60:g}-minute" if limit % 60 == 0 else f"{limit:g}-second"
        error = invalid(
            f"The WebSocket connection reached its {span} limit. Open a new "
            "connection and continue with previous_response_id (stored responses) or the full "
            "input.",
            code="websocket_connection_limit_reached",
        )
        await self._refuse(error)
        await self.websocket.close(code=1000)

    async def _traced(self, message: str) -> None:
        """A turn, in a server span of its own when tracing is on (a connection may last an
        hour: one span for it all would say little)."""
        if not tracing.ENABLED:
            await self._turn(message)
            return
        path = self.websocket.url.path
        with tracing.serving(f"WS {path}", self.websocket.headers, {"url.path": path}):
            await self._turn(message)

    async def _turn(self, message: str) -> None:
        previous: str | None = None
        try:
            await self._admit()
            data = load_json(message)
            if isinstance(data, dict) and isinstance(data.get("previous_response_id"), str):
                previous = data["previous_response_id"]
            turn = await pipeline.start(
                self.services, _create_request(data), self.caller, history=self._history
            )
            await turn.open()
        except orjson.JSONDecodeError:
            await self._refuse(invalid("The message is not valid JSON.", code="invalid_json"))
            return
        except APIError as exc:
            self._evict(previous)
            await self._refuse(exc)
            return
        except Exception:  # a bug of ours: the client gets an error, the socket stays usable
            log.exception("WebSocket turn failed before it started")
            self._evict(previous)
            await self._refuse(APIError(ErrorKind.SERVER, "The server had an error."))
            return
        await self._stream(turn)
        if turn.response.status == "failed":
            self._evict(previous)
        else:
            self.latest = (turn.response.id, turn.conversation)

    async def _admit(self) -> None:
        """Count the turn as one request of the connection's key (its error event past a
        limit); the upgrade was none."""
        admission = await self.services.limiter.admit(self.caller.key)
        if admission is not None and admission.refusal is not None:
            raise admission.refusal

    async def _stream(self, turn: pipeline.Started) -> None:
        # A failed send ends the turn too.
        async with contextlib.aclosing(turn.events()) as events:
            async for event in events:
                data = event_body(event, self.dialect, store=turn.stored)
                # Text frames: the events are JSON, as the SSE data lines would be.
                await self.websocket.send_text(orjson.dumps(data).decode())

    async def _history(self, response_id: str) -> list[Any] | None:
        if self.latest is not None and self.latest[0] == response_id:
            return self.latest[1]
        return await self.services.store.context(self.caller.project, response_id)

    def _evict(self, response_id: str | None) -> None:
        if self.latest is not None and self.latest[0] == response_id:
            self.latest = None

    async def _refuse(self, error: APIError) -> None:
        await self.websocket.send_text(_envelope(error, self.dialect))


def _create_request(data: Any) -> m.CreateResponse:
    """A `response.create` message as the create body it carries, streamed."""
    if not isinstance(data, dict) or data.get("type") != "response.create":
        kind = data.get("type") if isinstance(data, dict) else None
        raise invalid(
            f'Unknown message type {kind!r}: send {{"type": "response.create", ...}}.',
            param="type",
            code="invalid_message_type",
        )
    for name, harmless in HARMLESS.items():
        value = data.get(name)
        if value is not None and value is not harmless:
            raise invalid(
                f"'{name}': {orjson.dumps(value).decode()[:40]} conflicts with WebSocket mode, "
                "where every response streams over the socket while the client waits; leave "
                f"'{name}' out.",
                param=name,
                code="unsupported_parameter",
            )
    body = {key: value for key, value in data.items() if key != "type"}
    return parse_body({**body, "stream": True}, m.CreateResponse, request_defaults)


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI endpoint: authenticate as HTTP does, accept, then take turns."""
    websocket = WebSocket(scope, receive, send)
    services: Services = scope["state"]["services"]
    try:
        token, address = auth.bearer(websocket.headers), auth.client_address(scope)
        key = await auth.identify(services.keys, services.limiter, token, address)
    except APIError as exc:
        await _deny(websocket, exc, select(websocket.headers, services.settings.dialect))
        return
    await websocket.accept()
    # A client may leave at any time, even before the error it asked for is sent: there is
    # nobody left to answer, and nothing went wrong here.
    with contextlib.suppress(WebSocketDisconnect):
        await Connection(websocket, services, auth.caller(websocket.headers, key)).serve()


async def _deny(websocket: WebSocket, error: APIError, dialect: Dialect) -> None:
    """Refuses the upgrade with the HTTP status and error body, where the server can send
    one (uvicorn's `websocket.http.response` extension); else closes with policy violation."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = orjson.dumps(error_body(error, dialect))
        response = Response(body, error.status, error.headers, media_type="application/json")
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008, reason=error.message[:120])


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Any other WebSocket path: there is nothing to upgrade to."""
    error = APIError(ErrorKind.NOT_FOUND, f"No WebSocket endpoint at {scope['path']}.")
    await _deny(WebSocket(scope, receive, send), error, Dialect.OPENAI)
