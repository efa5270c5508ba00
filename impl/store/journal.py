"""Write-behind for the store: a save is durable once it is in a local journal file.

An embedded database commit costs milliseconds (DuckDB: 2 to 5 ms per transaction, and one
writer at a time), which would dominate the latency of every stored response and cap
throughput at a few hundred saves a second. So `save` appends the record to a journal
segment (one `write` call, no database round trip) and returns; a single writer task
applies whatever has accumulated to the database in one transaction (group commit), then
deletes the journal segments it has applied. On start, segments left by a crash are
replayed before anything is served, so a response the client has seen is never lost.

Reads see every save that returned before them: `get` and `context` answer from the records
not yet applied (and from those applied lately, kept in memory), and the other reads wait for
the writer to catch up (typically one batch).

Only a store that one process holds (DuckDB) is journaled. Replicas sharing PostgreSQL
write through: a response saved by one must be readable by the next request at once,
whichever replica serves it, and must not wait in a file on the disk of a replica that may
never come back.

The journal is written without fsync by default: it survives the server process dying at
any point. Surviving an operating-system crash too needs `fsync=True`, at a cost of a disk
flush per save.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from openresponses.generated.openai_models import Response
from openresponses.items import ITEM_RESOURCE, Item
from openresponses.store.base import (
    DEFAULT_PROJECT,
    Conversations,
    ItemPage,
    Store,
    StoredResponse,
)
from openresponses.store.codec import Encoded, encode

log = logging.getLogger("openresponses.store")

_RETRY_SECONDS = 1.0

GATHER_SECONDS = 0.1
"""How long the writer lets saves accumulate before it commits them, unless a read is waiting.

A commit runs on a worker thread that holds the GIL for part of its work; committing after
every save made each request wait for that thread (+0.3 ms p50 at one request at a time).
And a batch has a fixed cost (its statements and commit: ~5 to 6 ms of CPU on DuckDB) beside
~0.1 ms per response: at one request at a time, gathering for 50 ms made ~35-response
batches at ~0.26 ms of writer CPU per response, 100 ms makes ~70 at ~0.16 ms
(`bench/store_writer.py`). Reads that need
the database current (`input_items`, `delete`…) cut the wait short, so they never pay for it;
`get` and `context` read saves not yet applied from memory.
"""


RECENT_BYTES = 16 * 1024 * 1024
"""How much applied state (as JSON) stays in memory for chained requests to read."""


class _Recent:
    """The responses applied lately, newest last, up to a budget of their JSON's size.

    Agents chain each turn on the last one, and a chain walked in DuckDB costs a query per
    ancestor (a 10-turn chain took ~18 ms on top of each request under load). One process
    holds a DuckDB file and every write passes through this store, so memory stays in step.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        self._records: OrderedDict[str, tuple[StoredResponse, int]] = OrderedDict()

    def add(self, record: StoredResponse, size: int) -> None:
        self.discard(record.response.id)
        self._records[record.response.id] = (record, size)
        self._used += size
        while self._used > self._budget:
            _, (_, evicted) = self._records.popitem(last=False)
            self._used -= evicted

    def get(self, response_id: str) -> StoredResponse | None:
        found = self._records.get(response_id)
        if found is None:
            return None
        self._records.move_to_end(response_id)
        return found[0]

    def discard(self, response_id: str) -> None:
        found = self._records.pop(response_id, None)
        if found is not None:
            self._used -= found[1]


class BatchStore(Store, Protocol):
    async def save_many(self, records: Sequence[Encoded]) -> None:
        """Apply all `records` in one transaction, in order (a later one replaces an earlier)."""


def _record(line: bytes) -> StoredResponse:
    data = json.loads(line)
    return StoredResponse(
        Response.model_validate(data["response"]),
        [ITEM_RESOURCE.validate_python(item) for item in data["input_items"]],
        # Lines written before projects existed belong to the server's own project.
        data.get("project", DEFAULT_PROJECT),
    )


def read_segment(path: Path) -> list[StoredResponse]:
    """The records of one segment; a torn last line (a crash mid-write) is skipped."""
    records = []
    for line in path.read_bytes().splitlines(keepends=True):
        if not line.endswith(b"\n"):
            log.warning("skipping a torn journal line in %s", path)
            continue
        records.append(_record(line))
    return records


class JournaledStore:
    """A `Store` that journals saves and applies them to `inner` in the background."""

    def __init__(
        self,
        inner: BatchStore,
        directory: Path,
        *,
        fsync: bool = False,
        recent_bytes: int = RECENT_BYTES,
    ) -> None:
        self._inner = inner
        self._directory = directory
        self._fsync = fsync
        # Saved, not yet applied (newest wins): the record, and what is queued for the tables.
        self._pending: dict[str, tuple[StoredResponse, Encoded]] = {}
        self._queue: list[Encoded] = []
        self._recent = _Recent(recent_bytes)
        self._segment_number = 0
        self._segment: int | None = None  # file descriptor of the open segment
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()  # a reader waits: commit without gathering
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Replay what a previous run left in the journal, then start journaling."""
        self._directory.mkdir(parents=True, exist_ok=True)
        for path in self._segments():
            records = await asyncio.to_thread(read_segment, path)
            if records:
                await self._inner.save_many([encode(r) for r in records])
                log.info("replayed %d journaled response(s) from %s", len(records), path.name)
            path.unlink()
        self._open_segment()
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")

    async def close(self) -> None:
        await self._flush()
        if self._writer is not None:
            self._writer.cancel()
        self._close_segment(delete=True)
        await self._inner.close()

    def _segments(self) -> list[Path]:
        paths = self._directory.glob("journal-*.jsonl")
        return sorted(paths, key=lambda p: int(p.stem.split("-")[1]))

    def _open_segment(self) -> None:
        self._segment_number += 1
        path = self._directory / f"journal-{self._segment_number}.jsonl"
        self._segment = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _close_segment(self, *, delete: bool) -> Path | None:
        if self._segment is None:
            return None
        os.close(self._segment)
        self._segment = None
        path = self._directory / f"journal-{self._segment_number}.jsonl"
        if delete:
            path.unlink(missing_ok=True)
        return path

    # --- writes -------------------------------------------------------------------------------

    async def save(self, record: StoredResponse) -> None:
        assert self._segment is not None, "JournaledStore.start() was not awaited"
        encoded = encode(record)
        os.write(self._segment, encoded.journal_line())
        if self._fsync:
            await asyncio.to_thread(os.fsync, self._segment)
        self._pending[record.response.id] = (record, encoded)
        self._queue.append(encoded)
        self._idle.clear()
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), GATHER_SECONDS)
            self._wake.clear()
            self._urgent.clear()
            if not self._queue:
                continue
            batch, self._queue = self._queue, []
            applied = self._close_segment(delete=False)
            self._open_segment()
            while True:
                try:
                    await self._inner.save_many(batch)
                    break
                except Exception:  # the journal still holds the batch; keep trying
                    log.exception("could not apply %d journaled save(s); retrying", len(batch))
                    await asyncio.sleep(_RETRY_SECONDS)
            if applied is not None:
                applied.unlink(missing_ok=True)
            for encoded in batch:
                pending = self._pending.get(encoded.id)
                if pending is not None and pending[1] is encoded:
                    del self._pending[encoded.id]
                    self._recent.add(pending[0], encoded.size())
            if not self._queue:
                self._idle.set()

    async def _flush(self) -> None:
        """Wait until every save made so far is in the database."""
        if not self._idle.is_set():
            self._urgent.set()
        await self._idle.wait()

    # --- reads --------------------------------------------------------------------------------

    def _in_memory(self, project: str, response_id: str) -> StoredResponse | None:
        pending = self._pending.get(response_id)
        found = pending[0] if pending is not None else self._recent.get(response_id)
        return found if found is not None and found.project == project else None

    async def get(self, project: str, response_id: str) -> StoredResponse | None:
        found = self._in_memory(project, response_id)
        return found if found is not None else await self._inner.get(project, response_id)

    async def delete(self, project: str, response_id: str) -> bool:
        await self._flush()
        if self._in_memory(project, response_id) is not None:
            self._recent.discard(response_id)
        return await self._inner.delete(project, response_id)

    async def input_items(
        self,
        project: str,
        response_id: str,
        *,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> ItemPage | None:
        await self._flush()
        return await self._inner.input_items(
            project, response_id, after=after, limit=limit, order=order
        )

    async def context(self, project: str, response_id: str) -> list[Item] | None:
        """The chain's items, its newest responses from memory: an agent sends its next
        request as soon as a response ends, and waiting for that response's commit made
        every chained request wait for the writer (several milliseconds)."""
        newest: list[list[Item]] = []  # newest first
        current: str | None = response_id
        while current is not None and (record := self._in_memory(project, current)) is not None:
            newest.append([*record.input_items, *record.response.output])
            current = record.response.previous_response_id
        # Not in memory means applied (a record leaves `_pending` once committed), or absent.
        older = await self._inner.context(project, current) if current is not None else []
        if older is None and not newest:
            return None
        return [item for items in [older or [], *reversed(newest)] for item in items]

    async def find_item(self, project: str, item_id: str) -> Item | None:
        await self._flush()
        return await self._inner.find_item(project, item_id)

    async def unfinished(self) -> list[tuple[str, str]]:
        await self._flush()
        return await self._inner.unfinished()

    async def schema_version(self) -> int:
        return await self._inner.schema_version()

    @property
    def conversations(self) -> Conversations:
        """Written through: an append must be in the database before the turn that made it
        ends, and it touches no response, so nothing in the journal has to go first."""
        return self._inner.conversations
