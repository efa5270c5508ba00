"""The `Store` on SQLAlchemy Core: one implementation for DuckDB (embedded) and PostgreSQL.

Responses and items are stored as the JSON of their models, in TEXT columns both databases
take as they are; the models are the schema. The other columns exist only to be filtered,
joined or ordered on. The tables themselves are created by `migrations`.

Both databases block, so every call runs on a small thread pool of the store's own, one
pooled connection per thread; the event loop only waits for the result.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    func,
    literal_column,
    make_url,
    select,
    union_all,
)

# Both DuckDB dialects derive from the PostgreSQL one, so its ON CONFLICT compiles for them too.
from sqlalchemy.dialects.postgresql import insert

from openresponses.core.items import ITEM_RESOURCE, OUTPUT_ITEM, item_id
from openresponses.generated.openai_models import Response
from openresponses.store.base import ItemPage, StoredResponse

T = TypeVar("T")

# Threads, and connections: enough for concurrent requests to overlap their waits on
# PostgreSQL; DuckDB parallelises each query internally anyway.
WORKERS = 8

# duckdb_engine and duckdb-sqlalchemy both claim the bare `duckdb` scheme, and which one wins
# depends on install order; this is the one tested here (and it caches compiled statements).
_DUCKDB_DRIVER = "duckdb+duckdb_sqlalchemy"

Role = Literal["input", "output"]

# Read back with the union each list was validated with, so an item returns as the model it
# was saved as (an output `function_call` stays a FunctionToolCall, equal to Response.output).
_ADAPTERS: dict[str, TypeAdapter[Any]] = {"input": ITEM_RESOURCE, "output": OUTPUT_ITEM}

_metadata = MetaData()
responses = Table(
    "responses",
    _metadata,
    Column("id", String, primary_key=True),
    Column("created_at", BigInteger),
    Column("status", String),
    Column("model", String),
    Column("previous_response_id", String),
    Column("body", Text),
)
items = Table(
    "response_items",
    _metadata,
    Column("response_id", String, primary_key=True),
    Column("role", String, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("item_id", String),
    Column("body", Text),
)


def create_store_engine(url: str) -> Engine:
    """An engine whose pool matches the store's threads, so no thread waits for a connection.

    DuckDB allows one read-write process per file, but any number of connections inside it:
    they share one database, and each pooled connection serves one thread at a time.
    """
    parsed = make_url(url)
    if parsed.drivername == "duckdb":
        parsed = parsed.set(drivername=_DUCKDB_DRIVER)
    return create_engine(parsed, pool_size=WORKERS, max_overflow=0)


def _dump(model: BaseModel) -> str:
    """JSON that validates back to an equal model with the same fields set.

    The API renders models with `exclude_unset`, so a full dump would make every field "set"
    and a stored response would come back with keys it never had; and aliases (`schema` for
    `schema_`) are what the models validate from.
    """
    return model.model_dump_json(by_alias=True, exclude_unset=True)


def _item(role: str, body: str) -> Any:
    return _ADAPTERS[role].validate_json(body)


def _item_rows(response_id: str, role: Role, models: Iterable[BaseModel]) -> list[dict[str, Any]]:
    return [
        {
            "response_id": response_id,
            "role": role,
            "position": position,
            "item_id": item_id(model),
            "body": _dump(model),
        }
        for position, model in enumerate(models)
    ]


# --- statements, built once ------------------------------------------------------------------

# Constants written into the SQL, not bound: they are part of the statement's shape.
_ZERO = literal_column("0", Integer)
_ONE = literal_column("1", Integer)

_upsert = insert(responses)
_UPSERT = _upsert.on_conflict_do_update(
    index_elements=[responses.c.id],
    set_={name: _upsert.excluded[name] for name in responses.c.keys() if name != "id"},
)
_DELETE_RESPONSE = (
    delete(responses).where(responses.c.id == bindparam("id")).returning(responses.c.id)
)
_DELETE_ITEMS = delete(items).where(items.c.response_id == bindparam("id"))
_INSERT_ITEMS = items.insert()

# The response (part 0) and its input items (part 1) in one round trip.
_GET = union_all(
    select(_ZERO.label("part"), _ZERO.label("position"), responses.c.body).where(
        responses.c.id == bindparam("id")
    ),
    select(_ONE, items.c.position, items.c.body).where(
        items.c.response_id == bindparam("id"), items.c.role == "input"
    ),
).order_by("part", "position")

_EXISTS = select(responses.c.id).where(responses.c.id == bindparam("id"))


def _page_statements() -> dict[tuple[str, bool], Any]:
    """input_items queries by (order, whether there is an `after`).

    The cursor is the item's furthest occurrence in the requested order: an item referenced
    twice in one input has its id twice, and the nearer one could page back to itself forever.
    """
    inputs = (items.c.response_id == bindparam("id"), items.c.role == "input")
    cursor = select(items.c.position).where(*inputs, items.c.item_id == bindparam("after"))
    furthest_asc = cursor.with_only_columns(func.max(items.c.position)).scalar_subquery()
    furthest_desc = cursor.with_only_columns(func.min(items.c.position)).scalar_subquery()
    base = select(items.c.body).where(*inputs).limit(bindparam("limit"))
    asc, desc = items.c.position, items.c.position.desc()
    return {
        ("asc", False): base.order_by(asc),
        ("desc", False): base.order_by(desc),
        ("asc", True): base.where(items.c.position > furthest_asc).order_by(asc),
        ("desc", True): base.where(items.c.position < furthest_desc).order_by(desc),
    }


_PAGES = _page_statements()


def _context_statement() -> Any:
    """The chain from `id` back to its root, each response's items, oldest response first.

    The outer join keeps a row for a response without items, so an empty result can only
    mean that `id` does not exist.
    """
    chain = (
        select(
            responses.c.id,
            responses.c.previous_response_id,
            _ZERO.label("depth"),
        )
        .where(responses.c.id == bindparam("id"))
        .cte("chain", recursive=True)
    )
    parent = responses.alias("parent")
    chain = chain.union_all(
        select(parent.c.id, parent.c.previous_response_id, chain.c.depth + _ONE).where(
            parent.c.id == chain.c.previous_response_id
        )
    )
    # 'input' sorts before 'output': each response's input, then what it produced.
    return (
        select(items.c.role, items.c.body)
        .select_from(chain.outerjoin(items, items.c.response_id == chain.c.id))
        .order_by(chain.c.depth.desc(), items.c.role, items.c.position)
    )


_CONTEXT = _context_statement()

# Joined with responses so that only items of a stored response are found.
_FIND_ITEM = (
    select(items.c.role, items.c.body)
    .join(responses, responses.c.id == items.c.response_id)
    .where(items.c.item_id == bindparam("item_id"))
    .order_by(responses.c.created_at.desc(), items.c.role, items.c.position.desc())
    .limit(1)
)


# --- the store -------------------------------------------------------------------------------


class SqlStore:
    """A `Store` over an engine whose schema `migrations.migrate` has brought up to date."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="store")
        # DuckDB's optimistic concurrency aborts a transaction that writes a row another open
        # transaction wrote ("Conflict on update"); one writer at a time never conflicts.
        # PostgreSQL's row locks make concurrent writers wait instead, so it needs nothing.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "duckdb" else nullcontext()
        )

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def save(self, record: StoredResponse) -> None:
        await self._run(self._save, record)

    async def get(self, response_id: str) -> StoredResponse | None:
        return await self._run(self._get, response_id)

    async def delete(self, response_id: str) -> bool:
        return await self._run(self._delete, response_id)

    async def input_items(
        self, response_id: str, *, after: str | None, limit: int, order: Literal["asc", "desc"]
    ) -> ItemPage | None:
        return await self._run(self._input_items, response_id, after, limit, order)

    async def context(self, response_id: str) -> list[Any] | None:
        return await self._run(self._context, response_id)

    async def find_item(self, item_id: str) -> Any | None:
        return await self._run(self._find_item, item_id)

    async def close(self) -> None:
        """Wait for running calls, then close every connection (DuckDB checkpoints the file)."""
        await asyncio.to_thread(self._close)

    # --- in the store's threads --------------------------------------------------------------

    def _save(self, record: StoredResponse) -> None:
        """Upsert the response row and replace its items, in one transaction.

        The response row is written first: on PostgreSQL its row lock then orders concurrent
        saves and deletes of one response, so no save can leave items behind a delete.
        """
        response = record.response
        row = {
            "id": response.id,
            "created_at": response.created_at,
            "status": response.status,
            "model": response.model,
            "previous_response_id": response.previous_response_id,
            "body": _dump(response),
        }
        rows = _item_rows(response.id, "input", record.input_items)
        rows += _item_rows(response.id, "output", response.output)
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(_UPSERT, row)
            conn.execute(_DELETE_ITEMS, {"id": response.id})
            if rows:
                conn.execute(_INSERT_ITEMS, rows)

    def _get(self, response_id: str) -> StoredResponse | None:
        with self._engine.connect() as conn:
            rows = conn.execute(_GET, {"id": response_id}).all()
        if not rows or rows[0].part != 0:
            return None
        response = Response.model_validate_json(rows[0].body)
        return StoredResponse(response, [_item("input", row.body) for row in rows[1:]])

    def _delete(self, response_id: str) -> bool:
        with self._write_lock, self._engine.begin() as conn:
            found = conn.execute(_DELETE_RESPONSE, {"id": response_id}).first() is not None
            conn.execute(_DELETE_ITEMS, {"id": response_id})
        return found

    def _input_items(
        self, response_id: str, after: str | None, limit: int, order: Literal["asc", "desc"]
    ) -> ItemPage | None:
        statement = _PAGES[order, after is not None]
        params = {"id": response_id, "after": after, "limit": limit + 1}
        with self._engine.connect() as conn:
            bodies: Sequence[str] = conn.execute(statement, params).scalars().all()
            if not bodies and conn.execute(_EXISTS, params).first() is None:
                return None
        page = [_item("input", body) for body in bodies[:limit]]
        return ItemPage(items=page, has_more=len(bodies) > limit)

    def _context(self, response_id: str) -> list[Any] | None:
        with self._engine.connect() as conn:
            rows = conn.execute(_CONTEXT, {"id": response_id}).all()
        if not rows:
            return None
        return [_item(row.role, row.body) for row in rows if row.body is not None]

    def _find_item(self, item_id: str) -> Any | None:
        with self._engine.connect() as conn:
            row: Row[Any] | None = conn.execute(_FIND_ITEM, {"item_id": item_id}).first()
        return None if row is None else _item(row.role, row.body)

    def _close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()
