"""SearXNG, the self-hosted metasearch engine, through its JSON API:
`GET {SEARXNG_URL}/search?q=…&format=json` (the instance must list `json` under
`search.formats` in its settings.yml, or it answers 403).

- allowed_domains: SearXNG has no domain parameter; it passes the query to its engines, most
  of which honour `site:`, so the query gets `site:` operators (and results are filtered).
- user_location: not sent. The API's only locality knob is `language`, a search language
  that a location does not determine (Switzerland speaks four); the instance's default holds.
- context_size: how much of each result's `content` is kept; SearXNG returns one page of
  results (about 20) and the count is cut here.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from openresponses.config import WebSearchConfig
from openresponses.tools.web.base import (
    ContextSize,
    UserLocation,
    WebResult,
    domains,
    finish,
    parse,
    published,
    text,
    with_sites,
)
from openresponses.tools.web.http import request_json

_HINTS = {403: "enable the json format under search.formats in SearXNG's settings.yml"}


def _result(item: dict[str, Any]) -> WebResult:
    return WebResult(
        url=text(item.get("url")),
        title=text(item.get("title")),
        content=text(item.get("content")),
        published=published(item.get("publishedDate")),
    )


class SearxngBackend:
    name = "searxng"

    def __init__(
        self, config: WebSearchConfig, client: aiohttp.ClientSession, *, timeout: float = 20.0
    ) -> None:
        self.url = f"{config.base_url}/search"
        self.client = client
        self.timeout = timeout

    async def search(
        self,
        query: str,
        *,
        max_results: int,
        allowed_domains: list[str] | None,
        user_location: UserLocation | None,
        context_size: ContextSize,
    ) -> list[WebResult]:
        allowed = domains(allowed_domains)
        params = {"q": with_sites(query, allowed), "format": "json"}
        data = await request_json(
            self.client,
            self.name,
            "GET",
            self.url,
            params=params,
            timeout=self.timeout,
            hints=_HINTS,
        )
        return finish(
            parse(data.get("results"), self.name, _result),
            max_results=max_results,
            allowed_domains=allowed,
            context_size=context_size,
        )
