"""Adapter for upstreams that speak the Responses API natively (`kind = "openai-responses"`).

The request goes upstream as a Responses request with `store: false`: this server keeps the
state (retrieve, input_items and `previous_response_id` work here, whatever the upstream keeps),
so the whole conversation is sent each turn, and reasoning comes back encrypted
(`include: ["reasoning.encrypted_content"]`) to be sent back on the next, under the upstream's
id for it (kept inside the encrypted content, see `UPSTREAM_ID`). The upstream's events
are read back as `ModelEvent`s and rebuilt by the engine like any provider's, so the client's
stream carries this server's ids and sequence numbers and is stored as it streams.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from openresponses.providers.base import (
    Answered,
    Finish,
    ModelEvent,
    ModelRequest,
    ProviderError,
    ReasoningDelta,
    ReasoningSignature,
    ReasoningSummaryDelta,
    RefusalDelta,
    StreamState,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from openresponses.providers.http import Adapter, broke_off

_HINTS = ("prompt_cache_key", "safety_identifier", "prompt_cache_retention")
"""Hints the Responses API takes under the same name."""


class OpenAIResponsesProvider(Adapter):
    """One Responses upstream at `base_url` (ending in `/v1`)."""

    file_urls = True  # `input_file.file_url` is the Responses API's own

    async def generate(
        self, request: ModelRequest, *, api_key: str | None
    ) -> AsyncGenerator[ModelEvent, None]:
        body = responses_body(request)
        url = f"{self.base_url}/responses"
        headers = self.headers(api_key)
        if not request.stream:
            data = await self.upstream.answer(url, headers, body)
            for event in _response_events(data):
                yield event
            return
        # The stream is read here, not in a helper generator: one step less per event.
        state = _StreamState()
        async with aclosing(self.upstream.sse(url, headers, body)) as received:
            async for sent in received:
                for model_event in state.events(sent):
                    yield model_event
                if sent.get("type") in _TERMINAL:
                    return
        raise broke_off(self.name)  # a stream without a terminal event


# --- requests -------------------------------------------------------------------------------


def responses_body(request: ModelRequest) -> dict[str, Any]:
    """The upstream Responses request for `request`: stateless, with encrypted reasoning."""
    body: dict[str, Any] = {
        "model": request.model,
        "input": [entry for entry in map(_input_item, request.items) if entry is not None],
        "store": False,
        "include": ["reasoning.encrypted_content"],
    }
    if request.instructions:
        body["instructions"] = request.instructions
    if request.tools:
        body["tools"] = [tool.model_dump(mode="json", exclude_none=True) for tool in request.tools]
    optional = {
        "tool_choice": request.tool_choice,
        "parallel_tool_calls": request.parallel_tool_calls if request.tools else None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_output_tokens,
        "user": request.user,
        **{name: request.hints.get(name) for name in _HINTS},
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    text: dict[str, Any] = {}
    if request.text_format is not None:
        text["format"] = request.text_format
    if "verbosity" in request.hints:
        text["verbosity"] = request.hints["verbosity"]
    if text:
        body["text"] = text
    reasoning = {
        key: request.hints[hint]
        for key, hint in (("effort", "reasoning_effort"), ("summary", "reasoning_summary"))
        if hint in request.hints
    }
    if reasoning:
        body["reasoning"] = reasoning
    if request.stream:
        body["stream"] = True
    return body


def _input_item(item: Any) -> dict[str, Any] | None:
    """A stored item as upstream input. Our ids mean nothing upstream (nothing is stored
    there), so they are left out; reasoning goes back only when it carries its encrypted
    content, which is what the upstream needs to pick its reasoning up again, with the
    upstream's own id for it (`id` is required on a reasoning input item)."""
    data: dict[str, Any] = item.model_dump(mode="json", exclude_none=True)
    data.pop("id", None)
    if data.get("type") == "reasoning":
        if not data.get("encrypted_content"):
            return None
        upstream_id, data["encrypted_content"] = _unseal(data["encrypted_content"])
        if upstream_id:
            data["id"] = upstream_id
        data.pop("content", None)
        data.setdefault("summary", [])
    if data.get("type") == "message" and data.get("role") != "assistant":
        data.pop("status", None)
    return data


UPSTREAM_ID = "upstream_id:"
"""Starts a reasoning item's `encrypted_content` that carries the upstream's id for the item
(`upstream_id:rs_…:<encrypted content>`). The id must go back with the encrypted content,
and the item's own `id` is ours, so the id travels inside the one field that is opaque to
clients: it survives storage, and clients that keep the context themselves (`store: false`,
`include: ["reasoning.encrypted_content"]`) hand it back with the item."""


def _seal(item: dict[str, Any]) -> ReasoningSignature | None:
    """A complete upstream reasoning item's encrypted content, with the item's id."""
    content = item.get("encrypted_content")
    if not content:
        return None
    upstream_id = item.get("id")
    return ReasoningSignature(f"{UPSTREAM_ID}{upstream_id}:{content}" if upstream_id else content)


def _unseal(sealed: str) -> tuple[str | None, str]:
    """The upstream's item id (None when it was not kept) and the encrypted content."""
    if not sealed.startswith(UPSTREAM_ID):
        return None, sealed
    upstream_id, _, content = sealed.removeprefix(UPSTREAM_ID).partition(":")
    return upstream_id, content


# --- answers --------------------------------------------------------------------------------


def _usage(data: dict[str, Any] | None) -> UsageReport | None:
    if not data:
        return None
    return UsageReport(
        input_tokens=int(data.get("input_tokens") or 0),
        output_tokens=int(data.get("output_tokens") or 0),
        cached_tokens=int((data.get("input_tokens_details") or {}).get("cached_tokens") or 0),
        reasoning_tokens=int(
            (data.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
        ),
    )


def _finish(response: dict[str, Any], called_tools: bool) -> Finish:
    reason = (response.get("incomplete_details") or {}).get("reason")
    if response.get("status") == "incomplete":
        return Finish("content_filter" if reason == "content_filter" else "length")
    return Finish("tool_calls" if called_tools else "stop")


def _terminal(response: dict[str, Any], called_tools: bool) -> list[ModelEvent]:
    """Usage and finish from a complete response object; a failed one is an error."""
    if response.get("status") == "failed":
        error = response.get("error") or {}
        raise ProviderError(f"the upstream response failed: {error.get('message', error)}")
    usage = _usage(response.get("usage"))
    return [*([usage] if usage else []), _finish(response, called_tools)]


def _item_events(item: dict[str, Any], tool_index: int) -> list[ModelEvent]:
    """A complete output item as model events."""
    kind = item.get("type")
    events: list[ModelEvent] = []
    if kind == "message":
        for part in item.get("content") or []:
            if part.get("type") == "refusal":
                events.append(RefusalDelta(part.get("refusal", "")))
            else:
                events.append(TextDelta(part.get("text", "")))
    elif kind == "reasoning":
        texts = [part.get("text", "") for part in item.get("content") or []]
        events += [ReasoningDelta(text) for text in texts if text]
        summary = [part.get("text", "") for part in item.get("summary") or []]
        events += [ReasoningSummaryDelta(text, n) for n, text in enumerate(summary) if text]
        signature = _seal(item)
        if signature is not None:
            events.append(signature)
    elif kind == "function_call":
        events.append(
            ToolCallDelta(
                tool_index, item.get("arguments", ""), item.get("call_id"), item.get("name")
            )
        )
    return events


def _response_events(data: dict[str, Any]) -> list[ModelEvent]:
    """A complete response as the same events its stream would give."""
    events: list[ModelEvent] = [Answered(data.get("id"), data.get("model"))]
    tools = 0
    for item in data.get("output") or []:
        events += _item_events(item, tools)
        tools += item.get("type") == "function_call"
    return events + _terminal(data, tools > 0)


_DELTAS: dict[str, type[TextDelta | RefusalDelta | ReasoningDelta]] = {
    "response.output_text.delta": TextDelta,
    "response.refusal.delta": RefusalDelta,
    "response.reasoning_text.delta": ReasoningDelta,
}
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


class _StreamState(StreamState):
    """Who answers, and which tool call each function-call item is, across one upstream
    stream."""

    def __init__(self) -> None:
        super().__init__()
        self.tool_index: dict[str, int] = {}

    def _events(self, event: dict[str, Any]) -> list[ModelEvent]:
        kind = event.get("type", "")
        if kind in _DELTAS:
            return [_DELTAS[kind](event.get("delta", ""))]
        if kind == "response.reasoning_summary_text.delta":
            return [ReasoningSummaryDelta(event.get("delta", ""), event.get("summary_index", 0))]
        item = event.get("item") or {}
        if kind == "response.output_item.added" and item.get("type") == "function_call":
            index = self.tool_index[item.get("id", "")] = len(self.tool_index)
            return [ToolCallDelta(index, "", item.get("call_id"), item.get("name"))]
        if kind == "response.function_call_arguments.delta":
            called = self.tool_index.get(event.get("item_id", ""))
            return [] if called is None else [ToolCallDelta(called, event.get("delta", ""))]
        if kind == "response.output_item.done" and item.get("type") == "reasoning":
            signature = _seal(item)
            return [] if signature is None else [signature]
        if kind in _TERMINAL:
            return _terminal(event.get("response") or {}, bool(self.tool_index))
        if kind == "response.created":
            response = event.get("response") or {}
            self.answered = Answered(response.get("id"), response.get("model"))
        if kind == "error":
            raise ProviderError(f"the upstream failed mid-stream: {event.get('message', event)}")
        return []
