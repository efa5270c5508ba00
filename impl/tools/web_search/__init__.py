"""Web search for the `web_search` tool: one `WebSearchBackend` per search API (SearXNG,
Brave, Tavily), chosen by `OPENRESPONSES_WEB_SEARCH` (`backend_from_settings`), and
`PageFetcher.fetch_page` for the `open_page` action."""

from openresponses.tools.web_search.base import (
    RESULTS,
    SNIPPET_CHARS,
    ContextSize,
    UserLocation,
    WebResult,
    WebSearchBackend,
    WebSearchError,
)
from openresponses.tools.web_search.page import PageFetcher, PageText
from openresponses.tools.web_search.registry import backend_from_settings, not_configured

__all__ = [
    "RESULTS",
    "SNIPPET_CHARS",
    "ContextSize",
    "PageFetcher",
    "PageText",
    "UserLocation",
    "WebResult",
    "WebSearchBackend",
    "WebSearchError",
    "backend_from_settings",
    "not_configured",
]
