"""Uploaded files' metadata (`files`): rows come back as the generated `OpenAIFile`, so
handlers return them as they are. The bytes live elsewhere (`openresponses.files.blobs`)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, or_, select

from openresponses.generated import openai_models as m
from openresponses.store.objects_db import (
    ObjectsDb,
    Page,
    Window,
    files,
    paginate,
    position,
    store_files,
)


class Files:
    def __init__(self, db: ObjectsDb) -> None:
        self._db = db

    async def add(self, file: m.OpenAIFile) -> None:
        row = {
            "id": file.id,
            "position": position(),
            "created_at": file.created_at,
            "expires_at": file.expires_at,
            "bytes": file.bytes,
            "filename": file.filename,
            "purpose": file.purpose,
        }
        await self._db.write(lambda conn: conn.execute(files.insert(), row))

    async def get(self, file_id: str) -> m.OpenAIFile | None:
        query = select(files).where(files.c.id == file_id, _live(int(time.time())))
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return None if row is None else _file(row)

    async def page(self, purpose: str | None, window: Window) -> Page[m.OpenAIFile]:
        query = select(files).where(_live(int(time.time())))
        if purpose is not None:
            query = query.where(files.c.purpose == purpose)
        rows, more = await self._db.read(
            lambda conn: paginate(conn, query, files, window, lambda id_: files.c.id == id_)
        )
        return Page([_file(row) for row in rows], more)

    async def delete(self, file_id: str) -> list[str] | None:
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

        return await self._db.write(run)


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


def _live(now: int) -> ColumnElement[bool]:
    """Files that have not expired."""
    return or_(files.c.expires_at.is_(None), files.c.expires_at > now)
