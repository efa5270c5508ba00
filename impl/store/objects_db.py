"""What the metadata of files and vector stores shares: the tables of migration 2, the one
database access every resource's calls go through, and cursor pages.

The tables live in the same database as the responses (DuckDB or PostgreSQL). Like
`sql.SqlStore`, every call runs on a small thread pool of its own; on DuckDB writes take one
lock, because ingestion tasks update rows of one store concurrently and DuckDB's optimistic
concurrency would abort all but one of them. The resources share that pool and that lock, so
one resource's writes serialize with another's as they must (several touch each other's rows).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    MetaData,
    Select,
    Table,
    Text,
    select,
)

from openresponses.store.codec import Varchar

T = TypeVar("T")
Order = Literal["asc", "desc"]
FileStatus = Literal["in_progress", "completed", "cancelled", "failed"]
STATUSES: tuple[FileStatus, ...] = ("in_progress", "completed", "cancelled", "failed")

_metadata = MetaData()
files = Table(
    "files",
    _metadata,
    Column("id", Varchar, primary_key=True),
    Column("position", BigInteger),
    Column("created_at", BigInteger),
    Column("expires_at", BigInteger),
    Column("bytes", BigInteger),
    Column("filename", Varchar),
    Column("purpose", Varchar),
    Column("project", Varchar),
)
vector_stores = Table(
    "vector_stores",
    _metadata,
    Column("id", Varchar, primary_key=True),
    Column("position", BigInteger),
    Column("created_at", BigInteger),
    Column("name", Varchar),
    Column("metadata", Text),
    Column("expires_after", Text),
    Column("last_active_at", BigInteger),
    Column("project", Varchar),
)
store_files = Table(
    "vector_store_files",
    _metadata,
    Column("vector_store_id", Varchar, primary_key=True),
    Column("file_id", Varchar, primary_key=True),
    Column("position", BigInteger),
    Column("created_at", BigInteger),
    Column("batch_id", Varchar),
    Column("status", Varchar),
    Column("last_error", Text),
    Column("chunking_strategy", Text),
    Column("attributes", Text),
    Column("usage_bytes", BigInteger),
    Column("project", Varchar),
)
batches = Table(
    "vector_store_file_batches",
    _metadata,
    Column("id", Varchar, primary_key=True),
    Column("vector_store_id", Varchar),
    Column("created_at", BigInteger),
    Column("cancelled", Boolean),
    Column("project", Varchar),
)


class ObjectsDb:
    """The database access of files and vector stores, over an engine `migrations.migrate`
    has prepared."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor = ThreadPoolExecutor(4, thread_name_prefix="objects")
        self._lock: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "duckdb" else nullcontext()
        )

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    def _write(self, statements: Callable[[Connection], T]) -> T:
        with self._lock, self._engine.begin() as conn:
            return statements(conn)

    def _read(self, statements: Callable[[Connection], T]) -> T:
        with self._engine.connect() as conn:
            return statements(conn)

    async def write(self, statements: Callable[[Connection], T]) -> T:
        return await self._run(self._write, statements)

    async def read(self, statements: Callable[[Connection], T]) -> T:
        return await self._run(self._read, statements)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def position() -> int:
    """An ordering key finer than `created_at`'s seconds, increasing within a process."""
    return time.time_ns() // 1000


def file_counts(rows: Sequence[Any]) -> dict[str, int]:
    """A store's or a batch's `file_counts`, from rows of (`status`, `n`)."""
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row.status] += row.n
    return {**counts, "total": sum(counts.values())}


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


@dataclass(frozen=True)
class Window:
    """A page request: `after` / `before` are ids, `order` is by creation."""

    limit: int
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


def paginate(
    conn: Connection,
    query: Select[Any],
    table: Table,
    window: Window,
    key: Callable[[str], ColumnElement[bool]],
) -> tuple[list[Any], bool]:
    """A page of `query`'s rows; `key(id)` selects the row an id names, for cursors.

    `before` pages backwards: the rows just ahead of the cursor, read in reverse and turned
    round, so the page reads in the requested order either way."""
    ascending = window.order == "asc"
    backwards = window.before is not None and window.after is None
    if window.after is not None:
        query = query.where(_cursor(table, key(window.after), window.after, ascending))
    if window.before is not None:
        query = query.where(_cursor(table, key(window.before), window.before, not ascending))
    up = ascending != backwards
    column = table.c.position.asc() if up else table.c.position.desc()
    rows = list(conn.execute(query.order_by(column).limit(window.limit + 1)))
    page = rows[: window.limit]
    return (page[::-1] if backwards else page), len(rows) > window.limit


def _cursor(table: Table, cursor: ColumnElement[bool], id_: str | None, newer: bool) -> Any:
    """`position` past (`newer`: above) the row `cursor` selects; no such row: nothing."""
    if id_ is None:
        return None
    # correlate(None): the outer query reads the same table, and must not bind this one.
    mark = select(table.c.position).where(cursor).correlate(None).scalar_subquery()
    return table.c.position > mark if newer else table.c.position < mark
