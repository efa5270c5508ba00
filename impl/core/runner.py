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
from dataclasses import dataclass
from typing import Any

import aiohttp

from openresponses.config import Settings
from openresponses.core import compaction, intake, structured, tokens
from openresponses.core.engine import Event, ResponseBuilder, usage_model
from openresponses.core.items import new_id, user_text
from openresponses.errors import APIError, ErrorKind, invalid
from openresponses.files.blobs import Blobs
from openresponses.generated import openai_models as m
from openresponses.providers.base import (
    ModelEvent,
    ModelRequest,
    ProviderError,
    TextDelta,
    UsageReport,
)
from openresponses.providers.registry import Registry
from openresponses.store.base import Store, StoredResponse
from openresponses.store.objects import ObjectStore
from openresponses.vectors.embedders import Embedder
from openresponses.vectors.ingest import Ingestor
from openresponses.vectors.search import Searcher

log = logging.getLogger("openresponses")

_INTERNAL = "The server had an error while processing the response."


@dataclass
class Services:
    """Everything a handler needs, built once when the server starts."""

    settings: Settings
    store: Store
    registry: Registry
    client: aiohttp.ClientSession
    secret: bytes
    """Seals compaction items (see core.compaction)."""
    objects: ObjectStore
    """Files and vector stores (metadata)."""
    blobs: Blobs
    """Files' bytes."""
    embedder: Embedder
    """The local embedding model (loaded on first use)."""
    ingestor: Ingestor
    """Files into vector stores, in the background; `ingestor.index` holds the chunks."""
    searcher: Searcher
    """Vector store search, for the search endpoint and the file_search tool."""


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

    @property
    def response(self) -> m.Response:
        return self.builder.response

    @property
    def conversation(self) -> list[Any]:
        """Everything up to and including this turn's output, as `Store.context` gives it."""
        return [*self.history, *self.input_items, *self.response.output]

    async def _save(self) -> None:
        if self.store:
            await self.services.store.save(StoredResponse(self.response, self.input_items))

    async def prime(self) -> ModelEvent | None:
        """The upstream's first event; upstream errors here propagate as HTTP errors."""
        try:
            return await anext(self.events)
        except StopAsyncIteration:
            return None

    async def run(
        self, first: ModelEvent | None, *, streaming: bool = True
    ) -> AsyncIterator[Event]:
        """All stream events, the stored state kept in step: saved at the end, and for a
        stream also at the start, so that it can be retrieved while in progress."""
        finished = False
        try:
            if streaming:
                await self._save()
            for event in self.builder.start():
                yield event
            pending = [] if first is None else [first]
            try:
                for model_event in pending:
                    for event in self.builder.feed(model_event):
                        yield event
                async for model_event in self.events:
                    for event in self.builder.feed(model_event):
                        yield event
                closing = self.builder.finish()
            except APIError as exc:
                closing = self.builder.fail(exc)
            except Exception:  # a bug of ours must still end the stream, not hang it
                log.exception("response %s failed", self.response.id)
                closing = self.builder.fail(APIError(ErrorKind.SERVER, _INTERNAL))
            await self._save()
            finished = True
            for event in closing:
                yield event
        finally:
            if not finished:
                await asyncio.shield(self._abandon())

    async def _abandon(self) -> None:
        """The client went away mid-stream: stop the upstream call, and record the response
        as failed rather than leave it in progress forever."""
        with contextlib.suppress(Exception):
            await self.events.aclose()
        error = APIError(ErrorKind.SERVER, "The client disconnected before the response completed.")
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
    context = await _context(history or services.store.context, request.previous_response_id)
    text_format = _text_format(request.text)
    model_request = ModelRequest(
        model=upstream_model,
        items=compaction.expand(services.secret, context + items),
        instructions=request.instructions,
        tools=intake.callable_tools(request),
        tool_choice=intake.tool_choice(request),
        parallel_tool_calls=request.parallel_tool_calls,
        temperature=intake.plain(request.temperature),
        top_p=intake.plain(request.top_p),
        max_output_tokens=intake.plain(request.max_output_tokens),
        text_format=text_format,
        user=request.user,
        hints=intake.provider_hints(request),
        stream=bool(request.stream),
    )
    key = client_key(services, headers)
    if structured.wanted(text_format) and not provider.structured_output:
        assert text_format is not None
        events = structured.enforce(
            lambda attempt: provider.generate(attempt, api_key=key), model_request, text_format
        )
    else:
        events = provider.generate(model_request, api_key=key)
    return Turn(
        services=services,
        builder=ResponseBuilder(intake.initial_response(request, model), emit=bool(request.stream)),
        history=context,
        input_items=items,
        store=request.store is not False,
        events=events,
    )


async def compact(
    services: Services, request: m.CompactResponseMethodPublicBody, headers: Mapping[str, str]
) -> m.CompactResource:
    """`POST /responses/compact`: the requested model summarises the conversation; the
    window is the user's messages and a compaction item with the summary."""
    model = _require_model(request.model if isinstance(request.model, str) else None)
    provider, upstream_model = services.registry.route(model, headers)
    items = await intake.input_items(request.input, services.store)
    conversation = await _context(services.store.context, request.previous_response_id) + items
    if not conversation:
        raise invalid(
            "Nothing to compact: give 'input', 'previous_response_id' or both.", param="input"
        )
    instructions = compaction.INSTRUCTIONS
    if request.instructions:
        instructions += f"\n\nThe conversation's own instructions:\n{request.instructions}"
    ask = user_text("Write the summary now.")
    model_request = ModelRequest(
        model=upstream_model,
        items=[*compaction.expand(services.secret, conversation), ask],
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
    context = await _context(services.store.context, request.previous_response_id)
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
