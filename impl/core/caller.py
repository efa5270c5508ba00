"""Who is asking: what the turn pipeline knows of a request's sender.

The transports build it (api.auth's `caller`); the pipeline reads nothing else of a request's
headers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """Who is asking, as far as the pipeline needs to know."""

    upstream_key: str | None = None
    """The client's own key, forwarded to providers that have none (never one of ours)."""
    provider: str | None = None
    """The provider the client named with the `x-model-provider` header."""
