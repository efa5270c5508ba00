"""The `web_search` tool (and `web_search_preview`): the configured backend, in the loop.

The model gets two functions: `web_search` (a query) and `open_page` (a URL from the results
or anywhere public, read as text). Each call is a `web_search_call` item (action `search` with
its sources, or `open_page`). Results reach the model numbered `[n]`, numbers that run on
through the whole response; the model is asked to cite them so, and the engine turns the
markers in its answer into `url_citation` annotations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from openresponses.errors import APIError
from openresponses.generated import openai_models as m
from openresponses.items import Item, new_id
from openresponses.tools.base import Citations, ToolServices
from openresponses.tools.web.base import WebSearchBackend
from openresponses.tools.web.page import PageFetcher
from openresponses.tools.web.registry import not_configured

SEARCH, OPEN_PAGE = "web_search", "open_page"

_RESULTS = {"low": 3, "medium": 5, "high": 8}
"""Results per search by `search_context_size`."""

PAGE_CHARACTERS = 12_000
"""How much of an opened page the model reads."""

_CITE = "Cite what you use from the results inline by their numbers in brackets, e.g. [1]."


def _function(name: str, description: str, parameter: str, about: str) -> m.FunctionTool:
    return m.FunctionTool(
        type="function",
        name=name,
        description=description,
        parameters={
            "type": "object",
            "properties": {parameter: {"type": "string", "description": about}},
            "required": [parameter],
            "additionalProperties": False,
        },
        strict=True,
    )


def _argument(arguments: str, name: str) -> str:
    try:
        value = json.loads(arguments or "{}").get(name)
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


class WebSearch:
    """One request's web_search tool: its filters, location and context size."""

    def __init__(
        self,
        spec: m.WebSearchTool | m.WebSearchPreviewTool,
        index: int,
        services: ToolServices,
        citations: Citations,
    ) -> None:
        if services.web_search is None or services.pages is None:
            raise not_configured(param=f"tools[{index}].type")
        self.backend: WebSearchBackend = services.web_search
        self.pages: PageFetcher = services.pages
        self.spec = spec
        self.citations = citations
        filters = getattr(spec, "filters", None)
        self.allowed_domains = filters.allowed_domains if filters else None
        self.results: dict[str, str] = {}
        """What the model read for each call of this response, by item id."""

    async def check(self, *, allow_private: bool) -> None:
        """Nothing to check: the backend was checked when the server started."""

    async def prepare(self, history: Sequence[Item]) -> list[Item]:
        return []

    def functions(self) -> list[m.FunctionTool]:
        return [
            _function(SEARCH, f"Search the web. {_CITE}", "query", "What to search for."),
            _function(OPEN_PAGE, f"Read a web page as text. {_CITE}", "url", "The page's URL."),
        ]

    def start(self, function: str, arguments: str) -> m.WebSearchToolCall:
        action: Any
        if function == OPEN_PAGE:
            url = _argument(arguments, "url")
            # model_construct keeps URLs as given (AnyUrl would rewrite them).
            action = m.WebSearchActionOpenPage.model_construct(type="open_page", url=url)  # type: ignore[arg-type]
        else:
            query = _argument(arguments, "query")
            action = m.WebSearchActionSearch(type="search", query=query)
        return m.WebSearchToolCall.model_construct(
            id=new_id("web_search_call"),
            type="web_search_call",
            status="in_progress",
            action=action,
        )

    async def run(self, item: m.WebSearchToolCall) -> m.WebSearchToolCall:
        try:
            if isinstance(item.action, m.WebSearchActionOpenPage):
                self.results[item.id] = await self._open(str(item.action.url or ""))
                return item.model_copy(update={"status": "completed"})
            assert isinstance(item.action, m.WebSearchActionSearch)
            text, sources = await self._search(item.action.query or "")
        except APIError as exc:  # the model reads what went wrong and may try again
            self.results[item.id] = f"Error: {exc.message}"
            return item.model_copy(update={"status": "failed"})
        self.results[item.id] = text
        action = item.action.model_copy(update={"sources": sources})
        return item.model_copy(update={"status": "completed", "action": action})

    async def _search(self, query: str) -> tuple[str, list[m.Source]]:
        size = self.spec.search_context_size or "medium"
        found = await self.backend.search(
            query,
            max_results=_RESULTS[size],
            allowed_domains=self.allowed_domains,
            user_location=self.spec.user_location,
            context_size=size,
        )
        if not found:
            return f"No results for {query!r}.", []
        lines = []
        for result in found:
            number = self.citations.add("url", result.url, result.title)
            lines.append(f"[{number}] {result.title}\n{result.url}\n{result.content}")
        sources = [m.Source.model_construct(type="url", url=r.url) for r in found]  # type: ignore[arg-type]
        return "\n\n".join(lines), sources

    async def _open(self, url: str) -> str:
        page = await self.pages.fetch_page(url, param="url")
        number = self.citations.add("url", page.url, page.title or page.url)
        text = page.text[:PAGE_CHARACTERS]
        cut = " (cut short)" if page.truncated or len(page.text) > PAGE_CHARACTERS else ""
        return f"[{number}] {page.title}\n{page.url}{cut}\n\n{text}"


def model_text(item: m.WebSearchToolCall) -> str:
    """What a later turn's model reads for a call whose full results are gone: its sources."""
    action = item.action
    sources = getattr(action, "sources", None) or []
    if isinstance(action, m.WebSearchActionOpenPage):
        return f"Opened {action.url}."
    return "Sources found: " + (", ".join(str(s.url) for s in sources) or "none") + "."
