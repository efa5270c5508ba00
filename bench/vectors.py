"""Vector store benchmarks: embedding speed, ingestion throughput, search latency and the
recall of the HNSW index against exact search. Figures go to docs/benchmarks.md.

    python bench/vectors.py embed                  # sentences/s of the local model
    python bench/vectors.py ingest --docs 40       # chunks/s: chunk, embed, index
    python bench/vectors.py search --chunks 100000 # p50/p99 exact and HNSW, recall@10

Search runs on synthetic chunks: clustered unit vectors (1,000 centres plus noise, closer to
real embeddings than uniform noise, which no approximate index handles well) with texts of
made-up words drawn with Zipf frequencies from a 20,000-word vocabulary. Everything runs
in-process against the real classes, in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from openresponses.core import tokens
from openresponses.vectors import chunking
from openresponses.vectors.embedders import LocalMiniLM
from openresponses.vectors.index import Chunk, ChunkIndex
from openresponses.vectors.search import Searcher


def vocabulary(size: int = 20_000, seed: int = 0) -> list[str]:
    """Made-up words, so that keyword search sees a realistic number of distinct terms."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)]


WORDS = vocabulary()
# Zipf-like frequencies, as in natural language: a few words are everywhere, most are rare.
WEIGHTS = [1.0 / (rank + 1) for rank in range(len(WORDS))]


def sentences(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, WEIGHTS, k=rng.randint(8, 20))) for _ in range(n)]


async def embed(args: argparse.Namespace) -> None:
    model = LocalMiniLM()
    texts = sentences(args.sentences)
    await model.embed(texts[:8])  # load and warm up
    started = time.perf_counter()
    await model.embed(texts)
    seconds = time.perf_counter() - started
    print(f"local all-MiniLM-L6-v2 (numpy): {len(texts) / seconds:.0f} sentences/s")


async def ingest(args: argparse.Namespace, work: Path) -> None:
    tokens.seed_cache(work / "tiktoken")
    model = LocalMiniLM()
    await model.embed(["warm up"])
    index = ChunkIndex(work / "ingest.duckdb", model.dimensions)
    rng = random.Random(2)
    documents = [" ".join(rng.choices(WORDS, WEIGHTS, k=args.words)) for _ in range(args.docs)]
    strategy = chunking.strategy(None)
    timings = {"chunk": 0.0, "embed": 0.0, "index": 0.0}
    total = 0
    for number, text in enumerate(documents):
        started = time.perf_counter()
        chunks = await asyncio.to_thread(chunking.chunk, text, strategy)
        chunked = time.perf_counter()
        vectors = (await model.embed([c.text for c in chunks])).vectors
        embedded = time.perf_counter()
        await index.add("vs_bench", f"file-{number}", "doc.txt", None, chunks, vectors)
        timings["chunk"] += chunked - started
        timings["embed"] += embedded - chunked
        timings["index"] += time.perf_counter() - embedded
        total += len(chunks)
    seconds = sum(timings.values())
    print(f"{args.docs} documents of {args.words} words: {total} chunks (800/400 tokens)")
    print(
        f"ingest: {total / seconds:.1f} chunks/s in all; "
        + ", ".join(f"{name} {value / seconds:.0%}" for name, value in timings.items())
    )
    await index.close()


def clustered(n: int, dimensions: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dimensions)).astype(np.float32)
    points = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, dimensions))
    points = points.astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)  # type: ignore[no-any-return]


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


async def search(args: argparse.Namespace, work: Path) -> None:
    n, dimensions = args.chunks, 384
    index = ChunkIndex(work / "search.duckdb", dimensions, hnsw_threshold=10**12)
    vectors = clustered(n, dimensions, seed=3)
    texts = sentences(n, seed=4)
    started = time.perf_counter()
    batch = 10_000
    for first in range(0, n, batch):
        part = range(first, min(n, first + batch))
        chunks = [Chunk(texts[i], 0, len(texts[i])) for i in part]
        await index.add(
            "vs_bench", f"file-{first}", "bench.txt", None, chunks, vectors[part.start : part.stop]
        )
    print(f"{n} chunks inserted in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    await index.refresh()
    print(f"BM25 index built in {time.perf_counter() - started:.1f} s")

    queries = clustered(args.queries, dimensions, seed=5)
    exact, exact_times = [], []
    for query in queries:
        started = time.perf_counter()
        exact.append({i for i, _ in await index.nearest(["vs_bench"], "TRUE", [], query, 10)})
        exact_times.append(time.perf_counter() - started)
    print(f"exact top-10: {percentiles(exact_times)}")

    model = LocalMiniLM()
    searcher = Searcher(index, model)
    await model.embed(["warm up"])
    hybrid_times = []
    for text in sentences(args.queries, seed=6):
        started = time.perf_counter()
        await searcher.search(["vs_bench"], text, max_num_results=10)
        hybrid_times.append(time.perf_counter() - started)
    print(f"hybrid search (embed query, vector + BM25, fuse): {percentiles(hybrid_times)}")

    if args.no_hnsw:
        await index.close()
        return
    index.hnsw_threshold = 0
    started = time.perf_counter()
    await index.refresh()
    print(f"HNSW index built in {time.perf_counter() - started:.1f} s")
    approximate_times, recalls = [], []
    for query, truth in zip(queries, exact, strict=True):
        started = time.perf_counter()
        found = {i for i, _ in await index.nearest(["vs_bench"], "TRUE", [], query, 10)}
        approximate_times.append(time.perf_counter() - started)
        recalls.append(len(found & truth) / 10)
    print(
        f"HNSW top-10: {percentiles(approximate_times)}; recall@10 {statistics.mean(recalls):.3f}"
    )
    await index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("embed")
    one.add_argument("--sentences", type=int, default=512)
    two = sub.add_parser("ingest")
    two.add_argument("--docs", type=int, default=40)
    two.add_argument("--words", type=int, default=3000)
    three = sub.add_parser("search")
    three.add_argument("--chunks", type=int, default=100_000)
    three.add_argument("--queries", type=int, default=200)
    three.add_argument("--no-hnsw", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.command == "embed":
            asyncio.run(embed(args))
        elif args.command == "ingest":
            asyncio.run(ingest(args, work))
        else:
            asyncio.run(search(args, work))


if __name__ == "__main__":
    main()
