"""What the tool loop sees of web search, whatever answers it: `WebSearchBackend.search`
returning `WebResult`s, and `WebSearchError` when the backend fails.

The tool's knobs mean the same on every backend. `allowed_domains` goes to the backend the way
its API takes it (a domain parameter, else `site:` operators) and is enforced again here on
what comes back, subdomains included, as OpenAI documents it: some engines behind a
metasearch ignore `site:`. `context_size` sets how much text each result carries
(`SNIPPET_CHARS`) and, where an API can say more, how hard it looks; `RESULTS` is a default
count for callers that have none.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from itertools import islice
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from openresponses.errors import APIError, ErrorKind

ContextSize = Literal["low", "medium", "high"]

SNIPPET_CHARS: dict[ContextSize, int] = {"low": 500, "medium": 1500, "high": 4000}
RESULTS: dict[ContextSize, int] = {"low": 3, "medium": 5, "high": 10}


class UserLocation(Protocol):
    """The tool's approximate location: both of the spec's location models fit
    (`web_search`'s and `web_search_preview`'s)."""

    @property
    def country(self) -> str | None: ...  # ISO 3166-1 alpha-2, e.g. "DE"
    @property
    def region(self) -> str | None: ...  # free text, e.g. "Bavaria"
    @property
    def city(self) -> str | None: ...
    @property
    def timezone(self) -> str | None: ...  # IANA, e.g. "Europe/Berlin"


@dataclass(frozen=True)
class WebResult:
    url: str
    title: str
    content: str  # the backend's snippet (more excerpts with a high context size)
    published: date | None = None


class WebSearchBackend(Protocol):
    """One search API; implementations live one per file in this package."""

    name: str

    async def search(
        self,
        query: str,
        *,
        max_results: int,
        allowed_domains: list[str] | None,
        user_location: UserLocation | None,
        context_size: ContextSize,
    ) -> list[WebResult]:
        """At most `max_results` results, best first; raises WebSearchError."""


class WebSearchError(APIError):
    """A search backend or a page failed: unreachable, slow, refusing or answering nonsense.
    The tool loop reports it in the tool call's output; should one reach a client, it is a
    502 (504 for a timeout) in OpenAI's error shape, like any failing upstream."""

    def __init__(self, message: str, *, code: str, status: int = 502) -> None:
        super().__init__(ErrorKind.MODEL, message, code=code, status=status)


def malformed(backend: str, what: str) -> WebSearchError:
    return WebSearchError(
        f"web search backend {backend} answered with {what}", code="web_search_failed"
    )


def domains(allowed: list[str] | None) -> list[str]:
    """Allowed domains as hosts: `https://Docs.Python.org/3/` → `docs.python.org`."""
    hosts = (value.strip().lower().split("://", 1)[-1] for value in allowed or ())
    return [host.split("/", 1)[0].split(":", 1)[0].rstrip(".") for host in hosts]


def in_domains(url: str, domains: Iterable[str]) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


# Brave's limits on a query (400 characters, 50 words); engines behind SearXNG have similar ones.
QUERY_CHARS = 400
QUERY_WORDS = 50


def with_sites(query: str, domains: list[str]) -> str:
    """The query restricted with `site:` operators, for APIs without a domain parameter: the
    first domains, as many as keep it within `QUERY_CHARS` and `QUERY_WORDS` (a tool may
    allow a hundred domains; a longer query would be refused outright)."""
    words = len(query.split())
    sites: list[str] = []
    for d in domains:
        operators = " OR ".join([*sites, f"site:{d}"])
        if (
            len(query) + len(operators) + 3 > QUERY_CHARS
            or words + 2 * len(sites) + 1 > QUERY_WORDS
        ):
            break
        sites.append(f"site:{d}")
    if len(sites) < 2:
        return " ".join([query, *sites])
    return f"{query} ({' OR '.join(sites)})"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 2].rsplit(" ", 1)[0]  # room for the " …"
    return cut + " …"


def parse(
    items: object, backend: str, read: Callable[[dict[str, Any]], WebResult]
) -> Iterator[WebResult]:
    """`read` applied to each result object of a backend's result list (those without a URL
    are dropped); a missing list means the API answered something else."""
    if not isinstance(items, list):
        raise malformed(backend, "JSON without a results list")
    return (read(item) for item in items if isinstance(item, dict) and item.get("url"))


def finish(
    results: Iterable[WebResult],
    *,
    max_results: int,
    allowed_domains: list[str],
    context_size: ContextSize,
) -> list[WebResult]:
    """The backend's results as the loop gets them: inside the allowed domains, without
    repeated URLs, snippets clipped to the context size, at most `max_results`."""
    limit = SNIPPET_CHARS[context_size]
    seen: set[str] = set()

    def kept() -> Iterator[WebResult]:
        for result in results:
            if result.url in seen:
                continue
            if allowed_domains and not in_domains(result.url, allowed_domains):
                continue
            seen.add(result.url)
            yield replace(result, content=_clip(result.content, limit))

    return list(islice(kept(), max(0, max_results)))


def published(value: object) -> date | None:
    """A result's date from what backends send: ISO 8601 (`2024-05-01T10:00:00`) or an HTTP
    date (`Mon, 03 Mar 2025 15:10:05 GMT`); anything else is no date."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).date()
    except (TypeError, ValueError):
        return None


def text(value: object) -> str:
    """A string field of a result, or "" when the backend sent none (or null)."""
    return value if isinstance(value, str) else ""
