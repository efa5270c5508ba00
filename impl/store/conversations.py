"""Conversations on SQLAlchemy Core: the `Conversations` of `SqlStore`, run on its threads.

The tables come from migration 3. As everywhere in the store, each query looks rows up by
one indexed column, and anything further is filtered or sorted in Python (`sql` says why
DuckDB needs that); so an item row's key, `entry`, is `conversation_id/item_id`.

Appends are atomic rather than serialised: one transaction bumps the conversation's
`next_position` first (on PostgreSQL that row lock makes concurrent appends to one
conversation queue behind each other; on DuckDB the store's write lock already does), then
inserts its block at the positions it reserved. Responses finishing together on one
conversation each land as one contiguous block, in commit order, and none is lost.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    Text,
    bindparam,
    delete,
    select,
    update,
)

from openresponses.generated.openai_models import ConversationResource
from openresponses.items import Item, item_id
from openresponses.store.base import ItemConflict, ItemPage, MissingItem
from openresponses.store.codec import Role, Varchar, dump, load_item

T = TypeVar("T")

_metadata = MetaData()
conversations = Table(
    "conversations",
    _metadata,
    Column("id", Varchar, primary_key=True),
    Column("created_at", BigInteger),
    Column("metadata", Text),
    Column("next_position", BigInteger),
    Column("project", Varchar),
)
items = Table(
    "conversation_items",
    _metadata,
    Column("entry", Varchar, primary_key=True),
    Column("conversation_id", Varchar),
    Column("position", BigInteger),
    Column("item_id", Varchar),
    Column("origin", Varchar),
    Column("body", Text),
    Column("project", Varchar),
)

_INSERT = conversations.insert()
_GET = select(conversations.c.created_at, conversations.c.metadata, conversations.c.project).where(
    conversations.c.id == bindparam("id")
)
_UPDATE = (
    update(conversations)
    .where(conversations.c.id == bindparam("key"))
    .values(metadata=bindparam("metadata"))
    .returning(conversations.c.created_at)
)
_RESERVE = (
    update(conversations)
    .where(conversations.c.id == bindparam("key"))
    .values(next_position=conversations.c.next_position + bindparam("count", type_=BigInteger))
    .returning(conversations.c.next_position)
)
_DELETE = (
    delete(conversations).where(conversations.c.id == bindparam("id")).returning(conversations.c.id)
)
_DELETE_ITEMS = delete(items).where(items.c.conversation_id == bindparam("id"))
_INSERT_ITEMS = items.insert()
_PRESENT = select(items.c.entry).where(items.c.entry.in_(bindparam("entries", expanding=True)))
_POSITIONS = select(items.c.entry, items.c.position, items.c.item_id).where(
    items.c.conversation_id == bindparam("id")
)
_ALL = select(items.c.position, items.c.origin, items.c.body).where(
    items.c.conversation_id == bindparam("id")
)
_BODIES = select(items.c.entry, items.c.origin, items.c.body).where(
    items.c.entry.in_(bindparam("entries", expanding=True))
)
_ITEM = select(items.c.origin, items.c.body, items.c.project).where(
    items.c.entry == bindparam("entry")
)
_DELETE_ITEM = delete(items).where(items.c.entry == bindparam("entry")).returning(items.c.entry)
_BY_ITEM_ID = select(items.c.origin, items.c.body, items.c.project).where(
    items.c.item_id == bindparam("item_id")
)


def _entry(conversation_id: str, item: str) -> str:
    return f"{conversation_id}/{item}"


def find_item(conn: Connection, project: str, item: str) -> Item | None:
    """An item of any of the project's conversations by its id (every copy of an id holds
    the same item)."""
    rows = conn.execute(_BY_ITEM_ID, {"item_id": item})
    row = next((row for row in rows if row.project == project), None)
    return None if row is None else load_item(row.origin, row.body)


def _owned(conn: Connection, project: str, conversation_id: str) -> Any | None:
    """The conversation's row when it is the project's (a lookup by id, checked here)."""
    row = conn.execute(_GET, {"id": conversation_id}).first()
    return row if row is not None and row.project == project else None


class Runner(Protocol):
    """Runs a blocking call on the store's threads (`SqlStore._run`)."""

    def __call__(self, call: Callable[..., T], *args: Any) -> Awaitable[T]: ...


class SqlConversations:
    """`Conversations` over the engine, threads and write lock of a `SqlStore`."""

    def __init__(
        self, engine: Engine, run: Runner, write_lock: AbstractContextManager[Any]
    ) -> None:
        self._engine = engine
        self._run = run
        self._write_lock = write_lock

    async def create(
        self, project: str, conversation: ConversationResource, items: Sequence[Item]
    ) -> None:
        await self._run(self._create, project, conversation, items)

    async def get(self, project: str, conversation_id: str) -> ConversationResource | None:
        return await self._run(self._get, project, conversation_id)

    async def update(
        self, project: str, conversation_id: str, metadata: dict[str, str]
    ) -> ConversationResource | None:
        return await self._run(self._update, project, conversation_id, metadata)

    async def delete(self, project: str, conversation_id: str) -> bool:
        return await self._run(self._delete, project, conversation_id)

    async def append(
        self,
        project: str,
        conversation_id: str,
        inputs: Sequence[Item],
        outputs: Sequence[Item] = (),
        *,
        skip_present: bool = False,
    ) -> bool:
        block = [*(("input", i) for i in inputs), *(("output", o) for o in outputs)]
        return await self._run(self._append, project, conversation_id, block, skip_present)

    async def items(
        self,
        project: str,
        conversation_id: str,
        *,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> ItemPage | None:
        return await self._run(self._items, project, conversation_id, after, limit, order)

    async def context(self, project: str, conversation_id: str) -> list[Item] | None:
        return await self._run(self._context, project, conversation_id)

    async def item(self, project: str, conversation_id: str, item: str) -> Item | None:
        return await self._run(self._item, project, conversation_id, item)

    async def delete_item(self, project: str, conversation_id: str, item: str) -> bool:
        return await self._run(self._delete_item, project, conversation_id, item)

    # --- in the store's threads --------------------------------------------------------------

    def _create(
        self, project: str, conversation: ConversationResource, inputs: Sequence[Item]
    ) -> None:
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(
                _INSERT,
                {
                    "id": conversation.id,
                    "created_at": conversation.created_at,
                    "metadata": json.dumps(conversation.metadata),
                    "next_position": 0,
                    "project": project,
                },
            )
            block: list[tuple[Role, BaseModel]] = [("input", item) for item in inputs]
            _append(conn, project, conversation.id, block, False)

    def _get(self, project: str, conversation_id: str) -> ConversationResource | None:
        with self._engine.connect() as conn:
            row = _owned(conn, project, conversation_id)
        if row is None:
            return None
        return _resource(conversation_id, row.created_at, json.loads(row.metadata))

    def _update(
        self, project: str, conversation_id: str, metadata: dict[str, str]
    ) -> ConversationResource | None:
        with self._write_lock, self._engine.begin() as conn:
            if _owned(conn, project, conversation_id) is None:
                return None
            row = conn.execute(
                _UPDATE, {"key": conversation_id, "metadata": json.dumps(metadata)}
            ).first()
        return None if row is None else _resource(conversation_id, row.created_at, metadata)

    def _delete(self, project: str, conversation_id: str) -> bool:
        with self._write_lock, self._engine.begin() as conn:
            if _owned(conn, project, conversation_id) is None:
                return False
            found = conn.execute(_DELETE, {"id": conversation_id}).first() is not None
            conn.execute(_DELETE_ITEMS, {"id": conversation_id})
        return found

    def _append(
        self,
        project: str,
        conversation_id: str,
        block: list[tuple[Role, BaseModel]],
        skip_present: bool,
    ) -> bool:
        with self._write_lock, self._engine.begin() as conn:
            return _append(conn, project, conversation_id, block, skip_present)

    def _items(
        self,
        project: str,
        conversation_id: str,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> ItemPage | None:
        """Positions first, then the bodies of just the page: a long conversation's items
        are all looked at, but only a page of them is read and parsed."""
        with self._engine.connect() as conn:
            if _owned(conn, project, conversation_id) is None:
                return None
            ordered = sorted(
                conn.execute(_POSITIONS, {"id": conversation_id}),
                key=lambda row: row.position,
                reverse=order == "desc",
            )
            start = 0
            if after is not None:
                hits = [index for index, row in enumerate(ordered) if row.item_id == after]
                if not hits:
                    raise MissingItem(after)
                start = hits[0] + 1
            page = [row.entry for row in ordered[start : start + limit]]
            bodies = {row.entry: row for row in conn.execute(_BODIES, {"entries": page})}
        return ItemPage(
            items=[
                load_item(bodies[entry].origin, bodies[entry].body)
                for entry in page
                if entry in bodies  # unless deleted between the two reads
            ],
            has_more=start + limit < len(ordered),
        )

    def _context(self, project: str, conversation_id: str) -> list[Item] | None:
        with self._engine.connect() as conn:
            if _owned(conn, project, conversation_id) is None:
                return None
            rows = sorted(conn.execute(_ALL, {"id": conversation_id}), key=lambda r: r.position)
        return [load_item(row.origin, row.body) for row in rows]

    def _item(self, project: str, conversation_id: str, item: str) -> Item | None:
        with self._engine.connect() as conn:
            row = conn.execute(_ITEM, {"entry": _entry(conversation_id, item)}).first()
        if row is None or row.project != project:
            return None
        return load_item(row.origin, row.body)

    def _delete_item(self, project: str, conversation_id: str, item: str) -> bool:
        with self._write_lock, self._engine.begin() as conn:
            entry = _entry(conversation_id, item)
            row = conn.execute(_ITEM, {"entry": entry}).first()
            if row is None or row.project != project:
                return False
            return conn.execute(_DELETE_ITEM, {"entry": entry}).first() is not None


def _resource(conversation_id: str, created_at: int, metadata: Any) -> ConversationResource:
    return ConversationResource(
        id=conversation_id, object="conversation", created_at=created_at, metadata=metadata
    )


def _append(
    conn: Connection,
    project: str,
    conversation_id: str,
    block: list[tuple[Role, BaseModel]],
    skip_present: bool,
) -> bool:
    """Append `block` in `conn`'s transaction (see `Conversations.append`)."""
    # A conversation's project never changes, so it may be checked before the lock.
    if _owned(conn, project, conversation_id) is None:
        return False
    # Then the reservation, so that the conversation's row is locked before items are read.
    reserved = conn.execute(_RESERVE, {"key": conversation_id, "count": len(block)}).first()
    if reserved is None:
        return False
    rows = [
        {
            "entry": _entry(conversation_id, item_id(model)),
            "conversation_id": conversation_id,
            "item_id": item_id(model),
            "origin": origin,
            "body": dump(model),
            "project": project,
        }
        for origin, model in block
    ]
    seen = set(conn.execute(_PRESENT, {"entries": [row["entry"] for row in rows]}).scalars())
    fresh: list[dict[str, Any]] = []
    repeated: list[dict[str, Any]] = []
    for row in rows:
        (repeated if row["entry"] in seen else fresh).append(row)
        seen.add(row["entry"])
    if repeated and not skip_present:
        raise ItemConflict([row["item_id"] for row in repeated])
    # Positions left unused by skipped items are gaps, which order nothing differently.
    first = reserved.next_position - len(block)
    for offset, row in enumerate(fresh):
        row["position"] = first + offset
    if fresh:
        conn.execute(_INSERT_ITEMS, fresh)
    return True
