"""The turn pipeline: where every response begins, whatever carries it.

`start` takes a validated create request and the caller, checks and routes it, assembles its
context (the conversation or `previous_response_id` chain, attachments, server tools) and
returns what a transport drives: a `Turn` (JSON, SSE, WebSocket) or, for `background: true`,
a `Run` already under way. Both read the same way (`Started`): `open()` waits for the model's
first event, so that a refusal is still an HTTP error; `events()` gives the neutral event
stream; `result()` the response a JSON answer carries. Transports only render.

Compaction and token counting start from the same context assembly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from functools import partial
from typing import Any, TypeAlias

from openresponses import metrics, tokens, tracing
from openresponses.core import coherence, compaction, conversations, intake, structured, traced
from openresponses.core.attachments import Origin
from openresponses.core.background import Run
from openresponses.core.builder import ResponseBuilder, usage_model
from openresponses.core.caller import Caller
from openresponses.core.services import Services
from openresponses.core.turn import Agent, Turn
from openresponses.errors import invalid
from openresponses.generated import openai_models as m
from openresponses.items import Item, new_id, user_text
from openresponses.providers.base import (
    ModelEvent,
    ModelRequest,
    ProviderError,
    TextDelta,
    UsageReport,
    metered,
)
from openresponses.store.base import StoredResponse
from openresponses.tools import registry as tool_registry
from openresponses.tools.base import ToolServices
from openresponses.tools.registry import Toolbox

Started: TypeAlias = Turn | Run
"""What `start` returns: a response a transport drives, in the foreground or the background."""

History = Callable[[str], Awaitable[list[Item] | None]]
"""The conversation up to a response id, or None when it is unknown (`Store.context`)."""


async def start(
    services: Services,
    request: m.CreateResponse,
    caller: Caller,
    *,
    history: History | None = None,
) -> Started:
    """Begin a response; every refusal is an APIError, raised before anything is sent.

    `history` resolves `previous_response_id` (default: the store; a WebSocket connection
    looks in its own memory first). A background response is stored as `queued` and handed
    to `Runs`, which drives it whether or not anyone listens."""
    history = history or partial(services.store.context, caller.project)
    turn = await _prepare(services, request, caller, history)
    if not request.background:
        return turn
    await services.store.save(StoredResponse(turn.response, turn.input_items, caller.project))
    return services.runs.start(turn)


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
    services: Services,
    request: m.CreateResponse | m.TokenCountsBody,
    project: str,
    history: History,
) -> tuple[str | None, list[Item]]:
    """The named conversation, if any, and the context before the input: the conversation's
    items, or else the `previous_response_id` chain (the project's only)."""
    conversation_id = conversations.requested(request)
    if conversation_id is None:
        return None, await _chain(history, request.previous_response_id)
    found = await conversations.history(services.store, project, conversation_id)
    return conversation_id, found


async def _chain(history: History, previous_response_id: str | None) -> list[Item]:
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


async def _prepare(
    services: Services, request: m.CreateResponse, caller: Caller, history: History
) -> Turn:
    """Check, route and assemble a request into a `Turn`."""
    intake.check_supported(request)
    model = _require_model(request.model)
    provider, upstream_model = services.registry.route(model, caller.provider, caller.project_name)
    items = await intake.input_items(request.input, services.store, caller.project)
    conversation_id, context = await _history(services, request, caller.project, history)
    coherence.check(
        context, items, history_param="conversation" if conversation_id else "previous_response_id"
    )
    text_format = _text_format(request.text)
    conversation = tool_registry.model_items(compaction.expand(services.secret, context + items))
    origin = Origin.of(items, "conversation" if conversation_id else "previous_response_id")
    conversation = await services.attachments.inline(
        conversation, origin, fetch_urls=not provider.file_urls, project=caller.project
    )
    box = tool_registry.toolbox(request, services.tools, caller.project)
    opening = []
    if box is not None:
        opening = await _prepare_tools(box, items, context, services.tools)
    choice = intake.tool_choice(request, box)
    # A background response keeps its events for whoever streams it later.
    streaming = bool(request.stream or request.background)
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
        stream=streaming,
    )
    key = caller.upstream_key
    initial = intake.initial_response(request, model)
    span = traced.turn(model, initial.id) if tracing.ENABLED else None

    def call(attempt: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        events = provider.generate(attempt, api_key=key)  # metered by the turn
        if span is None:
            return events
        return traced.model_call(events, attempt, provider.name, span)

    def generate(attempt: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        if structured.wanted(text_format) and not provider.structured_output:
            assert text_format is not None
            return structured.enforce(call, attempt, text_format)
        return call(attempt)

    agent = None
    if box is not None:
        agent = Agent(box, model_request, conversation, generate, opening, request.max_tool_calls)
    return Turn(
        store=services.store,
        project=caller.project,
        runs=services.runs,
        builder=ResponseBuilder(
            initial,
            emit=streaming,
            server_functions=box.names() if box else frozenset(),
            citations=box.citations.sources if box else None,
        ),
        history=context,
        input_items=items,
        stored=request.store is not False,
        streaming=streaming,
        model_events=generate(model_request),
        conversation_id=conversation_id,
        agent=agent,
        spend=services.limiter.meter(caller.key),
        span=span,
        meter=metrics.model_call(provider.name, upstream_model),
    )


def _narrowed(tools: list[m.FunctionTool], choice: Any) -> list[m.FunctionTool]:
    """Only the tools an `allowed_tools` choice names (providers take the mode alone)."""
    if not isinstance(choice, dict) or choice.get("type") != "allowed_tools":
        return tools
    names = {entry.get("name") for entry in choice.get("tools", [])}
    return [tool for tool in tools if tool.name in names]


async def _prepare_tools(
    box: Toolbox, items: list[Item], context: list[Item], tools: ToolServices
) -> list[Item]:
    """Check the server tools, list their functions and run the calls the client approved:
    the items that report both, first in the response's output."""
    listed = await box.prepare(context + items, allow_private=tools.allow_private)
    return listed + await box.run_approved(items, context)


async def compact(
    services: Services, request: m.CompactResponseMethodPublicBody, caller: Caller
) -> m.CompactResource:
    """`POST /responses/compact`: the requested model summarises the conversation; the
    window is the user's messages and a compaction item with the summary."""
    model = _require_model(request.model if isinstance(request.model, str) else None)
    provider, upstream_model = services.registry.route(model, caller.provider, caller.project_name)
    items = await intake.input_items(request.input, services.store, caller.project)
    history = await _chain(
        partial(services.store.context, caller.project), request.previous_response_id
    )
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
        project=caller.project,
    )
    model_request = ModelRequest(
        model=upstream_model,
        items=[*readable, ask],
        instructions=instructions,
        stream=False,
    )
    summary, usage = "", UsageReport(0, 0)
    events = metered(provider, model_request, api_key=caller.upstream_key)
    if tracing.ENABLED:  # under the request's span: a compaction is no turn
        events = traced.model_call(events, model_request, provider.name, None)
    async for event in events:
        if isinstance(event, TextDelta):
            summary += event.text
        elif isinstance(event, UsageReport):
            usage = event
    await services.limiter.spend(caller.key, usage.input_tokens + usage.output_tokens)
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
    services: Services, request: m.TokenCountsBody, caller: Caller
) -> tuple[m.TokenCountsResource, bool]:
    """`POST /responses/input_tokens`: the request's input tokens, and whether the count is
    exact for its model (see openresponses.tokens)."""
    items = await intake.input_items(request.input, services.store, caller.project)
    history = partial(services.store.context, caller.project)
    _, context = await _history(services, request, caller.project, history)
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
