"""Who is calling: the server's own API keys (`OPENRESPONSES_API_KEYS`, and those made
with `openresponses keys create`), and the caller as the turn pipeline sees it.

A self-hosted gateway holding provider keys must not serve whoever reaches its port. When
keys are configured, every request needs one of them as its bearer token, and sees only its
key's project; when none are, the server checks nothing, keeps everything in one project,
and forwards the client's token to providers that lack a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from openresponses.api import ratelimits
from openresponses.core.caller import Caller
from openresponses.errors import APIError, ErrorKind
from openresponses.ratelimit.limiter import Limiter
from openresponses.store.base import DEFAULT_PROJECT
from openresponses.store.keys import ApiKey, KeyRing

PROVIDER_HEADER = "x-model-provider"
"""Names the provider a request's model goes to (see providers.registry's `route`)."""


def bearer(headers: Mapping[str, str]) -> str | None:
    """The bearer token of a request, if it has one."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def caller(headers: Mapping[str, str], key: ApiKey | None) -> Caller:
    """The caller of a request that came with `key` (see `identify`). A client's token is
    forwarded upstream only by a server without keys: otherwise it is one of ours."""
    provider = headers.get(PROVIDER_HEADER)
    if key is not None:
        return Caller(project=key.project, key=key, provider=provider)
    return Caller(project=DEFAULT_PROJECT, upstream_key=bearer(headers), provider=provider)


async def identify(
    keys: KeyRing, limiter: Limiter, token: str | None, address: str | None
) -> ApiKey | None:
    """The key a request's bearer `token` is; None on a server without keys (open, and
    single-project). Raises the 401 for a missing or unknown key, and the 429 for a client
    `address` that has presented too many wrong keys: it is refused before its key is
    looked up, unless the key is one the server knows already (so a key in use costs no
    counting)."""
    if not await keys.required():
        return None
    if token is None:
        raise APIError(
            ErrorKind.AUTHENTICATION,
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    found = keys.known(token)
    if found is not None:
        return found
    await limiter.check_address(address)
    found = await keys.find(token)
    if found is None:
        await limiter.failed(address)
        raise APIError(
            ErrorKind.AUTHENTICATION, "Incorrect API key provided.", code="invalid_api_key"
        )
    return found


def client_address(scope: Scope) -> str | None:
    """The client's address as the ASGI server gives it (uvicorn takes X-Forwarded-For
    from the proxies it trusts: by default, those on this machine)."""
    client = scope.get("client")
    return str(client[0]) if client else None


KEY_STATE = "key"
"""Where `ApiKeyMiddleware` leaves a request's key in its ASGI scope's state."""


def request_key(scope: Scope) -> ApiKey | None:
    found: ApiKey | None = scope["state"].get(KEY_STATE)
    return found


class ApiKeyMiddleware:
    """Refuses a request without a valid key, or over its key's rate limits, and leaves the
    key in the scope's state for the handlers; sits inside connexion's exception handling so
    that the refusal leaves in the API's error shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            services: Any = scope.get("state", {}).get("services")
            # An open server, as it was a moment ago, has nothing to check (and no key).
            if services is not None and not services.keys.known_open():
                token = bearer(Headers(scope=scope))
                address = client_address(scope)
                key = await identify(services.keys, services.limiter, token, address)
                scope["state"][KEY_STATE] = key
                if key is not None:
                    await ratelimits.admit(services.limiter, key, scope)
        await self.app(scope, receive, send)
