"""One JSON call to a search API, with every way it can fail turned into a `WebSearchError`
that names the backend and says what happened: unreachable, too slow, an HTTP error with the
API's own explanation (its key refused: which variable to check), or an answer that is not
JSON. Nothing from aiohttp escapes.

No retries: a search is one step of the model's loop, which can search again, and a backend
that rate-limits us should not be hammered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from openresponses.tools.web.base import WebSearchError, malformed

_CODES = {401: "web_search_auth", 403: "web_search_auth", 429: "web_search_rate_limited"}


def reason(body: bytes) -> str:
    """The explanation in an error body: the first message-like string in its JSON (Brave's
    `error.detail`, Tavily's `detail.error`, a plain `message`), else its text."""

    def find(value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            for key in ("message", "detail", "error"):
                found = find(value.get(key))
                if found:
                    return found
        return None

    try:
        found = find(json.loads(body))
    except ValueError:
        found = None
    return found or body[:200].decode("utf-8", "replace").strip() or "no details"


def failure(backend: str, status: int, body: bytes, hint: str | None = None) -> WebSearchError:
    message = f"web search backend {backend} answered HTTP {status}: {reason(body)}"
    return WebSearchError(
        message + (f" ({hint})" if hint else ""), code=_CODES.get(status, "web_search_failed")
    )


def transport_failure(backend: str, exc: BaseException) -> WebSearchError:
    if isinstance(exc, TimeoutError):
        return WebSearchError(
            f"web search backend {backend} did not answer in time",
            code="web_search_timeout",
            status=504,
        )
    return WebSearchError(
        f"could not reach web search backend {backend}: {exc}", code="web_search_unreachable"
    )


async def request_json(
    client: aiohttp.ClientSession,
    backend: str,
    method: str,
    url: str,
    *,
    timeout: float,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: dict[str, Any] | None = None,
    hints: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """The JSON object a backend answers; `hints` add advice to an HTTP status's error."""
    try:
        async with asyncio.timeout(timeout):
            async with client.request(
                method, url, params=params, headers=headers, json=body
            ) as response:
                raw = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise transport_failure(backend, exc) from exc
    if response.status >= 400:
        raise failure(backend, response.status, raw, (hints or {}).get(response.status))
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise WebSearchError(
            f"web search backend {backend} answered with a body that is not JSON",
            code="web_search_failed",
        ) from exc
    if not isinstance(data, dict):
        raise malformed(backend, "JSON that is not an object")
    return data
