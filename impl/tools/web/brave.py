"""The Brave Search API: `GET {BRAVE_BASE_URL}/web/search` with the key in
`X-Subscription-Token` (web results are `web.results[]`: `url`, `title`, `description`,
`extra_snippets`, `page_age`).

- allowed_domains: Brave has no domain parameter but supports the `site:` operator (and
  `OR`), so the query carries them (and results are filtered).
- user_location: `country` when it is one Brave's `country` parameter accepts, and the
  `X-Loc-Country`, `X-Loc-State-Name`, `X-Loc-City` and `X-Loc-Timezone` headers, which
  Brave documents for localising results.
- context_size: `count`; `high` also asks for `extra_snippets` (up to five more excerpts per
  result, on plans that include them), appended to the description.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import aiohttp

from openresponses.config import WebSearchConfig
from openresponses.tools.web.base import (
    ContextSize,
    UserLocation,
    WebResult,
    domains,
    finish,
    malformed,
    parse,
    published,
    text,
    with_sites,
)
from openresponses.tools.web.http import request_json

# The `country` parameter's values in Brave's API reference (others: the X-Loc headers only).
_COUNTRIES = frozenset({
    "AR", "AU", "AT", "BE", "BR", "CA", "CL", "DK", "FI", "FR", "DE", "HK", "IN", "ID", "IT",
    "JP", "KR", "MY", "MX", "NL", "NZ", "NO", "CN", "PL", "PT", "PH", "RU", "SA", "ZA", "ES",
    "SE", "CH", "TW", "TR", "GB", "US",
})  # fmt: skip
_MAX_COUNT = 20  # Brave's limit for `count`
_HINTS = {401: "check BRAVE_API_KEY", 403: "check BRAVE_API_KEY"}


def _header(value: str) -> str:
    """HTTP header values are ASCII: `Zürich` goes as `Zurich`."""
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().strip()


def _location_headers(location: UserLocation) -> dict[str, str]:
    fields = {
        "X-Loc-Country": location.country,
        "X-Loc-State-Name": location.region,
        "X-Loc-City": location.city,
        "X-Loc-Timezone": location.timezone,
    }
    headers = {name: _header(value) for name, value in fields.items() if value}
    return {name: value for name, value in headers.items() if value}


def _result(item: dict[str, Any], *, extra: bool) -> WebResult:
    more = item.get("extra_snippets") if extra else None
    snippets = [s for s in more if isinstance(s, str)] if isinstance(more, list) else []
    content = " … ".join([text(item.get("description")), *snippets])
    return WebResult(
        url=text(item.get("url")),
        title=text(item.get("title")),
        content=content,
        published=published(item.get("page_age")),
    )


class BraveBackend:
    name = "brave"

    def __init__(
        self, config: WebSearchConfig, client: aiohttp.ClientSession, *, timeout: float = 20.0
    ) -> None:
        self.url = f"{config.base_url}/web/search"
        self.api_key = config.api_key or ""
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
        params = {
            "q": with_sites(query, allowed),
            "count": str(min(max(max_results, 1), _MAX_COUNT)),
            "result_filter": "web",
            "text_decorations": "false",  # no <strong> markup in descriptions
        }
        if context_size == "high":
            params["extra_snippets"] = "true"
        headers = {"Accept": "application/json", "X-Subscription-Token": self.api_key}
        if user_location is not None:
            country = (user_location.country or "").upper()
            if country in _COUNTRIES:
                params["country"] = country
            headers.update(_location_headers(user_location))
        data = await request_json(
            self.client,
            self.name,
            "GET",
            self.url,
            params=params,
            headers=headers,
            timeout=self.timeout,
            hints=_HINTS,
        )
        if data.get("type") != "search":
            raise malformed(self.name, "JSON that is not a search response")
        web = data.get("web") or {"results": []}  # absent when nothing was found
        items = web.get("results") if isinstance(web, dict) else None
        extra = context_size == "high"
        return finish(
            parse(items, self.name, lambda item: _result(item, extra=extra)),
            max_results=max_results,
            allowed_domains=allowed,
            context_size=context_size,
        )
