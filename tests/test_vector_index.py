"""`ChunkIndex` itself, in-process on a temporary file: the HNSW graph that serves stores above
`hnsw_threshold` (its results against exact search, removals, its file across a restart, and
its catch-up with the table after a crash), with small random vectors; and writes during a
rebuild of BM25's snapshot."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from openresponses.vectors.ann import AnnIndex
from openresponses.vectors.index import Chunk, ChunkIndex

DIMENSIONS = 32
PER_FILE = 20
STORE = "vs_a"
PROJECT = "proj_a"


def vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((n, DIMENSIONS)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)  # type: ignore[no-any-return]


def open_index(path: Path) -> ChunkIndex:
    """An index whose graph is built from 100 chunks; BM25 is never rebuilt in the
    background (these tests do not search by keyword)."""
    return ChunkIndex(path, DIMENSIONS, hnsw_threshold=100, fts_delay=3600)


async def add_files(
    index: ChunkIndex, names: list[str], seed: int, attributes: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Adds a file of PER_FILE chunks per name; returns each file's vectors."""
    added = {}
    for number, name in enumerate(names):
        points = vectors(PER_FILE, seed * 1000 + number)
        chunks = [Chunk(f"{name} {i}", 0, 1) for i in range(PER_FILE)]
        await index.add(STORE, name, f"{name}.txt", attributes, chunks, points, project=PROJECT)
        added[name] = points
    return added


async def nearest_files(index: ChunkIndex, query: np.ndarray, where: str = "TRUE") -> list[str]:
    """The files of the 10 chunks nearest `query`, best first."""
    found = await index.nearest([STORE], where, [], query, 10)
    rows = await index.rows([i for i, _ in found])
    return [rows[i].text for i, _ in found]


def exact_texts(files: dict[str, np.ndarray], query: np.ndarray) -> list[str]:
    """The texts of the true 10 nearest chunks, by numpy."""
    texts = [f"{name} {i}" for name, points in files.items() for i in range(len(points))]
    similarity = np.concatenate(list(files.values())) @ query
    return [texts[i] for i in np.argsort(-similarity)[:10]]


async def assert_graph_search_is_exact_and_saved(
    index: ChunkIndex, files: dict[str, np.ndarray], queries: np.ndarray, searches: list[int]
) -> None:
    """Every query went through the graph and found the exact top files; closing the index
    saved a graph that holds every chunk."""
    found = [await nearest_files(index, query) for query in queries]
    await index.close()

    assert len(searches) == len(queries)
    assert found == [exact_texts(files, query) for query in queries]
    saved = AnnIndex(index.ann_path, DIMENSIONS, index.hnsw)
    assert len(saved) == sum(len(points) for points in files.values())


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the graph's searches, to tell them from exact ones."""
    calls: list[int] = []
    search = AnnIndex.search

    def counted(self: AnnIndex, vector: np.ndarray, count: int) -> np.ndarray:
        calls.append(count)
        return search(self, vector, count)

    monkeypatch.setattr(AnnIndex, "search", counted)
    yield calls


def test_above_the_threshold_search_goes_through_the_graph_and_finds_the_true_top_10(
    tmp_path: Path, searches: list[int]
) -> None:
    async def run() -> None:
        index = open_index(tmp_path / "vectors.duckdb")
        first = await add_files(index, [f"f{n}" for n in range(4)], seed=1)
        await index.refresh()
        below = await nearest_files(index, vectors(1, 99)[0])  # 80 chunks: exact
        assert searches == []
        files = first | await add_files(index, [f"g{n}" for n in range(4)], seed=2)
        await index.refresh()
        queries = vectors(20, 7)
        found = [await nearest_files(index, query) for query in queries]
        await index.close()

        assert below == exact_texts(first, vectors(1, 99)[0])
        assert len(searches) == 20
        assert found == [exact_texts(files, query) for query in queries]
        assert index.ann_path.stat().st_size > 0

    asyncio.run(run())


def test_removed_and_replaced_chunks_leave_the_graph(tmp_path: Path, searches: list[int]) -> None:
    async def run() -> None:
        index = open_index(tmp_path / "vectors.duckdb")
        files = await add_files(index, [f"f{n}" for n in range(8)], seed=1)
        await index.refresh()
        await index.remove(STORE, "f3")
        replaced = await add_files(index, ["f5"], seed=3)  # the same file, new chunks
        files = {name: points for name, points in files.items() if name != "f3"} | replaced
        queries = np.concatenate([files["f5"][:5], vectors(10, 8)])
        await assert_graph_search_is_exact_and_saved(index, files, queries, searches)

    asyncio.run(run())


def test_a_filter_that_leaves_too_few_candidates_falls_back_to_exact_search(
    tmp_path: Path, searches: list[int]
) -> None:
    async def run() -> None:
        index = open_index(tmp_path / "vectors.duckdb")
        await add_files(index, [f"f{n}" for n in range(20)], seed=1)
        kept = await add_files(index, ["kept"], seed=2, attributes={"g": 1})
        await index.refresh()
        # Far from the kept file: fewer than 10 of its chunks are among the graph's 100.
        query = -kept["kept"].mean(axis=0)
        where = "coalesce(TRY_CAST(json_extract(attributes, '$.g') AS DOUBLE) = 1, FALSE)"
        found = await nearest_files(index, query, where)
        await index.close()

        assert searches == [100]  # asked once: a wider ask would cost more than a scan
        assert found == exact_texts(kept, query)

    asyncio.run(run())


def test_a_filter_that_leaves_too_few_candidates_widens_the_graph_search(
    tmp_path: Path, searches: list[int]
) -> None:
    """6 % of 51,100 chunks pass the filter: ~6 of the graph's first 100 proposals, ~24 of
    the 399 (1/128 of the store) it is asked for next, among them the true top 10."""

    async def run() -> None:
        index = open_index(tmp_path / "vectors.duckdb")
        for number in range(4):
            crowd = vectors(12_000, 50 + number)
            chunks = [Chunk(f"crowd{number} {i}", 0, 1) for i in range(12_000)]
            await index.add(
                STORE, f"crowd{number}", "crowd.txt", None, chunks, crowd, project=PROJECT
            )
        kept_points = vectors(3100, 60)
        chunks = [Chunk(f"kept {i}", 0, 1) for i in range(3100)]
        await index.add(STORE, "kept", "kept.txt", {"g": 1}, chunks, kept_points, project=PROJECT)
        await index.refresh()
        query = vectors(1, 61)[0]
        where = "coalesce(TRY_CAST(json_extract(attributes, '$.g') AS DOUBLE) = 1, FALSE)"
        found = await nearest_files(index, query, where)
        await index.close()

        assert searches == [100, 399]
        assert found == exact_texts({"kept": kept_points}, query)

    asyncio.run(run())


def test_the_graph_is_read_back_after_a_restart_not_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> None:
        path = tmp_path / "vectors.duckdb"
        index = open_index(path)
        files = await add_files(index, [f"f{n}" for n in range(6)], seed=1)
        await index.refresh()
        files |= await add_files(index, ["late"], seed=2)  # saved by close, not by a refresh
        await index.close()

        added: list[int] = []
        add = AnnIndex.add

        def counted(self: AnnIndex, ids: np.ndarray, points: np.ndarray, **options: int) -> None:
            added.append(len(ids))
            add(self, ids, points, **options)

        monkeypatch.setattr(AnnIndex, "add", counted)
        reopened = open_index(path)
        queries = vectors(10, 7)
        await reopened.refresh()
        found = [await nearest_files(reopened, query) for query in queries]
        await reopened.close()

        assert sum(added) == 0
        assert found == [exact_texts(files, query) for query in queries]

    asyncio.run(run())


def test_after_a_crash_the_saved_graph_catches_up_with_the_table(
    tmp_path: Path, searches: list[int]
) -> None:
    """The graph's file is older than the table (as after a crash between a commit and the
    next save): on open, chunks deleted since leave it and chunks added since join it."""

    async def run() -> None:
        path = tmp_path / "vectors.duckdb"
        index = open_index(path)
        files = await add_files(index, [f"f{n}" for n in range(6)], seed=1)
        await index.refresh()
        stale = tmp_path / "stale.usearch"
        shutil.copy(index.ann_path, stale)
        await index.remove(STORE, "f5")
        files |= await add_files(index, ["late"], seed=2)
        del files["f5"]
        await index.close()
        shutil.copy(stale, index.ann_path)

        reopened = open_index(path)
        await reopened.refresh()
        files |= await add_files(reopened, ["after"], seed=3)
        removed = vectors(PER_FILE, 1005)  # f5's
        queries = np.concatenate([removed[:5], files["after"][:5], vectors(10, 9)])
        await assert_graph_search_is_exact_and_saved(reopened, files, queries, searches)

    asyncio.run(run())


def test_after_a_crash_new_chunks_do_not_reuse_ids_the_saved_graph_holds(
    tmp_path: Path, searches: list[int]
) -> None:
    """The last file's chunks were deleted, but the graph's file still holds their ids: new
    chunks get ids past them, so the graph never takes a new chunk for a deleted one."""

    async def run() -> None:
        path = tmp_path / "vectors.duckdb"
        index = open_index(path)
        files = await add_files(index, [f"f{n}" for n in range(6)], seed=1)
        await index.refresh()
        stale = tmp_path / "stale.usearch"
        shutil.copy(index.ann_path, stale)
        last = await index.nearest([STORE], "file_id = 'f5'", [], files["f5"][0], 1000)
        largest = max(i for i, _ in last)
        await index.remove(STORE, "f5")
        del files["f5"]
        await index.close()
        shutil.copy(stale, index.ann_path)

        reopened = open_index(path)
        files |= await add_files(reopened, ["after"], seed=3)
        after = await reopened.nearest([STORE], "file_id = 'after'", [], files["after"][0], 1000)
        await reopened.refresh()
        queries = np.concatenate([files["after"][:5], vectors(10, 9)])
        found = [await nearest_files(reopened, query) for query in queries]
        await reopened.close()

        assert min(i for i, _ in after) > largest
        assert found == [exact_texts(files, query) for query in queries]

    asyncio.run(run())


def test_writes_go_on_while_bm25s_snapshot_is_rebuilt(tmp_path: Path) -> None:
    """The rebuild is held at its commit (by holding the lock it commits under): a write
    still completes meanwhile, and the next keyword search finds what it wrote."""

    async def run() -> None:
        index = open_index(tmp_path / "vectors.duckdb")
        await add_files(index, ["apple"], seed=1)
        index._fts_lock.acquire()
        try:
            rebuild = asyncio.create_task(index.refresh())
            await asyncio.sleep(1)  # the rebuild has its snapshot and waits to commit
            await asyncio.wait_for(add_files(index, ["zebra"], seed=2), timeout=30)
            assert not rebuild.done()
        finally:
            index._fts_lock.release()
        await rebuild
        found = await index.keyword([STORE], "TRUE", [], "zebra", 5)
        rows = await index.rows([i for i, _ in found])
        await index.close()

        assert len(rows) == 5
        assert {row.file_id for row in rows.values()} == {"zebra"}

    asyncio.run(run())


def test_chunks_record_their_project_and_older_ones_the_servers_own(tmp_path: Path) -> None:
    path = tmp_path / "vectors.duckdb"
    before = duckdb.connect(str(path))  # a chunk table as it was before projects
    before.execute(
        f"""CREATE TABLE chunks (id BIGINT PRIMARY KEY, vector_store_id VARCHAR NOT NULL,
        file_id VARCHAR NOT NULL, filename VARCHAR NOT NULL, seq INTEGER NOT NULL,
        start_offset INTEGER NOT NULL, end_offset INTEGER NOT NULL, attributes JSON,
        text VARCHAR NOT NULL, embedding FLOAT[{DIMENSIONS}] NOT NULL)"""
    )
    before.execute(
        "INSERT INTO chunks VALUES (1, 'vs_old', 'file-old', 'old.txt', 0, 0, 1, NULL, 'old', ?)",
        [vectors(1, 3)[0].tolist()],
    )
    before.close()

    async def run() -> list[tuple[str, str]]:
        index = open_index(path)
        await add_files(index, ["new"], seed=4)
        await index.close()
        with duckdb.connect(str(path)) as after:
            rows = after.execute("SELECT DISTINCT file_id, project FROM chunks ORDER BY 1")
            return [(str(file_id), str(project)) for file_id, project in rows.fetchall()]

    assert asyncio.run(run()) == [("file-old", "proj_default"), ("new", PROJECT)]
