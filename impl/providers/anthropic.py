"""Adapter for Anthropic's Messages API (`POST /v1/messages`), streaming and not.

Responses items become Messages turns on the way out: system and developer messages join the
top-level `system`, function calls and their outputs become `tool_use` and `tool_result`
blocks, images and PDFs become `image` and `document` blocks, and a reasoning item that carries
a thinking signature (its `encrypted_content`) goes back as the `thinking` block it came from,
which Anthropic requires to continue a turn that used tools while thinking. On the way back,
text, thinking (with its signature), `tool_use` input as streamed JSON, stop reasons and usage
become `ModelEvent`s.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from openresponses.errors import ErrorKind, invalid
from openresponses.generated import openai_models as m
from openresponses.providers.base import (
    Answered,
    Finish,
    FinishReason,
    ModelEvent,
    ModelRequest,
    ProviderError,
    ReasoningDelta,
    ReasoningSignature,
    StreamState,
    TextDelta,
    ToolCallDelta,
    UsageReport,
    refuse_summary,
    unsupported,
)
from openresponses.providers.http import Adapter, broke_off, failed_mid_stream

API_VERSION = "2023-06-01"

DEFAULT_MAX_TOKENS = 8192
"""`max_tokens` is required by Anthropic; Responses leaves it optional."""

REDACTED = "redacted_thinking:"
"""Marks a reasoning item's `encrypted_content` as a redacted thinking block's `data` (a
thinking block's is its signature)."""

THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
"""`reasoning.effort` as an extended-thinking token budget (Anthropic's minimum is 1024)."""

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProvider(Adapter):
    """One Messages API upstream at `base_url` (ending in `/v1`)."""

    structured_output = False  # the server instructs and validates instead
    file_urls = True  # URL documents

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        key = self.api_key or api_key
        if key:
            headers["x-api-key"] = key
        return headers

    async def generate(
        self, request: ModelRequest, *, api_key: str | None
    ) -> AsyncGenerator[ModelEvent, None]:
        body = messages_body(request, self.name)
        url = f"{self.base_url}/messages"
        headers = self.headers(api_key)
        if not request.stream:
            data = await self.upstream.answer(url, headers, body)
            for event in _message_events(data):
                yield event
            return
        # The stream is read here, not in a helper generator: one step less per event.
        state = _StreamState()
        async with aclosing(self.upstream.sse(url, headers, body)) as received:
            async for sent in received:
                if sent.get("type") == "error":
                    raise failed_mid_stream(self.name, sent.get("error") or {})
                if sent.get("type") == "message_stop":
                    return
                for model_event in state.events(sent):
                    yield model_event
        raise broke_off(self.name)  # a stream without `message_stop`


# --- requests -------------------------------------------------------------------------------


def _unsupported(what: str, provider: str, param: str | None = None) -> ProviderError:
    return unsupported(what, provider, "Anthropic Messages", param)


def messages_body(request: ModelRequest, provider: str) -> dict[str, Any]:
    """The Messages request body for `request`."""
    refuse_summary(request, provider, "Anthropic Messages")
    system, messages = _conversation(request, provider)
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        body["tool_choice"] = _tool_choice(request.tool_choice, request.parallel_tool_calls)
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if request.text_format is not None and request.text_format.get("type") != "text":
        raise _unsupported(f"text.format '{request.text_format['type']}'", provider, "text.format")
    effort = request.hints.get("reasoning_effort")
    if effort and effort != "none":
        budget = THINKING_BUDGETS.get(effort, THINKING_BUDGETS["medium"])
        if request.max_output_tokens is not None and request.max_output_tokens <= budget:
            raise ProviderError(
                f"max_output_tokens must exceed the thinking budget for reasoning.effort "
                f"'{effort}' ({budget} tokens) with provider '{provider}'.",
                status=400,
                code="invalid_value",
                kind=ErrorKind.INVALID_REQUEST,
                param="max_output_tokens",
            )
        body["max_tokens"] = max(body["max_tokens"], budget + DEFAULT_MAX_TOKENS)
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        body.pop("temperature", None)  # Anthropic refuses a temperature while thinking
        body.pop("top_p", None)
    if request.stream:
        body["stream"] = True
    return body


def _tool(tool: m.FunctionTool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        spec["description"] = tool.description
    spec["input_schema"] = tool.parameters or {"type": "object", "properties": {}}
    return spec


def _tool_choice(choice: str | dict[str, Any] | None, parallel: bool | None) -> dict[str, Any]:
    if isinstance(choice, dict) and choice.get("type") == "function":
        result: dict[str, Any] = {"type": "tool", "name": choice["name"]}
    else:
        mode = choice.get("mode", "auto") if isinstance(choice, dict) else (choice or "auto")
        result = {"type": {"required": "any", "none": "none"}.get(str(mode), "auto")}
    if parallel is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result


def _conversation(request: ModelRequest, provider: str) -> tuple[str, list[dict[str, Any]]]:
    """The `system` text and the turns; consecutive blocks of one role share a turn."""
    system = [request.instructions] if request.instructions else []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += blocks
        else:
            messages.append({"role": role, "content": blocks})

    for item in request.items:
        kind = getattr(item, "type", "message")
        if kind == "message" and item.role in ("system", "developer"):
            system.append("".join(getattr(part, "text", "") or "" for part in item.content))
        elif kind == "message":
            role = "assistant" if item.role == "assistant" else "user"
            add(role, [_block(part, provider) for part in item.content])
        elif kind == "reasoning" and item.encrypted_content:  # unsigned thinking cannot go back
            add("assistant", [_thinking(item)])
        elif kind == "function_call":
            call = {"id": item.call_id, "name": item.name, "input": _arguments(item.arguments)}
            add("assistant", [{"type": "tool_use", **call}])
        elif kind == "function_call_output":
            output = (
                item.output
                if isinstance(item.output, str)
                else [_block(part, provider) for part in item.output]
            )
            add("user", [{"type": "tool_result", "tool_use_id": item.call_id, "content": output}])
    return "\n\n".join(system), messages


def _thinking(item: Any) -> dict[str, Any]:
    """A reasoning item as the thinking (or redacted thinking) block it came from."""
    sealed: str = item.encrypted_content
    if sealed.startswith(REDACTED):
        return {"type": "redacted_thinking", "data": sealed.removeprefix(REDACTED)}
    text = "".join(getattr(part, "text", "") for part in item.content or [])
    return {"type": "thinking", "thinking": text, "signature": sealed}


def _arguments(arguments: str) -> Any:
    """A function call's JSON arguments as the `input` object Anthropic wants."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _block(part: Any, provider: str) -> dict[str, Any]:
    kind = part.type
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.text}
    if kind == "refusal":
        return {"type": "text", "text": part.refusal}
    if kind == "input_image":
        return {"type": "image", "source": _source(str(part.image_url))}
    if kind == "input_file" and part.file_data:
        return _file_block(part.file_data, part.filename, provider)
    if kind == "input_file" and part.file_url is not None:
        return {"type": "document", "source": {"type": "url", "url": str(part.file_url)}}
    raise _unsupported(f"content part '{kind}'", provider, "input")


def _file_block(file_data: str, filename: str | None, provider: str) -> dict[str, Any]:
    """A file by its media type: a PDF is a base64 document, any text a plain-text document
    (the only other document source Anthropic reads), an image an image block. Bare base64
    without a data URL's type is taken for a PDF, the usual file input."""
    source = _source(file_data, "application/pdf")
    media_type = source["media_type"]
    if media_type.startswith("image/"):
        return {"type": "image", "source": source}
    if media_type.startswith("text/"):
        source = {"type": "text", "media_type": "text/plain", "data": _text(source["data"])}
    elif media_type != "application/pdf":
        raise _unsupported(f"input_file of type {media_type}", provider, "input")
    block = {"type": "document", "source": source}
    return {**block, "title": filename} if filename else block


def _text(data: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", "replace")
    except ValueError as exc:  # binascii.Error is one
        raise invalid("An input_file's file_data is not valid base64.", param="input") from exc


def _source(url: str, default_type: str = "image/png") -> dict[str, Any]:
    """A URL or data URL as an image/document source; bare base64 gets `default_type`."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or default_type
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    return {"type": "base64", "media_type": default_type, "data": url}


# --- answers --------------------------------------------------------------------------------


def _usage(data: dict[str, Any], output_tokens: int | None = None) -> UsageReport:
    """Anthropic counts cached input apart; Responses counts it inside `input_tokens`."""
    cached = int(data.get("cache_read_input_tokens") or 0)
    written = int(data.get("cache_creation_input_tokens") or 0)
    return UsageReport(
        input_tokens=int(data.get("input_tokens") or 0) + cached + written,
        output_tokens=int(
            data.get("output_tokens") or 0 if output_tokens is None else output_tokens
        ),
        cached_tokens=cached,
    )


def _finish(reason: Any) -> Finish:
    return Finish(_STOP.get(str(reason), "stop"))


def _message_events(data: dict[str, Any]) -> list[ModelEvent]:
    """A complete `message` as the same events its stream would give."""
    events: list[ModelEvent] = [Answered(data.get("id"), data.get("model"))]
    tools = 0
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            events.append(TextDelta(block.get("text", "")))
        elif kind == "thinking":
            events.append(ReasoningDelta(block.get("thinking", "")))
            if block.get("signature"):
                events.append(ReasoningSignature(block["signature"]))
        elif kind == "redacted_thinking":
            events.append(ReasoningSignature(REDACTED + block.get("data", "")))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            events.append(ToolCallDelta(tools, arguments, block.get("id"), block.get("name")))
            tools += 1
    events.append(_usage(data.get("usage") or {}))
    events.append(_finish(data.get("stop_reason")))
    return events


class _StreamState(StreamState):
    """What a Messages stream has said so far: usage and who answers from `message_start`,
    and which tool call each content block index is."""

    def __init__(self) -> None:
        super().__init__()
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}

    def _events(self, event: dict[str, Any]) -> list[ModelEvent]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.usage = message.get("usage") or {}
            self.answered = Answered(message.get("id"), message.get("model"))
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index[event["index"]] = len(self.tool_index)
                return [ToolCallDelta(index, "", block.get("id"), block.get("name"))]
            if block.get("type") == "redacted_thinking":  # complete at its start, no deltas
                return [ReasoningSignature(REDACTED + block.get("data", ""))]
        elif kind == "content_block_delta":
            return self._delta(event["index"], event.get("delta") or {})
        elif kind == "message_delta":
            output = (event.get("usage") or {}).get("output_tokens")
            reason = (event.get("delta") or {}).get("stop_reason")
            return [_usage(self.usage, output), _finish(reason)]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[ModelEvent]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(delta.get("text", ""))]
        if kind == "thinking_delta":
            return [ReasoningDelta(delta.get("thinking", ""))]
        if kind == "signature_delta":
            return [ReasoningSignature(delta.get("signature", ""))]
        if kind == "input_json_delta" and index in self.tool_index:
            return [ToolCallDelta(self.tool_index[index], delta.get("partial_json", ""))]
        return []
