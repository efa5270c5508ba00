"""`POST /v1/chat/completions`: validated, routed, forwarded, and answered on the spec.

The body is checked against the generated `CreateChatCompletionRequest` (so a bad request is our
400, not an upstream surprise), its image URLs against the URL guard (tools.guard: the provider
would fetch them from inside our network), then forwarded with only `model` rewritten. A
successful answer is normalised to the spec's `CreateChatCompletionResponse` (or, streamed, each
chunk to `CreateChatCompletionStreamResponse`): OpenAI-compatible providers often leave out the
fields the spec requires as null (`logprobs`, `refusal`, a chunk's `finish_reason`) or send null
where the spec has none (`system_fingerprint`), and the official SDKs and strict clients read
the spec. Everything else is relayed as the upstream sent it. An upstream's error status is our
error in OpenAI's shape; a stream that falls silent (`idle_timeout`), breaks off, or is cut by a
stopping server ends in an error object on a `data:` line instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from connexion.lifecycle import ConnexionRequest
from starlette.responses import Response

from openresponses.api import sse
from openresponses.api.common import (
    caller,
    current,
    dialect,
    read_body,
    services,
    stopped_with_server,
    unless_gone,
)
from openresponses.api.dialects import error_body
from openresponses.errors import APIError
from openresponses.generated import openai_models as m
from openresponses.providers.base import Passthrough
from openresponses.ratelimit.limiter import reported_tokens
from openresponses.tools.guard import check_content_url

Meter = Callable[[int], Awaitable[None]] | None
"""What counts an answer's tokens against the caller's key (see ratelimit.limiter)."""


async def create_chat_completion() -> Response:
    req = current()
    body = await read_body(req)
    assert isinstance(body, m.CreateChatCompletionRequest)
    who = caller(req)
    provider, upstream_model = services(req).registry.route(
        str(body.model), who.provider, who.project_name
    )
    forwarded = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    forwarded["model"] = upstream_model
    await _guard_image_urls(forwarded["messages"], services(req).settings.allow_private_networks)
    call = provider.chat_completions(forwarded, api_key=who.upstream_key)
    meter = services(req).limiter.meter(who.key)
    return await unless_gone(req, _answer(req, call, meter))


async def _guard_image_urls(messages: list[dict[str, Any]], allow_private: bool) -> None:
    """Holds every image URL to the URL guard's rule (tools.guard): the provider fetches it
    from inside our network. `image_url` is the schema's only part that names a URL; a
    message whose content is a string has no parts, so text alone costs one pass."""
    for m_index, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for p_index, part in enumerate(content):
            if part.get("type") == "image_url":
                await check_content_url(
                    part["image_url"]["url"],
                    allow_private=allow_private,
                    param=f"messages[{m_index}].content[{p_index}].image_url.url",
                )


async def _answer(req: ConnexionRequest, call: Awaitable[Passthrough], meter: Meter) -> Response:
    """The upstream's answer: an event stream relayed as it comes, anything else read whole
    first (while `unless_gone` watches the client)."""
    reply = await call
    media_type = reply.content_type.split(";")[0].strip().lower()
    if media_type == "text/event-stream":
        return sse.EventStream(_normalised_stream(req, reply.body, meter), sse.NO_BUFFERING)
    raw = b"".join([chunk async for chunk in reply.body])
    if media_type == "application/json":
        raw, tokens = _normalised_completion(raw)
        if meter is not None:
            await meter(tokens)
    return Response(raw, reply.status, media_type=reply.content_type)


def _normalised_completion(raw: bytes) -> tuple[bytes, int]:
    """The completion on the spec, and the tokens its `usage` reports."""
    try:
        completion = orjson.loads(raw)
    except ValueError:
        return raw, 0
    if not isinstance(completion, dict):
        return raw, 0
    _fill(completion, message_key="message")
    return orjson.dumps(completion), reported_tokens(completion)


def _stream_tokens(lines: list[bytes]) -> int:
    """The tokens of the chunk that carries `usage` (the last, with `include_usage`), among
    normalised lines, which orjson wrote without spaces."""
    return sum(reported_tokens(orjson.loads(line[6:])) for line in lines if b'"usage":{' in line)


async def _normalised_stream(
    req: ConnexionRequest, source: AsyncIterator[bytes], meter: Meter
) -> AsyncIterator[bytes]:
    """The upstream's SSE stream line by line, each chunk's JSON normalised; lines are
    reassembled first, since a network read may end anywhere. An error ends it, after a blank
    line that closes whatever event the upstream stopped in. The usage chunk's tokens are
    counted before it is sent on."""
    pending = b""
    try:
        with stopped_with_server(req):
            async for data in source:
                pending += data
                *lines, pending = pending.split(b"\n")
                if lines:
                    normalised = [_normalised_line(line) for line in lines]
                    if meter is not None:
                        await meter(_stream_tokens(normalised))
                    yield b"".join(line + b"\n" for line in normalised)
    except APIError as exc:
        # OpenAI's way to fail a stream: openai-python raises it; a bare end passes for an answer.
        yield b"\ndata: " + orjson.dumps(error_body(exc, dialect(req))) + b"\n\n"
        return
    if pending:
        yield _normalised_line(pending)


def _normalised_line(line: bytes) -> bytes:
    if not line.startswith(b"data:"):
        return line
    try:
        chunk = orjson.loads(line[5:])
    except ValueError:  # `[DONE]`, or whatever else the upstream sent: as it came
        return line
    if not isinstance(chunk, dict):
        return line
    _fill(chunk, message_key="delta")
    return b"data: " + orjson.dumps(chunk)


def _fill(answer: dict[str, Any], *, message_key: str) -> None:
    """Puts in what the spec requires and the upstream left out, in place."""
    if answer.get("system_fingerprint", "") is None:
        del answer["system_fingerprint"]  # optional, and a string when present
    choices = answer.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict):
            continue
        choice.setdefault("logprobs", None)
        if message_key == "delta":
            choice.setdefault("finish_reason", None)
        message = choice.get(message_key)
        if message_key == "message" and isinstance(message, dict):
            message.setdefault("content", None)
            message.setdefault("refusal", None)
