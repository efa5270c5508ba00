"""Searching vector stores: the one code path behind `POST /v1/vector_stores/{id}/search` and
the `file_search` tool of `/v1/responses`.

    hits = await searcher.search(
        ["vs_…"], "how do I reset the router?",
        max_num_results=10, filters=None, ranking_options=None,
    )

A search runs two legs per query over the stores' chunks, both restricted in SQL by the
stores and the `filters` (comparison and compound filters over file attributes, compiled to
SQL here; nothing is filtered in Python): the chunks nearest the query's embedding (cosine
similarity) and the best BM25 keyword matches. The legs are fused by weighted reciprocal rank
fusion, `w_e / (60 + rank_e) + w_t / (60 + rank_t)`, with `ranking_options.hybrid_search`'s
weights (1 and 1 by default; the file_search tool's field, which OpenAI's search endpoint
lacks). A hit's `score`, in [0, 1], is that sum divided by the best possible one,
`(w_e + w_t) / 61`: 1 for a chunk first by both measures. A weight of 0 leaves its leg out:
text weight 0 is vector search, embedding weight 0 keyword search. With the ranker `none`,
or text weight 0, only the vector leg runs and the score is the cosine similarity. Hits
scoring below `score_threshold` are dropped. Several queries fuse all their legs the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from openresponses.errors import APIError, invalid, not_found
from openresponses.generated import openai_models as m
from openresponses.store.vector_stores import VectorStores
from openresponses.vectors.embedders import Embedder
from openresponses.vectors.index import ChunkIndex

RRF_K = 60

Filter = m.ComparisonFilter | m.CompoundFilter


@dataclass(frozen=True)
class SearchHit:
    """One result: what `/vector_stores/{id}/search` returns per result, and what the
    `file_search` tool cites."""

    file_id: str
    filename: str
    score: float
    attributes: dict[str, Any] | None
    text: str
    vector_store_id: str


_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "should",
        "tell",
        "the",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "please",
    ]
)


def rewrite(query: str) -> str:
    """`rewrite_query`: the query as search terms (lower case, no punctuation or stop
    words). No model is involved, so the rewrite is predictable and costs nothing."""
    words = re.findall(r"[\w'-]+", query.lower())
    kept = [word for word in words if word not in _STOPWORDS]
    return " ".join(kept or words)


class RankingOptions(Protocol):
    """What search reads of a request's `ranking_options`: the Responses tool's
    (`RankingOptions`, with `hybrid_search`) or the search endpoint's (ranker `none` too)."""

    @property
    def ranker(self) -> Any: ...

    @property
    def score_threshold(self) -> float | None: ...


# --- filters ---------------------------------------------------------------------------------

_COMPARE = {"eq": "=", "ne": "IS DISTINCT FROM", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _typed(value: Any) -> str:
    """How an attribute is read for comparison with `value`."""
    if isinstance(value, bool):
        return "TRY_CAST(json_extract(attributes, ?) AS BOOLEAN)"
    if isinstance(value, int | float):
        return "TRY_CAST(json_extract(attributes, ?) AS DOUBLE)"
    return "json_extract_string(attributes, ?)"


def compile_filter(node: Filter | None, param: str = "filters") -> tuple[str, list[Any]]:
    """SQL over the `attributes` JSON column, and its parameters (keys and values are always
    parameters, never SQL); `param` names the filter in errors."""
    if node is None:
        return "TRUE", []
    if isinstance(node, m.CompoundFilter):
        if not node.filters:
            return "TRUE", []
        parts = [
            compile_filter(_as_filter(child), f"{param}.filters[{index}]")
            for index, child in enumerate(node.filters)
        ]
        joiner = " AND " if node.type == "and" else " OR "
        return "(" + joiner.join(sql for sql, _ in parts) + ")", [
            a for _, args in parts for a in args
        ]
    if not node.key:  # `$.""` is no JSON path DuckDB binds
        raise invalid(
            f"Invalid '{param}.key': empty string. Expected a string with minimum length 1, "
            "but got an empty string instead.",
            param=f"{param}.key",
            code="empty_string",
        )
    value = node.value.root if hasattr(node.value, "root") else node.value
    if node.type in ("in", "nin"):
        if not isinstance(value, list):
            raise invalid(f"Filter '{node.type}' takes a list of values.", param=param)
        sql, args = _any_of(node.key, [v.root if hasattr(v, "root") else v for v in value])
        return (sql if node.type == "in" else f"NOT {sql}"), args
    if isinstance(value, list):
        raise invalid(f"Filter '{node.type}' takes a single value.", param=param)
    reader = _typed(value)
    if node.type == "ne":
        return f"({reader} IS DISTINCT FROM ?)", [_path(node.key), value]
    return f"coalesce({reader} {_COMPARE[node.type]} ?, FALSE)", [_path(node.key), value]


def _any_of(key: str, values: list[Any]) -> tuple[str, list[Any]]:
    """Whether the attribute equals one of `values`, each compared as its own JSON type: a
    list may mix strings and numbers, and one IN over both would cast one to the other."""
    if not values:
        return "FALSE", []
    by_reader: dict[str, list[Any]] = {}
    for value in values:
        by_reader.setdefault(_typed(value), []).append(value)
    tests = [f"{reader} IN ({', '.join('?' for _ in same)})" for reader, same in by_reader.items()]
    args = [a for same in by_reader.values() for a in (_path(key), *same)]
    return f"coalesce({' OR '.join(tests)}, FALSE)", args


def _as_filter(child: Any) -> Filter:
    if isinstance(child, m.ComparisonFilter | m.CompoundFilter):
        return child
    data = child.model_dump() if hasattr(child, "model_dump") else child
    if data.get("type") in ("and", "or"):
        return m.CompoundFilter.model_validate(data)
    return m.ComparisonFilter.model_validate(data)


# --- search ----------------------------------------------------------------------------------


def fusion_weights(
    ranking_options: RankingOptions | None, param: str = "ranking_options.hybrid_search"
) -> tuple[float, float]:
    """(embedding weight, text weight) of `ranking_options.hybrid_search`, 1 and 1 without
    it. Weights scale reciprocal ranks, so a negative one would rank a match below no
    match, and two zeros leave nothing to rank by: both are the client's error."""
    hybrid = getattr(ranking_options, "hybrid_search", None)
    if hybrid is None:
        return 1.0, 1.0
    weights = (hybrid.embedding_weight, hybrid.text_weight)
    if min(weights) < 0 or max(weights) == 0:
        raise invalid(
            "hybrid_search weights must not be negative, and one must be above 0.",
            param=param,
            code="invalid_value",
        )
    return weights


def missing(store_id: str, param: str) -> APIError:
    """The error for a vector store id that names no store."""
    return not_found(
        f"No vector store found with id '{store_id}'.", param=param, code="vector_store_not_found"
    )


def expired(store_id: str, param: str) -> APIError:
    """The error for searching (or adding to) an expired store. OpenAI documents only that
    runs on an expired store fail; a 400 that names the store says why and what to do."""
    return invalid(
        f"Vector store '{store_id}' has expired; create a new vector store with its files.",
        param=param,
        code="vector_store_expired",
    )


async def usable_store(
    vector_stores: VectorStores, project: str, store_id: str, param: str
) -> m.VectorStoreObject:
    """The project's store, when it exists and has not expired; else the error that says
    which."""
    store = await vector_stores.get(project, store_id)
    if store is None:
        raise missing(store_id, param)
    if store.status == "expired":
        raise expired(store_id, param)
    return store


class Searcher:
    def __init__(
        self,
        index: ChunkIndex,
        embedder: Embedder,
        vector_stores: VectorStores | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.vector_stores = vector_stores
        """Where stores' expiry is read (None: no store expires, as in benchmarks)."""

    async def mark_active(self, store_ids: Sequence[str]) -> None:
        """Searched stores are active: `expires_after` counts from their last activity."""
        if self.vector_stores is not None:
            await self.vector_stores.touch(store_ids)

    async def refuse_unusable(self, project: str, store_ids: Sequence[str], param: str) -> None:
        """Raises for the first of the stores that the project does not have (`missing`: a
        mistyped id would otherwise find nothing, silently) or has expired (`expired`)."""
        if self.vector_stores is None:
            return
        for store_id in store_ids:
            await usable_store(self.vector_stores, project, store_id, param)

    async def search(
        self,
        store_ids: Sequence[str],
        query: str | Sequence[str],
        *,
        max_num_results: int = 10,
        filters: Filter | None = None,
        ranking_options: RankingOptions | None = None,
    ) -> list[SearchHit]:
        """The best `max_num_results` chunks of the stores for the query (or queries)."""
        queries = [query] if isinstance(query, str) else list(query)
        if not queries or any(not q.strip() for q in queries):
            raise invalid("The search query must not be empty.", param="query")
        where, args = compile_filter(filters)
        ranker = ranking_options.ranker if ranking_options else None
        weight_e, weight_t = fusion_weights(ranking_options)
        threshold = (ranking_options.score_threshold if ranking_options else None) or 0.0
        keywords = ranker != "none" and weight_t > 0
        # A zero embedding weight asks for keyword order alone: the vector leg would only
        # add chunks that match no term, at score 0.
        semantic = not keywords or weight_e > 0
        depth = max(max_num_results * 2, 20)  # fusion needs more than the final count

        vectors = (await self.embedder.embed(queries)).vectors if semantic else None
        scores: dict[int, float] = {}
        for number, text in enumerate(queries):
            near = (
                await self.index.nearest(store_ids, where, args, vectors[number], depth)
                if vectors is not None
                else []
            )
            if not keywords:
                for chunk_id, similarity in near:
                    scores[chunk_id] = max(scores.get(chunk_id, 0.0), max(0.0, similarity))
                continue
            best = (weight_e + weight_t) / (RRF_K + 1)
            for rank, (chunk_id, _) in enumerate(near, 1):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight_e / (RRF_K + rank) / best
            matched = await self.index.keyword(store_ids, where, args, text, depth)
            for rank, (chunk_id, _) in enumerate(matched, 1):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight_t / (RRF_K + rank) / best
        if keywords and len(queries) > 1:
            scores = {key: value / len(queries) for key, value in scores.items()}
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        ranked = [(key, score) for key, score in ranked if score >= threshold][:max_num_results]
        rows = await self.index.rows([key for key, _ in ranked])
        return [
            SearchHit(
                file_id=rows[key].file_id,
                filename=rows[key].filename,
                score=round(min(1.0, score), 6),
                attributes=rows[key].attributes,
                text=rows[key].text,
                vector_store_id=rows[key].vector_store_id,
            )
            for key, score in ranked
            if key in rows  # a chunk deleted between ranking and reading is left out
        ]
