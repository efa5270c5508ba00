"""The chunk index: chunk text, offsets, attributes and vectors in a DuckDB file of its own
(`<data dir>/vectors.duckdb`), searched by cosine similarity (exact in SQL, or through the
HNSW graph of `ann.py` in `vectors.usearch` beside it) and BM25 (fts).

A file of its own, whatever database holds the rest: the index loads an extension the
responses' database should not depend on; and with PostgreSQL as the store, vectors still
live here (a pgvector `ChunkIndex` can follow: `search.py` only speaks this class's methods).

Facts measured on this machine that shape it (docs/benchmarks.md):

* The fts extension comes from the `duckdb-extension-fts` package, whose `__init__` is
  empty: its file is LOADed by path on every connection, with automatic extension
  installation and loading off, so nothing is ever downloaded.
* Exact search (`array_cosine_similarity` over every candidate row) is what runs by default:
  it honours any filter exactly and costs 1 to 3 ms per 1,000 chunks searched. The HNSW
  graph is built only once the index holds `hnsw_threshold` chunks (a bulk build from all
  cores, in the background: ~2,700 CPU s for 1M chunks here, less per chunk below that)
  and is used for stores that large; the chunks it proposes are re-ranked exactly and
  filtered in SQL. When too few survive (a selective filter), the graph is asked once
  more, as wide as stays cheaper than a scan; only then does exact search take over. The
  table is the truth: the graph follows each write after its commit, is saved after writes
  (coalesced, like BM25's rebuild), and is reconciled with the table when opened, so a crash
  in between costs a catch-up, not a rebuild.
* Chunk ids are never reused (the next id is past both the table's and the graph's
  largest), so an id the graph holds always means the same vector.
* The query vector is inlined as one string cast to the array type: a list of 384 numeric
  literals took ~5 ms more per query to bind.
* BM25's index is a snapshot (fts has no incremental update), rebuilt `fts_delay` seconds
  after writes (coalesced), or by the first keyword search that finds it stale, so a file
  reported `completed` is found by keyword too: ~1 s per 20k chunks. The rebuild is a
  transaction of its own, so writes go on meanwhile and other keyword queries read the
  previous snapshot.
* Bulk inserts go through numpy arrays scanned by DuckDB, not `executemany` (which took
  minutes for 20k rows).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np

from openresponses.vectors.ann import ANN_SUFFIX, AnnIndex, HnswParams, Keys, as_keys
from openresponses.vectors.minilm import Array

log = logging.getLogger("openresponses.vectors")

T = TypeVar("T")

VECTORS_FILE = "vectors.duckdb"
MAX_PROPOSALS = 4096
"""The widest graph search, asked for when a filter lets too few of the first ask's chunks
through, before exact search takes over."""
SCAN_RATIO = 128
"""A wide graph search and its filter cost ~20 µs per chunk proposed here, and exact search
~0.1 to 1.7 µs per chunk in the stores (a selective filter to none; docs/benchmarks.md): a
graph search never asks for more than 1/128 of the stores' chunks."""
EXTENSIONS = ("fts",)
DUCKDB_VERSION = "v1.5.5"


def extension_path(name: str) -> str:
    """Where `duckdb-extension-<name>` keeps the extension file for this DuckDB."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"duckdb-extension-{name} is not installed")
    folder = Path(spec.origin).parent / "extensions" / DUCKDB_VERSION
    return str(folder / f"{name}.duckdb_extension")


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int
    end: int
    """Character offsets of the chunk in the parsed text of its file."""


@dataclass(frozen=True)
class Row:
    """A chunk as search returns it."""

    id: int
    vector_store_id: str
    file_id: str
    filename: str
    attributes: dict[str, Any] | None
    text: str


def vector_literal(vector: Array) -> str:
    """The query vector as SQL (numbers only, formatted here: nothing of the client's)."""
    return f"'[{','.join(repr(float(x)) for x in vector)}]'::FLOAT[{len(vector)}]"


class ChunkIndex:
    def __init__(
        self,
        path: Path,
        dimensions: int,
        *,
        hnsw_threshold: int = 50_000,
        hnsw: HnswParams = HnswParams(),
        fts_delay: float = 0.5,
    ) -> None:
        self.path = path
        self.dimensions = dimensions
        self.hnsw_threshold = hnsw_threshold
        self.hnsw = hnsw
        self.fts_delay = fts_delay
        self._db: duckdb.DuckDBPyConnection | None = None
        self._opening = asyncio.Lock()
        self._ann: AnnIndex | None = None
        """The HNSW graph, once built or loaded and caught up: searches use it from then on,
        and writes update it."""
        self._saved: AnnIndex | None = None
        """The graph read from its file when the index opened, until it is caught up."""
        self._closing = False
        self._fts_dirty = True
        self._fts_ready = False
        self._lengths: dict[str, tuple[int, int]] = {}
        """Per store, as of the BM25 snapshot: (chunks, their total length in terms)."""
        self._next_id = 1
        self._sizes: dict[str, int] | None = None
        """Chunks per store, counted once after each write: whether a search may use the
        HNSW index depends on them, and counting per search took ~7 ms at 100k chunks,
        ~75 ms at 1M."""
        self._writes = 0
        self._write_lock = threading.Lock()
        # Keyword queries read BM25's tables with their statistics (`_lengths`), which a
        # rebuild replaces together when it commits.
        self._fts_lock = threading.Lock()
        self._fts_rebuild = threading.Lock()  # one rebuild at a time
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="vectors")
        # A graph's bulk build takes minutes: on a thread of its own, not one searches need.
        self._builder = ThreadPoolExecutor(1, thread_name_prefix="vectors-ann")
        self._refresher: asyncio.Task[None] | None = None
        self._ann_task: asyncio.Task[None] | None = None

    @property
    def ann_path(self) -> Path:
        """The HNSW graph's file, beside the table's."""
        return self.path.with_suffix(ANN_SUFFIX)

    def _open(self) -> duckdb.DuckDBPyConnection:
        """Opens the file on first use: a server that never searches never loads the
        extensions (44 MB of shared libraries)."""
        config: dict[str, str | bool | int | float | list[str]] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        db = duckdb.connect(str(self.path), config=config)
        self._prepare(db)
        db.execute(
            f"""
            CREATE TABLE IF NOT EXISTS chunks (
                id BIGINT PRIMARY KEY,
                vector_store_id VARCHAR NOT NULL,
                file_id VARCHAR NOT NULL,
                filename VARCHAR NOT NULL,
                seq INTEGER NOT NULL,
                start_offset INTEGER NOT NULL,
                end_offset INTEGER NOT NULL,
                attributes JSON,
                text VARCHAR NOT NULL,
                embedding FLOAT[{self.dimensions}] NOT NULL,
                project VARCHAR
            )
            """
        )
        # Chunks indexed before projects existed are the server's own project's.
        db.execute(
            "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS project VARCHAR DEFAULT 'proj_default'"
        )
        # The vss extension's HNSW index, which earlier versions built: DuckDB drops it
        # without the extension, and would refuse writes to the table while it is there.
        db.execute("DROP INDEX IF EXISTS chunks_hnsw")
        last = db.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()
        self._next_id = int(last[0]) + 1 if last else 1
        if self.ann_path.exists():
            # Read here (~1 s at 1M chunks) for its largest id; caught up in the background.
            self._saved = AnnIndex(self.ann_path, self.dimensions, self.hnsw)
            self._next_id = max(self._next_id, self._saved.largest() + 1)
        return db

    def _prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Every connection: the extensions (a no-op once the database has them)."""
        for name in EXTENSIONS:
            connection.execute(f"LOAD '{extension_path(name)}'")

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's connection to the index (connections are not shared by threads)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            assert self._db is not None
            cursor = self._db.cursor()
            self._prepare(cursor)
            self._local.cursor = cursor
        return cursor

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        if self._db is None:
            async with self._opening:
                if self._db is None:
                    self._db = await loop.run_in_executor(self._executor, self._open)
                    # A saved graph is caught up, or one is built if the table has grown
                    # past the threshold without it (a crash mid-build, a deleted file).
                    self._schedule_ann()
        return await loop.run_in_executor(self._executor, call, *args)

    def _schedule_ann(self) -> None:
        """Runs `_refresh_ann` in the background, unless it is already running (a build's
        end saves what was written meanwhile)."""
        if self._ann_task is None or self._ann_task.done():
            self._ann_task = asyncio.create_task(self._update_ann(), name="vectors-ann")

    async def _update_ann(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._builder, self._refresh_ann)

    async def close(self) -> None:
        self._closing = True  # a build in progress stops after its current batch
        for task in (self._refresher, self._ann_task):
            if task is not None:
                task.cancel()
        await asyncio.to_thread(self._builder.shutdown, True)
        await asyncio.to_thread(self._executor.shutdown, True)
        if self._ann is not None:
            await asyncio.to_thread(self._ann.save)
        if self._db is not None:
            self._db.close()

    # --- writes -------------------------------------------------------------------------------

    async def add(
        self,
        vector_store_id: str,
        file_id: str,
        filename: str,
        attributes: dict[str, Any] | None,
        chunks: Sequence[Chunk],
        vectors: Array,
        *,
        project: str,
    ) -> None:
        """Replaces the file's chunks in the store with these, recorded as the `project`'s
        (the store's; searches reach chunks only through stores found in a project)."""
        await self._run(
            self._add, vector_store_id, file_id, filename, attributes, chunks, vectors, project
        )
        self._changed()

    def _add(
        self,
        vector_store_id: str,
        file_id: str,
        filename: str,
        attributes: dict[str, Any] | None,
        chunks: Sequence[Chunk],
        vectors: Array,
        project: str,
    ) -> None:
        n = len(chunks)
        with self._write_lock:
            cursor = self._cursor()
            ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
            self._next_id += n
            rows = {  # noqa: F841 (scanned by name below)
                "id": ids,
                "seq": np.arange(n, dtype=np.int32),
                "start_offset": np.array([c.start for c in chunks], dtype=np.int32),
                "end_offset": np.array([c.end for c in chunks], dtype=np.int32),
                "text": np.array([c.text for c in chunks], dtype=object),
            }
            flat = {  # noqa: F841 (scanned by name below)
                "r": np.repeat(ids, self.dimensions),
                "k": np.tile(np.arange(self.dimensions, dtype=np.int16), n),
                "v": np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1),
            }
            cursor.execute("BEGIN")
            try:
                replaced = cursor.execute(
                    "DELETE FROM chunks WHERE vector_store_id = ? AND file_id = ? RETURNING id",
                    [vector_store_id, file_id],
                ).fetchnumpy()["id"]
                if n:
                    cursor.execute(
                        f"""
                        INSERT INTO chunks
                        SELECT rows.id, ?, ?, ?, rows.seq, rows.start_offset, rows.end_offset,
                               ?::JSON, rows.text, vectors.embedding, ?
                        FROM rows JOIN (
                            SELECT r, list(v ORDER BY k)::FLOAT[{self.dimensions}] AS embedding
                            FROM flat GROUP BY r
                        ) AS vectors ON vectors.r = rows.id
                        """,
                        [vector_store_id, file_id, filename, _json(attributes), project],
                    )
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            self._counted_stale()
            self._follow(replaced, ids, vectors)

    def _follow(self, removed: np.ndarray, added: np.ndarray, vectors: Array) -> None:
        """After a committed write, under the write lock: the graph (if there is one yet)
        drops and adds the same chunks. A crash before it is saved is caught up on open."""
        if self._ann is not None:
            self._ann.remove(as_keys(removed))
            self._ann.add(as_keys(added), vectors)

    async def remove(self, vector_store_id: str | None, file_id: str | None) -> None:
        """Drops the chunks of a file in a store, of a store, or of a file everywhere."""
        where, args = _owner(vector_store_id, file_id)

        def run() -> None:
            with self._write_lock:
                sql = f"DELETE FROM chunks WHERE {where} RETURNING id"
                removed = self._cursor().execute(sql, args).fetchnumpy()["id"]
                self._counted_stale()
                self._follow(removed, removed[:0], np.empty((0, self.dimensions), np.float32))

        await self._run(run)
        self._changed()

    async def set_attributes(
        self, vector_store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> None:
        await self._write(
            "UPDATE chunks SET attributes = ?::JSON WHERE vector_store_id = ? AND file_id = ?",
            [_json(attributes), vector_store_id, file_id],
        )

    async def _write(self, sql: str, args: list[Any]) -> None:
        def run() -> None:
            with self._write_lock:
                self._cursor().execute(sql, args)
                self._counted_stale()

        await self._run(run)
        self._changed()

    def _counted_stale(self) -> None:
        """After a committed write: the per-store counts must be read again."""
        self._writes += 1
        self._sizes = None

    def _store_sizes(self, cursor: duckdb.DuckDBPyConnection) -> dict[str, int]:
        sizes = self._sizes
        if sizes is None:
            seen = self._writes
            rows = cursor.execute(
                "SELECT vector_store_id, count(*) FROM chunks GROUP BY vector_store_id"
            ).fetchall()
            sizes = {store: int(n) for store, n in rows}
            if seen == self._writes:  # no write committed meanwhile: the counts hold
                self._sizes = sizes
        return sizes

    def _changed(self) -> None:
        """Schedules the derived indexes' refresh: BM25's snapshot, the graph's build once
        the index is large enough, and the graph's file (all coalesced)."""
        self._fts_dirty = True
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_later(), name="vectors-refresh")

    async def _refresh_later(self) -> None:
        # The graph's part is not awaited: a build can take minutes, and BM25's snapshot
        # must not wait for it.
        await asyncio.sleep(self.fts_delay)
        await self._run(self._refresh_fts)
        self._schedule_ann()

    async def refresh(self) -> None:
        """Brings the derived indexes up to date now."""
        await self._run(self._refresh_fts)
        await self._update_ann()

    async def graph_ready(self) -> None:
        """Opens the index if it is not open, and waits until its graph (if the index is large
        enough for one) is built or caught up with the table: searches are exact until then.
        Unlike `refresh`, BM25's snapshot is left as it is."""
        await self._run(lambda: None)
        await self._update_ann()

    def _refresh_fts(self) -> None:
        """Rebuilds BM25's snapshot if a write made it stale. In a transaction of its own, so
        that it reads one state of the table while writes go on (ingestion used to wait behind
        each rebuild, ~20 s at 1M chunks), and keyword queries read the previous snapshot
        until it commits."""
        with self._fts_rebuild:
            if not self._fts_dirty:
                return
            self._fts_dirty = False  # before its snapshot: a write after that marks it again
            started = time.perf_counter()
            cursor = self._cursor()
            cursor.execute("BEGIN")
            try:
                cursor.execute(
                    "PRAGMA create_fts_index('chunks', 'id', 'text', overwrite = 1, "
                    "stemmer = 'english', stopwords = 'english')"
                )
                rows = cursor.execute(
                    "SELECT chunks.vector_store_id, count(*), sum(docs.len) "
                    "FROM fts_main_chunks.docs AS docs JOIN chunks ON chunks.id = docs.name "
                    "GROUP BY chunks.vector_store_id"
                ).fetchall()
                with self._fts_lock:  # the tables and their statistics change together
                    cursor.execute("COMMIT")
                    self._lengths = {store: (int(n), int(total)) for store, n, total in rows}
            except BaseException:
                cursor.execute("ROLLBACK")
                self._fts_dirty = True
                raise
            self._fts_ready = True
            log.debug("BM25 index rebuilt in %.3f s", time.perf_counter() - started)

    def _refresh_ann(self) -> None:
        """On the builder's thread: the graph caught up and put to use (the one read on open,
        or a new one once the index holds `hnsw_threshold` chunks), then saved if changed."""
        if self._ann is None:
            graph = self._saved
            if graph is None:
                if sum(self._store_sizes(self._cursor()).values()) < self.hnsw_threshold:
                    return
                graph = AnnIndex(self.ann_path, self.dimensions, self.hnsw)
            self._saved = None
            started = time.perf_counter()
            # The bulk of the work without the write lock, so ingestion goes on; then what
            # was written meanwhile, under it, so that no write is missed.
            self._catch_up(graph)
            with self._write_lock:
                self._catch_up(graph)
                if not self._closing:  # else it stopped part-way: saved, finished next time
                    self._ann = graph
            log.info(
                "HNSW graph of %d chunks ready in %.1f s", len(graph), time.perf_counter() - started
            )
            graph.save()
        else:
            self._ann.save()

    def _catch_up(self, graph: AnnIndex) -> None:
        """Makes the graph hold the table's chunks (see `AnnIndex.reconcile`)."""
        cursor = self._cursor()
        ids = cursor.execute("SELECT id FROM chunks").fetchnumpy()["id"]
        added, removed = graph.reconcile(
            as_keys(ids), lambda wanted: self._embeddings(cursor, wanted), lambda: self._closing
        )
        if added or removed:
            log.info("HNSW graph: %d chunks added, %d removed", added, removed)

    def _embeddings(self, cursor: duckdb.DuckDBPyConnection, ids: Keys) -> tuple[Keys, Array]:
        """The chunks among `ids` (sorted) still in the table, and their embeddings. The
        range lets DuckDB skip the row groups outside it (ids grow with insertion order)."""
        found = cursor.execute(
            "SELECT id, embedding FROM chunks WHERE id BETWEEN ? AND ? "
            "AND id IN (SELECT unnest(?::BIGINT[])) ORDER BY id",
            [int(ids[0]), int(ids[-1]), ids.astype(np.int64).tolist()],
        ).fetchnumpy()
        if not len(found["id"]):
            return as_keys(found["id"]), np.empty((0, self.dimensions), np.float32)
        return as_keys(found["id"]), np.stack(list(found["embedding"])).astype(np.float32)

    # --- reads --------------------------------------------------------------------------------

    async def texts(self, vector_store_id: str, file_id: str) -> list[str]:
        """The file's chunks in the store, in order."""
        rows = await self._read(
            "SELECT text FROM chunks WHERE vector_store_id = ? AND file_id = ? ORDER BY seq",
            [vector_store_id, file_id],
        )
        return [row[0] for row in rows]

    async def count(self, vector_store_ids: Sequence[str]) -> int:
        rows = await self._read(
            "SELECT count(*) FROM chunks WHERE list_contains(?, vector_store_id)",
            [list(vector_store_ids)],
        )
        return int(rows[0][0])

    async def _read(self, sql: str, args: list[Any]) -> list[Any]:
        return await self._run(lambda: self._cursor().execute(sql, args).fetchall())

    async def nearest(
        self, vector_store_ids: Sequence[str], where: str, args: list[Any], vector: Array, k: int
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the `k` chunks nearest `vector` that pass `where`."""
        return await self._run(self._nearest, list(vector_store_ids), where, args, vector, k)

    def _nearest(
        self, store_ids: list[str], where: str, args: list[Any], vector: Array, k: int
    ) -> list[tuple[int, float]]:
        cursor = self._cursor()
        scope = f"list_contains(?, vector_store_id) AND ({where})"
        graph = self._ann
        size = self._scope_size(cursor, store_ids) if graph is not None else 0
        if graph is not None and size >= self.hnsw_threshold:
            first = max(k * 10, 100)
            found = _reranked(
                cursor, graph.search(vector, first), scope, [store_ids, *args], vector, k
            )
            if len(found) == k:
                return found
            # Too few passed the filter (or belong to the stores searched): ask once more,
            # as wide as stays cheaper than scanning the stores, if the share that passed
            # promises k this time, and rank what passes.
            widest = min(MAX_PROPOSALS, size // SCAN_RATIO)
            if widest > first and len(found) * widest >= k * first:
                proposed = graph.search(vector, widest)
                passing = _passing(cursor, proposed, scope, [store_ids, *args])
                found = _reranked(cursor, passing, "TRUE", [], vector, k)  # in scope already
                if len(found) == k:
                    return found
        literal = vector_literal(vector)
        rows = cursor.execute(
            f"""
            SELECT id, array_cosine_similarity(embedding, {literal}) AS similarity
            FROM chunks WHERE {scope} ORDER BY similarity DESC LIMIT {k}
            """,
            [store_ids, *args],
        ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def _scope_size(self, cursor: duckdb.DuckDBPyConnection, store_ids: list[str]) -> int:
        """How many chunks the stores hold together."""
        sizes = self._store_sizes(cursor)
        return sum(sizes.get(store, 0) for store in set(store_ids))

    async def keyword(
        self, vector_store_ids: Sequence[str], where: str, args: list[Any], query: str, k: int
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the `k` best keyword matches that pass `where`."""
        if self._fts_dirty or not self._fts_ready:  # what is completed must be found
            await self._run(self._refresh_fts)
        return await self._run(self._keyword, list(vector_store_ids), where, args, query, k)

    def _keyword(
        self, store_ids: list[str], where: str, args: list[Any], query: str, k: int
    ) -> list[tuple[int, float]]:
        # BM25 (k1 = 1.2, b = 0.75) as fts's match_bm25 computes it, but set-based: only the
        # postings of the query's terms are read, where match_bm25 is evaluated once per row
        # of the table (~1 s a query at 100k chunks). Its statistics (documents, their mean
        # length, each term's document frequency) are those of the stores searched, not of
        # the whole index: another store's files must not change how this one's rank.
        sql = f"""
            WITH tokens AS (
                SELECT DISTINCT stem(unnest(fts_main_chunks.tokenize(?)), 'english') AS term
            ),
            postings AS (
                SELECT terms.docid, terms.termid, count(*) AS tf
                FROM fts_main_chunks.terms AS terms
                JOIN fts_main_chunks.dict AS dict ON dict.termid = terms.termid
                JOIN tokens ON tokens.term = dict.term
                JOIN fts_main_chunks.docs AS docs ON docs.docid = terms.docid
                JOIN chunks ON chunks.id = docs.name
                WHERE list_contains(?, chunks.vector_store_id)
                GROUP BY terms.docid, terms.termid
            ),
            frequencies AS (SELECT termid, count(*) AS df FROM postings GROUP BY termid),
            scores AS (
                SELECT docs.name AS id, sum(
                    log((? - frequencies.df + 0.5) / (frequencies.df + 0.5) + 1)
                    * postings.tf * 2.2
                    / (postings.tf + 1.2 * (0.25 + 0.75 * docs.len / ?))
                ) AS score
                FROM postings
                JOIN frequencies ON frequencies.termid = postings.termid
                JOIN fts_main_chunks.docs AS docs ON docs.docid = postings.docid
                GROUP BY docs.name
            )
            SELECT scores.id, scores.score FROM scores JOIN chunks ON chunks.id = scores.id
            WHERE ({where})
            ORDER BY scores.score DESC LIMIT {k}
        """
        with self._fts_lock:  # not while a rebuild commits new tables and statistics
            found = [self._lengths.get(store, (0, 0)) for store in set(store_ids)]
            documents = sum(n for n, _ in found)
            mean_length = sum(total for _, total in found) / max(documents, 1) or 1.0
            rows = (
                self._cursor()
                .execute(sql, [query, store_ids, documents, mean_length, *args])
                .fetchall()
            )
        return [(int(i), float(s)) for i, s in rows]

    async def rows(self, ids: Sequence[int]) -> dict[int, Row]:
        if not ids:
            return {}
        # Inlined integers (ours, not the client's): a key lookup each, not a table scan.
        listed = ", ".join(str(int(i)) for i in ids)
        found = await self._read(
            "SELECT id, vector_store_id, file_id, filename, attributes, text FROM chunks "
            f"WHERE id IN ({listed})",
            [],
        )
        return {
            int(r[0]): Row(int(r[0]), r[1], r[2], r[3], json.loads(r[4]) if r[4] else None, r[5])
            for r in found
        }


def _in_scope(
    cursor: duckdb.DuckDBPyConnection,
    proposed: Keys,
    scope: str,
    args: list[Any],
    *,
    embeddings: bool,
) -> dict[str, Any]:
    """The ids (and `embeddings`, as float32 arrays) of the chunks the graph proposed that
    are in `scope`. SQL only filters them: the ids are inlined (ours, integers), a key lookup
    each. Materialized, so that DuckDB looks the ids up in the key's index before it filters:
    with the scope beside `id IN` it scanned the whole table (0.6 s at 100k chunks)."""
    listed = ", ".join(str(int(i)) for i in proposed)
    embedding = ", embedding" if embeddings else ""
    found: dict[str, Any] = cursor.execute(
        f"""
        WITH proposed AS MATERIALIZED (
            SELECT id, vector_store_id, file_id, attributes{embedding}
            FROM chunks WHERE id IN ({listed})
        )
        SELECT id{embedding} FROM proposed WHERE {scope}
        """,
        args,
    ).fetchnumpy()
    return found


def _passing(
    cursor: duckdb.DuckDBPyConnection, proposed: Keys, scope: str, args: list[Any]
) -> Keys:
    """The graph's proposals that are in `scope`. For a wide ask, reading every proposal's
    embedding cost more than the lookups: only those that pass are read, to be ranked."""
    if not len(proposed):
        return proposed
    return as_keys(_in_scope(cursor, proposed, scope, args, embeddings=False)["id"])


def _reranked(
    cursor: duckdb.DuckDBPyConnection,
    proposed: Keys,
    scope: str,
    args: list[Any],
    vector: Array,
    k: int,
) -> list[tuple[int, float]]:
    """(id, exact cosine similarity) of the `k` chunks (or fewer, if fewer pass) among
    those the graph proposed (all stores) that are in `scope`, most similar first: numpy
    ranks their float32 embeddings (~20 % less CPU than ranking them in SQL with the query
    vector as a literal, at 20k chunks)."""
    if not len(proposed):
        return []
    found = _in_scope(cursor, proposed, scope, args, embeddings=True)
    if not len(found["id"]):
        return []
    embeddings = np.stack(list(found["embedding"])).astype(np.float32)
    norms = np.linalg.norm(embeddings, axis=1) * np.linalg.norm(vector)
    similarity = embeddings @ vector / np.maximum(norms, np.finfo(np.float32).tiny)
    best = np.argsort(-similarity, kind="stable")[:k]
    return [(int(found["id"][i]), float(similarity[i])) for i in best]


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _owner(vector_store_id: str | None, file_id: str | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if vector_store_id is not None:
        clauses.append("vector_store_id = ?")
        args.append(vector_store_id)
    if file_id is not None:
        clauses.append("file_id = ?")
        args.append(file_id)
    if not clauses:
        raise ValueError("remove() needs a store, a file or both")
    return " AND ".join(clauses), args
