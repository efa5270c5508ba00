"""Who is calling: the optional API keys of the server's own (`OPENRESPONSES_API_KEYS`),
and the caller as the turn pipeline sees it.

A self-hosted gateway holding provider keys must not serve whoever reaches its port. When
keys are configured, every request needs one of them as its bearer token; when none are,
the server checks nothing and forwards the client's token to providers that lack a key.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from openresponses.config import Settings
from openresponses.core.caller import Caller
from openresponses.errors import APIError, ErrorKind

PROVIDER_HEADER = "x-model-provider"
"""Names the provider a request's model goes to (see providers.registry's `route`)."""


def bearer(headers: Mapping[str, str]) -> str | None:
    """The bearer token of a request, if it has one."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def caller(headers: Mapping[str, str], settings: Settings) -> Caller:
    """The caller of a request. When the server checks keys of its own, the client's token
    is one of those, meant for us, and is never passed on upstream."""
    key = None if settings.api_keys else bearer(headers)
    return Caller(upstream_key=key, provider=headers.get(PROVIDER_HEADER))


class ApiKeyMiddleware:
    """Refuses a request without a valid key; sits inside connexion's exception handling so
    that the refusal leaves in the API's error shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            check(_keys(scope), bearer(Headers(scope=scope)))
        await self.app(scope, receive, send)


def _keys(scope: Scope) -> tuple[str, ...]:
    services: Any = scope.get("state", {}).get("services")
    return services.settings.api_keys if services is not None else ()


def check(keys: tuple[str, ...], token: str | None) -> None:
    if not keys:
        return
    if token is None:
        raise APIError(
            ErrorKind.AUTHENTICATION,
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    # Compare against every key in constant time, so timing reveals nothing about them.
    if not any([hmac.compare_digest(token.encode(), key.encode()) for key in keys]):
        raise APIError(
            ErrorKind.AUTHENTICATION, "Incorrect API key provided.", code="invalid_api_key"
        )
