"""The response state machine: provider events in, Responses stream events out.

This is the single place that turns a model's output into Responses items and semantic
events. Streaming and non-streaming requests both run through it (non-streaming callers
just keep the final response), so the two can never disagree about the shape of a result.
Events are the generated OpenAI event models; `api.dialects` re-spells them per client.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar

from pydantic import BaseModel

from openresponses.errors import APIError
from openresponses.generated import openai_models as m
from openresponses.items import new_id
from openresponses.providers.base import (
    Finish,
    ModelEvent,
    ReasoningDelta,
    ReasoningSignature,
    ReasoningSummaryDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)

_Model = TypeVar("_Model", bound=BaseModel)
_IMMUTABLE = (type(None), bool, int, float, str, tuple, frozenset)
_REQUIRED: Any = object()
"""Holds a required field's place in `_Plan.template` until a value fills it."""


@dataclass(frozen=True)
class _Plan:
    template: dict[str, Any]
    """Every field in declaration order, a default or `_REQUIRED`: pydantic serialises a
    model's fields in the order of its `__dict__`, so a model's JSON keeps that order."""
    required: tuple[str, ...]


@functools.cache
def _plan(cls: type[BaseModel]) -> _Plan | None:
    """How `model_construct` would fill a `cls`, or None when it would do more than copy
    defaults (a default made per instance, a post-init hook, extra fields kept)."""
    if cls.__pydantic_post_init__ or cls.model_config.get("extra") == "allow":
        return None
    template = {}
    for name, info in cls.__pydantic_fields__.items():
        if info.is_required():
            template[name] = _REQUIRED
        elif info.default_factory is None and isinstance(info.default, _IMMUTABLE):
            template[name] = info.default
        else:
            return None
    required = tuple(name for name, value in template.items() if value is _REQUIRED)
    return _Plan(template, required)


def _construct(cls: type[_Model], **values: Any) -> _Model:
    """`cls.model_construct(**values)` for the engine's own, already typed values (field
    names, no aliases): the same instance, built without pydantic's walk over every field's
    aliases, which was the larger part of a short stream's engine cost (docs/benchmarks.md)."""
    plan = _plan(cls)
    if plan is None:
        return cls.model_construct(**values)
    fields = {**plan.template, **values}  # the template's order, the values in place
    for name in plan.required:
        if name not in values:
            del fields[name]
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", fields)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


@dataclass
class ServerCall:
    """A model's call of a server tool's function (see tools.base), gathered while it streams."""

    call_id: str
    name: str
    arguments: str = ""


def _added(a: UsageReport, b: UsageReport) -> UsageReport:
    """Usage of a response that called the model more than once (the server-tool loop)."""
    return UsageReport(
        a.input_tokens + b.input_tokens,
        a.output_tokens + b.output_tokens,
        a.cached_tokens + b.cached_tokens,
        a.reasoning_tokens + b.reasoning_tokens,
    )


PartKind = Literal["output_text", "refusal", "reasoning_text"]


@dataclass
class _Part:
    kind: PartKind
    text: str = ""
    open: bool = True
    annotations: list[Any] = field(default_factory=list)


@dataclass
class _OpenItem:
    """An output item while it streams; turned into a generated model when it is emitted.

    The models are built with `_construct` (`model_construct` without its field walk): the
    values are ours and already typed, and validating them again on every event would be
    most of the engine's cost.
    """

    output_index: int
    id: str
    kind: Literal["message", "reasoning", "function_call"]
    parts: list[_Part] = field(default_factory=list)
    tool_index: int | None = None
    status: Literal["in_progress", "completed", "incomplete"] = "in_progress"
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    encrypted_content: str | None = None
    summary: list[_Part] = field(default_factory=list)
    """A reasoning item's summary parts (`summary_text`), apart from its content parts."""

    def current(self) -> Any:
        """The item as it stands."""
        return self.model(self.status)

    def model(self, status: Literal["in_progress", "completed", "incomplete"]) -> Any:
        if self.kind == "message":
            return _construct(
                m.OutputMessage,
                id=self.id,
                type="message",
                role="assistant",
                status=status,
                content=[_part_model(part) for part in self.parts],
            )
        if self.kind == "reasoning":
            fields: dict[str, Any] = {}
            if self.encrypted_content is not None:
                fields["encrypted_content"] = self.encrypted_content
            return _construct(
                m.ReasoningItem,
                id=self.id,
                type="reasoning",
                summary=[_summary_model(part) for part in self.summary],
                status=status,
                content=[_part_model(part) for part in self.parts],
                **fields,
            )
        return _construct(
            m.FunctionToolCall,
            id=self.id,
            type="function_call",
            call_id=self.call_id,
            name=self.name,
            arguments=self.arguments,
            status=status,
        )


@dataclass
class _FixedItem:
    """An output item the server made whole (a server tool's item), not streamed by a model."""

    output_index: int
    item: Any

    def current(self) -> Any:
        return self.item


_TOOL_EVENTS: dict[
    str, tuple[list[tuple[type[Any], str]], tuple[type[Any], str], tuple[type[Any], str]]
] = {
    "mcp_list_tools": (
        [(m.ResponseMCPListToolsInProgressEvent, "response.mcp_list_tools.in_progress")],
        (m.ResponseMCPListToolsCompletedEvent, "response.mcp_list_tools.completed"),
        (m.ResponseMCPListToolsFailedEvent, "response.mcp_list_tools.failed"),
    ),
    "mcp_call": (
        [(m.ResponseMCPCallInProgressEvent, "response.mcp_call.in_progress")],
        (m.ResponseMCPCallCompletedEvent, "response.mcp_call.completed"),
        (m.ResponseMCPCallFailedEvent, "response.mcp_call.failed"),
    ),
    "file_search_call": (
        [
            (m.ResponseFileSearchCallInProgressEvent, "response.file_search_call.in_progress"),
            (m.ResponseFileSearchCallSearchingEvent, "response.file_search_call.searching"),
        ],
        (m.ResponseFileSearchCallCompletedEvent, "response.file_search_call.completed"),
        (m.ResponseFileSearchCallCompletedEvent, "response.file_search_call.completed"),
    ),
    "web_search_call": (
        [
            (m.ResponseWebSearchCallInProgressEvent, "response.web_search_call.in_progress"),
            (m.ResponseWebSearchCallSearchingEvent, "response.web_search_call.searching"),
        ],
        (m.ResponseWebSearchCallCompletedEvent, "response.web_search_call.completed"),
        (m.ResponseWebSearchCallCompletedEvent, "response.web_search_call.completed"),
    ),
}
"""A server tool's item type: the events it emits while running, when done, and when failed
(the search calls have no failed event: they complete, with what they found)."""


def _summary_model(part: _Part) -> Any:
    return _construct(m.SummaryTextContent, type="summary_text", text=part.text)


def _part_model(part: _Part) -> Any:
    if part.kind == "output_text":
        return _construct(
            m.OutputTextContent,
            type="output_text",
            text=part.text,
            annotations=part.annotations,
            logprobs=[],
        )
    if part.kind == "refusal":
        return _construct(m.RefusalContent, type="refusal", refusal=part.text)
    return _construct(m.ReasoningTextContent, type="reasoning_text", text=part.text)


_INCOMPLETE = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
    "schema_mismatch": "json_schema_mismatch",
    "max_tool_calls": "max_tool_calls",
}
"""Finish reasons that leave a response incomplete, and the reason it reports."""

_MARKER = re.compile(r"\[(\d{1,3})\]")
"""How the model cites a numbered source of a server tool (see tools.base.Citations)."""

_DELTA_EVENT = {
    "output_text": (m.ResponseTextDeltaEvent, "response.output_text.delta"),
    "refusal": (m.ResponseRefusalDeltaEvent, "response.refusal.delta"),
    "reasoning_text": (m.ResponseReasoningTextDeltaEvent, "response.reasoning_text.delta"),
}
_DONE_EVENT = {
    "output_text": (m.ResponseTextDoneEvent, "response.output_text.done", "text"),
    "refusal": (m.ResponseRefusalDoneEvent, "response.refusal.done", "refusal"),
    "reasoning_text": (m.ResponseReasoningTextDoneEvent, "response.reasoning_text.done", "text"),
}


class ResponseCancelledEvent(BaseModel):
    """`response.cancelled`: the terminal event of a background response that was cancelled.

    Neither OpenAI's event union nor the Open Responses spec has one, so it is ours (the Open
    Responses dialect spells it with our prefix); the SDKs pass unknown events through.
    """

    type: Literal["response.cancelled"]
    sequence_number: int
    response: m.Response


Event: TypeAlias = m.StreamEvent | ResponseCancelledEvent
Emitted: TypeAlias = Event | None
"""What the builder returns per event: None from a builder that does not emit (a
non-streaming caller's, see `_event`); `Turn` leaves those out."""


class ResponseBuilder:
    """Accumulates one response. Call `start`, then `feed` per model event, then `finish`
    or `fail`; each returns the stream events to send, in order, already numbered."""

    def __init__(
        self,
        response: m.Response,
        *,
        emit: bool = True,
        server_functions: frozenset[str] = frozenset(),
        citations: dict[int, tuple[str, str, str]] | None = None,
    ) -> None:
        self.response = response
        self._emit = emit  # False: a non-streaming caller, who only wants the final response
        self._sequence = 0
        self._items: list[_OpenItem | _FixedItem] = []
        self._server_functions = server_functions
        self._server_calls: dict[int, ServerCall] = {}  # this round's, by tool-call index
        self._citations = citations  # [n] markers the model may cite (see tools.base)
        self.client_calls = 0
        """Function calls for the client so far: they end the tool loop."""
        self._open: _OpenItem | None = None
        self._usage: UsageReport | None = None
        self._finish: Finish | None = None

    # -- numbering ---------------------------------------------------------------------------

    def _event(self, cls: type[Any], type_: str, **fields: Any) -> Emitted:
        self._sequence += 1
        if not self._emit:
            return None
        event: Event = _construct(cls, type=type_, sequence_number=self._sequence - 1, **fields)
        return event

    def _lifecycle(self, cls: type[Any], type_: str) -> Emitted:
        # The builder replaces `self.response` (model_copy with update) and never mutates it in
        # place, so an event may hold the current object itself.
        return self._event(cls, type_, response=self.response)

    # -- public ------------------------------------------------------------------------------

    def start(self) -> list[Emitted]:
        """`response.created` with the response as created (`queued` in the background),
        then `response.in_progress`."""
        created = self._lifecycle(m.ResponseCreatedEvent, "response.created")
        if self.response.status != "in_progress":
            self.response = self.response.model_copy(update={"status": "in_progress"})
        return [created, self._lifecycle(m.ResponseInProgressEvent, "response.in_progress")]

    def feed(self, event: ModelEvent) -> list[Emitted]:
        if isinstance(event, TextDelta):
            return self._text("message", "output_text", event.text)
        if isinstance(event, RefusalDelta):
            return self._text("message", "refusal", event.text)
        if isinstance(event, ReasoningDelta):
            return self._text("reasoning", "reasoning_text", event.text)
        if isinstance(event, ReasoningSignature):
            return self._sign(event.signature)
        if isinstance(event, ReasoningSummaryDelta):
            return self._summarise(event)
        if isinstance(event, ToolCallDelta):
            return self._tool_call(event)
        if isinstance(event, UsageReport):
            self._usage = event if self._usage is None else _added(self._usage, event)
        elif isinstance(event, Finish):
            self._finish = event
        return []

    def finish(self) -> list[Emitted]:
        """Close what is open and emit the terminal event the finish reason calls for."""
        reason = self._finish.reason if self._finish else "stop"
        incomplete = reason in _INCOMPLETE
        events = self._close(incomplete=incomplete)
        output = [item.current() for item in self._items]
        details = None
        if incomplete:
            # Not validated: json_schema_mismatch is ours, beyond OpenAI's two reasons.
            details = _construct(m.IncompleteDetails, reason=_INCOMPLETE[reason])
        self.response = self.response.model_copy(
            update={
                "status": "incomplete" if incomplete else "completed",
                "completed_at": None if incomplete else int(time.time()),
                "incomplete_details": details,
                "output": output,
                "usage": self._usage_model(),
            }
        )
        if incomplete:
            events.append(self._lifecycle(m.ResponseIncompleteEvent, "response.incomplete"))
        else:
            events.append(self._lifecycle(m.ResponseCompletedEvent, "response.completed"))
        return events

    def fail(self, error: APIError) -> list[Emitted]:
        """End the stream after an error: an `error` event, then `response.failed`.

        Items already streamed stay in the output (the one cut off is closed as incomplete),
        so the stored response keeps what the client was shown.
        """
        code = "rate_limit_exceeded" if error.status == 429 else "server_error"
        events = self._close(incomplete=True)
        output = [item.current() for item in self._items]
        self.response = self.response.model_copy(
            update={
                "status": "failed",
                "error": m.ResponseError1(code=code, message=error.message),
                "output": output,
                "usage": self._usage_model(),
            }
        )
        events.append(
            self._event(
                m.ResponseErrorEvent,
                "error",
                code=error.code or code,
                message=error.message,
                param=error.param,
            )
        )
        events.append(self._lifecycle(m.ResponseFailedEvent, "response.failed"))
        return events

    # -- server tools (core.turn runs the loop) ---------------------------------------------

    def take_server_calls(self) -> list[ServerCall]:
        """This round's calls of server tools, in the model's order (after `end_round`)."""
        calls = [self._server_calls[index] for index in sorted(self._server_calls)]
        self._server_calls = {}
        self._finish = None
        return calls

    def end_round(self) -> list[Emitted]:
        """Close the item a round left open (the next round starts a new one)."""
        return self._close(incomplete=False)

    def output(self) -> list[Any]:
        """The output items so far, as models."""
        return [item.current() for item in self._items]

    def add_item(self, item: Any) -> tuple[int, list[Emitted]]:
        """Report a server tool's item as started: `output_item.added` and its progress
        events. Returns its output index, for `finish_item`."""
        index = len(self._items)
        self._items.append(_FixedItem(index, item))
        events = [
            self._event(
                m.ResponseOutputItemAddedEvent,
                "response.output_item.added",
                output_index=index,
                item=item,
            )
        ]
        where = {"item_id": item.id, "output_index": index}
        if item.type == "mcp_call":
            events.append(
                self._event(
                    m.ResponseMCPCallArgumentsDeltaEvent,
                    "response.mcp_call_arguments.delta",
                    **where,
                    delta=item.arguments,
                )
            )
            events.append(
                self._event(
                    m.ResponseMCPCallArgumentsDoneEvent,
                    "response.mcp_call_arguments.done",
                    **where,
                    arguments=item.arguments,
                )
            )
        for cls, type_ in _TOOL_EVENTS.get(item.type, ([], None, None))[0]:
            events.append(self._event(cls, type_, **where))
        return index, events

    def finish_item(self, index: int, item: Any) -> list[Emitted]:
        """Report a server tool's item as done (completed or failed), in its final form."""
        self._items[index] = _FixedItem(index, item)
        events = []
        lifecycle = _TOOL_EVENTS.get(item.type)
        if lifecycle is not None:
            failed = getattr(item, "status", None) == "failed" or getattr(item, "error", None)
            cls, type_ = lifecycle[2] if failed else lifecycle[1]
            events.append(self._event(cls, type_, item_id=item.id, output_index=index))
        events.append(
            self._event(
                m.ResponseOutputItemDoneEvent,
                "response.output_item.done",
                output_index=index,
                item=item,
            )
        )
        return events

    def cancel(self) -> list[Emitted]:
        """End a cancelled response: what was streamed stays, the open item is incomplete."""
        events = self._close(incomplete=True)
        self.response = self.response.model_copy(
            update={
                "status": "cancelled",
                "output": [item.current() for item in self._items],
                "usage": self._usage_model(),
            }
        )
        events.append(self._lifecycle(ResponseCancelledEvent, "response.cancelled"))
        return events

    # -- items -------------------------------------------------------------------------------

    def _open_item(self, item: _OpenItem) -> list[Emitted]:
        self._items.append(item)
        self._open = item
        return [
            self._event(
                m.ResponseOutputItemAddedEvent,
                "response.output_item.added",
                output_index=item.output_index,
                item=item.model("in_progress"),
            )
        ]

    def _new_item(self, kind: Literal["message", "reasoning", "function_call"]) -> _OpenItem:
        return _OpenItem(output_index=len(self._items), id=new_id(kind), kind=kind)

    def _text(
        self, kind: Literal["message", "reasoning"], part_kind: PartKind, text: str
    ) -> list[Emitted]:
        item, events = self._ensure(kind)
        if not item.parts or item.parts[-1].kind != part_kind or not item.parts[-1].open:
            events += self._close_part(item) + self._close_summary(item)
            item.parts.append(_Part(part_kind))
            events.append(
                self._event(
                    m.ResponseContentPartAddedEvent,
                    "response.content_part.added",
                    item_id=item.id,
                    output_index=item.output_index,
                    content_index=len(item.parts) - 1,
                    part=_part_model(item.parts[-1]),
                )
            )
        part = item.parts[-1]
        part.text += text
        cls, type_ = _DELTA_EVENT[part_kind]
        extra: dict[str, Any] = {"logprobs": []} if part_kind == "output_text" else {}
        events.append(
            self._event(
                cls,
                type_,
                item_id=item.id,
                output_index=item.output_index,
                content_index=len(item.parts) - 1,
                delta=text,
                **extra,
            )
        )
        return events

    def _ensure(
        self, kind: Literal["message", "reasoning", "function_call"]
    ) -> tuple[_OpenItem, list[Emitted]]:
        """The open item if it is of `kind`, else a new one (closing the one before). A signed
        reasoning item is complete: reasoning after it is another block, so another item."""
        item = self._open
        if item is not None and item.kind == kind and item.encrypted_content is None:
            return item, []
        events = self._close(incomplete=False)
        item = self._new_item(kind)
        return item, events + self._open_item(item)

    def _sign(self, signature: str) -> list[Emitted]:
        """Attaches a signature to the reasoning item it closes (it comes at its end); a
        signature with no reasoning before it (redacted thinking) gets an item of its own."""
        item, events = self._ensure("reasoning")
        item.encrypted_content = signature
        return events

    def _summarise(self, delta: ReasoningSummaryDelta) -> list[Emitted]:
        """A piece of the reasoning item's summary: part `delta.part` opens (closing an open
        content or summary part) when it is new."""
        item, events = self._ensure("reasoning")
        where = {"item_id": item.id, "output_index": item.output_index}
        if len(item.summary) <= delta.part or not item.summary[-1].open:
            events += self._close_part(item) + self._close_summary(item)
            item.summary.append(_Part("reasoning_text"))
            events.append(
                self._event(
                    m.ResponseReasoningSummaryPartAddedEvent,
                    "response.reasoning_summary_part.added",
                    **where,
                    summary_index=len(item.summary) - 1,
                    part=_summary_model(item.summary[-1]),
                )
            )
        item.summary[-1].text += delta.text
        events.append(
            self._event(
                m.ResponseReasoningSummaryTextDeltaEvent,
                "response.reasoning_summary_text.delta",
                **where,
                summary_index=len(item.summary) - 1,
                delta=delta.text,
            )
        )
        return events

    def _close_summary(self, item: _OpenItem) -> list[Emitted]:
        if not item.summary or not item.summary[-1].open:
            return []
        part = item.summary[-1]
        part.open = False
        where = {
            "item_id": item.id,
            "output_index": item.output_index,
            "summary_index": len(item.summary) - 1,
        }
        return [
            self._event(
                m.ResponseReasoningSummaryTextDoneEvent,
                "response.reasoning_summary_text.done",
                **where,
                text=part.text,
            ),
            self._event(
                m.ResponseReasoningSummaryPartDoneEvent,
                "response.reasoning_summary_part.done",
                **where,
                part=_summary_model(part),
            ),
        ]

    def _tool_call(self, delta: ToolCallDelta) -> list[Emitted]:
        hidden = self._server_calls.get(delta.index)
        if hidden is None and delta.name in self._server_functions:
            hidden = self._server_calls[delta.index] = ServerCall(
                delta.call_id or new_id("call"), delta.name or ""
            )
        if hidden is not None:  # a server tool's: reported as its own item once it runs
            hidden.arguments += delta.arguments
            return []
        events: list[Emitted] = []
        item = self._open
        if item is None or item.kind != "function_call" or item.tool_index != delta.index:
            events += self._close(incomplete=False)
            item = self._new_item("function_call")
            item.tool_index = delta.index
            item.call_id = delta.call_id or new_id("call")
            item.name = delta.name or ""
            self.client_calls += 1
            events += self._open_item(item)
        if delta.arguments:
            item.arguments += delta.arguments
            events.append(
                self._event(
                    m.ResponseFunctionCallArgumentsDeltaEvent,
                    "response.function_call_arguments.delta",
                    item_id=item.id,
                    output_index=item.output_index,
                    delta=delta.arguments,
                )
            )
        return events

    def _close_part(self, item: _OpenItem) -> list[Emitted]:
        if not item.parts or not item.parts[-1].open:
            return []
        index = len(item.parts) - 1
        part = item.parts[index]
        part.open = False
        cls, type_, field_name = _DONE_EVENT[part.kind]
        extra: dict[str, Any] = {"logprobs": []} if part.kind == "output_text" else {}
        where = {"item_id": item.id, "output_index": item.output_index, "content_index": index}
        cited = self._annotate(part, where) if part.kind == "output_text" else []
        return [
            *cited,
            self._event(cls, type_, **where, **{field_name: part.text}, **extra),
            self._event(
                m.ResponseContentPartDoneEvent,
                "response.content_part.done",
                **where,
                part=_part_model(part),
            ),
        ]

    def _annotate(self, part: _Part, where: dict[str, Any]) -> list[Emitted]:
        """`url_citation` and `file_citation` annotations for the `[n]` markers that cite a
        server tool's sources."""
        if not self._citations:
            return []
        events = []
        for marker in _MARKER.finditer(part.text):
            source = self._citations.get(int(marker.group(1)))
            if source is None:
                continue
            kind, target, title = source
            annotation: Any
            if kind == "file":
                annotation = _construct(
                    m.FileCitationBody,
                    type="file_citation",
                    file_id=target,
                    filename=title,
                    index=marker.start(),
                )
            else:
                annotation = _construct(
                    m.UrlCitationBody,
                    type="url_citation",
                    url=target,  # as the source gave it, not validated as a URL
                    title=title,
                    start_index=marker.start(),
                    end_index=marker.end(),
                )
            part.annotations.append(annotation)
            events.append(
                self._event(
                    m.ResponseOutputTextAnnotationAddedEvent,
                    "response.output_text.annotation.added",
                    **where,
                    annotation_index=len(part.annotations) - 1,
                    annotation=annotation,
                )
            )
        return events

    def _close(self, *, incomplete: bool) -> list[Emitted]:
        item = self._open
        if item is None:
            return []
        self._open = None
        item.status = "incomplete" if incomplete else "completed"
        events: list[Emitted] = []
        if item.kind == "function_call":
            events.append(
                self._event(
                    m.ResponseFunctionCallArgumentsDoneEvent,
                    "response.function_call_arguments.done",
                    item_id=item.id,
                    output_index=item.output_index,
                    name=item.name,
                    arguments=item.arguments,
                )
            )
        else:
            events += self._close_part(item) + self._close_summary(item)
        events.append(
            self._event(
                m.ResponseOutputItemDoneEvent,
                "response.output_item.done",
                output_index=item.output_index,
                item=item.model(item.status),
            )
        )
        return events

    def _usage_model(self) -> m.ResponseUsage | None:
        return None if self._usage is None else usage_model(self._usage)


def usage_model(usage: UsageReport) -> m.ResponseUsage:
    """A provider's token counts as the Responses `usage` object (ints: nothing to validate)."""
    return _construct(
        m.ResponseUsage,
        input_tokens=usage.input_tokens,
        input_tokens_details=_construct(
            m.InputTokensDetails, cached_tokens=usage.cached_tokens, cache_write_tokens=0
        ),
        output_tokens=usage.output_tokens,
        output_tokens_details=_construct(
            m.OutputTokensDetails, reasoning_tokens=usage.reasoning_tokens
        ),
        total_tokens=usage.input_tokens + usage.output_tokens,
    )
