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
    ToolCallDelta,
    UsageReport,
)


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
    parent: Span | None,
) -> AsyncGenerator[ModelEvent, None]:
    """`events` as they come, recorded in a span that starts with the first one asked for
    (under `parent`, or the current span)."""
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": request.model,
    }
    span = tracing.start(f"chat {request.model}", parent, attributes)
    output = _Output() if tracing.CAPTURE_CONTENT else None
    if output is not None:
        _record_input(span, request)
    began, first, error = time.monotonic(), True, None
    try:
        async for event in events:
            if first and not isinstance(event, Answered | UsageReport | Finish):
                first = False
                span.set_attribute("gen_ai.response.time_to_first_chunk", time.monotonic() - began)
            _record(span, event)
            if output is not None:
                output.add(event)
            yield event
    except Exception as exc:
        error = type(exc).__qualname__
        raise
    finally:
        await events.aclose()
        if output is not None:
            span.set_attribute("gen_ai.output.messages", json.dumps([output.message()]))
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


# --- message content, recorded only when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true


def _record_input(span: Span, request: ModelRequest) -> None:
    """The request's messages in the conventions' shape: a role and its parts."""
    entries = [item.model_dump(mode="json", exclude_none=True) for item in request.items]
    messages = [message for message in map(_message, entries) if message is not None]
    span.set_attribute("gen_ai.input.messages", json.dumps(messages))
    if request.instructions:
        parts = [{"type": "text", "content": request.instructions}]
        span.set_attribute("gen_ai.system_instructions", json.dumps(parts))


def _message(entry: dict[str, Any]) -> dict[str, Any] | None:
    kind = entry.get("type", "message")
    if kind == "message":
        content = entry.get("content")
        parts = [content] if isinstance(content, str) else [p.get("text") for p in content or []]
        texts = [{"type": "text", "content": text} for text in parts if text is not None]
        return {"role": entry.get("role"), "parts": texts}
    if kind == "function_call":
        call = {"id": entry.get("call_id"), "name": entry.get("name")}
        arguments = entry.get("arguments")
        return {
            "role": "assistant",
            "parts": [{"type": "tool_call", **call, "arguments": arguments}],
        }
    if kind == "function_call_output":
        response = {"id": entry.get("call_id"), "response": entry.get("output")}
        return {"role": "tool", "parts": [{"type": "tool_call_response", **response}]}
    return None  # reasoning and other items carry no message content


class _Output:
    """The model's answer as it streams: its text and its tool calls."""

    def __init__(self) -> None:
        self.text = ""
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None

    def add(self, event: ModelEvent) -> None:
        if isinstance(event, TextDelta | RefusalDelta):
            self.text += event.text
        elif isinstance(event, ToolCallDelta):
            call = self.calls.setdefault(event.index, {"type": "tool_call", "arguments": ""})
            call["arguments"] += event.arguments
            call.update({k: v for k, v in (("id", event.call_id), ("name", event.name)) if v})
        elif isinstance(event, Finish):
            self.finish = event.reason

    def message(self) -> dict[str, Any]:
        parts = [{"type": "text", "content": self.text}] if self.text else []
        parts += [self.calls[index] for index in sorted(self.calls)]
        return {"role": "assistant", "parts": parts, "finish_reason": self.finish}


async def tool_call(run: Awaitable[Item], item: Item, parent: Span) -> Item:
    """A server tool's run, in an `execute_tool` span whose outcome is the item's status."""
    # An MCP call names its tool; web_search_call and file_search_call are their tool's.
    name = str(getattr(item, "name", None) or item.type.removesuffix("_call"))
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
