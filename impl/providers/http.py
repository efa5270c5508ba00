"""HTTP plumbing shared by provider adapters: sending, streaming, relaying, and turning
upstream failures into errors that tell the client what happened (their key was refused,
they were rate limited, the upstream is down or slow) rather than a bare 500.

The upstream client is aiohttp: on this path it costs ~120 µs a call against ~490 µs for
httpx (bench/upstream_clients.py, figures in docs/benchmarks.md), and every call of every
response pays it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import aiohttp

from openresponses.errors import ErrorKind
from openresponses.providers.base import Passthrough, ProviderError

log = logging.getLogger("openresponses.providers")

# Upstream statuses passed through to the client unchanged, with the kind they mean.
_PASS_THROUGH = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    403: ErrorKind.AUTHENTICATION,
    404: ErrorKind.NOT_FOUND,
    413: ErrorKind.TOO_LARGE,
    422: ErrorKind.INVALID_REQUEST,
    429: ErrorKind.RATE_LIMIT,
}


def session(*, read_timeout: float, connect_timeout: float = 10.0) -> aiohttp.ClientSession:
    """The one upstream client of a server: pooled keep-alive connections to every provider."""
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout, sock_read=read_timeout
    )
    connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(timeout=timeout, connector=connector, auto_decompress=True)


def _upstream_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return body[:200].decode("utf-8", "replace").strip() or "no details"


def status_error(
    status: int, body: bytes, headers: Mapping[str, str], provider: str
) -> ProviderError:
    """The error for an upstream answer with a non-2xx `status`."""
    message = f"{provider} returned HTTP {status}: {_upstream_message(body)}"
    kind = _PASS_THROUGH.get(status)
    if kind is not None:
        retry = headers.get("retry-after")
        keep = {"retry-after": retry} if retry else None
        return ProviderError(message, status=status, code=None, kind=kind, headers=keep)
    # 529: Anthropic's "overloaded", a temporary unavailability like 503.
    unavailable = status in (503, 529)
    code = "upstream_unavailable" if unavailable or status == 502 else "upstream_error"
    return ProviderError(message, status=503 if unavailable else 502, code=code)


def transport_error(exc: BaseException, provider: str, *, started: bool = False) -> ProviderError:
    """The error for a call that got no complete answer (`started`: the body was under way)."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return ProviderError(
            f"{provider} did not answer in time", status=504, code="upstream_timeout"
        )
    if started or isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        # The client learns what happened; the HTTP library's own words go to the log.
        log.warning("the stream from %s broke off: %r", provider, exc)
        return ProviderError(f"the stream from {provider} broke off before it was complete")
    return ProviderError(
        f"could not reach {provider}: {exc}", status=502, code="upstream_unreachable"
    )


_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


async def send(
    client: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: dict[str, Any] | None,
    provider: str,
) -> dict[str, Any]:
    """One request with a complete JSON answer; upstream failures raise ProviderError."""
    try:
        async with client.request(method, url, json=body, headers=headers) as response:
            raw = await response.read()
            if response.status >= 400:
                raise status_error(response.status, raw, response.headers, provider)
    except _ERRORS as exc:
        raise transport_error(exc, provider) from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ProviderError(f"{provider} answered with a body that is not JSON") from exc
    if not isinstance(data, dict):
        raise ProviderError(f"{provider} answered with JSON that is not an object")
    return data


async def lines(
    client: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    body: dict[str, Any],
    provider: str,
) -> AsyncGenerator[bytes, None]:
    """POST and yield the answer's lines as they arrive (for SSE); failures raise ProviderError.

    Lines are split here rather than by aiohttp's readline, which refuses lines longer than
    its buffer, and one SSE `data:` line can carry a whole tool call's arguments.
    """
    started = False
    try:
        async with client.post(url, json=body, headers=headers) as response:
            if response.status >= 400:
                raw = await response.read()
                raise status_error(response.status, raw, response.headers, provider)
            started = True
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    yield line.rstrip(b"\r")
            if buffer:
                yield buffer
    except _ERRORS as exc:
        raise transport_error(exc, provider, started=started) from exc


async def relay(
    client: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    body: dict[str, Any],
    provider: str,
) -> Passthrough:
    """POST and hand back the upstream's answer as a byte stream, closed when consumed."""
    try:
        response = await client.post(url, json=body, headers=headers)
    except _ERRORS as exc:
        raise transport_error(exc, provider) from exc
    if response.status >= 400:
        try:
            raw = await response.read()
        finally:
            response.release()
        raise status_error(response.status, raw, response.headers, provider)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.content.iter_any():
                yield chunk
        except _ERRORS:
            return  # the client sees the stream end early, as the upstream's did
        finally:
            response.release()

    content_type = response.headers.get("content-type", "application/json")
    return Passthrough(response.status, content_type, chunks())
