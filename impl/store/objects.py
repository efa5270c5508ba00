"""Files, vector stores, their files and file batches: the metadata, in the same database as
the responses (DuckDB or PostgreSQL), tables from migration 2.

Rows come back as the generated API models, so handlers return them as they are. What can be
derived is never stored: a vector store's `file_counts` and `usage_bytes` and a batch's counts
and status are sums over `vector_store_files` at read time, so they cannot drift from the
files they count. Blobs and chunks live elsewhere (`core.files`, `vectors`).

Like `sql.SqlStore`, every call runs on a small thread pool of its own; on DuckDB writes take
one lock, because ingestion tasks update rows of one store concurrently and DuckDB's
optimistic concurrency would abort all but one of them.
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
    and_,
    delete,
    func,
    or_,
    select,
    update,
)

from openresponses.generated import openai_models as m
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
)
batches = Table(
    "vector_store_file_batches",
    _metadata,
    Column("id", Varchar, primary_key=True),
    Column("vector_store_id", Varchar),
    Column("created_at", BigInteger),
    Column("cancelled", Boolean),
)

DAY = 86_400


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


@dataclass(frozen=True)
class StoreFile:
    """A file in a vector store, with what ingestion and search need beside the API object."""

    object: m.VectorStoreFileObject
    filename: str


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def position() -> int:
    """An ordering key finer than `created_at`'s seconds, increasing within a process."""
    return time.time_ns() // 1000


def _file(row: Any) -> m.OpenAIFile:
    # model_construct: OpenAI's upload purposes include `evals`, which its OpenAIFile omits.
    return m.OpenAIFile.model_construct(
        id=row.id,
        object="file",
        bytes=row.bytes,
        created_at=row.created_at,
        expires_at=row.expires_at,
        filename=row.filename,
        purpose=row.purpose,
        status="processed",
    )


def _counts(rows: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row.status] += row.n
    return {**counts, "total": sum(counts.values())}


def _store_file(row: Any) -> StoreFile:
    error = _loads(row.last_error)
    return StoreFile(
        m.VectorStoreFileObject.model_validate(
            {
                "id": row.file_id,
                "object": "vector_store.file",
                "usage_bytes": row.usage_bytes,
                "created_at": row.created_at,
                "vector_store_id": row.vector_store_id,
                "status": row.status,
                "last_error": error,
                "chunking_strategy": _loads(row.chunking_strategy),
                "attributes": _loads(row.attributes),
            }
        ),
        row.filename,
    )


_STORE_FILE_COLUMNS = (*store_files.c, files.c.filename)


def _cursor(table: Table, cursor: ColumnElement[bool], id_: str | None, newer: bool) -> Any:
    """`position` past (`newer`: above) the row `cursor` selects; no such row: nothing."""
    if id_ is None:
        return None
    # correlate(None): the outer query reads the same table, and must not bind this one.
    mark = select(table.c.position).where(cursor).correlate(None).scalar_subquery()
    return table.c.position > mark if newer else table.c.position < mark


@dataclass(frozen=True)
class Window:
    """A page request: `after` / `before` are ids, `order` is by creation."""

    limit: int
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


def _page(
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


class ObjectStore:
    """Metadata of files and vector stores over an engine `migrations.migrate` has prepared."""

    def __init__(self, engine: Engine, *, day_seconds: int = DAY) -> None:
        self._engine = engine
        self._day = day_seconds
        """Seconds per day of `expires_after` (shorter in tests, see config.Settings)."""
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

    # --- files --------------------------------------------------------------------------------

    async def add_file(self, file: m.OpenAIFile) -> None:
        row = {
            "id": file.id,
            "position": position(),
            "created_at": file.created_at,
            "expires_at": file.expires_at,
            "bytes": file.bytes,
            "filename": file.filename,
            "purpose": file.purpose,
        }
        await self.write(lambda conn: conn.execute(files.insert(), row))

    async def get_file(self, file_id: str) -> m.OpenAIFile | None:
        query = select(files).where(files.c.id == file_id, _live(int(time.time())))
        row = await self.read(lambda conn: conn.execute(query).first())
        return None if row is None else _file(row)

    async def list_files(self, purpose: str | None, window: Window) -> Page[m.OpenAIFile]:
        query = select(files).where(_live(int(time.time())))
        if purpose is not None:
            query = query.where(files.c.purpose == purpose)
        rows, more = await self.read(
            lambda conn: _page(conn, query, files, window, lambda id_: files.c.id == id_)
        )
        return Page([_file(row) for row in rows], more)

    async def delete_file(self, file_id: str) -> list[str] | None:
        """Deletes the file and its membership in every vector store; returns those stores'
        ids, or None when there was no such file."""

        def run(conn: Connection) -> list[str] | None:
            found = conn.execute(delete(files).where(files.c.id == file_id).returning(files.c.id))
            if found.first() is None:
                return None
            removed = conn.execute(
                delete(store_files)
                .where(store_files.c.file_id == file_id)
                .returning(store_files.c.vector_store_id)
            )
            return list(removed.scalars())

        return await self.write(run)

    # --- vector stores ------------------------------------------------------------------------

    async def add_vector_store(
        self,
        store_id: str,
        created_at: int,
        name: str | None,
        metadata: dict[str, str] | None,
        expires_after: m.VectorStoreExpirationAfter | None,
    ) -> None:
        row = {
            "id": store_id,
            "position": position(),
            "created_at": created_at,
            "name": name,
            "metadata": _json(metadata),
            "expires_after": _json(expires_after and expires_after.model_dump(mode="json")),
            "last_active_at": created_at,
        }
        await self.write(lambda conn: conn.execute(vector_stores.insert(), row))

    async def get_vector_store(self, store_id: str) -> m.VectorStoreObject | None:
        page = await self.read(lambda conn: self._stores(conn, vector_stores.c.id == store_id))
        return page[0] if page else None

    async def list_vector_stores(self, window: Window) -> Page[m.VectorStoreObject]:
        def run(conn: Connection) -> Page[m.VectorStoreObject]:
            rows, more = _page(
                conn,
                select(vector_stores),
                vector_stores,
                window,
                lambda i: vector_stores.c.id == i,
            )
            return Page(self._with_counts(conn, rows), more)

        return await self.read(run)

    def _stores(self, conn: Connection, where: Any) -> list[m.VectorStoreObject]:
        return self._with_counts(conn, list(conn.execute(select(vector_stores).where(where))))

    def _with_counts(self, conn: Connection, rows: list[Any]) -> list[m.VectorStoreObject]:
        ids = [row.id for row in rows]
        sums = conn.execute(
            select(
                store_files.c.vector_store_id,
                store_files.c.status,
                func.count().label("n"),
                func.coalesce(func.sum(store_files.c.usage_bytes), 0).label("used"),
            )
            .where(store_files.c.vector_store_id.in_(ids))
            .group_by(store_files.c.vector_store_id, store_files.c.status)
        ).all()
        now = int(time.time())
        out = []
        for row in rows:
            mine = [s for s in sums if s.vector_store_id == row.id]
            counts = _counts(mine)
            expires_after = _loads(row.expires_after)
            expires_at = (
                row.last_active_at + expires_after["days"] * self._day if expires_after else None
            )
            if expires_at is not None and expires_at <= now:
                status = "expired"
            else:
                status = "in_progress" if counts["in_progress"] else "completed"
            out.append(
                m.VectorStoreObject.model_validate(
                    {
                        "id": row.id,
                        "object": "vector_store",
                        "created_at": row.created_at,
                        "name": row.name or "",
                        "usage_bytes": int(sum(s.used for s in mine)),
                        "file_counts": counts,
                        "status": status,
                        "expires_after": expires_after,
                        "expires_at": expires_at,
                        "last_active_at": row.last_active_at,
                        "metadata": _loads(row.metadata),
                    }
                )
            )
        return out

    async def update_vector_store(self, store_id: str, values: dict[str, Any]) -> bool:
        """Sets `name`, `metadata` and/or `expires_after` (JSON-able values)."""
        row = {key: _json(value) if key != "name" else value for key, value in values.items()}
        row["last_active_at"] = int(time.time())
        statement = (
            update(vector_stores)
            .where(vector_stores.c.id == store_id)
            .values(row)
            .returning(vector_stores.c.id)
        )
        return await self.write(lambda conn: conn.execute(statement).first() is not None)

    async def touch(self, store_ids: Sequence[str]) -> None:
        """Marks stores active now (searches and additions), which defers their expiry."""
        statement = (
            update(vector_stores)
            .where(vector_stores.c.id.in_(list(store_ids)))
            .values(last_active_at=int(time.time()))
        )
        await self.write(lambda conn: conn.execute(statement))

    async def delete_vector_store(self, store_id: str) -> bool:
        def run(conn: Connection) -> bool:
            found = conn.execute(
                delete(vector_stores)
                .where(vector_stores.c.id == store_id)
                .returning(vector_stores.c.id)
            ).first()
            conn.execute(delete(store_files).where(store_files.c.vector_store_id == store_id))
            conn.execute(delete(batches).where(batches.c.vector_store_id == store_id))
            return found is not None

        return await self.write(run)

    # --- files in vector stores ---------------------------------------------------------------

    async def add_store_files(
        self,
        store_id: str,
        entries: Sequence[tuple[str, dict[str, Any], dict[str, Any] | None]],
        batch_id: str | None = None,
    ) -> None:
        """Adds (or re-adds) files, each `(file_id, chunking_strategy, attributes)`, as
        `in_progress`."""
        now = int(time.time())
        rows = [
            {
                "vector_store_id": store_id,
                "file_id": file_id,
                "position": position() + index,
                "created_at": now,
                "batch_id": batch_id,
                "status": "in_progress",
                "last_error": None,
                "chunking_strategy": _json(chunking),
                "attributes": _json(attributes),
                "usage_bytes": 0,
            }
            for index, (file_id, chunking, attributes) in enumerate(entries)
        ]
        ids = [row["file_id"] for row in rows]

        def run(conn: Connection) -> None:
            conn.execute(
                delete(store_files).where(
                    store_files.c.vector_store_id == store_id, store_files.c.file_id.in_(ids)
                )
            )
            conn.execute(store_files.insert(), rows)
            conn.execute(
                update(vector_stores)
                .where(vector_stores.c.id == store_id)
                .values(last_active_at=now)
            )

        await self.write(run)

    def _store_files_query(self) -> Select[Any]:
        return select(*_STORE_FILE_COLUMNS).join(files, files.c.id == store_files.c.file_id)

    async def get_store_file(self, store_id: str, file_id: str) -> StoreFile | None:
        query = self._store_files_query().where(
            store_files.c.vector_store_id == store_id, store_files.c.file_id == file_id
        )
        row = await self.read(lambda conn: conn.execute(query).first())
        return None if row is None else _store_file(row)

    async def list_store_files(
        self,
        store_id: str,
        *,
        batch_id: str | None = None,
        status: str | None = None,
        window: Window,
    ) -> Page[StoreFile]:
        query = self._store_files_query().where(store_files.c.vector_store_id == store_id)
        if batch_id is not None:
            query = query.where(store_files.c.batch_id == batch_id)
        if status is not None:
            query = query.where(store_files.c.status == status)

        def key(file_id: str) -> ColumnElement[bool]:
            return and_(store_files.c.vector_store_id == store_id, store_files.c.file_id == file_id)

        rows, more = await self.read(lambda conn: _page(conn, query, store_files, window, key))
        return Page([_store_file(row) for row in rows], more)

    async def finish_store_file(
        self,
        store_id: str,
        file_id: str,
        status: FileStatus,
        *,
        usage_bytes: int = 0,
        last_error: dict[str, str] | None = None,
    ) -> bool:
        """Ends ingestion of a file still `in_progress`; False when it no longer is (it was
        cancelled, removed, or added again meanwhile), so its chunks must go."""
        statement = (
            update(store_files)
            .where(
                store_files.c.vector_store_id == store_id,
                store_files.c.file_id == file_id,
                store_files.c.status == "in_progress",
            )
            .values(status=status, usage_bytes=usage_bytes, last_error=_json(last_error))
            .returning(store_files.c.file_id)
        )
        return await self.write(lambda conn: conn.execute(statement).first() is not None)

    async def set_attributes(
        self, store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> bool:
        statement = (
            update(store_files)
            .where(store_files.c.vector_store_id == store_id, store_files.c.file_id == file_id)
            .values(attributes=_json(attributes))
            .returning(store_files.c.file_id)
        )
        return await self.write(lambda conn: conn.execute(statement).first() is not None)

    async def remove_store_file(self, store_id: str, file_id: str) -> bool:
        statement = (
            delete(store_files)
            .where(store_files.c.vector_store_id == store_id, store_files.c.file_id == file_id)
            .returning(store_files.c.file_id)
        )
        return await self.write(lambda conn: conn.execute(statement).first() is not None)

    async def in_progress(self) -> list[StoreFile]:
        """Files whose ingestion a stopped server left unfinished, to resume at start-up."""
        query = self._store_files_query().where(store_files.c.status == "in_progress")
        rows = await self.read(lambda conn: conn.execute(query).all())
        return [_store_file(row) for row in rows]

    # --- file batches -------------------------------------------------------------------------

    async def add_batch(self, batch_id: str, store_id: str) -> None:
        row = {
            "id": batch_id,
            "vector_store_id": store_id,
            "created_at": int(time.time()),
            "cancelled": False,
        }
        await self.write(lambda conn: conn.execute(batches.insert(), row))

    async def get_batch(self, store_id: str, batch_id: str) -> m.VectorStoreFileBatchObject | None:
        def run(conn: Connection) -> m.VectorStoreFileBatchObject | None:
            row = conn.execute(
                select(batches).where(
                    batches.c.id == batch_id, batches.c.vector_store_id == store_id
                )
            ).first()
            if row is None:
                return None
            sums = conn.execute(
                select(store_files.c.status, func.count().label("n"))
                .where(store_files.c.batch_id == batch_id)
                .group_by(store_files.c.status)
            ).all()
            counts = _counts(sums)
            if row.cancelled:
                status = "cancelled"
            elif counts["in_progress"]:
                status = "in_progress"
            elif counts["total"] and counts["failed"] == counts["total"]:
                status = "failed"
            else:
                status = "completed"
            return m.VectorStoreFileBatchObject.model_validate(
                {
                    "id": row.id,
                    "object": "vector_store.files_batch",
                    "created_at": row.created_at,
                    "vector_store_id": store_id,
                    "status": status,
                    "file_counts": counts,
                }
            )

        return await self.read(run)

    async def cancel_batch(self, store_id: str, batch_id: str) -> bool:
        """Marks the batch cancelled and its files still in progress `cancelled`."""

        def run(conn: Connection) -> bool:
            found = conn.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.vector_store_id == store_id)
                .values(cancelled=True)
                .returning(batches.c.id)
            ).first()
            if found is None:
                return False
            conn.execute(
                update(store_files)
                .where(store_files.c.batch_id == batch_id, store_files.c.status == "in_progress")
                .values(status="cancelled")
            )
            return True

        return await self.write(run)


def _live(now: int) -> ColumnElement[bool]:
    """Files that have not expired."""
    return or_(files.c.expires_at.is_(None), files.c.expires_at > now)
