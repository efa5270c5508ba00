"""`/v1/conversations` handlers (operationIds createConversation, getConversation,
updateConversation, deleteConversation, createConversationItems, listConversationItems,
getConversationItem, deleteConversationItem).

A conversation is an ordered list of items, appended to here and by every response that
names it (see core.conversations). Items are validated and normalised exactly as a
response's `input` is, so whatever this API accepts the model can take as input, and an
item id appears at most once in a conversation.

Deleting a conversation deletes its items with it. (OpenAI says its items are not deleted,
but no endpoint could reach them afterwards; responses keep their own copies either way.)
`include` is accepted and changes nothing: items are stored whole, so whatever an `include`
value asks for is always there.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import RootModel, TypeAdapter
from starlette.responses import Response

from openresponses.api.common import (
    check_limit,
    current,
    item_defaults,
    json_response,
    project,
    read_body,
    services,
)
from openresponses.core import intake
from openresponses.core.conversations import missing
from openresponses.errors import APIError, invalid, not_found
from openresponses.generated import openai_models as m
from openresponses.items import Item, new_id
from openresponses.store.base import Conversations, ItemConflict, MissingItem

# Items are stored as the models they were given or generated as; the API shows each as the
# member of OpenAI's ConversationItem union it is (an input or output message as `Message`).
_CONVERSATION_ITEMS: TypeAdapter[list[m.ConversationItem]] = TypeAdapter(list[m.ConversationItem])


def _fill(data: dict[str, Any]) -> None:
    item_defaults(data.get("items"))


def _conversations() -> Conversations:
    return services(current()).store.conversations


def _project() -> str:
    """The caller's project: another project's conversation does not exist for it."""
    return project(current())


def _shown(items: list[Item]) -> list[m.ConversationItem]:
    dumped = [item.model_dump(mode="json", by_alias=True, exclude_unset=True) for item in items]
    return _CONVERSATION_ITEMS.validate_python(dumped)


def _item_list(items: list[Item], has_more: bool) -> Response:
    # model_construct: the items are models already, and validating them again only costs.
    listing = m.ConversationItemList.model_construct(
        object="list",
        data=_shown(items),
        has_more=has_more,
        first_id=items[0].id if items else None,
        last_id=items[-1].id if items else None,
    )
    return json_response(listing.model_dump(mode="json", by_alias=True, exclude_unset=True))


def _conversation(conversation: m.ConversationResource) -> Response:
    return json_response(conversation.model_dump(mode="json"))


def _item_missing(item_id: str) -> APIError:
    return not_found(f"Item with id '{item_id}' not found.", param="item_id", code="item_not_found")


async def _missing_item_or_conversation(conversation_id: str, item_id: str) -> APIError:
    """Which of the two a failed item lookup lacks (only asked once it has failed)."""
    if await _conversations().get(_project(), conversation_id) is None:
        return missing(conversation_id, "conversation_id")
    return _item_missing(item_id)


async def _items(raw: RootModel[list[Any]] | list[Any] | None) -> list[Item]:
    """The request's `items` (wrapped in a RootModel where the spec bounds the list), stored
    as a response's input would be."""
    items = raw.root if isinstance(raw, RootModel) else raw
    return await intake.input_items(items, services(current()).store, _project(), param="items")


def _conflict(error: ItemConflict) -> APIError:
    return invalid(
        f"Item '{error.item_ids[0]}' is already in the conversation.",
        param="items",
        code="item_already_in_conversation",
    )


# --- conversations ---------------------------------------------------------------------------


async def create_conversation() -> Response:
    body = await read_body(current(), _fill)
    assert isinstance(body, m.CreateConversationBody)
    items = await _items(body.items)
    conversation = m.ConversationResource(
        id=new_id("conversation"),
        object="conversation",
        created_at=int(time.time()),
        metadata=body.metadata or {},
    )
    try:
        await _conversations().create(_project(), conversation, items)
    except ItemConflict as error:
        raise _conflict(error) from error
    return _conversation(conversation)


async def get_conversation(conversation_id: str) -> Response:
    found = await _conversations().get(_project(), conversation_id)
    if found is None:
        raise missing(conversation_id, "conversation_id")
    return _conversation(found)


async def update_conversation(conversation_id: str) -> Response:
    body = await read_body(current())
    assert isinstance(body, m.UpdateConversationBody)
    updated = await _conversations().update(_project(), conversation_id, body.metadata or {})
    if updated is None:
        raise missing(conversation_id, "conversation_id")
    return _conversation(updated)


async def delete_conversation(conversation_id: str) -> Response:
    if not await _conversations().delete(_project(), conversation_id):
        raise missing(conversation_id, "conversation_id")
    deleted = m.DeletedConversationResource(
        id=conversation_id, object="conversation.deleted", deleted=True
    )
    return json_response(deleted.model_dump(mode="json"))


# --- items -----------------------------------------------------------------------------------


async def create_conversation_items(
    conversation_id: str, include: list[str] | None = None
) -> Response:
    body = await read_body(current(), _fill)
    assert isinstance(body, m.CreateConversationItemsBody)
    items = await _items(body.items)
    try:
        added = await _conversations().append(_project(), conversation_id, items)
    except ItemConflict as error:
        raise _conflict(error) from error
    if not added:
        raise missing(conversation_id, "conversation_id")
    return _item_list(items, has_more=False)


async def list_conversation_items(
    conversation_id: str,
    limit: int = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    include: list[str] | None = None,
) -> Response:
    check_limit(limit)
    try:
        page = await _conversations().items(
            _project(), conversation_id, after=after, limit=limit, order=order
        )
    except MissingItem as error:
        raise not_found(f"No item found with id '{error.item_id}'.", param="after") from error
    if page is None:
        raise missing(conversation_id, "conversation_id")
    return _item_list(page.items, page.has_more)


async def get_conversation_item(
    conversation_id: str, item_id: str, include: list[str] | None = None
) -> Response:
    found = await _conversations().item(_project(), conversation_id, item_id)
    if found is None:
        raise await _missing_item_or_conversation(conversation_id, item_id)
    shown = _shown([found])[0]
    return json_response(shown.model_dump(mode="json", by_alias=True, exclude_unset=True))


async def delete_conversation_item(conversation_id: str, item_id: str) -> Response:
    conversations = _conversations()
    if not await conversations.delete_item(_project(), conversation_id, item_id):
        raise await _missing_item_or_conversation(conversation_id, item_id)
    found = await conversations.get(_project(), conversation_id)
    if found is None:  # deleted meanwhile, item and all
        raise missing(conversation_id, "conversation_id")
    return _conversation(found)
