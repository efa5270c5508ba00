"""What a check works with: the target, the dialect's rule book, and helpers that validate
everything that comes back.

Every helper that receives a body validates it before handing it over: a check that asks
for a response gets one that already passed the spec's schema, and a stream comes with its
schema, wire-format and grammar verdicts. Checks then judge behaviour on top.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from openresponses.conformance import grammar
from openresponses.conformance.outcomes import fail, require
from openresponses.conformance.schemas import OPENAI, OPENRESPONSES, Schemas
from openresponses.conformance.wire import Client, Dialect, Exchange, Stream

T = TypeVar("T")

RESPONSE_SCHEMA = {Dialect.OPENAI: "Response", Dialect.OPENRESPONSES: "ResponseResource"}

_SPEC_ERROR_TYPES = {"server_error", "invalid_request", "not_found", "model_error",
                     "too_many_requests"}  # fmt: skip
ERROR_TYPES: dict[Dialect, dict[int, set[str]]] = {
    Dialect.OPENAI: {
        400: {"invalid_request_error"},
        401: {"authentication_error", "invalid_request_error"},
        404: {"invalid_request_error"},
    },
    Dialect.OPENRESPONSES: {
        400: {"invalid_request"},
        401: _SPEC_ERROR_TYPES,
        404: {"not_found"},
    },
}
"""The error `type` each dialect gives for a status (Open Responses: §Errors' table; it names
no type for authentication, so any of its types will do there)."""

OPENAI_EVENT_NAMES = {
    "response.reasoning_text.delta": "response.reasoning.delta",
    "response.reasoning_text.done": "response.reasoning.done",
}
"""OpenAI's names for events the Open Responses spec names otherwise. The Open Responses rule
book holds such an event to the spec's schema for it and leaves the name to an advisory
(`stream.event_names`): a client that ignores it still rebuilds the response, whose item
carries the same text."""


def error_types(dialect: Dialect, status: int) -> set[str] | None:
    """The error types a rule book accepts for `status` (`None`: any). The Open Responses one
    accepts OpenAI's spelling too: the spec's schema admits any string and its own error
    example is OpenAI's `invalid_request_error`; `errors.type_names` advises on it."""
    allowed = ERROR_TYPES[dialect].get(status)
    if allowed is None or dialect is Dialect.OPENAI:
        return allowed
    return allowed | ERROR_TYPES[Dialect.OPENAI].get(status, set())


MAX_LISTED = 5


def listing(problems: list[str], limit: int = MAX_LISTED) -> str:
    """The first few problems, and how many more there are."""
    text = "; ".join(problems[:limit])
    return text + (f" (+{len(problems) - limit} more)" if len(problems) > limit else "")


@dataclass
class Streamed:
    """A stream with every verdict on it: schemas, wire format, grammar."""

    stream: Stream
    grammar: grammar.Grammar
    schema_errors: list[str]
    wire_errors: list[str]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.stream.events

    @property
    def response(self) -> dict[str, Any]:
        """The terminal event's response (the grammar has failed the stream if there is none)."""
        for event in reversed(self.events):
            if event.get("type") in grammar.TERMINAL and isinstance(event.get("response"), dict):
                response: dict[str, Any] = event["response"]
                return response
        fail("the stream has no terminal event carrying a response")

    def types(self) -> list[str]:
        return [str(event.get("type")) for event in self.events]

    def require_clean(self) -> None:
        """Fails on any departure at all: wire format, schema or grammar."""
        problems = self.wire_errors + self.schema_errors + [str(v) for v in self.grammar.violations]
        require(not problems, f"the stream departs from the spec: {listing(problems)}")


class Context:
    """One dialect's run against the target; shared by the checks of that run."""

    def __init__(self, client: Client, *, fuzz_examples: int = 0) -> None:
        self.client = client
        self.fuzz_examples = fuzz_examples
        """Cases per operation and generation mode for `fuzz.*` checks; 0 skips them."""
        self.dialect = client.dialect
        self.target = client.target
        self.schemas: Schemas = OPENRESPONSES if self.dialect is Dialect.OPENRESPONSES else OPENAI
        self._memo: dict[str, Any] = {}

    @property
    def model(self) -> str:
        return self.target.model

    @property
    def response_schema(self) -> str:
        return RESPONSE_SCHEMA[self.dialect]

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """`make()` once per run, for what several checks judge (the same text stream, say).

        A failure inside `make` is remembered too, so every check that needs it fails alike.
        """
        if key not in self._memo:
            try:
                self._memo[key] = (True, make())
            except Exception as exc:
                self._memo[key] = (False, exc)
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    # --- requests -------------------------------------------------------------------------

    def body(self, **fields: Any) -> dict[str, Any]:
        """A create-response body for the target's model."""
        return {"model": self.model, **fields}

    def create(self, body: dict[str, Any], *, path: str = "/responses") -> dict[str, Any]:
        """POSTs `body` and returns the response object, validated against the spec."""
        return self.json_body(self.client.send("POST", path, json_body=body))

    def json_body(
        self, exchange: Exchange, schema: str | None = None, *, schemas: Schemas | None = None
    ) -> dict[str, Any]:
        """A 200 JSON answer's body, validated against `schema` (default: the response) of
        `schemas` (default: the dialect's spec)."""
        schema = schema or self.response_schema
        require(exchange.status == 200, f"expected HTTP 200, got {exchange.describe()}")
        require(
            exchange.content_type == "application/json",
            f"{exchange.method} {exchange.path}: Content-Type is "
            f"{exchange.content_type or 'missing'}, not application/json",
        )
        data = exchange.json()
        require(
            isinstance(data, dict), f"{exchange.method} {exchange.path}: body is not a JSON object"
        )
        problems = (schemas or self.schemas).errors(data, schema)
        require(not problems, f"{schema} violated: {listing(problems)}")
        return data  # type: ignore[no-any-return]

    def retrieve(self, response_id: str) -> Exchange:
        return self.client.send("GET", f"/responses/{response_id}")

    def stream(self, body: dict[str, Any], *, path: str = "/responses") -> Streamed:
        """Streams `body` and judges the stream; fails only if it is not a stream at all."""
        stream = self.client.stream(path, body)
        exchange = stream.exchange
        require(exchange.status == 200, f"expected HTTP 200, got {exchange.describe()}")
        require(
            exchange.content_type == "text/event-stream",
            f"streaming: Content-Type is {exchange.content_type or 'missing'}, "
            "not text/event-stream",
        )
        return Streamed(
            stream,
            grammar.check(stream.events),
            self.event_schema_errors(stream.events),
            wire_errors(stream, self.dialect, self.schemas),
        )

    def event_schema_errors(self, events: list[dict[str, Any]]) -> list[str]:
        problems = []
        for index, event in enumerate(events):
            kind = str(event.get("type"))
            if self.dialect is Dialect.OPENRESPONSES and ":" in kind:
                # An implementor's extension event: the spec asks only for these two fields.
                if not isinstance(event.get("sequence_number"), int):
                    problems.append(f"event {index} ({kind}): $.sequence_number is missing")
                continue
            if self.dialect is Dialect.OPENRESPONSES and kind in OPENAI_EVENT_NAMES:
                event = {**event, "type": OPENAI_EVENT_NAMES[kind]}
            for problem in self.schemas.event_errors(event):
                problems.append(f"event {index} ({kind}): {problem}")
        return problems

    # --- errors -----------------------------------------------------------------------------

    def expect_error(self, exchange: Exchange, *statuses: int) -> dict[str, Any]:
        """Requires an error answer with one of `statuses`, in the error shape with the
        dialect's error type; returns the `error` object."""
        require(
            exchange.status in statuses,
            f"expected HTTP {' or '.join(map(str, statuses))}, got {exchange.describe()}",
        )
        require(
            exchange.content_type == "application/json",
            f"the error's Content-Type is {exchange.content_type or 'missing'}, "
            "not application/json",
        )
        body = exchange.json()
        require(
            isinstance(body, dict) and isinstance(body.get("error"), dict),
            f'the error body is not {{"error": {{...}}}}: {exchange.describe()}',
        )
        error: dict[str, Any] = body["error"]
        missing = [key for key in ("message", "type", "param", "code") if key not in error]
        require(not missing, f"$.error lacks {', '.join(missing)}")
        if self.dialect is Dialect.OPENRESPONSES:
            problems = self.schemas.errors(error, "ErrorPayload")
        else:
            problems = self.schemas.errors(body, "ErrorResponse")
        require(not problems, f"the error body violates the spec: {listing(problems)}")
        allowed = error_types(self.dialect, exchange.status)
        if allowed is not None:
            require(
                error["type"] in allowed,
                f"$.error.type is {error['type']!r}; for HTTP {exchange.status} the "
                f"{self.dialect.value} dialect uses {' or '.join(sorted(allowed))}",
            )
        return error


def wire_errors(stream: Stream, dialect: Dialect, schemas: Schemas) -> list[str]:
    """How the SSE framing departs from the dialect's rules."""
    problems: list[str] = []
    strict = dialect is Dialect.OPENRESPONSES
    for index, frame in enumerate(stream.frames):
        payload = "\n".join(frame.data)
        if payload == "[DONE]":
            continue
        if strict and len(frame.data) != 1:
            problems.append(f"frame {index}: {len(frame.data)} data: lines, not one")
        kind = _event_type(payload)
        if frame.event is None and strict:
            problems.append(f"frame {index} ({kind}): no event: line")
        elif frame.event is not None and frame.event != kind:
            problems.append(f"frame {index}: event: {frame.event} but type {kind}")
        known = kind in schemas.event_schemas or kind in OPENAI_EVENT_NAMES
        if strict and not known and ":" not in kind:
            problems.append(
                f"frame {index}: {kind!r} is neither a spec event nor prefixed as an extension"
            )
    problems += [f"a data: payload is not a JSON object: {text!r}" for text in stream.unparsable]
    if strict and not stream.done:
        problems.append("the stream does not end with data: [DONE]")
    if stream.after_done:
        problems.append(f"{stream.after_done} frame(s) after data: [DONE]")
    return problems


def _event_type(payload: str) -> str:
    try:
        value = json.loads(payload)
    except ValueError:
        return "(not JSON)"
    return str(value.get("type")) if isinstance(value, dict) else "(not an object)"
