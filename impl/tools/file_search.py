"""The `file_search` tool: the request's vector stores, searched by the server (RAG).

The model gets one function, `file_search` (a query). Each call is a `file_search_call`
item with its query and results; the chunks reach the model numbered `[n]` (numbers run on
through the whole response, shared with web search), and the engine turns the markers in
its answer into `file_citation` annotations. The search itself is `vectors.search.Searcher`,
the one behind `POST /v1/vector_stores/{id}/search`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from openresponses.errors import APIError, invalid
from openresponses.generated import openai_models as m
from openresponses.items import Item, new_id
from openresponses.tools.base import Citations, ToolServices
from openresponses.vectors.search import compile_filter, fusion_weights

if TYPE_CHECKING:
    from openresponses.vectors.search import Searcher

NAME = "file_search"

DEFAULT_RESULTS = 10
"""Chunks per search unless the tool's `max_num_results` says otherwise (OpenAI's default
is 10 for most models)."""


def _query(arguments: str) -> str:
    try:
        value = json.loads(arguments or "{}").get("query")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


class FileSearch:
    """One request's file_search tool: its vector stores, filters and ranking."""

    def __init__(
        self, spec: m.FileSearchTool, index: int, services: ToolServices, citations: Citations
    ) -> None:
        if services.searcher is None:  # pragma: no cover - every server has one
            raise invalid("file_search is not available on this server.", param=f"tools[{index}]")
        self.param = f"tools[{index}].vector_store_ids"
        if not spec.vector_store_ids:
            raise invalid("file_search needs at least one vector store id.", param=self.param)
        fusion_weights(spec.ranking_options, f"tools[{index}].ranking_options.hybrid_search")
        compile_filter(spec.filters, f"tools[{index}].filters")  # a bad filter: 400, no model call
        self.searcher: Searcher = services.searcher
        self.project = services.project
        self.spec = spec
        self.citations = citations
        self.results: dict[str, str] = {}
        """What the model read for each call of this response, by item id."""

    async def check(self, *, allow_private: bool) -> None:
        """An unknown or expired store is the client's error, before the model runs."""
        await self.searcher.refuse_unusable(self.project, self.spec.vector_store_ids, self.param)

    async def prepare(self, history: Sequence[Item]) -> list[Item]:
        return []

    def functions(self) -> list[m.FunctionTool]:
        return [
            m.FunctionTool(
                type="function",
                name=NAME,
                description=(
                    "Search the user's uploaded files for passages relevant to a query. Cite "
                    "what you use from the results inline by their numbers in brackets, e.g. [1]."
                ),
                parameters={
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "What to find."}},
                    "required": ["query"],
                    "additionalProperties": False,
                },
                strict=True,
            )
        ]

    def start(self, function: str, arguments: str) -> m.FileSearchToolCall:
        return m.FileSearchToolCall(
            id=new_id("file_search_call"),
            type="file_search_call",
            status="in_progress",
            queries=[_query(arguments)],
            results=None,
        )

    async def run(self, item: m.FileSearchToolCall) -> m.FileSearchToolCall:
        try:
            # Again: a store may expire (or be deleted) while the response runs.
            await self.searcher.refuse_unusable(
                self.project, self.spec.vector_store_ids, self.param
            )
            hits = await self.searcher.search(
                self.spec.vector_store_ids,
                item.queries,
                max_num_results=self.spec.max_num_results or DEFAULT_RESULTS,
                filters=self.spec.filters,
                ranking_options=self.spec.ranking_options,
            )
        except APIError as exc:  # an empty query, a bad filter, a store gone: the model
            # reads why, and may try again or tell the user
            self.results[item.id] = f"Error: {exc.message}"
            return item.model_copy(update={"status": "failed"})
        await self.searcher.mark_active(self.spec.vector_store_ids)
        lines = []
        for hit in hits:
            number = self.citations.add("file", hit.file_id, hit.filename)
            lines.append(f"[{number}] {hit.filename}\n{hit.text}")
        self.results[item.id] = "\n\n".join(lines) or f"Nothing found for {item.queries[0]!r}."
        results = [
            m.Result(
                file_id=hit.file_id,
                filename=hit.filename,
                score=hit.score,
                text=hit.text,
                attributes=hit.attributes,
            )
            for hit in hits
        ]
        return item.model_copy(update={"status": "completed", "results": results})


def model_text(item: m.FileSearchToolCall) -> str:
    """What a later turn's model reads for a search: the passages it found."""
    found = [f"{r.filename}\n{r.text}" for r in item.results or []]
    return "\n\n".join(found) or "Nothing found."
