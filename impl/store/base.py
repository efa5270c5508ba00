"""The storage interface: what the API needs to persist, and nothing about how.

A response is stored with the input items it was given (after normalisation: every item
has an id) and its output items (inside `Response.output`). Implementations keep these
durable before a call returns, so a stored object survives a crash of the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from openresponses.generated.openai_models import Response


@dataclass(frozen=True)
class StoredResponse:
    """A response and the input items it was created from (its own, not its chain's)."""

    response: Response
    input_items: list[Any]  # ItemResource models (see core.items)


@dataclass(frozen=True)
class ItemPage:
    items: list[Any]
    has_more: bool


class Store(Protocol):
    """Persistence for responses. Every method is safe to call from the event loop."""

    async def save(self, record: StoredResponse) -> None:
        """Insert or replace the response `record.response.id` and its input items."""

    async def get(self, response_id: str) -> StoredResponse | None:
        """The stored response, or None when it does not exist (or was deleted)."""

    async def delete(self, response_id: str) -> bool:
        """Delete a response and its items; False when there was nothing to delete."""

    async def input_items(
        self, response_id: str, *, after: str | None, limit: int, order: Literal["asc", "desc"]
    ) -> ItemPage | None:
        """A page of a response's input items, or None when the response does not exist.

        `after` is an item id; the page starts just past it in the requested order.
        """

    async def context(self, response_id: str) -> list[Any] | None:
        """The conversation up to and including `response_id`, oldest first.

        That is, for the chain root … parent → response: each response's input items
        followed by its output items. None when `response_id` does not exist.
        """

    async def find_item(self, item_id: str) -> Any | None:
        """An input or output item of any stored response, by its id (for item_reference)."""

    async def close(self) -> None:
        """Release connections and files."""
