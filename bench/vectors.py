"""Vector store benchmarks: embedding speed, ingestion throughput, search latency and the
recall of the HNSW index against exact search. Figures go to docs/benchmarks.md.

    python bench/vectors.py embed                  # sentences/s of the local model
    python bench/vectors.py ingest --docs 40       # chunks/s: chunk, embed, index
    python bench/vectors.py search --chunks 100000 # p50/p99 exact and HNSW, recall@10, memory
    python bench/vectors.py calibrate              # real embeddings beside the generators

Search runs on synthetic chunks, with texts of made-up words drawn with Zipf frequencies from
a 20,000-word vocabulary, and vectors of one of two generators (`--data`): `spectral`, shaped
like real sentence embeddings and queried about its own topics, or `clustered`, the first
one, whose queries are unrelated to the corpus (see `spectral` and `clustered` below).
Recall is measured against the true top 10, computed with numpy. Everything runs in-process
against the real classes, in a temporary directory.

    python bench/vectors.py search --chunks 100000 --ef-search 64,128,256 --m 16

Run it under `nice -n 19` on a shared machine: the graph's build uses every core. Times are
wall-clock; the build also reports its CPU seconds, which other load on the machine changes
less.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import itertools
import os
import random
import resource
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from openresponses import tokens
from openresponses.vectors import chunking
from openresponses.vectors.ann import HnswParams
from openresponses.vectors.embedders import LocalMiniLM
from openresponses.vectors.index import Chunk, ChunkIndex
from openresponses.vectors.minilm import Array
from openresponses.vectors.search import Searcher


def vocabulary(size: int = 20_000, seed: int = 0) -> list[str]:
    """Made-up words, so that keyword search sees a realistic number of distinct terms."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)]


WORDS = vocabulary()
# Zipf-like frequencies, as in natural language: a few words are everywhere, most are rare.
# Cumulated once: `random.choices` given plain weights sums all 20,000 on every call, which
# took minutes for a million sentences.
CUMULATIVE = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(WORDS))))


def sentences(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choices(WORDS, cum_weights=CUMULATIVE, k=rng.randint(8, 20))) for _ in range(n)
    ]


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
    documents = [
        " ".join(rng.choices(WORDS, cum_weights=CUMULATIVE, k=args.words)) for _ in range(args.docs)
    ]
    strategy = chunking.strategy(None)
    timings = {"chunk": 0.0, "embed": 0.0, "index": 0.0}
    total = 0
    for number, text in enumerate(documents):
        started = time.perf_counter()
        chunks = await asyncio.to_thread(chunking.chunk, text, strategy)
        chunked = time.perf_counter()
        vectors = (await model.embed([c.text for c in chunks])).vectors
        embedded = time.perf_counter()
        await index.add(
            "vs_bench", f"file-{number}", "doc.txt", None, chunks, vectors, project="proj_bench"
        )
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


def clustered(n: int, dimensions: int, seed: int) -> Array:
    """The first synthetic data: 1,000 Gaussian centres plus isotropic noise, queries drawn
    the same way around *other* centres (each call draws its own). A query is then unrelated
    to the corpus and its neighbours nearly equidistant (cosine ~0.18 to the first, ~0.14 to
    the tenth): the hardest case for an approximate index, kept to compare with."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dimensions)).astype(np.float32)
    points = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, dimensions))
    points = points.astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)  # type: ignore[no-any-return]


def spectral(n: int, dimensions: int, seed: int, topics: int) -> Array:
    """Data shaped like real sentence embeddings: a common direction, one topic per 30
    chunks (a document's chunks share one), and variances falling as a power law over the
    dimensions. Calibrated against 3,000 stdlib docstrings embedded by the local MiniLM
    (docs/benchmarks.md): at that size both have cosine ~0.1 between random pairs, ~0.5 to
    the 10th neighbour, and a relative contrast at 10 of ~1.9. Queries are drawn around the
    corpus's topics (same `topics`, another `seed`), as questions about its documents are."""
    scale = (np.arange(dimensions) + 1.0) ** -0.4
    shared = np.random.default_rng(7)  # the corpus's topics: the same for data and queries
    mean = shared.standard_normal(dimensions) * scale
    centres = shared.standard_normal((topics, dimensions)) * scale
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    points = np.empty((n, dimensions), dtype=np.float32)
    for first in range(0, n, 100_000):  # in slices: float64 noise for 1M rows is 3 GB
        m = min(n, first + 100_000) - first
        noise = rng.standard_normal((m, dimensions)) * scale
        noise *= 1.1 / np.linalg.norm(noise, axis=1, keepdims=True)
        part = 0.5 * mean / np.linalg.norm(mean) + centres[rng.integers(0, topics, m)] + noise
        points[first : first + m] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return points


def dataset(name: str, n: int, queries: int, dimensions: int) -> tuple[Array, Array]:
    """(corpus, queries) of the named generator."""
    if name == "clustered":
        return clustered(n, dimensions, seed=3), clustered(queries, dimensions, seed=5)
    topics = max(1, n // 30)
    return spectral(n, dimensions, 3, topics), spectral(queries, dimensions, 5, topics)


def docstrings(count: int) -> list[str]:
    """Real English text at hand offline: docstrings of the standard library's modules."""
    texts = []
    for path in sorted(Path(ast.__file__).parent.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= 8:
                    texts.append(" ".join(doc.split())[:1000])
    random.Random(0).shuffle(texts)
    return texts[:count]


def neighbourhoods(name: str, corpus: Array, queries: Array) -> None:
    """What makes nearest neighbours hard to find: how far the 1st, 10th and 100th are, the
    relative contrast at 10 (mean cosine distance over the 10th neighbour's; near 1, every
    point is about as far as the 10th) and the effective number of dimensions."""
    similarity = queries @ corpus.T
    ranked = -np.sort(-similarity, axis=1)
    contrast = ((1 - similarity.mean(axis=1)) / (1 - ranked[:, 9])).mean()
    variances = np.linalg.svd(corpus - corpus.mean(axis=0), compute_uv=False) ** 2
    variances /= variances.sum()
    print(
        f"{name:10s} mean cosine {similarity.mean():.3f}; 1st {ranked[:, 0].mean():.3f}, "
        f"10th {ranked[:, 9].mean():.3f}, 100th {ranked[:, 99].mean():.3f}; relative contrast "
        f"@10 {contrast:.2f}; effective dimensions {1 / (variances**2).sum():.0f}"
    )


async def calibrate(args: argparse.Namespace) -> None:
    """Real embeddings beside both generators at the same size, each point's neighbours
    searched among the others (the first 10 % are the queries)."""
    texts = docstrings(args.texts)
    real = (await LocalMiniLM().embed(texts)).vectors
    held = len(texts) // 10
    neighbourhoods("real", real[held:], real[:held])
    for name in ("spectral", "clustered"):
        corpus, queries = dataset(name, len(texts) - held, held, real.shape[1])
        neighbourhoods(name, corpus, queries)


def exact_top10(corpus: Array, queries: Array, every: int = 1) -> list[set[int]]:
    """The true 10 nearest chunk ids (row i has id i + 1), by numpy: SQL's exact search
    would take minutes for 200 queries at 1M chunks. With `every`, only among the chunks
    whose id is a multiple of it (what `filtered(every)` lets through)."""
    rows = np.arange(every - 1, len(corpus), every)
    part = corpus if every == 1 else corpus[rows]
    truth = []
    for query in queries:
        similarity = part @ query
        top = np.argpartition(-similarity, 10)[:10]
        truth.append({int(rows[i]) + 1 for i in top})
    return truth


def filtered(every: int) -> str:
    """A filter that lets one chunk in `every` through, spread evenly over the corpus."""
    return f"id % {every} = 0"


def peak_memory() -> str:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.1f} GB"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


async def timed_nearest(
    index: ChunkIndex, queries: Array, truth: list[set[int]], where: str = "TRUE"
) -> tuple[list[float], float]:
    """Latencies of the vector leg (`ChunkIndex.nearest`, top 10) and mean recall@10."""
    times, recalls = [], []
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        found = {i for i, _ in await index.nearest(["vs_bench"], where, [], query, 10)}
        times.append(time.perf_counter() - started)
        recalls.append(len(found & expected) / 10)
    return times, statistics.mean(recalls)


async def search(args: argparse.Namespace, work: Path) -> None:
    n, dimensions = args.chunks, 384
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; data {args.data}")
    path = work / "search.duckdb"
    # No BM25 rebuild after each batch (the server's coalesced refresh): at 1M chunks the
    # inserts waited behind one rebuild of the whole index per batch. It is built once below.
    index = ChunkIndex(path, dimensions, hnsw_threshold=10**12, fts_delay=10**9)
    vectors, queries = dataset(args.data, n, args.queries, dimensions)
    texts = sentences(n, seed=4)
    started = time.perf_counter()
    batch = 10_000
    for first in range(0, n, batch):
        part = range(first, min(n, first + batch))
        chunks = [Chunk(texts[i], 0, len(texts[i])) for i in part]
        await index.add(
            "vs_bench",
            f"file-{first}",
            "bench.txt",
            None,
            chunks,
            vectors[part.start : part.stop],
            project="proj_bench",
        )
    print(f"{n} chunks inserted in {time.perf_counter() - started:.1f} s", flush=True)
    truth = exact_top10(vectors, queries)
    fractions = {every: exact_top10(vectors, queries, every) for every in args.filtered}
    del vectors, texts
    started = time.perf_counter()
    await index.refresh()
    print(f"BM25 index built in {time.perf_counter() - started:.1f} s", flush=True)

    exact_times, recall = await timed_nearest(
        index, queries[: args.exact_queries], truth[: args.exact_queries]
    )
    print(f"exact top-10: {percentiles(exact_times)} (recall {recall:.3f})", flush=True)
    for every, expected in fractions.items():
        exact_times, recall = await timed_nearest(
            index, queries[: args.exact_queries], expected[: args.exact_queries], filtered(every)
        )
        print(f"exact top-10, 1 chunk in {every} passing the filter: {percentiles(exact_times)}")

    if args.hybrid:
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
    built = HnswParams(
        m=args.m, ef_construction=args.ef_construction, quantization=args.quantization
    )
    index.hnsw = built
    index.hnsw_threshold = 0
    started, cpu = time.perf_counter(), time.process_time()
    await index.refresh()
    print(
        f"HNSW graph (M {built.m}, ef_construction {built.ef_construction}, "
        f"{built.quantization}) built and saved in {time.perf_counter() - started:.1f} s "
        f"({time.process_time() - cpu:.0f} CPU s); {index.ann_path.stat().st_size / 1e6:.0f} MB "
        f"on disk; peak memory {peak_memory()}",
        flush=True,
    )
    await index.close()
    for ef_search in args.ef_search:
        # ef_search is a setting of each connection: a fresh ChunkIndex on the same file (which
        # also reopens the persisted HNSW index, as a restarted server does).
        index = ChunkIndex(
            path, dimensions, hnsw_threshold=0, hnsw=replace(built, ef_search=ef_search)
        )
        started = time.perf_counter()
        # Open, read the graph back and catch it up with the table (searches are exact until
        # it is), then warm up.
        await index.graph_ready()
        await timed_nearest(index, queries[:5], truth[:5])
        print(f"reopened and graph read back in {time.perf_counter() - started:.1f} s")
        times, recall = await timed_nearest(index, queries, truth)
        print(f"HNSW top-10, ef_search {ef_search}: {percentiles(times)}; recall@10 {recall:.3f}")
        for every, expected in fractions.items():
            times, recall = await timed_nearest(index, queries, expected, filtered(every))
            print(
                f"  1 chunk in {every} passing the filter: {percentiles(times)}; "
                f"recall@10 {recall:.3f}"
            )
        await index.close()
    print(f"peak memory {peak_memory()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("embed")
    one.add_argument("--sentences", type=int, default=512)
    two = sub.add_parser("ingest")
    two.add_argument("--docs", type=int, default=40)
    two.add_argument("--words", type=int, default=3000)
    calibration = sub.add_parser("calibrate")
    calibration.add_argument("--texts", type=int, default=3000)
    three = sub.add_parser("search")
    three.add_argument("--chunks", type=int, default=100_000)
    three.add_argument("--queries", type=int, default=200)
    three.add_argument("--data", choices=["spectral", "clustered"], default="spectral")
    three.add_argument("--exact-queries", type=int, default=50, help="exact search is slow")
    three.add_argument("--hybrid", action="store_true", help="also time whole hybrid searches")
    three.add_argument(
        "--filtered",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[10, 30, 100],
        help="also search with a filter that lets 1 chunk in N through (comma-separated Ns)",
    )
    three.add_argument("--no-hnsw", action="store_true")
    three.add_argument("--m", type=int, default=HnswParams.m)
    three.add_argument("--ef-construction", type=int, default=HnswParams.ef_construction)
    three.add_argument("--quantization", choices=["i8", "f16", "f32"], default="i8")
    three.add_argument(
        "--ef-search",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[HnswParams.ef_search],
        help="comma-separated: each is measured on the one build",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.command == "embed":
            asyncio.run(embed(args))
        elif args.command == "ingest":
            asyncio.run(ingest(args, work))
        elif args.command == "calibrate":
            asyncio.run(calibrate(args))
        else:
            asyncio.run(search(args, work))


if __name__ == "__main__":
    main()
