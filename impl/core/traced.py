"""The spans of a turn's work (see openresponses.tracing): each model call, with what the GenAI
conventions ask of a `chat` span, and each server tool call, as an `execute_tool` span.

Callers only come here when `tracing.ENABLED`; the turn's span is the parent of both.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Awaitable
from typing import Any

from opentelemetry.trace import Span

from openresponses import tracing
from openresponses.items import Item
from openresponses.providers.base import (
    Answered,
    Finish,
    ModelEvent,
    ModelRequest,
    RefusalDelta,
    TextDelta,
    UsageReport,
)

_CONTENT = (TextDelta, RefusalDelta)


def turn(model: str, response_id: str) -> Span:
    """The span of one response, from its preparation to its last event."""
    return tracing.start(
        f"response {model}",
        None,
        {"gen_ai.request.model": model, "openresponses.response.id": response_id},
    )


async def model_call(
    events: AsyncGenerator[ModelEvent, None],
    request: ModelRequest,
    provider: str,
    parent: Span,
) -> AsyncGenerator[ModelEvent, None]:
    """`events` as they come, recorded in a span that starts with the first one asked for."""
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": request.model,
    }
    span = tracing.start(f"chat {request.model}", parent, attributes)
    if tracing.CAPTURE_CONTENT:
        span.set_attribute("gen_ai.input.messages", _dumped(request.items))
        if request.instructions:
            span.set_attribute("gen_ai.system_instructions", request.instructions)
    began, first, text, error = time.monotonic(), True, "", None
    try:
        async for event in events:
            if first and not isinstance(event, Answered | UsageReport | Finish):
                first = False
                span.set_attribute("gen_ai.response.time_to_first_chunk", time.monotonic() - began)
            _record(span, event)
            if isinstance(event, _CONTENT):
                text += event.text
            yield event
    except Exception as exc:
        error = type(exc).__qualname__
        raise
    finally:
        await events.aclose()
        if tracing.CAPTURE_CONTENT and text:
            output = [{"role": "assistant", "parts": [{"type": "text", "content": text}]}]
            span.set_attribute("gen_ai.output.messages", json.dumps(output))
        tracing.end(span, error)


def _record(span: Span, event: ModelEvent) -> None:
    if isinstance(event, UsageReport):
        span.set_attribute("gen_ai.usage.input_tokens", event.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", event.output_tokens)
    elif isinstance(event, Finish):
        span.set_attribute("gen_ai.response.finish_reasons", [event.reason])
    elif isinstance(event, Answered):
        if event.id:
            span.set_attribute("gen_ai.response.id", event.id)
        if event.model:
            span.set_attribute("gen_ai.response.model", event.model)


def _dumped(items: list[Any]) -> str:
    return json.dumps([item.model_dump(mode="json", exclude_none=True) for item in items])


async def tool_call(run: Awaitable[Item], item: Item, parent: Span) -> Item:
    """A server tool's run, in an `execute_tool` span whose outcome is the item's status."""
    name = str(getattr(item, "name", None) or item.type)
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": str(getattr(item, "id", "")),
        "openresponses.tool.type": item.type,
    }
    span = tracing.start(f"execute_tool {name}", parent, attributes)
    try:
        done = await run
    except BaseException as exc:
        tracing.end(span, type(exc).__qualname__)
        raise
    status = str(getattr(done, "status", "completed"))
    span.set_attribute("openresponses.tool.status", status)
    # A tool's failure is an item the model reads, not an exception: the span still says so.
    tracing.end(span, "tool_error" if status == "failed" else None)
    return done
