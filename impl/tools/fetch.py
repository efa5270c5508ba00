"""GET a URL someone else chose (a page the model opens, a client's `input_file.file_url`),
through the URL guard.

Every hop is guarded: redirects are followed here, not by aiohttp, and each target passes
`check_url` first; connections go through `guarded_session`, whose resolver pins them to
public addresses. The body is read up to a byte limit (the rest is never read) and the whole
fetch, redirects included, must end within `timeout`. What goes wrong is a `FetchFailed` with
a plain reason; callers say what it means for them (a tool's 502, a request's 400).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin

import aiohttp

from openresponses.tools.guard import check_url, guarded_session

_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Reason = Literal["timeout", "unreachable", "unavailable"]
"""Why a fetch failed: too slow, no connection, or an answer that is not the content (an
HTTP error, too many redirects)."""


class FetchFailed(Exception):
    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str  # the media type alone, lower case ("" when the answer gave none)
    charset: str | None
    body: bytes  # at most the limit asked for
    truncated: bool  # there was more


class GuardedFetcher:
    """One guarded connection pool; made where the event loop runs, closed with it."""

    def __init__(
        self,
        *,
        allow_private: bool,
        headers: Mapping[str, str],
        timeout: float,
        max_redirects: int = 5,
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._client = guarded_session(allow_private=allow_private, headers=dict(headers))

    async def close(self) -> None:
        await self._client.close()

    async def get(self, url: str, *, param: str, max_bytes: int) -> Fetched:
        """The content at `url`; a refused URL (at any hop) raises the guard's 400 naming
        `param`, a failed fetch `FetchFailed`."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._get(url, param, max_bytes)
        except TimeoutError as exc:
            raise FetchFailed(f"{url} did not load in time", "timeout") from exc
        except aiohttp.ClientError as exc:
            raise FetchFailed(f"could not open {url}: {exc}", "unreachable") from exc

    async def _get(self, url: str, param: str, max_bytes: int) -> Fetched:
        for _ in range(self.max_redirects + 1):
            await check_url(url, allow_private=self.allow_private, param=param)
            async with self._client.get(url, allow_redirects=False) as response:
                location = response.headers.get("Location")
                if response.status in _REDIRECTS and location:
                    url = urljoin(url, location)
                    continue
                if response.status >= 400:
                    raise FetchFailed(f"{url} answered HTTP {response.status}", "unavailable")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > max_bytes:
                        break  # the rest is never read
                kind = response.content_type if "content-type" in response.headers else ""
                return Fetched(
                    url,
                    kind.lower(),
                    response.charset,
                    bytes(body[:max_bytes]),
                    truncated=len(body) > max_bytes,
                )
        raise FetchFailed(f"{url} redirected more than {self.max_redirects} times", "unavailable")
