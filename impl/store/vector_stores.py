"""Vector stores (`vector_stores`): rows come back as the generated `VectorStoreObject`.

What can be derived is never stored: a store's `file_counts` and `usage_bytes` are sums over
its files (`vector_store_files`) at read time, so they cannot drift from the files they count,
and its `status` and `expires_at` follow from those and its last activity. Chunks live
elsewhere (`vectors`). The API's calls name the project, whose stores alone they see;
`touch` serves ingestion and search, which act on stores already found for a project.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select, update

from openresponses.generated import openai_models as m
from openresponses.store.objects_db import (
    ObjectsDb,
    Page,
    Window,
    batches,
    file_counts,
    from_json,
    paginate,
    position,
    store_files,
    to_json,
    vector_stores,
)

DAY = 86_400


class VectorStores:
    def __init__(self, db: ObjectsDb, day_seconds: int) -> None:
        self._db = db
        self._day = day_seconds
        """Seconds per day of `expires_after` (shorter in tests, see config.Settings)."""

    async def add(
        self,
        project: str,
        store_id: str,
        created_at: int,
        name: str | None,
        metadata: dict[str, str] | None,
        expires_after: m.VectorStoreExpirationAfter | None,
    ) -> None:
        row = {
            "project": project,
            "id": store_id,
            "position": position(),
            "created_at": created_at,
            "name": name,
            "metadata": to_json(metadata),
            "expires_after": to_json(expires_after and expires_after.model_dump(mode="json")),
            "last_active_at": created_at,
        }
        await self._db.write(lambda conn: conn.execute(vector_stores.insert(), row))

    async def get(self, project: str, store_id: str) -> m.VectorStoreObject | None:
        where = (vector_stores.c.id == store_id, vector_stores.c.project == project)
        page = await self._db.read(lambda conn: self._stores(conn, *where))
        return page[0] if page else None

    async def page(self, project: str, window: Window) -> Page[m.VectorStoreObject]:
        def run(conn: Connection) -> Page[m.VectorStoreObject]:
            rows, more = paginate(
                conn,
                select(vector_stores).where(vector_stores.c.project == project),
                vector_stores,
                window,
                # A cursor naming another project's store finds nothing, as a missing one does.
                lambda i: and_(vector_stores.c.id == i, vector_stores.c.project == project),
            )
            return Page(self._with_counts(conn, rows), more)

        return await self._db.read(run)

    def _stores(self, conn: Connection, *where: Any) -> list[m.VectorStoreObject]:
        return self._with_counts(conn, list(conn.execute(select(vector_stores).where(*where))))

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
            counts = file_counts(mine)
            expires_after = from_json(row.expires_after)
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
                        "metadata": from_json(row.metadata),
                    }
                )
            )
        return out

    async def update(self, project: str, store_id: str, values: dict[str, Any]) -> bool:
        """Sets `name`, `metadata` and/or `expires_after` (JSON-able values)."""
        row = {key: to_json(value) if key != "name" else value for key, value in values.items()}
        row["last_active_at"] = int(time.time())
        statement = (
            update(vector_stores)
            .where(vector_stores.c.id == store_id, vector_stores.c.project == project)
            .values(row)
            .returning(vector_stores.c.id)
        )
        return await self._db.write(lambda conn: conn.execute(statement).first() is not None)

    async def touch(self, store_ids: Sequence[str]) -> None:
        """Marks stores active now (searches and additions), which defers their expiry."""
        statement = (
            update(vector_stores)
            .where(vector_stores.c.id.in_(list(store_ids)))
            .values(last_active_at=int(time.time()))
        )
        await self._db.write(lambda conn: conn.execute(statement))

    async def delete(self, project: str, store_id: str) -> bool:
        """Deletes the store with its files' membership and its batches."""

        def run(conn: Connection) -> bool:
            found = conn.execute(
                delete(vector_stores)
                .where(vector_stores.c.id == store_id, vector_stores.c.project == project)
                .returning(vector_stores.c.id)
            ).first()
            if found is None:
                return False
            conn.execute(delete(store_files).where(store_files.c.vector_store_id == store_id))
            conn.execute(delete(batches).where(batches.c.vector_store_id == store_id))
            return True

        return await self._db.write(run)
