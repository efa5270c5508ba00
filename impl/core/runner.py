"""Running one `POST /v1/responses`: context, provider call, engine, storage.

The upstream is asked for its first event before anything is sent to the client, so that a
refused request (bad key, rate limit, unknown model) reaches the client as a proper HTTP
error with the right status instead of a stream that starts and immediately fails. After
that first event, every failure ends the stream with `response.failed`, and the stored
response says `failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import aiohttp

from openresponses.config import Settings
from openresponses.core import coherence, compaction, conversations, intake, structured, tokens
from openresponses.core.attachments import Attachments, Origin
from openresponses.core.engine import Event, ResponseBuilder, ServerCall, usage_model
from openresponses.core.items import new_id, user_text
from openresponses.errors import APIError, ErrorKind, invalid
from openresponses.files.blobs import Blobs
from openresponses.generated import openai_models as m
from openresponses.providers.base import (
    Finish,
    ModelEvent,
    ModelRequest,
    ProviderError,
    TextDelta,
    UsageReport,
)
from openresponses.providers.registry import Registry
from openresponses.store.base import Store, StoredResponse
from openresponses.store.objects import Objects
from openresponses.tools import registry as tool_registry
from openresponses.tools.base import ToolServices
from openresponses.tools.registry import Toolbox
from openresponses.vectors.embedders import Embedder
from openresponses.vectors.ingest import Ingestor
from openresponses.vectors.search import Searcher

if TYPE_CHECKING:  # core.background builds on Turn, defined here
    from openresponses.core.background import Runs

log = logging.getLogger("openresponses")

_INTERNAL = "The server had an error while processing the response."
_DISCONNECTED = "The client disconnected before the response completed."
_SHUT_DOWN = "The server shut down before the response completed."
_EXTENDS = ("completed", "incomplete")
"""The final states in which a response is appended to its conversation."""


@dataclass
class Services:
    """Everything a handler needs, built once when the server starts."""

    settings: Settings
    store: Store
    registry: Registry
    client: aiohttp.ClientSession
    secret: bytes
    """Seals compaction items (see core.compaction)."""
    runs: Runs
    """Responses running in this process, background or in flight (see core.background)."""
    tools: ToolServices
    """What server tools use (see tools.base)."""
    objects: Objects
    """Files and vector stores (metadata)."""
    blobs: Blobs
    """Files' bytes."""
    embedder: Embedder
    """The local embedding model (loaded on first use)."""
    ingestor: Ingestor
    """Files into vector stores, in the background; `ingestor.index` holds the chunks."""
    searcher: Searcher
    """Vector store search, for the search endpoint and the file_search tool."""
    attachments: Attachments
    """Inlines file references before model calls."""


def bearer(headers: Mapping[str, str]) -> str | None:
    """The bearer token of a request, if it has one."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def client_key(services: Services, headers: Mapping[str, str]) -> str | None:
    """The client's key to forward upstream where the server has no key of its own.

    When the server checks keys of its own (OPENRESPONSES_API_KEYS), the client's token is
    one of those, meant for us, and is never passed on.
    """
    return None if services.settings.api_keys else bearer(headers)


MAX_ROUNDS = 16
"""Model calls one response may make in the server-tool loop when `max_tool_calls` is unset."""


@dataclass
class Agent:
    """What the server-tool loop needs to call the model again (see tools.base)."""

    toolbox: Toolbox
    request: ModelRequest
    """The first round's request; later rounds add what the response has output so far."""
    base_items: list[Any]
    """The conversation before this response, as the model reads it."""
    generate: Callable[[ModelRequest], AsyncGenerator[ModelEvent, None]]
    opening: list[Any]
    """Items made before the model's first call (tool listings, approved calls)."""
    max_tool_calls: int | None
    calls: int = 0
    rounds: int = 1
    stopped: bool = False

    def next_round(self, output: list[Any]) -> AsyncGenerator[ModelEvent, None]:
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

    services: Services
    builder: ResponseBuilder
    history: list[Any]
    """The conversation before this turn (from `previous_response_id`)."""
    input_items: list[Any]
    store: bool
    events: AsyncGenerator[ModelEvent, None]
    conversation_id: str | None = None
    """The conversation this turn extends once it ends (see core.conversations)."""
    cancel_requested: bool = False
    """Set by `POST /responses/{id}/cancel` (see core.background)."""
    generating: bool = False
    """True while the model's events are read: the only time a cancel interrupts the task."""
    shut_down: bool = False
    """Set when the server stops the response at the end of its shutdown grace period."""
    agent: Agent | None = None
    """The server-tool loop, when the request has server tools."""

    @property
    def response(self) -> m.Response:
        return self.builder.response

    @property
    def conversation(self) -> list[Any]:
        """Everything up to and including this turn's output, as `Store.context` gives it
        (a named conversation's items were context, but are no part of the response's chain)."""
        history = [] if self.conversation_id else self.history
        return [*history, *self.input_items, *self.response.output]

    async def _save(self) -> None:
        if self.store:
            await self.services.store.save(StoredResponse(self.response, self.input_items))

    async def _extend_conversation(self) -> None:
        """Append this turn to its conversation once it has completed or stopped incomplete.
        Items the conversation holds already (referenced by the input) are not added twice."""
        if self.conversation_id is None or self.response.status not in _EXTENDS:
            return
        await self.services.store.conversations.append(
            self.conversation_id, self.input_items, self.response.output, skip_present=True
        )

    async def prime(self) -> ModelEvent | None:
        """The upstream's first event; upstream errors here propagate as HTTP errors."""
        try:
            return await anext(self.events)
        except StopAsyncIteration:
            return None

    async def run(
        self, first: ModelEvent | None, *, streaming: bool = True
    ) -> AsyncGenerator[Event, None]:
        """All stream events, the stored state kept in step: saved at the end, and for a
        stream also at the start, so that it can be retrieved while in progress."""
        finished = False
        self.services.runs.enter(self)
        try:
            opening = self.builder.start()
            if streaming:
                await self._save()
            for event in opening:
                yield event
            try:
                async for event in self._rounds(first):
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
            # The conversation first: once the response reads as ended anywhere (its stream,
            # a GET, a background poll), the conversation must already hold the turn.
            await self._extend_conversation()
            await self._save()
            finished = True
            self.services.runs.leave(self)
            for event in closing:
                yield event
        finally:
            try:
                if not finished:
                    await asyncio.shield(self._abandon())
            finally:
                self.services.runs.leave(self)

    async def _rounds(self, first: ModelEvent | None) -> AsyncIterator[Event]:
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
            self.events = agent.next_round(self.builder.output())
            async for event in self._generate(None):
                yield event

    async def _run_tools(self, agent: Agent, calls: list[ServerCall]) -> AsyncIterator[Event]:
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
            finished = await asyncio.gather(*(owner.run(item) for owner, item in runnable))
        finally:
            self.generating = False
        for index, item in zip(indexes, finished, strict=True):
            for event in self.builder.finish_item(index, item):
                yield event

    async def _generate(self, first: ModelEvent | None) -> AsyncIterator[Event]:
        """The builder's events for each of the model's; nothing once a cancel is asked for
        (a background response cancelled while queued never calls the model)."""
        if self.cancel_requested:
            await self.events.aclose()
            return
        self.generating = True
        try:
            if first is not None:
                for event in self.builder.feed(first):
                    yield event
            async for model_event in self.events:
                for event in self.builder.feed(model_event):
                    yield event
        finally:
            self.generating = False

    async def _abandon(self) -> None:
        """The client went away mid-stream, or the server is stopping: stop the upstream
        call, and record the response as failed rather than leave it in progress forever."""
        with contextlib.suppress(Exception):
            await self.events.aclose()
        reason = _SHUT_DOWN if self.services.runs.stopping else _DISCONNECTED
        error = APIError(ErrorKind.SERVER, reason)
        self.builder.fail(error)
        await self._save()

    async def complete(self) -> m.Response:
        """Run to the end without streaming; returns the final response."""
        first = await self.prime()
        async for _ in self.run(first, streaming=False):
            pass
        return self.response


History = Callable[[str], Awaitable[list[Any] | None]]
"""The conversation up to a response id, or None when it is unknown (`Store.context`)."""


def _require_model(model: str | None) -> str:
    if not model:
        raise invalid(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    return model


def _text_format(text: m.ResponseTextParam | None) -> dict[str, Any] | None:
    """A request's `text.format` as JSON, the form providers and token counting take."""
    if text is None or text.format is None:
        return None
    dumped: dict[str, Any] = text.format.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


async def _history(
    services: Services, request: m.CreateResponse | m.TokenCountsBody, history: History
) -> tuple[str | None, list[Any]]:
    """The named conversation, if any, and the context before the input: the conversation's
    items, or else the `previous_response_id` chain."""
    conversation_id = conversations.requested(request)
    if conversation_id is None:
        return None, await _context(history, request.previous_response_id)
    return conversation_id, await conversations.history(services.store, conversation_id)


async def _context(history: History, previous_response_id: str | None) -> list[Any]:
    if not previous_response_id:
        return []
    found = await history(previous_response_id)
    if found is None:
        raise invalid(
            f"Previous response with id '{previous_response_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return found


async def prepare(
    services: Services,
    request: m.CreateResponse,
    headers: Mapping[str, str],
    history: History | None = None,
) -> Turn:
    """Check, route and assemble a request into a `Turn`; every refusal is an APIError.

    `history` resolves `previous_response_id` (default: the store; a WebSocket connection
    looks in its own memory first)."""
    intake.check_supported(request)
    model = _require_model(request.model)
    provider, upstream_model = services.registry.route(model, headers)
    items = await intake.input_items(request.input, services.store)
    conversation_id, context = await _history(services, request, history or services.store.context)
    coherence.check(
        context, items, history_param="conversation" if conversation_id else "previous_response_id"
    )
    text_format = _text_format(request.text)
    conversation = tool_registry.model_items(compaction.expand(services.secret, context + items))
    origin = Origin.of(items, "conversation" if conversation_id else "previous_response_id")
    conversation = await services.attachments.inline(
        conversation, origin, fetch_urls=not provider.file_urls
    )
    box = tool_registry.toolbox(request, services.tools)
    opening = []
    if box is not None:
        opening = await _prepare_tools(box, items, context, services.tools)
    choice = intake.tool_choice(request, box)
    model_request = ModelRequest(
        model=upstream_model,
        items=conversation + tool_registry.model_items(opening),
        instructions=request.instructions,
        tools=_narrowed(intake.callable_tools(request) + (box.functions() if box else []), choice),
        tool_choice=choice,
        parallel_tool_calls=request.parallel_tool_calls,
        temperature=intake.plain(request.temperature),
        top_p=intake.plain(request.top_p),
        max_output_tokens=intake.plain(request.max_output_tokens),
        text_format=text_format,
        user=intake.deprecated_field(request, "user"),
        hints=intake.provider_hints(request),
        stream=bool(request.stream or request.background),  # the background streams, for later
    )
    key = client_key(services, headers)

    def generate(attempt: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        if structured.wanted(text_format) and not provider.structured_output:
            assert text_format is not None
            return structured.enforce(
                lambda again: provider.generate(again, api_key=key), attempt, text_format
            )
        return provider.generate(attempt, api_key=key)

    agent = None
    if box is not None:
        agent = Agent(box, model_request, conversation, generate, opening, request.max_tool_calls)
    return Turn(
        services=services,
        # A background response keeps its events for whoever streams it later.
        builder=ResponseBuilder(
            intake.initial_response(request, model),
            emit=bool(request.stream or request.background),
            server_functions=box.names() if box else frozenset(),
            citations=box.citations.sources if box else None,
        ),
        history=context,
        input_items=items,
        store=request.store is not False,
        events=generate(model_request),
        agent=agent,
        conversation_id=conversation_id,
    )


def _narrowed(tools: list[m.FunctionTool], choice: Any) -> list[m.FunctionTool]:
    """Only the tools an `allowed_tools` choice names (providers take the mode alone)."""
    if not isinstance(choice, dict) or choice.get("type") != "allowed_tools":
        return tools
    names = {entry.get("name") for entry in choice.get("tools", [])}
    return [tool for tool in tools if tool.name in names]


async def _prepare_tools(
    box: Toolbox, items: list[Any], context: list[Any], tools: ToolServices
) -> list[Any]:
    """Check the server tools, list their functions and run the calls the client approved:
    the items that report both, first in the response's output."""
    listed = await box.prepare(context + items, allow_private=tools.allow_private)
    return listed + await box.run_approved(items, context)


async def compact(
    services: Services, request: m.CompactResponseMethodPublicBody, headers: Mapping[str, str]
) -> m.CompactResource:
    """`POST /responses/compact`: the requested model summarises the conversation; the
    window is the user's messages and a compaction item with the summary."""
    model = _require_model(request.model if isinstance(request.model, str) else None)
    provider, upstream_model = services.registry.route(model, headers)
    items = await intake.input_items(request.input, services.store)
    history = await _context(services.store.context, request.previous_response_id)
    coherence.check(history, items, history_param="previous_response_id")
    conversation = history + items
    if not conversation:
        raise invalid(
            "Nothing to compact: give 'input', 'previous_response_id' or both.", param="input"
        )
    instructions = compaction.INSTRUCTIONS
    if request.instructions:
        instructions += f"\n\nThe conversation's own instructions:\n{request.instructions}"
    ask = user_text("Write the summary now.")
    readable = await services.attachments.inline(
        compaction.expand(services.secret, conversation),
        Origin.of(items, "previous_response_id"),
        fetch_urls=not provider.file_urls,
    )
    model_request = ModelRequest(
        model=upstream_model,
        items=[*readable, ask],
        instructions=instructions,
        stream=False,
    )
    summary, usage = "", UsageReport(0, 0)
    async for event in provider.generate(model_request, api_key=client_key(services, headers)):
        if isinstance(event, TextDelta):
            summary += event.text
        elif isinstance(event, UsageReport):
            usage = event
    if not summary.strip():
        raise ProviderError("The model returned an empty summary; nothing was compacted.")
    window = [*compaction.kept(conversation), compaction.item(services.secret, summary, model)]
    # Validated from JSON: the resource's item union names messages by another model.
    return m.CompactResource.model_validate(
        {
            "id": new_id("response"),
            "object": "response.compaction",
            "output": [entry.model_dump(mode="json", exclude_unset=True) for entry in window],
            "created_at": int(time.time()),
            "usage": usage_model(usage),
        }
    )


async def count_tokens(
    services: Services, request: m.TokenCountsBody
) -> tuple[m.TokenCountsResource, bool]:
    """`POST /responses/input_tokens`: the request's input tokens, and whether the count is
    exact for its model (see core.tokens)."""
    items = await intake.input_items(request.input, services.store)
    _, context = await _history(services, request, services.store.context)
    text_format = _text_format(request.text)
    total, exact = await asyncio.to_thread(
        tokens.count,
        request.model or "",
        request.instructions,
        compaction.expand(services.secret, context + items),
        [tool.model_dump(mode="json", exclude_none=True) for tool in request.tools or []],
        text_format,
    )
    return m.TokenCountsResource(object="response.input_tokens", input_tokens=total), exact
