"""The `Store` on SQLAlchemy Core: one implementation for DuckDB (embedded) and PostgreSQL.

Responses and items are stored as the JSON of their models, in TEXT columns both databases
take as they are; the models are the schema. The other columns exist only to be looked up or
ordered on. The tables themselves are created by `migrations`.

Every query is a lookup on one indexed column (`=` or `IN`), with any further filtering in
Python. That is the only shape DuckDB answers from an index: it ignores compound indexes and
falls back to scanning the whole table when a query filters a second column or joins, which
costs milliseconds per call once there are 100k responses. PostgreSQL serves the same queries
from its indexes just as well.

Both databases block, so every call runs on a small thread pool of the store's own, one
pooled connection per thread; the event loop only waits for the result.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal, TypeVar

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
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
    literal_column,
    make_url,
    select,
    text,
    union_all,
    update,
)

# Both DuckDB dialects derive from the PostgreSQL one, so its ON CONFLICT compiles for them too.
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from openresponses.generated.openai_models import Response
from openresponses.items import Item
from openresponses.store import conversations, migrations
from openresponses.store.base import ItemPage, StoredResponse
from openresponses.store.codec import Encoded, Varchar, encode, load_item
from openresponses.store.conversations import SqlConversations

T = TypeVar("T")

# Threads, and connections: enough for concurrent requests to overlap their waits on
# PostgreSQL; DuckDB parallelises each query internally anyway.
WORKERS = 8

# duckdb_engine and duckdb-sqlalchemy both claim the bare `duckdb` scheme, and which one wins
# depends on install order. This one caches compiled statements; duckdb_engine turns
# SQLAlchemy's statement cache off, recompiling every query on every call.
_DUCKDB_DRIVER = "duckdb+duckdb_sqlalchemy"

_metadata = MetaData()
responses = Table(
    "responses",
    _metadata,
    Column("id", Varchar, primary_key=True),
    Column("created_at", BigInteger),
    Column("status", Varchar),
    Column("model", Varchar),
    Column("previous_response_id", Varchar),
    Column("body", Text),
    Column("project", Varchar),
)
items = Table(
    "response_items",
    _metadata,
    Column("response_id", Varchar, primary_key=True),
    Column("role", Varchar, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("item_id", Varchar),
    Column("body", Text),
    Column("project", Varchar),
)


def create_store_engine(url: str) -> Engine:
    """An engine whose pool matches the store's threads, so no thread waits for a connection.

    DuckDB allows one read-write process per file, but any number of connections inside it:
    they share one database, and each pooled connection serves one thread at a time.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "duckdb":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(
                "an unnamed in-memory DuckDB is private to each connection, so the store's "
                "threads would each see an empty one; use a file or duckdb:///:memory:NAME"
            )
        parsed = parsed.set(drivername=_DUCKDB_DRIVER)
        _skip_duckdb_pandas_probe()
        # Every query here is a lookup or a small write: one DuckDB thread answers it, and
        # handing each statement to a pool of two cost more than it saved (a one-row insert
        # and commit: 3.5 to 4.5 ms of CPU with two threads, 1.5 to 2.2 with one).
        return create_engine(
            parsed, pool_size=WORKERS, max_overflow=0, connect_args={"config": {"threads": 1}}
        )
    return create_engine(parsed, pool_size=WORKERS, max_overflow=0)


def _skip_duckdb_pandas_probe() -> None:
    """Make DuckDB's per-statement `import pandas` fail at once when pandas is not installed.

    DuckDB imports pandas on every execute with parameters, to recognise DataFrames. A failed
    import is not cached, so without pandas each statement searches sys.path again (0.1 ms and
    more, as much as the query itself). A None entry in sys.modules is Python's documented way
    to make that import raise immediately; with pandas installed nothing changes.
    """
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None  # type: ignore[assignment]


def _row(record: Encoded) -> dict[str, Any]:
    """The response's row in `responses`."""
    return {
        "id": record.id,
        "created_at": record.created_at,
        "status": record.status,
        "model": record.model,
        "previous_response_id": record.previous_response_id,
        "body": record.body,
        "project": record.project,
    }


def _item_rows(record: Encoded) -> list[dict[str, Any]]:
    return [
        {
            "response_id": record.id,
            "role": role,
            "position": position,
            "item_id": key,
            "body": body,
            "project": record.project,
        }
        for role, listed in (("input", record.inputs), ("output", record.outputs))
        for position, (key, body) in enumerate(listed)
    ]


# --- statements, built once ------------------------------------------------------------------

_FIELDS = [column.name for column in responses.c if not column.primary_key]

_upsert = insert(responses)
_UPSERT = _upsert.on_conflict_do_update(
    index_elements=[responses.c.id], set_={name: _upsert.excluded[name] for name in _FIELDS}
)
_EXISTING = select(responses.c.id).where(responses.c.id.in_(bindparam("ids", expanding=True)))
_UPDATE = (
    update(responses)
    .where(responses.c.id == bindparam("key"))
    .values({name: bindparam(name) for name in _FIELDS})
)
_DELETE_RESPONSE = (
    delete(responses).where(responses.c.id == bindparam("id")).returning(responses.c.id)
)
_DELETE_ITEMS = delete(items).where(items.c.response_id.in_(bindparam("ids", expanding=True)))

# PostgreSQL: a list of rows executes as batched multi-row INSERTs ("insertmanyvalues").
_INSERT_ITEMS = insert(items)


def _json_insert(table: Table) -> Any:
    """DuckDB: insert the rows given as one JSON array parameter.

    DuckDB binds parameters slowly: with SQLAlchemy's multi-row INSERT, 100 item rows took
    ~11.5 ms of CPU with their commit, as one JSON text unnested by `from_json` ~3.5 ms (24
    rows: 5 ms against 3.3 to 4.1 ms).
    """
    types = {column.name: _DUCKDB_TYPES[type(column.type)] for column in table.c}
    shape = json.dumps([types]).replace("'", "''")
    return text(
        f"INSERT INTO {table.name} ({', '.join(types)}) "
        f"SELECT unnest(from_json(CAST(:rows AS VARCHAR), '{shape}'), recursive := true)"
    )


_DUCKDB_TYPES = {Varchar: "VARCHAR", Text: "VARCHAR", Integer: "INTEGER", BigInteger: "BIGINT"}
_INSERT_JSON = _json_insert(responses)
_INSERT_ITEMS_JSON = _json_insert(items)

_UNFINISHED_STATUSES = ("queued", "in_progress")
_UNFINISHED = select(responses.c.project, responses.c.id).where(
    responses.c.status.in_(_UNFINISHED_STATUSES)
)
_PREVIOUS = select(responses.c.previous_response_id, responses.c.project).where(
    responses.c.id == bindparam("id")
)
_CREATED_AT = select(responses.c.id, responses.c.created_at).where(
    responses.c.id.in_(bindparam("ids", expanding=True))
)

# The item queries have no ORDER BY: on DuckDB a sort costs more than the lookup itself, so
# `_in_order` sorts the few rows in Python instead.

# A response's row (with the role 'response') and its item rows, in one statement.
_RESPONSE_AND_ITEMS = union_all(
    select(
        literal_column("'response'", String).label("role"),
        literal_column("0", Integer).label("position"),
        responses.c.id.label("item_id"),
        responses.c.body,
        responses.c.project,
    ).where(responses.c.id == bindparam("id")),
    select(items.c.role, items.c.position, items.c.item_id, items.c.body, items.c.project).where(
        items.c.response_id == bindparam("id")
    ),
)
_ITEMS = select(items.c.response_id, items.c.role, items.c.position, items.c.body).where(
    items.c.response_id.in_(bindparam("ids", expanding=True))
)
_ITEMS_BY_ID = select(items.c.response_id, items.c.role, items.c.body, items.c.project).where(
    items.c.item_id == bindparam("item_id")
)


def _links_statement() -> Any:
    """(id, previous_response_id, project) of `id` and all its ancestors, in one round trip.

    UNION rather than UNION ALL: a cycle, which the API cannot create, still ends the recursion.
    """
    chain = (
        select(responses.c.id, responses.c.previous_response_id, responses.c.project)
        .where(responses.c.id == bindparam("id"))
        .cte("chain", recursive=True)
    )
    parent = responses.alias("parent")
    chain = chain.union(
        select(parent.c.id, parent.c.previous_response_id, parent.c.project).where(
            parent.c.id == chain.c.previous_response_id
        )
    )
    return select(chain.c.id, chain.c.previous_response_id, chain.c.project)


_LINKS = _links_statement()


# --- what differs between the databases --------------------------------------------------------
# Each pair does the same thing; the store picks the one that is fast and safe on its database.


class _PostgresRows:
    """PostgreSQL: atomic upserts, which also lock the rows until commit."""

    def write(self, conn: Connection, rows: list[dict[str, Any]], *, ask: bool) -> list[str]:
        """Returns every id: any of them may have items already. (An upsert needs no `ask`.)"""
        conn.execute(_UPSERT, rows)
        return [row["id"] for row in rows]

    def committed(self, rows: list[dict[str, Any]]) -> None:
        pass

    def deleted(self, response_id: str) -> None:
        pass


class _DuckDBRows:
    """DuckDB: a batch's new responses inserted in one statement, the others updated.

    DuckDB's ON CONFLICT costs twice an UPDATE or an INSERT, and asking which of a batch's
    ids exist costs more than inserting them (an IN list of 35 ids is planned as a scan of the
    table: ~4 ms of CPU, the whole batch's insert ~3 ms). So a response is presumed new unless
    this process saved it unfinished (a stream's or a background response's later saves
    update it); one stored after all, by an earlier run, fails the insert on its key, and the
    batch is written again, asking first (`ask`). Used under the store's write lock.
    """

    def __init__(self) -> None:
        self._unfinished: set[str] = set()

    def write(self, conn: Connection, rows: list[dict[str, Any]], *, ask: bool) -> list[str]:
        """Returns the ids of existing responses, the only ones that can have items already."""
        ids = [row["id"] for row in rows]
        if ask:
            existing = set(conn.execute(_EXISTING, {"ids": ids}).scalars())
        else:
            existing = self._unfinished.intersection(ids)
        for row in rows:
            if row["id"] in existing:
                conn.execute(_UPDATE, {"key": row["id"], **{name: row[name] for name in _FIELDS}})
        new = [row for row in rows if row["id"] not in existing]
        if new:
            conn.execute(_INSERT_JSON, {"rows": orjson.dumps(new).decode()})
        return list(existing)

    def committed(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row["status"] in _UNFINISHED_STATUSES:
                self._unfinished.add(row["id"])
            else:
                self._unfinished.discard(row["id"])

    def deleted(self, response_id: str) -> None:
        self._unfinished.discard(response_id)


def _insert_item_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: batched multi-row INSERTs."""
    conn.execute(_INSERT_ITEMS, rows)


def _insert_item_rows_as_json(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """DuckDB: one statement, one parameter (see `_json_insert`)."""
    conn.execute(_INSERT_ITEMS_JSON, {"rows": orjson.dumps(rows).decode()})


Links = dict[str, tuple[str | None, str]]
"""Each response of a chain: its previous response's id, and its project."""


def _links_by_recursion(conn: Connection, response_id: str) -> Links:
    """PostgreSQL: one round trip, each step an index lookup."""
    rows = conn.execute(_LINKS, {"id": response_id})
    return {row.id: (row.previous_response_id, row.project) for row in rows}


def _links_by_lookup(conn: Connection, response_id: str) -> Links:
    """DuckDB: one indexed lookup per ancestor, in process.

    DuckDB runs each step of a recursive query as a scan of the whole table: 40 ms for a chain
    of 10 among 100k responses, against 2 ms this way.
    """
    links: Links = {}
    current: str | None = response_id
    while current is not None and current not in links:
        row = conn.execute(_PREVIOUS, {"id": current}).first()
        if row is None:
            break
        links[current] = (row.previous_response_id, row.project)
        current = row.previous_response_id
    return links


# --- assembling results ------------------------------------------------------------------------


def _in_order(rows: Iterable[Row[Any]]) -> list[Row[Any]]:
    """Item rows as stored: 'input' sorts before 'output', then by position."""
    return sorted(rows, key=lambda row: (row.role, row.position))


def _walk(links: Links, project: str, response_id: str) -> list[str]:
    """The chain from `response_id` back to its root (or to a deleted ancestor), oldest
    first; empty when `response_id` is not the project's."""
    chain: dict[str, None] = {}  # ordered, and a cycle stops the walk
    current: str | None = response_id
    while current in links and current not in chain and links[current][1] == project:
        chain[current] = None
        current = links[current][0]
    return list(chain)[::-1]


def _page(
    inputs: list[Row[Any]], after: str | None, limit: int, order: Literal["asc", "desc"]
) -> ItemPage:
    """A page of a response's input rows, given in stored order.

    The cursor is the furthest occurrence of `after` in the requested order: an item
    referenced twice in one input has its id twice, and the nearer one could page back to
    itself forever. An unknown `after` has nothing after it.
    """
    ordered = inputs if order == "asc" else inputs[::-1]
    start = 0
    if after is not None:
        hits = [index for index, row in enumerate(ordered) if row.item_id == after]
        start = hits[-1] + 1 if hits else len(ordered)
    return ItemPage(
        items=[load_item("input", row.body) for row in ordered[start : start + limit]],
        has_more=start + limit < len(ordered),
    )


# --- the store -------------------------------------------------------------------------------


class SqlStore:
    """A `Store` over an engine whose schema `migrations.migrate` has brought up to date."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="store")
        self._write_lock: AbstractContextManager[Any]
        if engine.dialect.name == "duckdb":
            # DuckDB's optimistic concurrency aborts a transaction that writes a row another
            # open transaction wrote ("Conflict on update"); one writer at a time never does.
            self._write_lock = threading.Lock()
            self._rows: _PostgresRows | _DuckDBRows = _DuckDBRows()
            self._links, self._insert_items = _links_by_lookup, _insert_item_rows_as_json
        else:
            # PostgreSQL's row locks make concurrent writers of one response wait instead.
            self._write_lock = nullcontext()
            self._rows = _PostgresRows()
            self._links, self._insert_items = _links_by_recursion, _insert_item_rows
        self.conversations = SqlConversations(engine, self._run, self._write_lock)

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def save(self, record: StoredResponse) -> None:
        await self._run(self._save_many, [encode(record)])

    async def save_many(self, records: Sequence[Encoded]) -> None:
        """Save all `records` in one transaction, so one commit and one disk flush.

        A later record of a response replaces an earlier one, as separate saves would.
        """
        await self._run(self._save_many, records)

    async def get(self, project: str, response_id: str) -> StoredResponse | None:
        return await self._run(self._get, project, response_id)

    async def delete(self, project: str, response_id: str) -> bool:
        return await self._run(self._delete, project, response_id)

    async def input_items(
        self,
        project: str,
        response_id: str,
        *,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> ItemPage | None:
        return await self._run(self._input_items, project, response_id, after, limit, order)

    async def context(self, project: str, response_id: str) -> list[Item] | None:
        return await self._run(self._context, project, response_id)

    async def find_item(self, project: str, item_id: str) -> Item | None:
        return await self._run(self._find_item, project, item_id)

    async def unfinished(self) -> list[tuple[str, str]]:
        return await self._run(self._unfinished)

    async def schema_version(self) -> int:
        return await self._run(migrations.applied_version, self._engine)

    async def close(self) -> None:
        """Wait for running calls, then close every connection (DuckDB checkpoints the file)."""
        await asyncio.to_thread(self._close)

    # --- in the store's threads --------------------------------------------------------------

    def _save_many(self, records: Sequence[Encoded]) -> None:
        """Write the response rows and replace their items, all in one transaction, with a
        handful of statements however many records there are.

        Response rows are written first: on PostgreSQL their row locks then order concurrent
        saves and deletes of one response, so no save can leave items behind a delete.
        """
        latest = {record.id: record for record in records}
        item_rows = [row for record in latest.values() for row in _item_rows(record)]
        rows = [_row(record) for record in latest.values()]
        with self._write_lock:
            try:
                self._write(rows, item_rows, ask=False)
            except IntegrityError:  # a response stored unbeknown to `_rows`: see _DuckDBRows
                self._write(rows, item_rows, ask=True)
            self._rows.committed(rows)

    def _write(
        self, rows: list[dict[str, Any]], item_rows: list[dict[str, Any]], *, ask: bool
    ) -> None:
        with self._engine.begin() as conn:
            stale = self._rows.write(conn, rows, ask=ask)  # responses that may have items
            if stale:
                conn.execute(_DELETE_ITEMS, {"ids": stale})
            if item_rows:
                self._insert_items(conn, item_rows)

    def _response_and_items(
        self, project: str, response_id: str
    ) -> tuple[Row[Any] | None, list[Row[Any]]]:
        """The response's row (None when the project has no such response) and its item
        rows, in order."""
        with self._engine.connect() as conn:
            rows = conn.execute(_RESPONSE_AND_ITEMS, {"id": response_id}).all()
        response = next((row for row in rows if row.role == "response"), None)
        if response is None or response.project != project:
            return None, []
        return response, _in_order(row for row in rows if row.role != "response")

    def _get(self, project: str, response_id: str) -> StoredResponse | None:
        response, rows = self._response_and_items(project, response_id)
        if response is None:
            return None
        inputs = [load_item("input", row.body) for row in rows if row.role == "input"]
        return StoredResponse(Response.model_validate_json(response.body), inputs, project)

    def _delete(self, project: str, response_id: str) -> bool:
        with self._write_lock, self._engine.begin() as conn:
            owner = conn.execute(_PREVIOUS, {"id": response_id}).first()
            if owner is None or owner.project != project:
                return False
            self._rows.deleted(response_id)
            found = conn.execute(_DELETE_RESPONSE, {"id": response_id}).first() is not None
            conn.execute(_DELETE_ITEMS, {"ids": [response_id]})
        return found

    def _input_items(
        self,
        project: str,
        response_id: str,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> ItemPage | None:
        response, rows = self._response_and_items(project, response_id)
        if response is None:
            return None
        return _page([row for row in rows if row.role == "input"], after, limit, order)

    def _context(self, project: str, response_id: str) -> list[Item] | None:
        with self._engine.connect() as conn:
            chain = _walk(self._links(conn, response_id), project, response_id)
            if not chain:
                return None
            rows = _in_order(conn.execute(_ITEMS, {"ids": chain}))
        by_response: dict[str, list[Item]] = {ancestor: [] for ancestor in chain}
        for row in rows:
            by_response[row.response_id].append(load_item(row.role, row.body))
        return [item for ancestor in chain for item in by_response[ancestor]]

    def _find_item(self, project: str, item_id: str) -> Any | None:
        """The project's item; when references copied it into several responses, the newest
        copy. Items added through the conversations API are in no response; they come next."""
        with self._engine.connect() as conn:
            found = conn.execute(_ITEMS_BY_ID, {"item_id": item_id})
            rows = [row for row in found if row.project == project]
            if not rows:
                return conversations.find_item(conn, project, item_id)
            if len(rows) > 1:
                ids = [row.response_id for row in rows]
                created = {
                    row.id: row.created_at for row in conn.execute(_CREATED_AT, {"ids": ids})
                }
                rows.sort(key=lambda row: created.get(row.response_id, -1))
        return load_item(rows[-1].role, rows[-1].body)

    def _unfinished(self) -> list[tuple[str, str]]:
        with self._engine.connect() as conn:
            return [(row.project, row.id) for row in conn.execute(_UNFINISHED)]

    def _close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()
