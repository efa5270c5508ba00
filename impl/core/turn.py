"""One response from its first event to its last: the model's rounds, the server-tool loop,
the stored state kept in step, and how a response ends (completed, cancelled, failed).

The upstream is asked for its first event (`Turn.open`) before anything is sent to the
client, so that a refused request (bad key, rate limit, unknown model) reaches the client as
a proper HTTP error with the right status instead of a stream that starts and immediately
fails. After that first event, every failure ends the stream with `response.failed`, and the
stored response says `failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from opentelemetry.trace import Span

from openresponses import metrics, tracing
from openresponses.core import traced
from openresponses.core.background import Runs
from openresponses.core.builder import Emitted, Event, ResponseBuilder, ServerCall
from openresponses.errors import APIError, ErrorKind
from openresponses.generated import openai_models as m
from openresponses.items import Item
from openresponses.providers.base import Finish, ModelEvent, ModelRequest
from openresponses.store.base import Store, StoredResponse
from openresponses.tools import registry as tool_registry
from openresponses.tools.base import ServerTool
from openresponses.tools.registry import Toolbox

log = logging.getLogger("openresponses")

_INTERNAL = "The server had an error while processing the response."
_DISCONNECTED = "The client disconnected before the response completed."
_SHUT_DOWN = "The server shut down before the response completed."
_EXTENDS = ("completed", "incomplete")
"""The final states in which a response is appended to its conversation."""

MAX_ROUNDS = 16
"""Model calls one response may make in the server-tool loop when `max_tool_calls` is unset."""

Generate = Callable[[ModelRequest], AsyncGenerator[ModelEvent, None]]
"""One model call: the provider's events for a request (see core.pipeline)."""


@dataclass
class Agent:
    """What the server-tool loop needs to call the model again (see tools.base)."""

    toolbox: Toolbox
    request: ModelRequest
    """The first round's request; later rounds add what the response has output so far."""
    base_items: list[Item]
    """The conversation before this response, as the model reads it."""
    generate: Generate
    opening: list[Item]
    """Items made before the model's first call (tool listings, approved calls)."""
    max_tool_calls: int | None
    calls: int = 0
    rounds: int = 1
    stopped: bool = False

    def next_round(self, output: list[Item]) -> AsyncGenerator[ModelEvent, None]:
        self.rounds += 1
        # After the first round the model may answer instead of calling a tool again.
        choice = "auto" if self.request.tool_choice not in (None, "none") else "none"
        items = self.base_items + tool_registry.model_items(output, self.toolbox.results())
        return self.generate(replace(self.request, items=items, tool_choice=choice))

    def over_limit(self, more: int) -> bool:
        if self.max_tool_calls is not None:
            return self.calls + more > self.max_tool_calls
        return self.rounds >= MAX_ROUNDS


@dataclass
class Turn:
    """A prepared response: validated, routed, with its full context, not yet started."""

    store: Store
    project: str
    """The caller's project, which the response and its conversation belong to."""
    runs: Runs
    builder: ResponseBuilder
    history: list[Item]
    """The conversation before this turn (from `previous_response_id`)."""
    input_items: list[Item]
    stored: bool
    """`store` as the request gave it: whether the response is kept."""
    streaming: bool
    """Whether its events are wanted (a stream, a background run, a WebSocket), or only the
    final response; a stream is also stored as it starts, so it can be retrieved meanwhile."""
    model_events: AsyncGenerator[ModelEvent, None]
    conversation_id: str | None = None
    """The conversation this turn extends once it ends (see core.conversations)."""
    agent: Agent | None = None
    """The server-tool loop, when the request has server tools."""
    cancel_requested: bool = False
    """Set by `POST /responses/{id}/cancel` (see core.background)."""
    generating: bool = False
    """True while the model's events are read: the only time a cancel interrupts the task."""
    shut_down: bool = False
    """Set when the server stops the response at the end of its shutdown grace period."""
    spend: Callable[[int], Awaitable[None]] | None = None
    """Counts the tokens the upstream reported against the caller's key, once the response
    has ended (None: its key has no token limit)."""
    span: Span | None = None
    """The turn's trace span, when tracing is on (see openresponses.tracing)."""
    meter: metrics.ModelCall | None = None
    """The metrics of the turn's provider and model: each model call timed here, in the loop
    that reads its events anyway (a wrapping generator cost 1.4 % of a streamed request)."""
    _first: ModelEvent | None = None
    _call_started: float | None = None

    @property
    def response(self) -> m.Response:
        return self.builder.response

    @property
    def conversation(self) -> list[Item]:
        """Everything up to and including this turn's output, as `Store.context` gives it
        (a named conversation's items were context, but are no part of the response's chain)."""
        history = [] if self.conversation_id else self.history
        return [*history, *self.input_items, *self.response.output]

    async def open(self) -> None:
        """Wait for the upstream's first event: upstream errors here propagate as HTTP errors."""
        self._call_started = time.perf_counter()
        try:
            with contextlib.suppress(StopAsyncIteration):
                self._first = await anext(self.model_events)
            if self.meter is not None and self._first is not None:
                self.meter.first_token.observe(time.perf_counter() - self._call_started)
        except BaseException as exc:
            if self.span is not None:  # the turn ends here: nothing will run it
                tracing.end(self.span, type(exc).__qualname__)
            raise

    def events(self) -> AsyncGenerator[Event, None]:
        """Every stream event of the response, from the first, to be read to the end."""
        first, self._first = self._first, None
        return self._run(first)

    async def result(self) -> m.Response:
        """Run to the end; the final response."""
        await self.open()
        async for _ in self.events():
            pass
        return self.response

    async def _save(self) -> None:
        if self.stored:
            await self.store.save(StoredResponse(self.response, self.input_items, self.project))

    async def _extend_conversation(self) -> None:
        """Append this turn to its conversation once it has completed or stopped incomplete.
        Items the conversation holds already (referenced by the input) are not added twice."""
        if self.conversation_id is None or self.response.status not in _EXTENDS:
            return
        await self.store.conversations.append(
            self.project,
            self.conversation_id,
            self.input_items,
            self.response.output,
            skip_present=True,
        )

    async def _run(self, first: ModelEvent | None) -> AsyncGenerator[Event, None]:
        """All stream events, the stored state kept in step: saved at the end, and for a
        stream also at the start, so that it can be retrieved while in progress."""
        finished = False
        self.runs.enter(self)
        try:
            opening = self.builder.start()
            if self.streaming:
                await self._save()
            for event in opening:
                if event is not None:  # a builder that does not emit (see builder.Emitted)
                    yield event
            try:
                # Without server tools there is one round: no loop's generator between.
                rounds = self._rounds(first) if self.agent else self._generate(first)
                async for event in rounds:
                    if event is not None:
                        yield event
                closing = self.builder.cancel() if self.cancel_requested else self.builder.finish()
            except APIError as exc:
                closing = self.builder.fail(exc)
            except asyncio.CancelledError:
                if not (self.cancel_requested or self.shut_down):
                    raise
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()  # the cancel was ours, and this handles it
                if self.cancel_requested:
                    closing = self.builder.cancel()
                else:  # the server stopped it (core.background's Runs.stop)
                    closing = self.builder.fail(APIError(ErrorKind.SERVER, _SHUT_DOWN))
            except Exception:  # a bug of ours must still end the stream, not hang it
                log.exception("response %s failed", self.response.id)
                closing = self.builder.fail(APIError(ErrorKind.SERVER, _INTERNAL))
            # Tokens first: a client that sends its next request once this one reads as
            # ended must find them counted.
            usage = self.response.usage
            if self.meter is not None and usage is not None:
                self.meter.input_tokens.inc(usage.input_tokens)
                self.meter.output_tokens.inc(usage.output_tokens)
            if self.spend is not None and usage is not None:
                await self.spend(usage.total_tokens)
            # The conversation next: once the response reads as ended anywhere (its stream,
            # a GET, a background poll), the conversation must already hold the turn.
            await self._extend_conversation()
            await self._save()
            finished = True
            self.runs.leave(self)
            for event in closing:
                if event is not None:
                    yield event
        finally:
            try:
                if not finished:
                    await asyncio.shield(self._abandon())
            finally:
                self.runs.leave(self)
                if self.span is not None:
                    self._end_span(self.span)

    def _end_span(self, span: Span) -> None:
        span.set_attribute("openresponses.response.status", self.response.status or "")
        error = self.response.error
        tracing.end(span, error.code if error is not None else None)

    async def _rounds(self, first: ModelEvent | None) -> AsyncIterator[Emitted]:
        """The model's rounds: while it calls server tools (and nothing for the client), run
        them and call it again with their results."""
        agent = self.agent
        if agent is not None:
            for item in agent.opening:
                index, events = self.builder.add_item(item)
                for event in [*events, *self.builder.finish_item(index, item)]:
                    yield event
        async for event in self._generate(first):
            yield event
        while agent is not None and not self.cancel_requested:
            for event in self.builder.end_round():
                yield event
            calls = self.builder.take_server_calls()
            if not calls:
                return
            async for event in self._run_tools(agent, calls):
                yield event
            if agent.stopped or self.builder.client_calls:
                return
            self.model_events = agent.next_round(self.builder.output())
            async for event in self._generate(None):
                yield event

    async def _run_tools(self, agent: Agent, calls: list[ServerCall]) -> AsyncIterator[Emitted]:
        """Run a round's server-tool calls at once; an approval request stops the loop."""
        started = [(agent.toolbox.owner(c.name), c) for c in calls]
        items = [(owner, owner.start(c.name, c.arguments)) for owner, c in started]
        runnable = [(owner, item) for owner, item in items if item.type != "mcp_approval_request"]
        if agent.over_limit(len(runnable)):
            self.builder.feed(Finish("max_tool_calls"))
            agent.stopped = True
            return
        agent.calls += len(runnable)
        indexes = []
        for _, item in items:
            index, events = self.builder.add_item(item)
            for event in events:
                yield event
            if item.type == "mcp_approval_request":
                agent.stopped = True  # the client answers on its next request
                for event in self.builder.finish_item(index, item):
                    yield event
            else:
                indexes.append(index)
        self.generating = True  # a cancel may interrupt the tools as it does the model
        try:
            finished = await asyncio.gather(*(self._tool(owner, item) for owner, item in runnable))
        finally:
            self.generating = False
        for index, item in zip(indexes, finished, strict=True):
            metrics.tool_call(item.type, getattr(item, "status", None) or "completed")
            for event in self.builder.finish_item(index, item):
                yield event

    def _tool(self, owner: ServerTool, item: Item) -> Awaitable[Item]:
        if self.span is None:
            return owner.run(item)
        return traced.tool_call(owner.run(item), item, self.span)

    async def _generate(self, first: ModelEvent | None) -> AsyncIterator[Emitted]:
        """The builder's events for each of the model's; nothing once a cancel is asked for
        (a background response cancelled while queued never calls the model)."""
        if self.cancel_requested:
            await self.model_events.aclose()
            return
        self.generating = True
        meter = self.meter
        # A call `open` did not start (a later round, a background run) starts here.
        started, self._call_started = self._call_started or time.perf_counter(), None
        awaiting = meter is not None and first is None  # its first event, to time
        try:
            if first is not None:
                for event in self.builder.feed(first):
                    yield event
            async for model_event in self.model_events:
                if awaiting:
                    assert meter is not None
                    meter.first_token.observe(time.perf_counter() - started)
                    awaiting = False
                for event in self.builder.feed(model_event):
                    yield event
        finally:
            self.generating = False
            if meter is not None:
                meter.duration.observe(time.perf_counter() - started)

    async def _abandon(self) -> None:
        """The client went away mid-stream, or the server is stopping: stop the upstream
        call, and record the response as failed rather than leave it in progress forever."""
        with contextlib.suppress(Exception):
            await self.model_events.aclose()
        reason = _SHUT_DOWN if self.runs.stopping else _DISCONNECTED
        error = APIError(ErrorKind.SERVER, reason)
        self.builder.fail(error)
        await self._save()
