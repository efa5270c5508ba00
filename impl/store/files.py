"""Uploaded files' metadata (`files`): rows come back as the generated `OpenAIFile`, so
handlers return them as they are. The bytes live elsewhere (`openresponses.files.blobs`);
every call names the project, whose files alone it sees."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, or_, select, text

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

    async def add(self, project: str, file: m.OpenAIFile, quota: int | None = None) -> bool:
        """Records the file, unless the project's live files and it would pass `quota`
        bytes (then False, and nothing is recorded)."""
        row = {
            "project": project,
            "id": file.id,
            "position": position(),
            "created_at": file.created_at,
            "expires_at": file.expires_at,
            "bytes": file.bytes,
            "filename": file.filename,
            "purpose": file.purpose,
        }

        def run(conn: Connection) -> bool:
            if quota is not None:
                # Uploads to one project queue here, so two cannot both fit the same room
                # (on DuckDB the write lock already serialises them).
                if conn.dialect.name == "postgresql":
                    lock = text("SELECT pg_advisory_xact_lock(hashtext(:project))")
                    conn.execute(lock, {"project": project})
                if _used(conn, project) + file.bytes > quota:
                    return False
            conn.execute(files.insert(), row)
            return True

        return await self._db.write(run)

    async def get(self, project: str, file_id: str) -> m.OpenAIFile | None:
        query = select(files).where(files.c.id == file_id, _live(int(time.time())))
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return None if row is None or row.project != project else _file(row)

    async def page(self, project: str, purpose: str | None, window: Window) -> Page[m.OpenAIFile]:
        query = select(files).where(files.c.project == project, _live(int(time.time())))
        if purpose is not None:
            query = query.where(files.c.purpose == purpose)

        def key(file_id: str) -> ColumnElement[bool]:
            # A cursor naming another project's file finds nothing, as a missing one does.
            return and_(files.c.id == file_id, files.c.project == project)

        rows, more = await self._db.read(lambda conn: paginate(conn, query, files, window, key))
        return Page([_file(row) for row in rows], more)

    async def delete(self, project: str, file_id: str) -> list[str] | None:
        """Deletes the file and its membership in every vector store; returns those stores'
        ids, or None when the project has no such file."""

        def run(conn: Connection) -> list[str] | None:
            owner = conn.execute(select(files.c.project).where(files.c.id == file_id)).first()
            if owner is None or owner.project != project:
                return None
            conn.execute(delete(files).where(files.c.id == file_id))
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


def _used(conn: Connection, project: str) -> int:
    """The bytes of the project's live files: its storage, against its quota."""
    query = select(func.coalesce(func.sum(files.c.bytes), 0)).where(
        files.c.project == project, _live(int(time.time()))
    )
    return int(conn.execute(query).scalar_one())


def _live(now: int) -> ColumnElement[bool]:
    """Files that have not expired."""
    return or_(files.c.expires_at.is_(None), files.c.expires_at > now)
