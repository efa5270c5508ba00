"""`/v1/responses` handlers (operationIds createResponse, getResponse, deleteResponse,
listInputItems)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, cast

from starlette.responses import Response

from openresponses.api import sse
from openresponses.api.common import (
    caller,
    check_limit,
    current,
    dialect,
    item_defaults,
    json_response,
    project,
    read_body,
    services,
    unless_gone,
)
from openresponses.api.dialects import (
    EXTENSION_PREFIX,
    compaction_body,
    event_body,
    response_body,
)
from openresponses.config import Dialect
from openresponses.core import pipeline
from openresponses.core.background import RETAIN_SECONDS
from openresponses.core.builder import Event
from openresponses.core.services import Services
from openresponses.errors import conflict, invalid, not_found
from openresponses.generated import openai_models as m


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def request_defaults(data: dict[str, Any]) -> None:
    """Reads our tools and items under their Open Responses prefix (`openresponses:mcp`), and
    fills in `input` what `item_defaults` fills."""
    tools, items = _list(data.get("tools")), _list(data.get("input"))
    for entry in [*tools, *items]:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(kind, str) and kind.startswith(EXTENSION_PREFIX):  # the spec's spelling
            entry["type"] = kind.removeprefix(EXTENSION_PREFIX)
    item_defaults(items)


async def create_response() -> Response:
    """JSON or SSE over the turn pipeline. A background response answers as queued, or
    streams its events (a client that drops that stream leaves the response running)."""
    req = current()
    body = await read_body(req, request_defaults)
    assert isinstance(body, m.CreateResponse)
    started = await pipeline.start(services(req), body, caller(req))
    if not body.stream:
        final = await unless_gone(req, started.result())
        return json_response(response_body(final, dialect(req), store=started.stored))
    await unless_gone(req, started.open())  # the stream watches for itself once started
    return _event_stream(started.events(), dialect(req), store=started.stored)


def _event_stream(events: AsyncIterator[Event], which: Dialect, *, store: bool) -> sse.EventStream:
    return sse.EventStream(_frames(events, which, store), sse.NO_BUFFERING)


async def _frames(
    events: AsyncIterator[Event], which: Dialect, store: bool
) -> AsyncIterator[bytes]:
    async for event in events:
        yield sse.frame(event_body(event, which, store=store))
    yield sse.DONE


async def compact_response() -> Response:
    req = current()
    body = await read_body(req, request_defaults)
    assert isinstance(body, m.CompactResponseMethodPublicBody)
    resource = await unless_gone(req, pipeline.compact(services(req), body, caller(req)))
    return json_response(compaction_body(resource, dialect(req)))


async def count_input_tokens() -> Response:
    req = current()
    body = await read_body(req, request_defaults)
    assert isinstance(body, m.TokenCountsBody)
    counted, exact = await pipeline.count_tokens(services(req), body, caller(req))
    # The count is exact for OpenAI-family models, an estimate for others (see tokens).
    headers = {"openresponses-token-count": "exact" if exact else "estimate"}
    return json_response(counted.model_dump(mode="json"), headers=headers)


def _missing(response_id: str) -> Exception:
    return not_found(
        f"Response with id '{response_id}' not found.",
        param="response_id",
        code="response_not_found",
    )


async def get_response(
    response_id: str, stream: bool = False, starting_after: int | None = None
) -> Response:
    req = current()
    found, owner = services(req), project(req)
    if stream:
        events = await _resume(found, owner, response_id, starting_after)
        return _event_stream(events, dialect(req), store=True)
    record = await found.store.get(owner, response_id)
    if record is None:
        raise _missing(response_id)
    return json_response(response_body(record.response, dialect(req), store=True))


async def _resume(
    found: Services, owner: str, response_id: str, after: int | None
) -> AsyncIterator[Event]:
    """The events of a background response after sequence number `after` (all without it)."""
    run = found.runs.get(owner, response_id)
    if run is not None:
        return run.follow(-1 if after is None else after)
    record = await found.store.get(owner, response_id)
    if record is None:
        raise _missing(response_id)
    if not record.response.background:
        raise invalid(
            "Only background responses can be streamed again; retrieve this one without 'stream'.",
            param="stream",
            code="unsupported_parameter",
        )
    raise invalid(
        f"The stream of this response is no longer available (events are kept for "
        f"{RETAIN_SECONDS / 60:g} minutes after a background response ends, by the server "
        f"that ran it); retrieve it without 'stream'.",
        param="stream",
        code="stream_expired",
    )


async def cancel_response(response_id: str) -> Response:
    """Cancel a response in flight on this server, background or not. Cancelling one that is
    already cancelled returns it again; one that ended otherwise (completed, failed…) cannot
    be cancelled (400), nor can one running on another server process (409)."""
    req = current()
    found, owner = services(req), project(req)
    turn = await found.runs.cancel(owner, response_id)
    if turn is not None:
        response, stored = turn.response, turn.stored
    else:  # not in flight here: already ended, or running elsewhere
        record = await found.store.get(owner, response_id)
        if record is None:
            raise _missing(response_id)
        response, stored = record.response, True
    if response.status in ("queued", "in_progress"):
        raise conflict(
            f"Response '{response_id}' is running on another server process; only that "
            "process can cancel it.",
            param="response_id",
            code="response_not_running_here",
        )
    if response.status != "cancelled":  # it ended before the cancel could stop it
        raise invalid(
            f"Cannot cancel a response with status '{response.status}'.",
            param="response_id",
            code="invalid_value",
        )
    return json_response(response_body(response, dialect(req), store=stored))


async def delete_response(response_id: str) -> Response:
    req = current()
    if not await services(req).store.delete(project(req), response_id):
        raise _missing(response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True})


async def list_input_items(
    response_id: str,
    limit: int = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    include: list[str] | None = None,
) -> Response:
    check_limit(limit)
    req = current()
    page = await services(req).store.input_items(
        project(req), response_id, after=after, limit=limit, order=order
    )
    if page is None:
        raise _missing(response_id)
    # model_construct, and the cast: an item referenced from an earlier output (a
    # FunctionToolCall) is no member of ItemResource, though it dumps as its resource does.
    listing = m.ResponseItemList.model_construct(
        object="list",
        data=cast(list[m.ItemResource], page.items),
        has_more=page.has_more,
        first_id=page.items[0].id if page.items else None,
        last_id=page.items[-1].id if page.items else None,
    )
    data: dict[str, Any] = listing.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return json_response(data)
