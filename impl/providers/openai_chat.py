"""Adapter for OpenAI-compatible Chat Completions upstreams (OpenAI, Groq, Ollama, vLLM…).

Responses items become chat messages on the way out; chat-completion JSON or SSE chunks
become `ModelEvent`s on the way back. Reasoning that such upstreams return as
`reasoning_content` (DeepSeek, vLLM, Ollama) is surfaced as reasoning deltas.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from openresponses.generated import openai_models as m
from openresponses.providers.base import (
    Answered,
    Finish,
    FinishReason,
    ModelEvent,
    ModelRequest,
    ProviderError,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    UsageReport,
    refuse_summary,
    unsupported,
)
from openresponses.providers.http import DONE, Adapter, broke_off, failed_mid_stream

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIChatProvider(Adapter):
    """One chat-completions upstream at `base_url` (ending in `/v1` or equivalent)."""

    async def generate(
        self, request: ModelRequest, *, api_key: str | None
    ) -> AsyncGenerator[ModelEvent, None]:
        body = chat_body(request, self.name)
        url = f"{self.base_url}/chat/completions"
        headers = self.headers(api_key)
        if not request.stream:
            for event in _message_events(await self.upstream.answer(url, headers, body)):
                yield event
            return
        # The stream is read here, not in a helper generator: one step less per event.
        answered: Answered | None = None
        async with aclosing(self.upstream.sse(url, headers, body)) as chunks:
            async for chunk in chunks:
                if chunk is DONE:
                    return
                if "error" in chunk:
                    raise failed_mid_stream(self.name, chunk["error"] or {})
                events = _chunk_events(chunk)
                # Said with the first event that says something: the first event decides
                # whether a failure is still an HTTP error (see core.turn).
                if answered is None and events:
                    answered = Answered(chunk.get("id"), chunk.get("model"))
                    yield answered
                for event in events:
                    yield event
        raise broke_off(self.name)  # a stream without `[DONE]`


# --- requests -------------------------------------------------------------------------------


def chat_body(request: ModelRequest, provider: str) -> dict[str, Any]:
    """The chat-completions request body for `request`."""
    body: dict[str, Any] = {"model": request.model, "messages": chat_messages(request, provider)}
    if request.tools:
        body["tools"] = [_chat_tool(tool) for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _chat_tool_choice(request.tool_choice)
    if request.parallel_tool_calls is not None and request.tools:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_completion_tokens": request.max_output_tokens,
        "user": request.user,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    refuse_summary(request, provider, "chat completions")
    hints = {k: v for k, v in request.hints.items() if k != "reasoning_summary"}
    body.update(hints)  # chat completions takes every other hint under the same name
    if request.text_format is not None:
        body["response_format"] = _chat_response_format(request.text_format)
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _chat_tool(tool: m.FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    function["parameters"] = tool.parameters or {"type": "object", "properties": {}}
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice["name"]}}
    # allowed_tools: the engine already narrowed `tools`, so only the mode remains.
    mode = choice.get("mode", "auto")
    return mode if isinstance(mode, str) else "auto"


def _chat_response_format(text_format: dict[str, Any]) -> dict[str, Any]:
    if text_format.get("type") != "json_schema":
        return {"type": text_format["type"]}
    schema = {
        k: text_format[k] for k in ("name", "schema", "description", "strict") if k in text_format
    }
    return {"type": "json_schema", "json_schema": schema}


def chat_messages(request: ModelRequest, provider: str) -> list[dict[str, Any]]:
    """The conversation as chat messages; tool calls join the assistant turn they belong to."""
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    for item in request.items:
        _append_item(messages, item, provider)
    return messages


def _append_item(messages: list[dict[str, Any]], item: Any, provider: str) -> None:
    kind = getattr(item, "type", "message")
    if kind == "message":
        messages.append(_chat_message(item))
    elif kind == "function_call":
        call = {
            "id": item.call_id,
            "type": "function",
            "function": {"name": item.name, "arguments": item.arguments},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" not in last:
            last["tool_calls"] = [call]
        elif last is not None and last["role"] == "assistant":
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.output if isinstance(item.output, str) else _tool_text(item.output, provider)
        messages.append({"role": "tool", "tool_call_id": item.call_id, "content": output})
    # Reasoning items are not sent back: chat-completions upstreams reject or ignore them.


def _chat_message(item: Any) -> dict[str, Any]:
    role = item.role
    if role == "assistant":
        text = "".join(
            part.text if part.type == "output_text" else part.refusal for part in item.content
        )
        return {"role": "assistant", "content": text}
    parts = [_chat_part(part) for part in item.content]
    if role != "user" or all(part["type"] == "text" for part in parts):
        return {"role": role, "content": "".join(part.get("text", "") for part in parts)}
    return {"role": role, "content": parts}


def _chat_part(part: Any) -> dict[str, Any]:
    if part.type == "input_text":
        return {"type": "text", "text": part.text}
    if part.type == "input_image":
        image: dict[str, Any] = {"url": str(part.image_url)}
        if part.detail is not None:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    file = {key: getattr(part, key) for key in ("file_data", "filename")}
    return {"type": "file", "file": {key: value for key, value in file.items() if value}}


def _tool_text(parts: list[Any], provider: str) -> str:
    """A function output's parts as the text a `tool` message holds: it can hold nothing else."""
    for part in parts:
        if part.type != "input_text":
            what = f"{part.type} in a function_call_output"
            raise unsupported(what, provider, "chat completions", "input")
    return "".join(part.text for part in parts)


# --- answers --------------------------------------------------------------------------------


def _usage(data: dict[str, Any] | None) -> UsageReport | None:
    if not data:
        return None
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    return UsageReport(
        input_tokens=int(data.get("prompt_tokens") or 0),
        output_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def _finish(reason: Any) -> Finish:
    return Finish(_FINISH.get(str(reason), "stop"))


def _content_events(part: dict[str, Any]) -> list[ModelEvent]:
    """Events for a chat `message` or a stream chunk's `delta`: both carry the same fields,
    a message simply carries all of them at once."""
    events: list[ModelEvent] = []
    reasoning = part.get("reasoning_content") or part.get("reasoning")
    if reasoning:
        events.append(ReasoningDelta(reasoning))
    if part.get("content"):
        events.append(TextDelta(part["content"]))
    if part.get("refusal"):
        events.append(RefusalDelta(part["refusal"]))
    for position, call in enumerate(part.get("tool_calls") or []):
        function = call.get("function") or {}
        events.append(
            ToolCallDelta(
                int(call.get("index", position)),
                function.get("arguments") or "",
                call.get("id"),
                function.get("name"),
            )
        )
    return events


def _message_events(data: dict[str, Any]) -> list[ModelEvent]:
    """A non-streaming chat completion as the same events a stream would give."""
    choices = data.get("choices") or []
    if not choices:
        raise ProviderError("the upstream answered with no choices")
    events: list[ModelEvent] = [Answered(data.get("id"), data.get("model"))]
    events += _content_events(choices[0].get("message") or {})
    usage = _usage(data.get("usage"))
    if usage is not None:
        events.append(usage)
    events.append(_finish(choices[0].get("finish_reason")))
    return events


def _chunk_events(chunk: dict[str, Any]) -> list[ModelEvent]:
    events: list[ModelEvent] = []
    for choice in chunk.get("choices") or []:
        events += _content_events(choice.get("delta") or {})
        if choice.get("finish_reason"):
            events.append(_finish(choice["finish_reason"]))
    usage = _usage(chunk.get("usage"))
    if usage is not None:
        events.append(usage)
    return events
