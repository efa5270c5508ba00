"""The approximate nearest-neighbour index over the chunks' vectors: a usearch HNSW graph in
a file beside the chunk index (`vectors.usearch` beside `vectors.duckdb`), keyed by chunk id.

DuckDB's `chunks` table stays the source of truth (text, attributes and the float32
`embedding` exact search and re-ranking read); this graph only proposes candidates, and can
always be rebuilt from the table. Why usearch's own package and not DuckDB's vss extension,
which wraps the same library (docs/benchmarks.md, "Approximate search at 1M chunks"): the
vss wheel's usearch is compiled without SIMD, so an HNSW build ran at 270 to 600 vectors/s
here and a 1M-chunk graph dense enough for recall took hours; the `usearch` wheel dispatches
to AVX2/FMA kernels (numkong) at run time, and adds from several threads.

Vectors are stored quantized to int8 (a quarter of float32's memory, and faster distances):
the candidates' order is approximate, so `ChunkIndex` re-ranks them exactly against the
table's float32 embeddings; asking for 10 times the results makes up for the quantization.

Thread safety: usearch may grow its storage during `add`, which a concurrent search must not
see, so mutations and searches share one lock; saving only reads the graph, so it runs beside
searches and shares a second lock with mutations only.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from usearch.index import Index

log = logging.getLogger("openresponses.vectors")

ANN_SUFFIX = ".usearch"

BATCH = 10_000
"""Vectors added per call in a bulk add: `stop` is checked between calls, so closing the
server waits for one batch (seconds), not for a whole build."""


@dataclass(frozen=True)
class HnswParams:
    """The HNSW graph's parameters, chosen with `bench/vectors.py search` at 100k and 1M
    chunks (docs/benchmarks.md)."""

    m: int = 32
    """Links per node (the bottom layer has twice as many). At 1M chunks, where topics of a
    few dozen chunks form islands, M 24 with ef_construction 128 found 0.90 of the true top
    10 at ef_search 512 and 0.95 only at 2048; M 32 with 256 finds 0.96 at ef_search 256 and
    0.98 at 512, for 2.6 times the build's CPU (~2.8 ms a chunk, against ~180 ms to embed
    it: docs/benchmarks.md, "A denser graph at 1M")."""
    ef_construction: int = 256
    """Candidates considered when linking a new node: build time grows with it."""
    ef_search: int = 384
    """Candidates kept while searching: recall and latency grow with it (at 1M chunks,
    through `ChunkIndex`: 0.960 at 256 in 9.6 ms p50, 0.981 at 384 in 12.5 ms, 0.984 at 512
    in 16.3 ms). A query setting, so a graph built with other values still searches with
    this one. `ChunkIndex` asks for 10 times the results wanted (at least 100), and usearch
    keeps at least that many candidates whatever ef_search says."""
    quantization: str = "i8"
    """How usearch stores vectors ("i8", "f16" or "f32"); candidates are re-ranked exactly."""

    @classmethod
    def with_ef_search(cls, ef_search: int | None) -> HnswParams:
        """The defaults, with this search width if one is configured."""
        return cls() if ef_search is None else cls(ef_search=ef_search)


SEQUENTIAL_BELOW = 1000
"""How many nodes a graph gets one at a time before inserts may run in parallel."""

Keys = np.ndarray
"""Chunk ids as usearch takes and gives them (uint64)."""


def as_keys(ids: npt.ArrayLike) -> Keys:
    return np.asarray(ids, dtype=np.uint64)


class AnnIndex:
    """One HNSW graph over chunk ids, loaded from or saved to `path`."""

    def __init__(self, path: Path, dimensions: int, params: HnswParams) -> None:
        self.path = path
        self.dimensions = dimensions
        self.params = params
        self.dirty = False
        """Changed since it was last saved (or loaded)."""
        self._graph = self._load() or self._new()
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()

    def _new(self) -> Index:
        return Index(
            ndim=self.dimensions,
            metric="cos",
            dtype=self.params.quantization,
            connectivity=self.params.m,
            expansion_add=self.params.ef_construction,
            expansion_search=self.params.ef_search,
        )

    def _load(self) -> Index | None:
        """The saved graph, if there is one for vectors of this size. One that cannot be read
        (a torn write can only leave the temporary file, but a disk can fail) is rebuilt: it
        holds nothing the table does not."""
        if not self.path.exists():
            return None
        try:
            # Its own quantization and links, as it was built; this search width.
            graph = Index.restore(str(self.path), expansion_search=self.params.ef_search)
        except (RuntimeError, ValueError, OSError) as error:
            log.warning("ignoring unreadable %s (%s): rebuilding it", self.path, error)
            return None
        if graph is None or graph.ndim != self.dimensions:
            log.warning(
                "ignoring %s (not %d-dimensional): rebuilding it", self.path, self.dimensions
            )
            return None
        return graph

    def __len__(self) -> int:
        return len(self._graph)

    def largest(self) -> int:
        """The largest chunk id in the graph (0 if none): new ids must be past it."""
        keys = self.keys()
        return int(keys.max()) if len(keys) else 0

    def keys(self) -> Keys:
        """Every chunk id in the graph, in no order."""
        with self._lock:
            return as_keys(self._graph.keys[:])

    def search(self, vector: np.ndarray, count: int) -> Keys:
        """The ids of (about) the `count` chunks nearest `vector`, nearest first."""
        with self._lock:
            found = self._graph.search(vector, count, threads=1)
        return as_keys(found.keys)

    def add(self, ids: Keys, vectors: np.ndarray, *, threads: int = 1) -> None:
        """Indexes new chunks (ids not in the graph: ids are never reused). The graph's first
        `SEQUENTIAL_BELOW` nodes go in one thread whatever `threads` says: inserted
        concurrently into a near-empty graph, some were left poorly linked (160 chunks from
        two threads: 1 query in 22 missed a true top-10 chunk among 100 proposals; from one
        thread, none; at 5,000 chunks the two are alike)."""
        if len(ids):
            with self._save_lock, self._lock:
                first = max(0, min(len(ids), SEQUENTIAL_BELOW - len(self._graph)))
                if first:
                    self._graph.add(ids[:first], vectors[:first], threads=1)
                if len(ids) > first:
                    self._graph.add(ids[first:], vectors[first:], threads=threads)
                self.dirty = True

    def remove(self, ids: Keys) -> None:
        if len(ids):
            with self._save_lock, self._lock:
                self._graph.remove(ids)
                self.dirty = True

    def reconcile(
        self,
        ids: Keys,
        vectors: Callable[[Keys], tuple[Keys, np.ndarray]],
        stop: Callable[[], bool],
    ) -> tuple[int, int]:
        """Makes the graph hold the chunks `ids`: drops the others, adds the missing ones
        (in batches, from all cores: this is how a graph is built in bulk, or catches up after
        a crash between the table's commit and the graph's save). `vectors(sorted ids)` gives
        those of them that still exist, with their vectors. Returns (added, removed); stops
        between batches once `stop()` is true."""
        present = self.keys()
        extra = np.setdiff1d(present, ids)
        self.remove(extra)
        missing = np.setdiff1d(ids, present)
        added = 0
        for first in range(0, len(missing), BATCH):
            if stop():
                break
            found, found_vectors = vectors(missing[first : first + BATCH])
            self.add(found, found_vectors, threads=os.cpu_count() or 1)
            added += len(found)
        return added, len(extra)

    def save(self) -> None:
        """Writes the graph to a temporary file, then renames it over the last one: a crash
        mid-write leaves the previous graph, which `reconcile` brings up to date."""
        with self._save_lock:
            if not self.dirty:
                return
            partial = self.path.with_name(self.path.name + ".tmp")
            self._graph.save(str(partial))
            with partial.open("rb") as written:  # on disk before it replaces the last one
                os.fsync(written.fileno())
            os.replace(partial, self.path)
            self.dirty = False
