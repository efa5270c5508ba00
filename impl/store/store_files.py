"""The files of vector stores (`vector_store_files`): which file is in which store, from which
batch, and how far its ingestion (`vectors.ingest`) has got."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, delete, select, update

from openresponses.generated import openai_models as m
from openresponses.store.objects_db import (
    FileStatus,
    ObjectsDb,
    Page,
    Window,
    files,
    from_json,
    paginate,
    position,
    store_files,
    to_json,
    vector_stores,
)


@dataclass(frozen=True)
class StoreFile:
    """A file in a vector store, with what ingestion and search need beside the API object."""

    object: m.VectorStoreFileObject
    filename: str
    project: str


class StoreFiles:
    def __init__(self, db: ObjectsDb) -> None:
        self._db = db

    async def add(
        self,
        project: str,
        store_id: str,
        entries: Sequence[tuple[str, dict[str, Any], dict[str, Any] | None]],
        batch_id: str | None = None,
    ) -> None:
        """Adds (or re-adds) files, each `(file_id, chunking_strategy, attributes)`, as
        `in_progress`, in a store the caller found in `project` (the other calls take such a
        store too, or serve ingestion, so they name no project)."""
        now = int(time.time())
        rows = [
            {
                "project": project,
                "vector_store_id": store_id,
                "file_id": file_id,
                "position": position() + index,
                "created_at": now,
                "batch_id": batch_id,
                "status": "in_progress",
                "last_error": None,
                "chunking_strategy": to_json(chunking),
                "attributes": to_json(attributes),
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

        await self._db.write(run)

    async def get(self, store_id: str, file_id: str) -> StoreFile | None:
        query = _query().where(
            store_files.c.vector_store_id == store_id, store_files.c.file_id == file_id
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return None if row is None else _store_file(row)

    async def page(
        self,
        store_id: str,
        *,
        batch_id: str | None = None,
        status: str | None = None,
        window: Window,
    ) -> Page[StoreFile]:
        query = _query().where(store_files.c.vector_store_id == store_id)
        if batch_id is not None:
            query = query.where(store_files.c.batch_id == batch_id)
        if status is not None:
            query = query.where(store_files.c.status == status)

        def key(file_id: str) -> ColumnElement[bool]:
            return and_(store_files.c.vector_store_id == store_id, store_files.c.file_id == file_id)

        rows, more = await self._db.read(
            lambda conn: paginate(conn, query, store_files, window, key)
        )
        return Page([_store_file(row) for row in rows], more)

    async def finish(
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
            .values(status=status, usage_bytes=usage_bytes, last_error=to_json(last_error))
            .returning(store_files.c.file_id)
        )
        return await self._db.write(lambda conn: conn.execute(statement).first() is not None)

    async def set_attributes(
        self, store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> bool:
        statement = (
            update(store_files)
            .where(store_files.c.vector_store_id == store_id, store_files.c.file_id == file_id)
            .values(attributes=to_json(attributes))
            .returning(store_files.c.file_id)
        )
        return await self._db.write(lambda conn: conn.execute(statement).first() is not None)

    async def remove(self, store_id: str, file_id: str) -> bool:
        statement = (
            delete(store_files)
            .where(store_files.c.vector_store_id == store_id, store_files.c.file_id == file_id)
            .returning(store_files.c.file_id)
        )
        return await self._db.write(lambda conn: conn.execute(statement).first() is not None)

    async def in_progress(self) -> list[StoreFile]:
        """Files whose ingestion a stopped server left unfinished, to resume at start-up."""
        query = _query().where(store_files.c.status == "in_progress")
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_store_file(row) for row in rows]


def _query() -> Select[Any]:
    """Store files with their file's name."""
    return select(*store_files.c, files.c.filename).join(files, files.c.id == store_files.c.file_id)


def _store_file(row: Any) -> StoreFile:
    error = from_json(row.last_error)
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
                "chunking_strategy": from_json(row.chunking_strategy),
                "attributes": from_json(row.attributes),
            }
        ),
        row.filename,
        row.project,
    )
