"""The Conversations API (`/v1/conversations`, `/v1/conversations/{id}/items`) through the
official SDK: shapes, pagination and errors. Conversations in `POST /v1/responses` are in
test_conversation_responses.py."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Server

HELLO = {"type": "message", "role": "user", "content": "Hello!"}


def _call(item_id: str) -> Any:
    """A function_call item with an id of the client's."""
    return {"type": "function_call", "id": item_id, "call_id": "c", "name": "f", "arguments": "{}"}


def _texts(items: Any) -> list[str]:
    return [item.content[0].text for item in items]


def _numbered(client: openai.OpenAI, count: int) -> Any:
    return client.conversations.create(
        items=[{"type": "message", "role": "user", "content": str(n)} for n in range(count)]
    )


# --- conversations ---------------------------------------------------------------------------


def test_create_returns_the_conversation_with_its_metadata(client: openai.OpenAI) -> None:
    before = int(time.time())

    conversation = client.conversations.create(metadata={"topic": "demo"})

    assert conversation.id.startswith("conv_")
    assert before <= conversation.created_at <= time.time()
    assert conversation.model_dump() == {
        "id": conversation.id,
        "object": "conversation",
        "created_at": conversation.created_at,
        "metadata": {"topic": "demo"},
    }


def test_create_without_arguments_has_empty_metadata_and_no_items(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()

    assert conversation.metadata == {}
    page = client.conversations.items.list(conversation.id)
    assert page.model_dump() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_retrieve_returns_the_created_conversation(client: openai.OpenAI) -> None:
    created = client.conversations.create(metadata={"topic": "demo"})

    assert client.conversations.retrieve(created.id) == created


def test_update_replaces_the_metadata(client: openai.OpenAI) -> None:
    created = client.conversations.create(metadata={"topic": "demo", "owner": "ada"})

    updated = client.conversations.update(created.id, metadata={"topic": "project-x"})

    assert updated.model_dump() == {**created.model_dump(), "metadata": {"topic": "project-x"}}
    assert client.conversations.retrieve(created.id) == updated


def test_delete_removes_the_conversation_and_its_items(client: openai.OpenAI) -> None:
    created = client.conversations.create(items=[HELLO])

    deleted = client.conversations.delete(created.id)

    assert deleted.model_dump() == {
        "id": created.id,
        "object": "conversation.deleted",
        "deleted": True,
    }
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(created.id)


def test_an_unknown_conversation_is_a_404_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.conversations.retrieve("conv_nope")

    assert caught.value.body == {
        "message": "Conversation with id 'conv_nope' not found.",
        "type": "invalid_request_error",
        "param": "conversation_id",
        "code": "conversation_not_found",
    }


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.conversations.update("conv_nope", metadata={}),
        lambda c: c.conversations.delete("conv_nope"),
        lambda c: c.conversations.items.create("conv_nope", items=[HELLO]),
        lambda c: c.conversations.items.list("conv_nope"),
        lambda c: c.conversations.items.retrieve("msg_1", conversation_id="conv_nope"),
        lambda c: c.conversations.items.delete("msg_1", conversation_id="conv_nope"),
    ],
    ids=["update", "delete", "create items", "list items", "retrieve item", "delete item"],
)
def test_every_endpoint_answers_404_for_an_unknown_conversation(
    client: openai.OpenAI, call: Any
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        call(client)

    assert caught.value.body["code"] == "conversation_not_found"  # type: ignore[index]


# --- items -----------------------------------------------------------------------------------


def test_initial_items_are_stored_in_order_as_the_items_they_become(
    client: openai.OpenAI,
) -> None:
    conversation = client.conversations.create(
        items=[
            {"type": "message", "role": "developer", "content": "Be brief."},
            HELLO,
            {"role": "assistant", "content": "Hi!"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        ]
    )

    items = client.conversations.items.list(conversation.id, order="asc").data

    ids = [item.id for item in items]
    assert [i[: i.index("_")] for i in ids] == ["msg", "msg", "msg", "fc", "fco"]
    assert [item.model_dump(exclude_none=True) for item in items] == [
        {
            "id": ids[0],
            "type": "message",
            "role": "developer",
            "status": "completed",
            "content": [{"type": "input_text", "text": "Be brief."}],
        },
        {
            "id": ids[1],
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": "Hello!"}],
        },
        {
            "id": ids[2],
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": []}],
        },
        {
            "id": ids[3],
            "type": "function_call",
            "call_id": "call_1",
            "name": "f",
            "arguments": "{}",
            "status": "completed",
        },
        {
            "id": ids[4],
            "type": "function_call_output",
            "call_id": "call_1",
            "output": "42",
            "status": "completed",
        },
    ]


def test_items_create_appends_and_returns_the_added_items(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(items=[HELLO])

    added = client.conversations.items.create(
        conversation.id,
        items=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
            {"type": "message", "role": "user", "content": "b"},
        ],
    )

    assert added.object == "list"
    assert _texts(added.data) == ["a", "b"]
    assert (added.first_id, added.last_id) == (added.data[0].id, added.data[1].id)
    assert added.has_more is False
    listed = client.conversations.items.list(conversation.id, order="asc").data
    assert _texts(listed) == ["Hello!", "a", "b"]
    assert [item.id for item in listed[1:]] == [item.id for item in added.data]


def test_items_create_takes_at_most_20_items(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()

    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.create(conversation.id, items=[HELLO] * 21)  # type: ignore[list-item]

    assert caught.value.body["param"] == "items"  # type: ignore[index]
    assert client.conversations.items.list(conversation.id).data == []


def test_create_takes_at_most_20_initial_items(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.create(items=[HELLO] * 21)  # type: ignore[list-item]

    assert caught.value.body["param"] == "items"  # type: ignore[index]


@pytest.mark.parametrize(
    ("item", "param", "code"),
    [
        ({"type": "message", "role": "user"}, "items[1].content", "missing_required_parameter"),
        ({"type": "message", "role": "robot", "content": "hi"}, "items[1].role", "invalid_value"),
        ({"type": "item_reference", "id": "msg_nope"}, "items[1].id", "item_not_found"),
        (
            {"type": "custom_tool_call_output", "call_id": "c", "output": "x"},
            "items[1].type",
            "unsupported_value",
        ),
    ],
    ids=["missing content", "bad role", "unknown reference", "unsupported type"],
)
def test_a_bad_item_is_a_400_naming_it_and_nothing_is_added(
    client: openai.OpenAI, item: dict[str, Any], param: str, code: str
) -> None:
    conversation = client.conversations.create()

    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.create(conversation.id, items=[HELLO, item])  # type: ignore[list-item]

    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert client.conversations.items.list(conversation.id).data == []


def test_an_item_already_in_the_conversation_is_a_400_and_nothing_is_added(
    client: openai.OpenAI,
) -> None:
    call = _call("fc_1")
    conversation = client.conversations.create(items=[call])

    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.create(conversation.id, items=[HELLO, call])

    assert caught.value.body == {
        "message": "Item 'fc_1' is already in the conversation.",
        "type": "invalid_request_error",
        "param": "items",
        "code": "item_already_in_conversation",
    }
    assert [item.id for item in client.conversations.items.list(conversation.id).data] == ["fc_1"]


def test_an_item_of_another_conversation_can_be_referenced(client: openai.OpenAI) -> None:
    first = client.conversations.create(items=[HELLO])
    [hello] = client.conversations.items.list(first.id).data
    second = client.conversations.create()

    added = client.conversations.items.create(
        second.id, items=[{"type": "item_reference", "id": hello.id}]
    )

    assert [item.model_dump() for item in added.data] == [hello.model_dump()]


def test_list_is_newest_first_by_default_and_pages_with_after(client: openai.OpenAI) -> None:
    conversation = _numbered(client, 5)

    first = client.conversations.items.list(conversation.id, limit=2)
    second = client.conversations.items.list(conversation.id, limit=2, after=first.last_id)
    last = client.conversations.items.list(conversation.id, limit=2, after=second.last_id)

    assert (_texts(first.data), first.has_more) == (["4", "3"], True)
    assert (_texts(second.data), second.has_more) == (["2", "1"], True)
    assert (_texts(last.data), last.has_more) == (["0"], False)
    assert (first.first_id, first.last_id) == (first.data[0].id, first.data[1].id)


def test_list_in_ascending_order_iterates_every_page(client: openai.OpenAI) -> None:
    conversation = _numbered(client, 7)

    pages = client.conversations.items.list(conversation.id, order="asc", limit=3)

    assert _texts(pages) == [str(n) for n in range(7)]
    assert _texts(pages.data) == ["0", "1", "2"]


def test_a_page_that_ends_exactly_at_the_last_item_has_no_more(client: openai.OpenAI) -> None:
    conversation = _numbered(client, 4)

    page = client.conversations.items.list(conversation.id, limit=4)

    assert (len(page.data), page.has_more) == (4, False)


def test_list_after_an_item_not_in_the_conversation_is_a_404(client: openai.OpenAI) -> None:
    conversation = _numbered(client, 2)

    with pytest.raises(openai.NotFoundError) as caught:
        client.conversations.items.list(conversation.id, after="msg_gone")

    assert caught.value.body == {
        "message": "No item found with id 'msg_gone'.",
        "type": "invalid_request_error",
        "param": "after",
        "code": None,
    }


@pytest.mark.parametrize("limit", [0, 101])
def test_list_limit_outside_1_to_100_is_a_400(client: openai.OpenAI, limit: int) -> None:
    conversation = client.conversations.create()

    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.list(conversation.id, limit=limit)

    assert caught.value.body["param"] == "limit"  # type: ignore[index]


def test_include_is_accepted_and_items_are_always_whole(client: openai.OpenAI) -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": [image]}]  # type: ignore[list-item]
    )

    [item] = client.conversations.items.list(
        conversation.id, include=["message.input_image.image_url"]
    ).data

    assert item.content[0].model_dump(exclude_none=True) == image  # type: ignore[union-attr]


def test_retrieve_item_returns_it(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(items=[HELLO])
    [listed] = client.conversations.items.list(conversation.id).data

    item = client.conversations.items.retrieve(listed.id, conversation_id=conversation.id)

    assert item == listed


def test_retrieve_of_an_unknown_item_is_a_404_naming_it(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()

    with pytest.raises(openai.NotFoundError) as caught:
        client.conversations.items.retrieve("msg_nope", conversation_id=conversation.id)

    assert caught.value.body == {
        "message": "Item with id 'msg_nope' not found.",
        "type": "invalid_request_error",
        "param": "item_id",
        "code": "item_not_found",
    }


def test_delete_item_removes_it_and_returns_the_conversation(client: openai.OpenAI) -> None:
    conversation = _numbered(client, 3)
    middle = client.conversations.items.list(conversation.id).data[1]

    returned = client.conversations.items.delete(middle.id, conversation_id=conversation.id)

    assert returned == conversation
    assert _texts(client.conversations.items.list(conversation.id, order="asc")) == ["0", "2"]
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.delete(middle.id, conversation_id=conversation.id)


def test_a_deleted_item_can_be_added_again_at_the_end(client: openai.OpenAI) -> None:
    call = _call("fc_again")
    conversation = client.conversations.create(items=[call, HELLO])
    client.conversations.items.delete("fc_again", conversation_id=conversation.id)

    client.conversations.items.create(conversation.id, items=[call])

    listed = client.conversations.items.list(conversation.id, order="asc").data
    assert [item.type for item in listed] == ["message", "function_call"]


def test_the_items_body_is_required(server: Server) -> None:
    created = httpx.post(f"{server.base_url}/conversations", json={}, timeout=10).json()

    answer = httpx.post(f"{server.base_url}/conversations/{created['id']}/items", json={})

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "items"
    assert answer.json()["error"]["code"] == "missing_required_parameter"
