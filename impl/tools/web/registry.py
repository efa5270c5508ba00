"""Which backend serves web search: `OPENRESPONSES_WEB_SEARCH` names one of `BACKENDS`
(its URL and key are read by config.py, from `WEB_SEARCH_BACKENDS`)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from openresponses.config import WEB_SEARCH_BACKENDS, Settings, WebSearchConfig
from openresponses.errors import APIError, invalid
from openresponses.tools.web.base import WebSearchBackend
from openresponses.tools.web.brave import BraveBackend
from openresponses.tools.web.searxng import SearxngBackend
from openresponses.tools.web.tavily import TavilyBackend

BACKENDS: dict[str, Callable[[WebSearchConfig, aiohttp.ClientSession], WebSearchBackend]] = {
    "searxng": SearxngBackend,
    "brave": BraveBackend,
    "tavily": TavilyBackend,
}


def backend_from_settings(
    settings: Settings, client: aiohttp.ClientSession
) -> WebSearchBackend | None:
    """The configured backend, calling out through the server's shared `client`; None when
    web search is not configured (see `not_configured`)."""
    config = settings.web_search
    return None if config is None else BACKENDS[config.backend](config, client)


def not_configured(param: str = "tools") -> APIError:
    """The 400 for a request with a web_search tool on a server without a backend."""
    choices = ", ".join(
        f"{name} (with {key or url})" for name, (url, _, key) in WEB_SEARCH_BACKENDS.items()
    )
    return invalid(
        "The web_search tool needs a search backend, and this server has none configured. "
        f"Set OPENRESPONSES_WEB_SEARCH to one of: {choices}, and restart the server.",
        param=param,
        code="web_search_not_configured",
    )
