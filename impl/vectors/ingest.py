"""Ingestion: a file added to a vector store becomes searchable chunks in the background.

Adding a file answers at once with the file `in_progress`; an asyncio task of the server's
then reads the blob, parses and chunks it (in a worker thread: CPU work never runs on the
event loop), embeds the chunks in one batched call, writes them to the index, and marks the
file `completed` (or `failed` with `last_error`). Files are ingested two at a time, so a large
batch cannot starve searches of the CPU.

The metadata row decides: a file cancelled, removed or re-added while its task ran is no
longer `in_progress` when the task ends, so the task's chunks are withdrawn again. Files a
stopped server left `in_progress` are taken up again when it starts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from openresponses.files.blobs import Blobs
from openresponses.store.store_files import StoreFile, StoreFiles
from openresponses.vectors import chunking
from openresponses.vectors.embedders import Embedder
from openresponses.vectors.index import ChunkIndex
from openresponses.vectors.parsers import ParseError, parse

log = logging.getLogger("openresponses.vectors")

CONCURRENCY = 2


class Ingestor:
    def __init__(
        self, store_files: StoreFiles, blobs: Blobs, index: ChunkIndex, embedder: Embedder
    ) -> None:
        self.store_files = store_files
        self.blobs = blobs
        self.index = index
        self.embedder = embedder
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, store_id: str, file_id: str) -> None:
        """Ingests the file in the background (its row is already `in_progress`)."""
        task = asyncio.create_task(self._ingest(store_id, file_id), name=f"ingest-{file_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self) -> None:
        """Takes up the files a previous run left `in_progress`."""
        for entry in await self.store_files.in_progress():
            self.start(entry.object.vector_store_id, entry.object.id)

    async def idle(self) -> None:
        """Waits for every ingestion under way (benchmarks, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _ingest(self, store_id: str, file_id: str) -> None:
        async with self._slots:
            entry = await self.store_files.get(store_id, file_id)
            if entry is None or entry.object.status != "in_progress":
                return
            try:
                usage = await self._index(entry)
            except ParseError as exc:
                await self._finish(store_id, file_id, "failed", error=(exc.code, exc.message))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingesting %s into %s failed", file_id, store_id)
                message = "The server failed to process the file."
                await self._finish(store_id, file_id, "failed", error=("server_error", message))
            else:
                await self._finish(store_id, file_id, "completed", usage=usage)
                await self._sync_attributes(store_id, file_id, entry)

    async def _sync_attributes(self, store_id: str, file_id: str, started: StoreFile) -> None:
        """Attributes changed while the file was ingested reach its chunks too."""
        now = await self.store_files.get(store_id, file_id)
        if now is not None and now.object.attributes != started.object.attributes:
            attributes = now.object.model_dump(mode="json")["attributes"]
            await self.index.set_attributes(store_id, file_id, attributes)

    async def _index(self, entry: StoreFile) -> int:
        """Parses, chunks, embeds and indexes the file; returns the bytes it uses."""
        found = entry.object
        try:
            data = await self.blobs.read(found.id)
        except FileNotFoundError as exc:
            raise ParseError("invalid_file", "The file's content is missing.") from exc
        strategy: dict[str, Any] = found.chunking_strategy.model_dump(mode="json")  # type: ignore[union-attr]
        chunks = await asyncio.to_thread(_chunks, entry.filename, data, strategy)
        embedded = await self.embedder.embed([chunk.text for chunk in chunks])
        attributes = found.model_dump(mode="json")["attributes"]
        await self.index.add(
            found.vector_store_id,
            found.id,
            entry.filename,
            attributes,
            chunks,
            embedded.vectors,
            project=entry.project,
        )
        # What the store holds for the file: its chunks' text and their vectors.
        return sum(len(chunk.text.encode()) for chunk in chunks) + embedded.vectors.nbytes

    async def _finish(
        self,
        store_id: str,
        file_id: str,
        status: Any,
        *,
        usage: int = 0,
        error: tuple[str, str] | None = None,
    ) -> None:
        last_error = {"code": error[0], "message": error[1]} if error else None
        done = await self.store_files.finish(
            store_id, file_id, status, usage_bytes=usage, last_error=last_error
        )
        if not done and status == "completed":  # cancelled or removed meanwhile
            await self.index.remove(store_id, file_id)


def _chunks(filename: str, data: bytes, strategy: dict[str, Any]) -> list[Any]:
    return chunking.chunk(parse(filename, data), strategy)
