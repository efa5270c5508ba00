"""WebSocket mode at `/responses`: turns, connection-local continuation, its errors.

The spec says servers MAY offer it, so a target that refuses the upgrade has these checks
skipped, not failed; one that accepts it is held to every rule of §WebSocket Transport.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from openresponses.conformance import grammar
from openresponses.conformance.checks.common import (
    OR_SPEC,
    require_text_answer,
    unmatched_output,
    user,
)
from openresponses.conformance.context import Context, listing
from openresponses.conformance.outcomes import fail, require, skip, warn
from openresponses.conformance.registry import OPENRESPONSES_ONLY, check
from openresponses.conformance.schemas import OPENRESPONSES
from openresponses.conformance.wire import TransportError

WEBSOCKET = f"{OR_SPEC} §WebSocket Transport"
NOT_FOUND = "previous_response_not_found"


def _url(base_url: str) -> str:
    scheme, rest = base_url.rstrip("/").split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/responses"


class Socket:
    """One WebSocket connection; `turn` sends a `response.create` and reads its events."""

    def __init__(self, ctx: Context, connection: Connection) -> None:
        self.ctx = ctx
        self.connection = connection

    def turn(self, **fields: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The turn's events, and the error envelope if it ended in one."""
        message = {"type": "response.create", "model": self.ctx.model, **fields}
        self.connection.send(json.dumps(message))
        events: list[dict[str, Any]] = []
        while True:
            try:
                raw = self.connection.recv(timeout=self.ctx.target.timeout)
            except TimeoutError:
                fail(f"no terminal event within {self.ctx.target.timeout} s")
            except WebSocketException as exc:
                fail(f"the connection broke: {exc}")
            event = json.loads(raw)
            require(isinstance(event, dict), f"a message is not a JSON object: {raw!r:.100}")
            if event.get("type") == "error" and "status" in event:
                problems = OPENRESPONSES.errors(event, "WebSocketErrorEvent")
                require(not problems, f"WebSocketErrorEvent violated: {listing(problems)}")
                return events, event
            events.append(event)
            if event.get("type") in grammar.TERMINAL:
                return events, None

    def completed(self, **fields: Any) -> dict[str, Any]:
        """A turn that must stream cleanly to a completed text answer; its response."""
        events, error = self.turn(**fields)
        require(error is None, f"the turn failed: {error}")
        return self.judge(events)

    def judge(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The response of a turn's events, which must be clean and end in a text answer."""
        problems = self.ctx.event_schema_errors(events)
        problems += [str(v) for v in grammar.check(events).violations]
        require(not problems, f"the turn's events depart from the spec: {listing(problems)}")
        response: dict[str, Any] = events[-1]["response"]
        require_text_answer(response)
        return response

    def refused(self, code: str | None, **fields: Any) -> dict[str, Any]:
        """A turn that must end in an error envelope with a 4xx status (and `code`, if given)."""
        events, error = self.turn(**fields)
        kinds = [e.get("type") for e in events]
        expected = f"error {code!r}" if code else "an error"
        require(error is not None, f"expected {expected}, the turn gave events {kinds}")
        assert error is not None
        require(
            code is None or error["error"].get("code") == code,
            f"error code is {error['error'].get('code')!r}, not {code!r}",
        )
        require(400 <= error["status"] < 500, f"error status is {error['status']}, not 4xx")
        require(not kinds, f"events before the error: {kinds}")
        return error


@contextmanager
def socket(ctx: Context) -> Iterator[Socket]:
    headers = {**ctx.target.dialect_headers(ctx.dialect), **ctx.target.headers}
    if ctx.target.api_key:
        headers["Authorization"] = f"Bearer {ctx.target.api_key}"
    try:
        with connect(
            _url(ctx.target.base_url),
            additional_headers=headers,
            open_timeout=ctx.target.timeout,
            max_size=None,
        ) as connection:
            yield Socket(ctx, connection)
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status == 401:
            fail("the WebSocket upgrade was refused with HTTP 401: authentication failed")
        skip(f"the target does not offer WebSocket mode (the upgrade got HTTP {status})")
    except (OSError, WebSocketException) as exc:
        raise TransportError(f"WebSocket: {exc}") from exc


def _turn_input(text: str) -> list[dict[str, Any]]:
    return [user(text)]


@check(
    "websocket.sequential_turns",
    "Sequential turns on one socket",
    WEBSOCKET,
    dialects=OPENRESPONSES_ONLY,
)
def sequential_turns(ctx: Context) -> str:
    with socket(ctx) as ws:
        first = ws.completed(store=False, input=_turn_input("Say hello."))
        second = ws.completed(store=False, input=_turn_input("Say goodbye."))
    require(first["id"] != second["id"], "both turns returned the same response id")
    return "2 turns"


@check(
    "websocket.continuation",
    "store: false continues on the same socket",
    f"{OR_SPEC} §WebSocket Continuation",
    dialects=OPENRESPONSES_ONLY,
)
def continuation(ctx: Context) -> None:
    with socket(ctx) as ws:
        first = ws.completed(store=False, input=_turn_input("My name is Alice."))
        second = ws.completed(
            store=False, previous_response_id=first["id"], input=_turn_input("What is my name?")
        )
    require(
        second.get("previous_response_id") == first["id"],
        f"$.previous_response_id is {second.get('previous_response_id')!r}",
    )


@check(
    "websocket.reconnect_not_found",
    "store: false state does not survive a reconnect",
    f"{OR_SPEC} §WebSocket Continuation",
    dialects=OPENRESPONSES_ONLY,
)
def reconnect_not_found(ctx: Context) -> None:
    with socket(ctx) as ws:
        first = ws.completed(store=False, input=_turn_input("Say hello."))
    with socket(ctx) as ws:
        ws.refused(
            NOT_FOUND, store=False, previous_response_id=first["id"], input=_turn_input("Again.")
        )


@check(
    "websocket.unknown_id",
    "An unknown previous_response_id → previous_response_not_found",
    f"{OR_SPEC} §WebSocket Errors",
    dialects=OPENRESPONSES_ONLY,
)
def unknown_id(ctx: Context) -> None:
    with socket(ctx) as ws:
        ws.refused(
            NOT_FOUND,
            store=False,
            previous_response_id="resp_conformance_unknown",
            input=_turn_input("Hi."),
        )


@check(
    "websocket.failed_continuation_evicts",
    "A failed continuation evicts its previous_response_id",
    f"{OR_SPEC} §WebSocket Continuation",
    dialects=OPENRESPONSES_ONLY,
)
def failed_continuation_evicts(ctx: Context) -> None:
    _refused_continuation_evicts(ctx, temperature="very hot", input=_turn_input("Again."))


def _refused_continuation_evicts(ctx: Context, **failing: Any) -> None:
    """A turn, then a continuation of it with `failing` that must be refused, then one that
    must find the first turn's id evicted from the connection."""
    with socket(ctx) as ws:
        first = ws.completed(store=False, input=_turn_input("Say hello."))
        ws.refused(None, store=False, previous_response_id=first["id"], **failing)
        ws.refused(
            NOT_FOUND, store=False, previous_response_id=first["id"], input=_turn_input("Again.")
        )


@check(
    "websocket.unmatched_call_id",
    "A function_call_output matching no call fails the turn and evicts",
    f"{OR_SPEC} §WebSocket Continuation",
    dialects=OPENRESPONSES_ONLY,
)
def unmatched_call_id(ctx: Context) -> None:
    _refused_continuation_evicts(ctx, input=[unmatched_output()])


AGENTS_SDK = "the OpenAI Agents SDK's WebSocket transport sends it in every response.create"


@check(
    "websocket.transport_fields",
    "stream: true is accepted (advisory); background: true is refused or ignored",
    f"{WEBSOCKET} (clients MUST NOT send HTTP transport fields; servers are not told to refuse)",
    dialects=OPENRESPONSES_ONLY,
)
def transport_fields(ctx: Context) -> str:
    with socket(ctx) as ws:
        events, refusal = ws.turn(store=False, input=_turn_input("Say hello."), stream=True)
        if refusal is None:
            ws.judge(events)
        else:
            require(400 <= refusal["status"] < 500, f"stream: true: status {refusal['status']}")
        events, error = ws.turn(store=False, input=_turn_input("Say hello."), background=True)
        if error is None:
            ws.judge(events)
            background = "ignored"
        else:
            require(400 <= error["status"] < 500, f"background: true: status {error['status']}")
            background = "refused"
        ws.completed(store=False, input=_turn_input("Say hello."))
    if refusal is not None:
        warn(
            f"stream: true was refused ({refusal['status']} {refusal['error'].get('code')}): "
            f"{AGENTS_SDK}, so that client cannot use this server"
        )
    return f"stream: true accepted, background: true {background}"
