"""HTTP plumbing shared by provider adapters: sending, streaming, relaying, and turning
upstream failures into errors that tell the client what happened (their key was refused,
they were rate limited, the upstream is down or slow) rather than a bare 500.

The upstream client is aiohttp: on this path it costs ~120 µs a call against ~490 µs for
httpx (bench/upstream_clients.py, figures in docs/benchmarks.md), and every call of every
response pays it.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from openresponses.config import ProviderConfig
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


KEEPALIVE_SECONDS = 4.0
"""How long an idle upstream connection is kept for reuse: less than the 5 s after which
uvicorn (vLLM's server, and many a self-hosted provider's) closes one. With aiohttp's 15 s, a
request could be written to a connection the upstream was closing at that moment, and fail
with "Can not write request body": the likely cause of one such failure, seen once under heavy
load between the two model calls of an MCP turn."""


def session(*, read_timeout: float, connect_timeout: float = 10.0) -> aiohttp.ClientSession:
    """The one upstream client of a server: pooled keep-alive connections to every provider."""
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout, sock_read=read_timeout
    )
    connector = aiohttp.TCPConnector(
        limit=1000, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=KEEPALIVE_SECONDS
    )
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

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504, 529})
"""Statuses that mean "try again": overload, rate limits, transient server failures."""


def retry_after(value: str | None) -> float | None:
    """A `Retry-After` header in seconds (it may be a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


DONE: dict[str, Any] = {}
"""What `Upstream.sse` yields for a `data: [DONE]` line (compare with `is`)."""


@dataclass(frozen=True)
class Upstream:
    """One provider's HTTP side: the server's shared client, the provider's name for messages,
    and its retry policy and timeouts. Adapters make every upstream call through it.

    A call that fails before any answer arrives is retried up to `retries` times: when the
    connection could not be made (nothing reached the server) or the answer is a status in
    `RETRYABLE`. Waits grow exponentially from `base_delay` with jitter, or follow the
    upstream's `Retry-After`; a `Retry-After` longer than `max_delay` is not waited out but
    passed to the client with the error. Once a stream has started, nothing is retried: the
    client may already have part of the answer.

    A call (`answer`, `sse`, `relay`) that sends nothing for `first_byte_timeout` seconds
    (until its first chunk, retries and their waits included: a retry that would end past
    that is not made) or `idle_timeout` seconds between two chunks fails with a 504
    `upstream_timeout`, its connection closed. So a client waits at most
    `first_byte_timeout` for the first event however many retries there are, and at most
    `idle_timeout` between two.
    """

    client: aiohttp.ClientSession
    name: str
    retries: int = 2
    base_delay: float = 0.25
    max_delay: float = 8.0
    connect_timeout: float | None = None
    read_timeout: float | None = None
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None

    def _wait(self, attempt: int, after: str | None, deadline: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None: give up now."""
        if attempt >= self.retries:
            return None
        asked = retry_after(after)
        if asked is not None:
            wait = asked if asked <= self.max_delay else None
        else:
            wait = min(self.max_delay, self.base_delay * 2.0**attempt) * random.uniform(0.5, 1.0)
        now = asyncio.get_running_loop().time()
        if wait is not None and deadline is not None and now + wait >= deadline:
            return None  # the upstream's own error says more than a timeout would
        return wait

    def _options(self) -> dict[str, Any]:
        if self.connect_timeout is None and self.read_timeout is None:
            return {}  # the session's defaults
        return {
            "timeout": aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
            )
        }

    async def _open(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: dict[str, Any] | None,
        deadline: float | None = None,
    ) -> aiohttp.ClientResponse:
        """The first successful answer (status < 400), its body unread; the caller releases it.
        No retry is made that would end after the loop time `deadline`."""
        payload = None
        if body is not None:  # orjson: aiohttp's `json=` encodes with the slower json module
            payload = orjson.dumps(body)
            headers = {**headers, "Content-Type": "application/json"}
        for attempt in itertools.count():
            try:
                response = await self.client.request(
                    method, url, data=payload, headers=headers, **self._options()
                )
            except aiohttp.ClientConnectorError as exc:  # nothing reached the server
                wait = self._wait(attempt, None, deadline)
                if wait is None:
                    raise transport_error(exc, self.name) from exc
            except _ERRORS as exc:
                raise transport_error(exc, self.name) from exc
            else:
                if response.status < 400:
                    return response
                try:
                    raw = await response.read()
                except _ERRORS as exc:
                    raise transport_error(exc, self.name) from exc
                finally:
                    response.release()
                after = response.headers.get("retry-after")
                retryable = response.status in RETRYABLE
                wait = self._wait(attempt, after, deadline) if retryable else None
                if wait is None:
                    raise status_error(response.status, raw, response.headers, self.name)
            log.info("%s: retrying %s %s in %.2f s", self.name, method, url, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # itertools.count() never ends

    def _json(self, raw: bytes, what: str = "answered with a body") -> dict[str, Any]:
        try:
            data = orjson.loads(raw)
        except ValueError as exc:
            raise ProviderError(f"{self.name} {what} that is not JSON") from exc
        if not isinstance(data, dict):
            raise ProviderError(f"{self.name} {what} that is not a JSON object")
        return data

    async def answer(
        self,
        url: str,
        headers: Mapping[str, str],
        body: dict[str, Any] | None,
        *,
        method: str = "POST",
    ) -> dict[str, Any]:
        """A call answered in one JSON body, within the silence bounds (as `relay`)."""
        response, first = await self._first_chunk(method, url, headers, body)
        return self._json(b"".join([chunk async for chunk in self._rest(response, first)]))

    async def sse(
        self, url: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """POST a model call and yield the JSON object of each SSE `data:` line as it arrives
        (other lines are framing), `DONE` for `[DONE]`; failures raise ProviderError, and so
        does a payload that is not a JSON object.

        Lines are split here rather than by aiohttp's readline, which refuses lines longer
        than its buffer, and one SSE `data:` line can carry a whole tool call's arguments.
        Splitting and parsing in this one generator, rather than in a chain of them, spares
        every line of a stream a generator step or two (the `event:` and blank lines
        included).
        """
        response, chunk = await self._first_chunk("POST", url, headers, body)
        buffer = chunk
        try:
            while chunk:
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    if line.startswith(b"data:"):
                        yield self._sse_data(line[5:].strip())
                chunk = await self._next_chunk(response)
                buffer += chunk
            if buffer.startswith(b"data:"):
                yield self._sse_data(buffer[5:].strip())
        except _ERRORS as exc:
            raise transport_error(exc, self.name, started=True) from exc
        finally:
            response.release()

    def _sse_data(self, data: bytes) -> dict[str, Any]:
        if data == b"[DONE]":
            return DONE
        return self._json(data, "sent a stream event")

    async def _first_chunk(
        self, method: str, url: str, headers: Mapping[str, str], body: dict[str, Any] | None
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """The answer to a call and its first chunk (b"" for an empty body), within
        `first_byte_timeout`. The answer's connection is the caller's to release."""
        limit = self.first_byte_timeout
        deadline = None if limit is None else asyncio.get_running_loop().time() + limit
        bound = asyncio.timeout_at(deadline)
        response = None
        try:
            async with bound:
                response = await self._open(method, url, headers, body, deadline)
                return response, await response.content.readany()
        except BaseException as exc:
            if response is not None:
                response.release()  # its body unread: aiohttp closes the connection
            if limit is not None and bound.expired():
                raise self._silent(limit, started=False) from exc
            if isinstance(exc, _ERRORS):
                raise transport_error(exc, self.name, started=response is not None) from exc
            raise

    async def _next_chunk(self, response: aiohttp.ClientResponse) -> bytes:
        """The answer's next chunk (b"" at its end), within `idle_timeout`."""
        chunk = response.content.read_nowait()  # what has arrived: no wait, so no timer
        if chunk or response.content.at_eof():
            return chunk
        bound = asyncio.timeout(self.idle_timeout)
        try:
            async with bound:
                return await response.content.readany()
        except TimeoutError as exc:
            if self.idle_timeout is not None and bound.expired():
                raise self._silent(self.idle_timeout, started=True) from exc
            raise

    def _silent(self, seconds: float, *, started: bool) -> ProviderError:
        when = "between two chunks of its answer" if started else "before its answer began"
        return ProviderError(
            f"{self.name} sent nothing for {seconds:g} s {when}.",
            status=504,
            code="upstream_timeout",
        )

    async def relay(
        self, url: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> Passthrough:
        """POST and hand back the upstream's answer once its first chunk is in, its body a byte
        stream closed when consumed; a silence or a break in it raises ProviderError there."""
        response, chunk = await self._first_chunk("POST", url, headers, body)
        content_type = response.headers.get("content-type", "application/json")
        return Passthrough(response.status, content_type, self._rest(response, chunk))

    async def _rest(self, response: aiohttp.ClientResponse, chunk: bytes) -> AsyncIterator[bytes]:
        """`chunk` and the rest of the answer's body, each within `idle_timeout`; releases
        the answer at its end."""
        try:
            while chunk:
                yield chunk
                chunk = await self._next_chunk(response)
        except _ERRORS as exc:
            raise transport_error(exc, self.name, started=True) from exc
        finally:
            response.release()


def upstream(config: ProviderConfig, client: aiohttp.ClientSession) -> Upstream:
    """The `Upstream` a provider's configuration asks for."""
    return Upstream(
        client,
        config.name,
        retries=config.max_retries,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        first_byte_timeout=config.first_byte_timeout,
        idle_timeout=config.idle_timeout,
    )


class Adapter:
    """What every HTTP adapter shares: its configuration, its `Upstream`, bearer-token headers
    (the server's key, else the client's), and the OpenAI-style `/chat/completions` and
    `/models` endpoints most providers serve. An adapter overrides what its API does
    differently. Embeddings go to `/embeddings` the OpenAI way, which is where providers that
    have them serve them."""

    structured_output = True
    file_urls = False  # chat completions takes files inline only

    def __init__(self, config: ProviderConfig, client: aiohttp.ClientSession) -> None:
        self.name = config.name
        self.base_url = config.base_url.rstrip("/")
        self.api_key = config.api_key
        self.upstream = upstream(config, client)

    def bearer(self, api_key: str | None) -> dict[str, str]:
        key = self.api_key or api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def headers(self, api_key: str | None) -> dict[str, str]:
        """The native API's authentication headers."""
        return self.bearer(api_key)

    async def chat_completions(self, body: dict[str, Any], *, api_key: str | None) -> Passthrough:
        # A bearer token everywhere: OpenAI-compatible endpoints (Anthropic's too) take one.
        url = f"{self.base_url}/chat/completions"
        return await self.upstream.relay(url, self.bearer(api_key), body)

    async def embeddings(self, body: dict[str, Any], *, api_key: str | None) -> dict[str, Any]:
        url = f"{self.base_url}/embeddings"
        return await self.upstream.answer(url, self.bearer(api_key), body)

    async def list_models(self, *, api_key: str | None) -> list[str]:
        url = f"{self.base_url}/models"
        data = await self.upstream.answer(url, self.headers(api_key), None, method="GET")
        return [str(model["id"]) for model in data.get("data", [])]


def failed_mid_stream(provider: str, error: Any) -> ProviderError:
    """The error for a stream whose upstream sent an error event (`error`: its error object)."""
    message = error.get("message", error) if isinstance(error, dict) else error
    return ProviderError(f"{provider} failed mid-stream: {message}")


def broke_off(provider: str) -> ProviderError:
    """The error for a stream that ended without its end marker."""
    return ProviderError(f"the stream from {provider} broke off before it was complete")
