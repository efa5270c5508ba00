"""Vector store file batches (`vector_store_file_batches`): a batch records only that it was
made and whether it was cancelled; its counts and status are sums over its files
(`vector_store_files`) at read time, so they cannot drift from the files they count."""

from __future__ import annotations

import time

from sqlalchemy import Connection, func, select, update

from openresponses.generated import openai_models as m
from openresponses.store.objects_db import ObjectsDb, batches, file_counts, store_files


class FileBatches:
    def __init__(self, db: ObjectsDb) -> None:
        self._db = db

    async def add(self, project: str, batch_id: str, store_id: str) -> None:
        """A new batch of a store the caller found in `project` (`get` and `cancel` take
        such a store too, so they name no project)."""
        row = {
            "project": project,
            "id": batch_id,
            "vector_store_id": store_id,
            "created_at": int(time.time()),
            "cancelled": False,
        }
        await self._db.write(lambda conn: conn.execute(batches.insert(), row))

    async def get(self, store_id: str, batch_id: str) -> m.VectorStoreFileBatchObject | None:
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
            counts = file_counts(sums)
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

        return await self._db.read(run)

    async def cancel(self, store_id: str, batch_id: str) -> bool:
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

        return await self._db.write(run)
