"""Rate limits over HTTP: a request counted against its key's limits (a 429 past them), and
OpenAI's `x-ratelimit-*` headers on every answer to a key that has limits, errors included.

The headers are added by `RateLimitHeaders`, outside connexion's exception handling, so
that they reach the answers that handling makes (a 404, a 400, the 429 itself) as well as
the handlers' own; what they say is left in the scope's state when the request is counted.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openresponses.ratelimit.limiter import Level, Limiter, duration
from openresponses.store.keys import ApiKey

LEVELS_STATE = "rate_limits"
"""Where `admit` leaves a request's `Level`s in its ASGI scope's state."""


async def admit(limiter: Limiter, key: ApiKey, scope: Scope) -> None:
    """Count a request of `key`; raises the 429 when it is over a limit."""
    admission = await limiter.admit(key)
    if admission is None:
        return
    scope["state"][LEVELS_STATE] = admission.levels
    if admission.refusal is not None:
        raise admission.refusal


def headers(levels: tuple[Level, ...]) -> list[tuple[bytes, bytes]]:
    """OpenAI's trio for each limit the key has (`x-ratelimit-limit-requests`, …)."""
    found = []
    for level in levels:
        found += [
            (f"x-ratelimit-limit-{level.dimension}", str(level.limit)),
            (f"x-ratelimit-remaining-{level.dimension}", str(level.remaining)),
            (f"x-ratelimit-reset-{level.dimension}", duration(level.ahead)),
        ]
    return [(name.encode(), value.encode()) for name, value in found]


class RateLimitHeaders:
    """Adds the `x-ratelimit-*` headers to the answer of a request `admit` counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.get("state") or {}  # the inner middlewares' too
        services: Any = state.get("services")
        # An open server, as it was a moment ago, has no key to count: nothing to wrap.
        if scope["type"] != "http" or services is None or services.keys.known_open():
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            levels = state.get(LEVELS_STATE)
            if levels and message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], *headers(levels)]}
            await send(message)

        await self.app(scope, receive, sending)
