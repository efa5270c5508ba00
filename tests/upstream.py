"""A scripted upstream model server on loopback, speaking providers' real wire formats.

Tests need a model provider that answers deterministically, fails on cue and shows what it was
sent, yet is reached the way a real one is: over HTTP, through a real socket, so that the
server's HTTP client, SSE parsing and error handling are exercised for real.

    up = ScriptedUpstream()
    up.start()
    model = up.script(Text("Hello"), Error(429, "Slow down", type="rate_limit_error"))
    ...  # point a client at up.base_url; the 1st request for `model` gets "Hello", the 2nd a 429
    up.requests(model)  # what was sent
    up.stop()

Requests are routed by the `model` field of their JSON body, so tests sharing one server never
see each other's replies. Each wire format is one `_Wire` value (how to render a complete body,
the stream frames and an error): Chat Completions (`/v1/chat/completions`), Anthropic Messages
(`/v1/messages`) and OpenAI Responses (`/v1/responses`). `/v1/embeddings` answers any model
with made-up vectors, or hangs on a scripted `Hang` (see `_embeddings`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import string
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.loopback import LoopbackServer

__all__ = [
    "Call",
    "Cut",
    "Delay",
    "Error",
    "Hang",
    "Raw",
    "RecordedRequest",
    "Reply",
    "ScriptedUpstream",
    "Text",
    "ToolCalls",
    "Usage",
]

DEFAULT_MODEL = "scripted-default"
"""Always listed by `GET /v1/models`, so model listings are never empty; its script is empty."""


# --- Replies -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reports them; the total is derived, as providers do."""

    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Text:
    """An assistant message, optionally preceded by reasoning (DeepSeek/vLLM style) and
    followed by a refusal (OpenAI's `refusal` field; an empty `text` makes it a pure refusal).

    Streamed in pieces of `chunk_size` characters so clients must reassemble it;
    `chunk_delay` seconds between stream chunks plays a slow model.
    """

    text: str
    _: KW_ONLY
    reasoning: str | None = None
    summary: str | None = None  # a reasoning summary (OpenAI Responses wire only)
    refusal: str | None = None
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    chunk_size: int = 5
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class Call:
    """One function call; `arguments` is the JSON text, sent verbatim. A missing id is made up."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class ToolCalls:
    """An assistant turn that calls tools, in parallel when there are several calls."""

    calls: Sequence[Call]
    _: KW_ONLY
    text: str | None = None
    finish_reason: str = "tool_calls"
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        # A tuple keeps the frozen reply immutable even when the caller passed a list.
        object.__setattr__(self, "calls", tuple(self.calls))


@dataclass(frozen=True)
class Error:
    """An HTTP error with the provider's error body, sent before any stream would start."""

    status: int
    message: str
    _: KW_ONLY
    type: str = "server_error"
    code: str | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Cut:
    """A connection that breaks: after `after_chunks` stream chunks of `reply` (never `[DONE]`),
    or, for a non-stream request, before any response at all."""

    after_chunks: int
    reply: Text | ToolCalls


@dataclass(frozen=True)
class Delay:
    """Waits `seconds` before answering with `reply`, to play a slow or hung provider."""

    seconds: float
    reply: Reply


@dataclass(frozen=True)
class Hang:
    """A provider that stops answering and holds the connection until the client closes it:
    after `after_chunks` stream chunks of `reply` (0: before the status line, so the client
    gets no byte at all), or, for a non-stream request, before any response.
    `ScriptedUpstream.hanging()` counts the connections held."""

    after_chunks: int = 0
    reply: Text | ToolCalls = Text("This answer never ends.")


@dataclass(frozen=True)
class Raw:
    """Exactly these bytes, for malformed or unusual answers the other replies cannot express."""

    status: int
    body: bytes
    content_type: str = "application/json"


Reply = Text | ToolCalls | Error | Cut | Delay | Hang | Raw
Content = Text | ToolCalls


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the upstream received it; header names are lower-case."""

    path: str
    headers: dict[str, str]
    json: dict[str, Any]


# --- Wire formats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wire:
    """How one provider API renders a reply; everything else (routing, scripts, faults) is shared.

    `frames` are the complete SSE frames of a stream, which `Cut` counts; `done` is what follows
    the last one (OpenAI's `data: [DONE]`, nothing for APIs that end on an event).
    """

    body: Callable[[str, Content], dict[str, Any]]
    frames: Callable[[str, Content, dict[str, Any]], list[bytes]]
    error: Callable[[Error], dict[str, Any]]
    done: bytes


_ALPHANUMERIC = string.ascii_letters + string.digits


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), max(size, 1))]


def _argument_pieces(arguments: str) -> list[str]:
    """Up to 4 characters a piece but at least two pieces, so even `{}` arrives split."""
    return _pieces(arguments, max(1, min(4, len(arguments) // 2))) or [""]


def _provider_id(prefix: str, length: int) -> str:
    """An id shaped like OpenAI's (`chatcmpl-` or `call_` and letters and digits)."""
    return prefix + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def _call_ids(reply: ToolCalls) -> list[str]:
    return [call.id or _provider_id("call_", 24) for call in reply.calls]


def _chat_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _chat_id() -> str:
    return _provider_id("chatcmpl-", 29)


def _chat_body(model: str, reply: Content) -> dict[str, Any]:
    """A `chat.completion` object, as `POST /v1/chat/completions` returns without streaming."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if isinstance(reply, Text):
        message["refusal"] = reply.refusal
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
    if isinstance(reply, ToolCalls):
        message["tool_calls"] = [
            {"id": id_, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for id_, c in zip(_call_ids(reply), reply.calls, strict=True)
        ]
    return {
        "id": _chat_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
        ],
        "usage": _chat_usage(reply.usage),
    }


def _chat_deltas(reply: Content) -> list[dict[str, Any]]:
    """The `delta`s of a stream, in OpenAI's order: role, reasoning, content, tool calls."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
    if isinstance(reply, Text):
        if reply.reasoning:
            deltas += [{"reasoning_content": p} for p in _pieces(reply.reasoning, reply.chunk_size)]
        deltas += [{"content": p} for p in _pieces(reply.text, reply.chunk_size)]
        deltas += [{"refusal": p} for p in _pieces(reply.refusal or "", reply.chunk_size)]
        return deltas
    deltas += [{"content": p} for p in _pieces(reply.text or "", 5)]
    for index, (id_, call) in enumerate(zip(_call_ids(reply), reply.calls, strict=True)):
        # The id, type and name come once, with empty arguments; the arguments follow in pieces.
        head = {"name": call.name, "arguments": ""}
        deltas.append(
            {"tool_calls": [{"index": index, "id": id_, "type": "function", "function": head}]}
        )
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in _argument_pieces(call.arguments)
        ]
    return deltas


def _chat_frames(model: str, reply: Content, request: dict[str, Any]) -> list[bytes]:
    """`chat.completion.chunk` frames; with `stream_options.include_usage` every chunk carries
    `usage: null` and a last chunk with no choices carries the usage, as OpenAI sends them."""
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    head = {
        "id": _chat_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    usage_null: dict[str, Any] = {"usage": None} if include_usage else {}

    def choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    chunks = [{**head, "choices": [choice(d, None)], **usage_null} for d in _chat_deltas(reply)]
    chunks.append({**head, "choices": [choice({}, reply.finish_reason)], **usage_null})
    if include_usage:
        chunks.append({**head, "choices": [], "usage": _chat_usage(reply.usage)})
    return [_sse_frame(chunk) for chunk in chunks]


def _openai_error(error: Error) -> dict[str, Any]:
    return {
        "error": {"message": error.message, "type": error.type, "param": None, "code": error.code}
    }


def _sse_frame(data: dict[str, Any]) -> bytes:
    # Compact separators, as OpenAI writes its stream chunks.
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


_CHAT = _Wire(body=_chat_body, frames=_chat_frames, error=_openai_error, done=b"data: [DONE]\n\n")


# --- Anthropic Messages ------------------------------------------------------------------------

_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def signature(reasoning: str) -> str:
    """The signature Anthropic would attach to a thinking block; derived, so tests can expect it."""
    return "sig-" + hashlib.sha256(reasoning.encode()).hexdigest()[:24]


def _anthropic_blocks(reply: Content) -> list[dict[str, Any]]:
    """The content blocks of a reply: thinking, text, then tool uses."""
    blocks: list[dict[str, Any]] = []
    if isinstance(reply, Text) and reply.reasoning:
        blocks.append(
            {
                "type": "thinking",
                "thinking": reply.reasoning,
                "signature": signature(reply.reasoning),
            }
        )
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    if isinstance(reply, ToolCalls):
        for id_, call in zip(_call_ids(reply), reply.calls, strict=True):
            tool_id = id_.replace("call_", "toolu_", 1)
            blocks.append(
                {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": call.name,
                    "input": json.loads(call.arguments),
                }
            )
    return blocks


def _anthropic_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": 0,
        "output_tokens": usage.completion_tokens,
    }


def _anthropic_message(model: str, reply: Content, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": _provider_id("msg_", 24),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason),
        "stop_sequence": None,
        "usage": _anthropic_usage(reply.usage),
    }


def _anthropic_body(model: str, reply: Content) -> dict[str, Any]:
    """A Messages API `message`, as `POST /v1/messages` returns without streaming."""
    return _anthropic_message(model, reply, _anthropic_blocks(reply))


def _named_event(kind: str, data: dict[str, Any]) -> bytes:
    """An SSE frame with an `event:` line, as Anthropic and OpenAI Responses streams carry."""
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def _anthropic_deltas(block: dict[str, Any], size: int) -> list[dict[str, Any]]:
    """A block's streamed pieces: text and thinking in `size`-character deltas, a thinking
    block's signature in one delta at its end, tool input as partial JSON."""
    if block["type"] == "text":
        return [{"type": "text_delta", "text": p} for p in _pieces(block["text"], size)]
    if block["type"] == "thinking":
        pieces = [
            {"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], size)
        ]
        return [*pieces, {"type": "signature_delta", "signature": block["signature"]}]
    arguments = json.dumps(block["input"])
    return [{"type": "input_json_delta", "partial_json": p} for p in _argument_pieces(arguments)]


def _anthropic_start(block: dict[str, Any]) -> dict[str, Any]:
    """A block as `content_block_start` announces it: empty, to be filled by deltas."""
    if block["type"] == "tool_use":
        return {**block, "input": {}}
    if block["type"] == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "text", "text": ""}


def _anthropic_frames(model: str, reply: Content, request: dict[str, Any]) -> list[bytes]:
    """The Messages stream: message_start, each block's start/deltas/stop, message_delta with
    the stop reason and output tokens, message_stop; a ping early on, as Anthropic sends."""
    size = reply.chunk_size if isinstance(reply, Text) else 5
    usage = _anthropic_usage(reply.usage)
    start = {**_anthropic_message(model, reply, []), "stop_reason": None}
    start["usage"] = {**usage, "output_tokens": 1}
    frames = [_named_event("message_start", {"message": start}), _named_event("ping", {})]
    for index, block in enumerate(_anthropic_blocks(reply)):
        frames.append(
            _named_event(
                "content_block_start", {"index": index, "content_block": _anthropic_start(block)}
            )
        )
        frames += [
            _named_event("content_block_delta", {"index": index, "delta": delta})
            for delta in _anthropic_deltas(block, size)
        ]
        frames.append(_named_event("content_block_stop", {"index": index}))
    stop_reason = _ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason)
    stop = {"stop_reason": stop_reason, "stop_sequence": None}
    frames.append(
        _named_event(
            "message_delta", {"delta": stop, "usage": {"output_tokens": usage["output_tokens"]}}
        )
    )
    frames.append(_named_event("message_stop", {}))
    return frames


def _anthropic_error(error: Error) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error.type, "message": error.message}}


_ANTHROPIC = _Wire(body=_anthropic_body, frames=_anthropic_frames, error=_anthropic_error, done=b"")


# --- OpenAI Responses --------------------------------------------------------------------------


def encrypted(reasoning: str) -> str:
    """The `encrypted_content` OpenAI would return for a reasoning item; derived, for tests."""
    return "enc-" + hashlib.sha256(reasoning.encode()).hexdigest()[:24]


def reasoning_id(reasoning: str) -> str:
    """The upstream's id of the reasoning item that `encrypted(reasoning)` seals; derived, so
    tests can expect it to come back."""
    return "rs_" + hashlib.sha256(b"id:" + reasoning.encode()).hexdigest()[:32]


def _responses_items(reply: Content) -> list[dict[str, Any]]:
    """The output items of a reply, complete: reasoning, message, function calls."""
    items: list[dict[str, Any]] = []
    if isinstance(reply, Text) and (reply.reasoning or reply.summary):
        thought = reply.reasoning or ""
        items.append(
            {
                "id": reasoning_id(thought or reply.summary or ""),
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": reply.summary}]
                if reply.summary
                else [],
                "content": [{"type": "reasoning_text", "text": thought}] if thought else [],
                "encrypted_content": encrypted(thought or reply.summary or ""),
                "status": "completed",
            }
        )
    if reply.text:
        part = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
        items.append(
            {
                "id": _provider_id("msg_", 24),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [part],
            }
        )
    if isinstance(reply, ToolCalls):
        for id_, call in zip(_call_ids(reply), reply.calls, strict=True):
            items.append(
                {
                    "id": _provider_id("fc_", 24),
                    "type": "function_call",
                    "call_id": id_,
                    "name": call.name,
                    "arguments": call.arguments,
                    "status": "completed",
                }
            )
    return items


def _responses_body(
    model: str, reply: Content, output: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A `response` object as `POST /v1/responses` returns it without streaming."""
    usage = reply.usage
    length = reply.finish_reason == "length"
    return {
        "id": _provider_id("resp_", 24),
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if length else "completed",
        "model": model,
        "incomplete_details": {"reason": "max_output_tokens"} if length else None,
        "output": _responses_items(reply) if output is None else output,
        "usage": {
            "input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.total_tokens,
        },
    }


def _responses_text_events(
    item: dict[str, Any], where: dict[str, Any], size: int
) -> list[dict[str, Any]]:
    """A message's or reasoning item's streamed text: summary parts first, then content."""
    events: list[dict[str, Any]] = []
    for n, part in enumerate(item.get("summary") or []):
        at = {**where, "summary_index": n}
        empty = {"type": "summary_text", "text": ""}
        events.append({"type": "response.reasoning_summary_part.added", **at, "part": empty})
        events += [
            {"type": "response.reasoning_summary_text.delta", **at, "delta": p}
            for p in _pieces(part["text"], size)
        ]
        events.append({"type": "response.reasoning_summary_text.done", **at, "text": part["text"]})
        events.append({"type": "response.reasoning_summary_part.done", **at, "part": part})
    text_key = "reasoning_text" if item["type"] == "reasoning" else "output_text"
    for part in item["content"]:
        at = {**where, "content_index": 0}
        events += [
            {"type": f"response.{text_key}.delta", **at, "delta": p}
            for p in _pieces(part["text"], size)
        ]
        events.append({"type": f"response.{text_key}.done", **at, "text": part["text"]})
    return events


def _responses_frames(model: str, reply: Content, request: dict[str, Any]) -> list[bytes]:
    """The Responses stream: created, then per item added / deltas / done, then the terminal
    event with the whole response."""
    size = reply.chunk_size if isinstance(reply, Text) else 5
    final = _responses_body(model, reply)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**final, "status": "in_progress", "output": []}}
    ]
    for index, item in enumerate(final["output"]):
        where = {"output_index": index, "item_id": item["id"]}
        if item["type"] == "function_call":
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                }
            )
            events += [
                {"type": "response.function_call_arguments.delta", **where, "delta": p}
                for p in _argument_pieces(item["arguments"])
            ]
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    **where,
                    "arguments": item["arguments"],
                }
            )
        else:
            empty = {**item, "content": [], "status": "in_progress"}
            if item["type"] == "reasoning":
                empty["summary"] = []
            empty.pop("encrypted_content", None)
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": empty}
            )
            events += _responses_text_events(item, where, size)
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": f"response.{final['status']}", "response": final})
    return [
        _named_event(event["type"], {**event, "sequence_number": number})
        for number, event in enumerate(events)
    ]


_RESPONSES = _Wire(body=_responses_body, frames=_responses_frames, error=_openai_error, done=b"")


# --- Breaking connections ----------------------------------------------------------------------

_TRANSPORT = "scripted_upstream.transport"


class _ExposeTransport:
    """Puts uvicorn's socket transport into the scope, the only way to hang up on a client.

    ASGI has no message for "drop the connection": an app that fails before responding gets a
    500 from the server. uvicorn hands the app its request cycle's bound `send`, whose object
    owns the transport; this wrapper must therefore be the outermost app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_TRANSPORT] = getattr(getattr(send, "__self__", None), "transport", None)
        await self.app(scope, receive, send)


async def _hang_up(scope: Scope, receive: Receive) -> None:
    """Closes the connection (after flushing what was sent) and waits until uvicorn has seen it,
    so that it neither answers with a 500 nor logs an unfinished response."""
    transport = scope.get(_TRANSPORT)
    if transport is None:
        raise RuntimeError("hanging up needs the transport that _ExposeTransport provides")
    transport.close()
    while (await receive())["type"] != "http.disconnect":
        pass


class _Held:
    """The connections `Hang` replies hold open, counted from the upstream's side."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    async def hold(self, receive: Receive) -> None:
        """Sends nothing more and returns once the client has closed the connection."""
        with self._lock:
            self.count += 1
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            with self._lock:
                self.count -= 1


class _Silence(Response):
    """Not even a status line: the connection is held until the client gives up."""

    def __init__(self, held: _Held) -> None:
        self.held = held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.held.hold(receive)


class _HangUp(Response):
    """No response at all: the client sees the server disconnect."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _hang_up(scope, receive)


class _EventStream(Response):
    """SSE frames, optionally paced, ending in `done` or, when `cut_after` is set, in a hang-up
    after that many frames (or, with `held`, in silence on a connection held open).

    Written out rather than a StreamingResponse so the frame count at which it breaks is exact.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        frames: list[bytes],
        done: bytes,
        *,
        cut_after: int | None,
        delay: float,
        held: _Held | None = None,
    ) -> None:
        super().__init__()  # sets the content-type; the body is sent chunked, below
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.frames = frames
        self.done = done
        self.cut_after = cut_after
        self.delay = delay
        self.held = held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for index, frame in enumerate(self.frames):
            if index == self.cut_after:
                await (self.held.hold(receive) if self.held else _hang_up(scope, receive))
                return
            if self.delay and index:
                await asyncio.sleep(self.delay)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if self.cut_after is not None:
            await _hang_up(scope, receive)
            return
        await send({"type": "http.response.body", "body": self.done, "more_body": False})


# --- The server --------------------------------------------------------------------------------


class ScriptedUpstream:
    """The scripted provider, served by uvicorn in a background thread on a free loopback port.

    Thread-safe: tests script and inspect from their thread while the server thread serves.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {DEFAULT_MODEL: []}
        self._responders: dict[str, Callable[[dict[str, Any]], Reply]] = {}
        self._served: dict[str, int] = {}
        self._requests: dict[str, list[RecordedRequest]] = {}
        self._loopback: LoopbackServer | None = None
        self._held = _Held()

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in `/v1`."""
        if self._loopback is None:
            raise RuntimeError("the upstream is not started")
        return f"{self._loopback.url}/v1"

    def script(self, *replies: Reply, model: str | None = None) -> str:
        """Scripts a model's replies, one per request in order, and returns the model's name.

        Without `model`, the name is fresh, so each test gets a model of its own. Scripting a
        name again replaces its script and forgets its requests.
        """
        with self._lock:
            while model is None:
                candidate = f"scripted-{secrets.token_hex(3)}"
                if candidate not in self._scripts and candidate not in self._requests:
                    model = candidate
            self._scripts[model] = list(replies)
            self._served[model] = 0
            self._requests[model] = []
        return model

    def responder(self, answer: Callable[[dict[str, Any]], Reply], model: str) -> str:
        """Makes `model` answer every request with `answer(request_body)`, for clients (such
        as the conformance harness) whose requests a test does not fix in advance."""
        with self._lock:
            self._responders[model] = answer
            self._requests[model] = []
        return model

    def requests(self, model: str) -> list[RecordedRequest]:
        """The requests received for `model`, oldest first (also for models never scripted)."""
        with self._lock:
            return list(self._requests.get(model, []))

    def hanging(self) -> int:
        """How many connections `Hang` replies hold open now, of all models."""
        return self._held.count

    def _take(self, model: str, request: RecordedRequest) -> Reply:
        """Records the request and picks its reply; a model without one gets the error a
        provider would give, so a test that mis-routes or over-requests fails loudly."""
        with self._lock:
            self._requests.setdefault(model, []).append(request)
            if model in self._responders:
                return self._responders[model](request.json)
            script = self._scripts.get(model)
            if script is None:
                return Error(
                    404,
                    f"The model `{model}` does not exist or you do not have access to it.",
                    type="invalid_request_error",
                    code="model_not_found",
                )
            index = self._served[model] = self._served.get(model, 0) + 1
            if index > len(script):
                return Error(
                    500,
                    f"The script for model `{model}` is exhausted: it has {len(script)} "
                    f"replies and this is request {index}.",
                )
            return script[index - 1]

    async def _serve(self, wire: _Wire, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            message = "The request body must be a JSON object with a string `model`."
            bad = Error(400, message, type="invalid_request_error")
            return JSONResponse(wire.error(bad), status_code=400)

        model: str = body["model"]
        reply = self._take(model, RecordedRequest(request.url.path, dict(request.headers), body))
        while isinstance(reply, Delay):
            await asyncio.sleep(reply.seconds)
            reply = reply.reply

        if isinstance(reply, Error):
            return JSONResponse(wire.error(reply), reply.status, headers=reply.headers)
        if isinstance(reply, Raw):
            # A header rather than media_type, which Starlette would extend with a charset.
            return Response(reply.body, reply.status, headers={"content-type": reply.content_type})
        cut_after = reply.after_chunks if isinstance(reply, Cut | Hang) else None
        held = self._held if isinstance(reply, Hang) else None
        content = reply.reply if isinstance(reply, Cut | Hang) else reply
        if held is not None and (body.get("stream") is not True or cut_after == 0):
            return _Silence(held)
        if body.get("stream") is not True:
            return _HangUp() if cut_after is not None else JSONResponse(wire.body(model, content))
        delay = content.chunk_delay if isinstance(content, Text) else 0.0
        frames = wire.frames(model, content, body)
        return _EventStream(frames, wire.done, cut_after=cut_after, delay=delay, held=held)

    def _route(self, path: str, wire: _Wire) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self._serve(wire, request)

        return Route(path, endpoint, methods=["POST"])

    async def _embeddings(self, request: Request) -> Response:
        """`POST /v1/embeddings` for any model: a made-up vector per input, `[len(input),
        index, 0.25]`, as floats or base64 float32 like OpenAI's; the request is recorded.
        A scripted model's `Hang` reply holds the connection instead (other replies: vectors)."""
        body = await request.json()
        model = str(body["model"])
        recorded = RecordedRequest(request.url.path, dict(request.headers), body)
        if model in self._scripts:
            if isinstance(self._take(model, recorded), Hang):
                return _Silence(self._held)
        else:
            with self._lock:
                self._requests.setdefault(model, []).append(recorded)
        given = body["input"]
        inputs = [given] if isinstance(given, str) or isinstance(given[0], int) else given
        data = []
        for index, item in enumerate(inputs):
            vector = [float(len(item)), float(index), 0.25]
            if body.get("encoding_format") == "base64":
                packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                data.append({"object": "embedding", "index": index, "embedding": packed})
            else:
                data.append({"object": "embedding", "index": index, "embedding": vector})
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        return JSONResponse({"object": "list", "data": data, "model": model, "usage": usage})

    async def _models(self, request: Request) -> Response:
        with self._lock:
            names = [*self._scripts, *self._responders]
        data = [
            {"id": n, "object": "model", "created": 1700000000, "owned_by": "scripted"}
            for n in names
        ]
        return JSONResponse({"object": "list", "data": data})

    def start(self) -> None:
        """Starts serving and returns once the server accepts connections."""
        if self._loopback is not None:
            raise RuntimeError("the upstream is already started")
        app = Starlette(
            routes=[
                self._route("/v1/chat/completions", _CHAT),
                self._route("/v1/messages", _ANTHROPIC),
                self._route("/v1/responses", _RESPONSES),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )
        self._loopback = LoopbackServer(_ExposeTransport(app), name="scripted-upstream")
        self._loopback.start()

    def stop(self) -> None:
        """Stops serving, cancelling any reply still in flight after a second's grace."""
        if self._loopback is not None:
            self._loopback.stop()
            self._loopback = None
