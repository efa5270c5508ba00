"""The `conversation` parameter of `POST /v1/responses` (and of input token counts).

A conversation's items are the context before the request's input, as a
`previous_response_id` chain's would be; the two are exclusive. After the response has
completed (or stopped incomplete), its input items and then its output items are appended
to the conversation as one block (see `Turn`), before the response is saved as ended. A
response that failed or was cancelled adds nothing, so the client can retry the same input
without repeating it.

`store: false` does not stop the append: `store` is about the response object (never
retrievable by id), while naming a conversation asks for it to be extended, and OpenAI
documents no exception. Recorded OpenAI behaviour that peers cite disagrees on this point;
the choice and why are in the README.
"""

from __future__ import annotations

from openresponses.errors import APIError, invalid, not_found
from openresponses.generated import openai_models as m
from openresponses.items import Item
from openresponses.store.base import Store


def requested(request: m.CreateResponse | m.TokenCountsBody) -> str | None:
    """The id of the conversation a request names (as a string or `{"id": ...}`).

    Naming one together with `previous_response_id` is a 400, in OpenAI's words."""
    param = request.conversation
    if param is None:
        return None
    if request.previous_response_id:
        raise invalid(
            "Mutually exclusive parameters. Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            code="mutually_exclusive_parameters",
        )
    return param if isinstance(param, str) else param.id


def missing(conversation_id: str, param: str) -> APIError:
    return not_found(
        f"Conversation with id '{conversation_id}' not found.",
        param=param,
        code="conversation_not_found",
    )


async def history(store: Store, project: str, conversation_id: str) -> list[Item]:
    """The conversation's items, oldest first; a 404 when the project has no such one."""
    found = await store.conversations.context(project, conversation_id)
    if found is None:
        raise missing(conversation_id, "conversation")
    return found
