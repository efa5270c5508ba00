"""Who is asking: what the turn pipeline knows of a request's sender.

The transports build it (api.auth's `caller`); the pipeline reads nothing else of a request's
headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from openresponses.store.keys import ApiKey


@dataclass(frozen=True)
class Caller:
    """Who is asking, as far as the pipeline needs to know."""

    project: str
    """The project whose objects the request sees (every other project's do not exist)."""
    key: ApiKey | None = None
    """The server's key the request came with (None: the server has none)."""
    upstream_key: str | None = None
    """The client's own key, forwarded to providers that have none (never one of ours)."""
    provider: str | None = None
    """The provider the client named with the `x-model-provider` header."""

    @property
    def project_name(self) -> str:
        """The name of the project (`default`: the server's own, without keys), by which
        the config file may give it providers of its own."""
        return self.key.project_name if self.key is not None else "default"
