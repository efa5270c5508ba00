"""The web, for the `web_search` tool (tools/web_search.py): one `WebSearchBackend` per
search API (SearXNG, Brave, Tavily), chosen by `OPENRESPONSES_WEB_SEARCH`
(`backend_from_settings`), and `PageFetcher.fetch_page` for the `open_page` action."""

from openresponses.tools.web.base import (
    RESULTS,
    SNIPPET_CHARS,
    ContextSize,
    UserLocation,
    WebResult,
    WebSearchBackend,
    WebSearchError,
)
from openresponses.tools.web.page import PageFetcher, PageText
from openresponses.tools.web.registry import backend_from_settings, not_configured

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
