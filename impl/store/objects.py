"""Files, vector stores, their files and file batches: the metadata, one object per resource
(`files`, `vector_stores`, `store_files`, `file_batches`), all over one database access
(`objects_db`), in the same database as the responses. Blobs and chunks live elsewhere
(`openresponses.files`, `vectors`)."""

from __future__ import annotations

from sqlalchemy import Engine

from openresponses.store.file_batches import FileBatches
from openresponses.store.files import Files
from openresponses.store.objects_db import ObjectsDb
from openresponses.store.store_files import StoreFiles
from openresponses.store.vector_stores import DAY, VectorStores


class Objects:
    """The metadata of files and vector stores over an engine `migrations.migrate` has
    prepared: one engine, thread pool and write lock, which `close` releases."""

    def __init__(self, engine: Engine, *, day_seconds: int = DAY) -> None:
        self._db = ObjectsDb(engine)
        self.files = Files(self._db)
        self.vector_stores = VectorStores(self._db, day_seconds)
        self.store_files = StoreFiles(self._db)
        self.batches = FileBatches(self._db)

    async def close(self) -> None:
        await self._db.close()
