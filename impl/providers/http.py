"""HTTP plumbing shared by provider adapters: sending, and turning upstream failures into
errors that tell the client what happened (their key was refused, they were rate limited,
the upstream is down or slow) rather than a bare 500.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from openresponses.errors import ErrorKind
from openresponses.providers.base import Passthrough, ProviderError

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


def _upstream_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        error = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except ValueError:
        pass
    return body[:200].decode("utf-8", "replace").strip() or "no details"


def status_error(status: int, body: bytes, headers: httpx.Headers, provider: str) -> ProviderError:
    """The error for an upstream answer with a non-2xx `status`."""
    message = f"{provider} returned HTTP {status}: {_upstream_message(body)}"
    kind = _PASS_THROUGH.get(status)
    if kind is not None:
        keep = {"retry-after": headers["retry-after"]} if "retry-after" in headers else None
        return ProviderError(message, status=status, code=None, kind=kind, headers=keep)
    code = "upstream_unavailable" if status in (502, 503) else "upstream_error"
    return ProviderError(message, status=503 if status == 503 else 502, code=code)


def transport_error(exc: httpx.HTTPError, provider: str) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(
            f"{provider} did not answer in time", status=504, code="upstream_timeout"
        )
    return ProviderError(
        f"could not reach {provider}: {exc}", status=502, code="upstream_unreachable"
    )


async def check_status(response: httpx.Response, provider: str) -> None:
    """Raise for a non-2xx streamed response (reading its small error body first)."""
    if response.status_code >= 400:
        body = await response.aread()
        raise status_error(response.status_code, body, response.headers, provider)


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    provider: str = "upstream",
) -> httpx.Response:
    """One request with a complete answer; upstream failures raise ProviderError."""
    try:
        response = await client.request(method, url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider) from exc
    if response.status_code >= 400:
        raise status_error(response.status_code, response.content, response.headers, provider)
    return response


async def relay(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    provider: str,
) -> Passthrough:
    """POST and hand back the upstream's answer as a byte stream, closed when consumed."""
    request = client.build_request("POST", url, json=body, headers=headers)
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise transport_error(exc, provider) from exc
    if response.status_code >= 400:
        try:
            await check_status(response, provider)
        finally:
            await response.aclose()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.HTTPError:
            return  # the client sees the stream end early, as the upstream's did
        finally:
            await response.aclose()

    content_type = response.headers.get("content-type", "application/json")
    return Passthrough(response.status_code, content_type, chunks())
