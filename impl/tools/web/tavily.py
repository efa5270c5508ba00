"""Tavily: `POST {TAVILY_BASE_URL}/search` with `Authorization: Bearer <key>` and a JSON body
(results are `results[]`: `url`, `title`, `content`, `score`, and `published_date` for news).

- allowed_domains: Tavily's own `include_domains` (results are filtered here too).
- user_location: `country`, which Tavily takes as a lowercase English name ("germany") and
  uses to boost that country's results; codes outside `_COUNTRIES` are not sent, rather than
  risk a name Tavily does not list. Region, city and timezone have no parameter.
- context_size: `max_results`, and `search_depth`: `advanced` for high (up to three relevant
  chunks per source in `content`, two API credits), `basic` otherwise.
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
)
from openresponses.tools.web.http import request_json

_MAX_RESULTS = 20  # Tavily's limit for `max_results`
_HINTS = {401: "check TAVILY_API_KEY", 403: "check TAVILY_API_KEY"}

_COUNTRIES = {
    "AE": "united arab emirates", "AR": "argentina", "AT": "austria", "AU": "australia",
    "BD": "bangladesh", "BE": "belgium", "BG": "bulgaria", "BR": "brazil", "CA": "canada",
    "CH": "switzerland", "CL": "chile", "CN": "china", "CO": "colombia", "CZ": "czech republic",
    "DE": "germany", "DK": "denmark", "EG": "egypt", "ES": "spain", "FI": "finland",
    "FR": "france", "GB": "united kingdom", "GR": "greece", "HR": "croatia", "HU": "hungary",
    "ID": "indonesia", "IE": "ireland", "IL": "israel", "IN": "india", "IT": "italy",
    "JP": "japan", "KE": "kenya", "KR": "south korea", "MA": "morocco", "MX": "mexico",
    "MY": "malaysia", "NG": "nigeria", "NL": "netherlands", "NO": "norway",
    "NZ": "new zealand", "PE": "peru", "PH": "philippines", "PK": "pakistan", "PL": "poland",
    "PT": "portugal", "RO": "romania", "SA": "saudi arabia", "SE": "sweden",
    "SG": "singapore", "TH": "thailand", "TR": "turkey", "TW": "taiwan", "UA": "ukraine",
    "US": "united states", "VN": "vietnam", "ZA": "south africa",
}  # fmt: skip


def _result(item: dict[str, Any]) -> WebResult:
    return WebResult(
        url=text(item.get("url")),
        title=text(item.get("title")),
        content=text(item.get("content")),
        published=published(item.get("published_date")),
    )


class TavilyBackend:
    name = "tavily"

    def __init__(
        self, config: WebSearchConfig, client: aiohttp.ClientSession, *, timeout: float = 20.0
    ) -> None:
        self.url = f"{config.base_url}/search"
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
        body: dict[str, Any] = {
            "query": query,
            "max_results": min(max_results, _MAX_RESULTS),
            "search_depth": "advanced" if context_size == "high" else "basic",
            "topic": "general",
            "include_answer": False,
            "include_raw_content": False,
        }
        if context_size == "high":
            body["chunks_per_source"] = 3
        if allowed:
            body["include_domains"] = allowed
        country = _COUNTRIES.get((user_location.country or "").upper()) if user_location else None
        if country:
            body["country"] = country
        data = await request_json(
            self.client,
            self.name,
            "POST",
            self.url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            body=body,
            timeout=self.timeout,
            hints=_HINTS,
        )
        return finish(
            parse(data.get("results"), self.name, _result),
            max_results=max_results,
            allowed_domains=allowed,
            context_size=context_size,
        )
