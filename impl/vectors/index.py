"""The chunk index: chunk text, offsets, attributes and vectors in a DuckDB file of its own
(`<data dir>/vectors.duckdb`), searched by cosine similarity (vss) and BM25 (fts).

A file of its own, whatever database holds the rest: the index loads two extensions and turns
on the vss extension's experimental HNSW persistence, neither of which the responses'
database should depend on; and with PostgreSQL as the store, vectors still live here (a
pgvector `ChunkIndex` can follow: `search.py` only speaks this class's methods).

Facts measured on this machine that shape it (docs/benchmarks.md):

* The extensions come from the `duckdb-extension-vss` / `-fts` packages, whose `__init__` is
  empty: their files are LOADed by path on every connection, with automatic extension
  installation and loading off, so nothing is ever downloaded.
* Exact search (`array_cosine_similarity` over every candidate row) is what runs by default:
  it honours any filter exactly and costs 1 to 3 ms per 1,000 chunks searched. An HNSW
  index is built only once the index holds `hnsw_threshold` chunks (a bulk build; an HNSW
  build costs minutes per 100k vectors) and is used for stores that large; the rows it
  proposes are then filtered in SQL, falling back to exact search when too few survive.
* The query vector is inlined as a constant (vss's optimizer only rewrites a top-k over a
  constant into an index scan; bound as a parameter it made the search ~9 times slower), and
  as one string cast to the array type: a list of 384 numeric literals took ~5 ms more per
  query to bind.
* BM25's index is a snapshot (fts has no incremental update), rebuilt `fts_delay` seconds
  after writes (coalesced), or by the first keyword search that finds it stale, so a file
  reported `completed` is found by keyword too. Keyword queries wait while it is rebuilt (it
  drops and recreates the tables they read): ~1 s per 20k chunks.
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

from openresponses.vectors.minilm import Array

log = logging.getLogger("openresponses.vectors")

T = TypeVar("T")

VECTORS_FILE = "vectors.duckdb"
EXTENSIONS = ("vss", "fts")
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


@dataclass(frozen=True)
class HnswParams:
    """The HNSW index's parameters (usearch's, as the vss extension passes them on).

    vss's own defaults, kept after `bench/vectors.py search` (docs/benchmarks.md): at 100k
    chunks shaped like real embeddings they find 0.985 of the true top 10 in ~13 ms. At 1M
    recall falls to ~0.5 (built with ef_construction 64, the most this machine could build
    in the time it had); a denser graph costs build time, slow here because the vss wheel's
    distance kernel has no SIMD.
    """

    m: int = 16
    """Links per node (the bottom layer has twice as many)."""
    ef_construction: int = 128
    """Candidates considered when linking a new node: build time grows with it."""
    ef_search: int = 64
    """Candidates kept while searching: recall and latency grow with it. A query setting, so
    an index built with other values still searches with this one. `nearest` asks the index
    for 10 times the results wanted (at least 100), and usearch keeps at least that many
    candidates whatever ef_search says."""

    @classmethod
    def with_ef_search(cls, ef_search: int | None) -> HnswParams:
        """The defaults, with this search width if one is configured."""
        return cls() if ef_search is None else cls(ef_search=ef_search)


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
        self._hnsw = False
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
        # The BM25 rebuild drops and recreates the tables keyword queries read.
        self._fts_lock = threading.Lock()
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="vectors")
        self._refresher: asyncio.Task[None] | None = None

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
                embedding FLOAT[{self.dimensions}] NOT NULL
            )
            """
        )
        last = db.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()
        self._next_id = int(last[0]) + 1 if last else 1
        indexes = "SELECT count(*) FROM duckdb_indexes() WHERE index_name = 'chunks_hnsw'"
        found = db.execute(indexes).fetchone()
        self._hnsw = bool(found and found[0])
        return db

    def _prepare(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Every connection: the extensions (a no-op once the database has them), the HNSW
        persistence switch and the search width, which are settings of the connection."""
        for name in EXTENSIONS:
            connection.execute(f"LOAD '{extension_path(name)}'")
        connection.execute("SET hnsw_enable_experimental_persistence = true")
        connection.execute(f"SET hnsw_ef_search = {int(self.hnsw.ef_search)}")

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
        return await loop.run_in_executor(self._executor, call, *args)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        await asyncio.to_thread(self._executor.shutdown, True)
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
    ) -> None:
        """Replaces the file's chunks in the store with these."""
        await self._run(self._add, vector_store_id, file_id, filename, attributes, chunks, vectors)
        self._changed()

    def _add(
        self,
        vector_store_id: str,
        file_id: str,
        filename: str,
        attributes: dict[str, Any] | None,
        chunks: Sequence[Chunk],
        vectors: Array,
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
                cursor.execute(
                    "DELETE FROM chunks WHERE vector_store_id = ? AND file_id = ?",
                    [vector_store_id, file_id],
                )
                if n:
                    cursor.execute(
                        f"""
                        INSERT INTO chunks
                        SELECT rows.id, ?, ?, ?, rows.seq, rows.start_offset, rows.end_offset,
                               ?::JSON, rows.text, vectors.embedding
                        FROM rows JOIN (
                            SELECT r, list(v ORDER BY k)::FLOAT[{self.dimensions}] AS embedding
                            FROM flat GROUP BY r
                        ) AS vectors ON vectors.r = rows.id
                        """,
                        [vector_store_id, file_id, filename, _json(attributes)],
                    )
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            self._counted_stale()

    async def remove(self, vector_store_id: str | None, file_id: str | None) -> None:
        """Drops the chunks of a file in a store, of a store, or of a file everywhere."""
        where, args = _owner(vector_store_id, file_id)
        await self._write(f"DELETE FROM chunks WHERE {where}", args)

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
        """Schedules the BM25 snapshot's rebuild (and the HNSW build, once large enough)."""
        self._fts_dirty = True
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_later(), name="vectors-refresh")

    async def _refresh_later(self) -> None:
        await asyncio.sleep(self.fts_delay)
        await self.refresh()

    async def refresh(self) -> None:
        """Brings the derived indexes up to date now."""
        await self._run(self._refresh)

    def _refresh(self) -> None:
        with self._write_lock:
            cursor = self._cursor()
            if self._fts_dirty:
                self._fts_dirty = False
                started = time.perf_counter()
                with self._fts_lock:
                    cursor.execute(
                        "PRAGMA create_fts_index('chunks', 'id', 'text', overwrite = 1, "
                        "stemmer = 'english', stopwords = 'english')"
                    )
                    rows = cursor.execute(
                        "SELECT chunks.vector_store_id, count(*), sum(docs.len) "
                        "FROM fts_main_chunks.docs AS docs JOIN chunks ON chunks.id = docs.name "
                        "GROUP BY chunks.vector_store_id"
                    ).fetchall()
                    self._lengths = {store: (int(n), int(total)) for store, n, total in rows}
                self._fts_ready = True
                log.debug("BM25 index rebuilt in %.3f s", time.perf_counter() - started)
            if not self._hnsw:
                count = sum(self._store_sizes(cursor).values())
                if count >= self.hnsw_threshold:
                    started = time.perf_counter()
                    cursor.execute(
                        "CREATE INDEX chunks_hnsw ON chunks USING HNSW (embedding) WITH "
                        f"(metric = 'cosine', m = {int(self.hnsw.m)}, "
                        f"ef_construction = {int(self.hnsw.ef_construction)})"
                    )
                    self._hnsw = True
                    log.info(
                        "HNSW index built over %d chunks in %.1f s",
                        count,
                        time.perf_counter() - started,
                    )

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
        literal = vector_literal(vector)
        scope = f"list_contains(?, vector_store_id) AND ({where})"
        if self._hnsw and self._large(cursor, store_ids):
            # The index proposes neighbours over all stores; SQL keeps the ones that qualify.
            proposed = cursor.execute(
                f"""
                SELECT id, 1 - distance FROM (
                    SELECT id, vector_store_id, attributes,
                           array_cosine_distance(embedding, {literal}) AS distance
                    FROM chunks ORDER BY distance LIMIT {max(k * 10, 100)}
                ) WHERE {scope} ORDER BY distance LIMIT {k}
                """,
                [store_ids, *args],
            ).fetchall()
            if len(proposed) == k:
                return [(int(i), float(s)) for i, s in proposed]
        rows = cursor.execute(
            f"""
            SELECT id, array_cosine_similarity(embedding, {literal}) AS similarity
            FROM chunks WHERE {scope} ORDER BY similarity DESC LIMIT {k}
            """,
            [store_ids, *args],
        ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def _large(self, cursor: duckdb.DuckDBPyConnection, store_ids: list[str]) -> bool:
        sizes = self._store_sizes(cursor)
        return sum(sizes.get(store, 0) for store in set(store_ids)) >= self.hnsw_threshold

    async def keyword(
        self, vector_store_ids: Sequence[str], where: str, args: list[Any], query: str, k: int
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the `k` best keyword matches that pass `where`."""
        if self._fts_dirty or not self._fts_ready:  # what is completed must be found
            await self.refresh()
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
        with self._fts_lock:  # not while the rebuild replaces these tables
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
