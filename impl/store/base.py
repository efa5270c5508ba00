"""The storage interface: what the API needs to persist, and nothing about how.

Every object belongs to a project (see `keys`), and every call names the caller's: an
object of another project is answered exactly as a missing one.

A response is stored with the input items it was given (after normalisation: every item
has an id) and its output items (inside `Response.output`). A conversation is an ordered
list of such items, appended to by the conversations API and by responses that name it.
Implementations keep these durable before a call returns, so a stored object survives a
crash of the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from openresponses.generated.openai_models import ConversationResource, Response
from openresponses.items import Item

DEFAULT_PROJECT = "proj_default"
"""The project of a server without keys, and of what was stored before projects existed."""


@dataclass(frozen=True)
class StoredResponse:
    """A response and the input items it was created from (its own, not its chain's)."""

    response: Response
    input_items: list[Item]
    project: str


@dataclass(frozen=True)
class ItemPage:
    items: list[Item]
    has_more: bool


class ItemConflict(Exception):
    """Items a conversation holds already (an item id appears once in a conversation)."""

    def __init__(self, item_ids: list[str]) -> None:
        super().__init__(f"already in the conversation: {', '.join(item_ids)}")
        self.item_ids = item_ids


class MissingItem(LookupError):
    """An item id that is not in the conversation (a pagination cursor)."""

    def __init__(self, item_id: str) -> None:
        super().__init__(item_id)
        self.item_id = item_id


class Conversations(Protocol):
    """Persistence for conversations and their items, in the order they were appended.

    Every method is safe to call from the event loop, and durable when it returns: a
    conversation is written through, never behind, so that the next turn reads it whole.
    """

    async def create(
        self, project: str, conversation: ConversationResource, items: Sequence[Item]
    ) -> None:
        """Insert a new conversation holding `items` (input items, see openresponses.items)."""

    async def get(self, project: str, conversation_id: str) -> ConversationResource | None:
        """The conversation, or None when it does not exist (or was deleted)."""

    async def update(
        self, project: str, conversation_id: str, metadata: dict[str, str]
    ) -> ConversationResource | None:
        """Replace the conversation's metadata; None when it does not exist."""

    async def delete(self, project: str, conversation_id: str) -> bool:
        """Delete a conversation and its items; False when there was nothing to delete."""

    async def append(
        self,
        project: str,
        conversation_id: str,
        inputs: Sequence[Item],
        outputs: Sequence[Item] = (),
        *,
        skip_present: bool = False,
    ) -> bool:
        """Append input items, then response output items, as one block after everything
        the conversation holds when the call commits; False when it does not exist.

        An item whose id the conversation holds already (or that repeats in the block) is
        left out with `skip_present`; otherwise `ItemConflict` is raised and nothing is added.
        """

    async def items(
        self,
        project: str,
        conversation_id: str,
        *,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> ItemPage | None:
        """A page of the conversation's items, or None when it does not exist.

        `after` is an item id; the page starts just past it in the requested order, and
        `MissingItem` is raised when the conversation does not hold it.
        """

    async def context(self, project: str, conversation_id: str) -> list[Item] | None:
        """Every item of the conversation, oldest first; None when it does not exist."""

    async def item(self, project: str, conversation_id: str, item_id: str) -> Item | None:
        """One item of the conversation; None when either does not exist."""

    async def delete_item(self, project: str, conversation_id: str, item_id: str) -> bool:
        """Remove one item from the conversation; False when either does not exist."""


class Store(Protocol):
    """Persistence for responses. Every method is safe to call from the event loop."""

    async def save(self, record: StoredResponse) -> None:
        """Insert or replace the response `record.response.id` and its input items."""

    async def get(self, project: str, response_id: str) -> StoredResponse | None:
        """The stored response, or None when it does not exist (or was deleted)."""

    async def delete(self, project: str, response_id: str) -> bool:
        """Delete a response and its items; False when there was nothing to delete."""

    async def input_items(
        self,
        project: str,
        response_id: str,
        *,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> ItemPage | None:
        """A page of a response's input items, or None when the response does not exist.

        `after` is an item id; the page starts just past it in the requested order.
        """

    async def context(self, project: str, response_id: str) -> list[Item] | None:
        """The conversation up to and including `response_id`, oldest first.

        That is, for the chain root … parent → response: each response's input items
        followed by its output items. None when `response_id` does not exist.
        """

    async def find_item(self, project: str, item_id: str) -> Item | None:
        """An input or output item of any stored response or conversation, by its id (for
        item_reference)."""

    async def unfinished(self) -> list[tuple[str, str]]:
        """The (project, id) of the responses stored as `queued` or `in_progress`."""

    async def schema_version(self) -> int:
        """The latest migration applied to the database (0: none); raises when the database
        cannot be reached. A readiness check: one cheap query."""

    @property
    def conversations(self) -> Conversations:
        """The conversations, stored beside the responses."""

    async def close(self) -> None:
        """Release connections and files."""
