"""A scripted upstream model server on loopback, speaking providers' real wire formats.

Tests script replies per model name (`up.script(Text("hi"))` returns a fresh model name); the
n-th request naming that model gets the n-th reply. Requests are recorded for assertions.
Chat Completions (JSON and SSE) is implemented; each wire format is one `_chat_*` style
function so Anthropic Messages and OpenAI Responses can be added beside it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


@dataclass(frozen=True)
class Text:
    text: str
    reasoning: str | None = None
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    chunk_size: int = 5
    chunk_delay: float = 0.0  # seconds between stream chunks, for a slow model


@dataclass(frozen=True)
class Call:
    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class ToolCalls:
    calls: list[Call]
    text: str | None = None
    finish_reason: str = "tool_calls"
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class Error:
    status: int
    message: str
    type: str = "server_error"
    code: str | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Cut:
    """Send `after_chunks` SSE chunks of `reply`, then drop the connection."""

    after_chunks: int
    reply: Text | ToolCalls


@dataclass(frozen=True)
class Delay:
    seconds: float
    reply: Reply


@dataclass(frozen=True)
class Raw:
    status: int
    body: bytes
    content_type: str = "application/json"


Reply = Text | ToolCalls | Error | Cut | Delay | Raw


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    json: dict[str, Any]


class _Dropped(Exception):
    """Raised inside a streaming body to abort the connection mid-stream."""


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), max(size, 1))] or [""]


def _call_id(call: Call, index: int) -> str:
    return call.id or f"call_{index}_{secrets.token_hex(4)}"


def _chat_message(reply: Text | ToolCalls) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "refusal": None}
    if isinstance(reply, Text):
        message["content"] = reply.text
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
    else:
        message["content"] = reply.text
        message["tool_calls"] = [
            {
                "id": _call_id(c, i),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for i, c in enumerate(reply.calls)
        ]
    return message


def _chat_completion(model: str, reply: Text | ToolCalls) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{secrets.token_hex(6)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": _chat_message(reply),
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": reply.usage.wire(),
    }


def _chat_deltas(reply: Text | ToolCalls) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if isinstance(reply, Text):
        if reply.reasoning:
            deltas += [{"reasoning_content": p} for p in _chunks(reply.reasoning, reply.chunk_size)]
        deltas += [{"content": p} for p in _chunks(reply.text, reply.chunk_size) if p]
        return deltas
    if reply.text:
        deltas += [{"content": p} for p in _chunks(reply.text, 5)]
    for index, call in enumerate(reply.calls):
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": _call_id(call, index),
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in _chunks(call.arguments, 4)
        ]
    return deltas


def _chat_chunks(model: str, reply: Text | ToolCalls, include_usage: bool) -> list[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-{secrets.token_hex(6)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    chunks = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None, "logprobs": None}]}
        for d in _chat_deltas(reply)
    ]
    chunks.append(
        {
            **base,
            "choices": [
                {"index": 0, "delta": {}, "finish_reason": reply.finish_reason, "logprobs": None}
            ],
        }
    )
    if include_usage:
        chunks.append({**base, "choices": [], "usage": reply.usage.wire()})
    return chunks


def _error_response(error: Error) -> Response:
    body = {
        "error": {"message": error.message, "type": error.type, "param": None, "code": error.code}
    }
    return JSONResponse(body, status_code=error.status, headers=error.headers)


class ScriptedUpstream:
    """Runs the scripted server under uvicorn in a background thread on a free port."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._served: dict[str, int] = {}
        self._requests: dict[str, list[RecordedRequest]] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply, model: str | None = None) -> str:
        name = model or f"scripted-{secrets.token_hex(4)}"
        with self._lock:
            self._scripts[name] = list(replies)
            self._served[name] = 0
            self._requests.setdefault(name, [])
        return name

    def requests(self, model: str) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests.get(model, []))

    def _next(self, model: str, recorded: RecordedRequest) -> Reply | None:
        with self._lock:
            self._requests.setdefault(model, []).append(recorded)
            script = self._scripts.get(model, [])
            index = self._served.get(model, 0)
            self._served[model] = index + 1
            return script[index] if index < len(script) else None

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model"))
        recorded = RecordedRequest(request.url.path, dict(request.headers), body)
        reply = self._next(model, recorded)
        while isinstance(reply, Delay):
            await asyncio.sleep(reply.seconds)
            reply = reply.reply
        if reply is None:
            return _error_response(Error(500, f"script for model {model!r} is exhausted"))
        if isinstance(reply, Error):
            return _error_response(reply)
        if isinstance(reply, Raw):
            return Response(reply.body, status_code=reply.status, media_type=reply.content_type)
        if not body.get("stream"):
            if isinstance(reply, Cut):
                raise _Dropped
            return JSONResponse(_chat_completion(model, reply))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        limit = reply.after_chunks if isinstance(reply, Cut) else None
        inner = reply.reply if isinstance(reply, Cut) else reply
        return StreamingResponse(
            self._sse(
                _chat_chunks(model, inner, include_usage), limit, getattr(inner, "chunk_delay", 0.0)
            ),
            media_type="text/event-stream",
        )

    async def _sse(
        self, chunks: list[dict[str, Any]], limit: int | None, delay: float
    ) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(chunks):
            if limit is not None and index >= limit:
                raise _Dropped
            if delay and index:
                await asyncio.sleep(delay)
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def _models(self, request: Request) -> Response:
        with self._lock:
            names = ["scripted-default", *self._scripts]
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "scripted"} for n in names]
        return JSONResponse({"object": "list", "data": data})

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="critical", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
