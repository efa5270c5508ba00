"""Conversations in the SQL store, on a real DuckDB file and on PostgreSQL (see test_store)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from openresponses.generated import openai_models as m
from openresponses.items import new_id
from openresponses.store import open_store
from openresponses.store.base import ItemConflict, MissingItem
from openresponses.store.conversations import SqlConversations
from openresponses.store.sql import SqlStore
from tests.store.test_store import P, assistant_message, run, texts, user_message


@pytest.fixture
def conversations(store: SqlStore) -> SqlConversations:
    return store.conversations


def conversation(metadata: dict[str, str] | None = None) -> m.ConversationResource:
    return m.ConversationResource(
        id=new_id("conversation"), object="conversation", created_at=1, metadata=metadata or {}
    )


def created(conversations: SqlConversations, *items: Any) -> str:
    made = conversation()
    run(conversations.create(P, made, list(items)))
    return made.id


def everything(conversations: SqlConversations, conversation_id: str) -> list[Any]:
    found = run(conversations.context(P, conversation_id))
    assert found is not None
    return found


def test_get_returns_the_created_conversation(conversations: SqlConversations) -> None:
    made = conversation({"topic": "demo"})

    run(conversations.create(P, made, []))

    assert run(conversations.get(P, made.id)) == made


def test_get_of_an_unknown_conversation_is_none(conversations: SqlConversations) -> None:
    assert run(conversations.get(P, "conv_nope")) is None
    assert run(conversations.context(P, "conv_nope")) is None
    assert run(conversations.items(P, "conv_nope", after=None, limit=20, order="asc")) is None


def test_update_replaces_the_metadata(conversations: SqlConversations) -> None:
    made = conversation({"a": "1"})
    run(conversations.create(P, made, []))

    updated = run(conversations.update(P, made.id, {"b": "2"}))

    assert updated == made.model_copy(update={"metadata": {"b": "2"}})
    assert run(conversations.get(P, made.id)) == updated
    assert run(conversations.update(P, "conv_nope", {})) is None


def test_delete_removes_the_conversation_and_its_items(
    store: SqlStore, conversations: SqlConversations
) -> None:
    hello = user_message("Hello")
    conversation_id = created(conversations, hello)

    assert run(conversations.delete(P, conversation_id)) is True

    assert run(conversations.get(P, conversation_id)) is None
    assert run(conversations.item(P, conversation_id, hello.id)) is None
    assert run(store.find_item(P, hello.id)) is None
    assert run(conversations.delete(P, conversation_id)) is False


def test_append_adds_inputs_then_outputs_after_what_is_there(
    conversations: SqlConversations,
) -> None:
    conversation_id = created(conversations, user_message("one"))

    added = run(
        conversations.append(
            P, conversation_id, [user_message("two")], [assistant_message("three")]
        )
    )

    assert added is True
    assert texts(everything(conversations, conversation_id)) == ["one", "two", "three"]


def test_items_come_back_as_the_models_they_were_saved_as(
    conversations: SqlConversations,
) -> None:
    call = m.FunctionToolCall(
        id=new_id("function_call"),
        type="function_call",
        call_id="call_1",
        name="f",
        arguments="{}",
        status="completed",
    )
    reasoning = m.ReasoningItem(id=new_id("reasoning"), type="reasoning", summary=[])
    inputs = [user_message("hi")]
    conversation_id = created(conversations)

    run(conversations.append(P, conversation_id, inputs, [reasoning, call]))

    assert everything(conversations, conversation_id) == [*inputs, reasoning, call]


def test_append_to_an_unknown_conversation_is_false(conversations: SqlConversations) -> None:
    assert run(conversations.append(P, "conv_nope", [user_message("hi")])) is False


def test_an_item_already_present_is_refused_and_nothing_is_added(
    conversations: SqlConversations,
) -> None:
    hello = user_message("Hello")
    conversation_id = created(conversations, hello)

    with pytest.raises(ItemConflict) as caught:
        run(conversations.append(P, conversation_id, [user_message("new"), hello]))

    assert caught.value.item_ids == [hello.id]
    assert texts(everything(conversations, conversation_id)) == ["Hello"]


def test_an_item_repeated_in_one_block_is_refused(conversations: SqlConversations) -> None:
    hello = user_message("Hello")
    conversation_id = created(conversations)

    with pytest.raises(ItemConflict):
        run(conversations.append(P, conversation_id, [hello, hello]))

    assert everything(conversations, conversation_id) == []


def test_skip_present_leaves_out_only_the_items_present(conversations: SqlConversations) -> None:
    hello = user_message("Hello")
    conversation_id = created(conversations, hello)

    run(
        conversations.append(
            P,
            conversation_id,
            [hello, user_message("again")],
            [assistant_message("ok")],
            skip_present=True,
        )
    )

    assert texts(everything(conversations, conversation_id)) == ["Hello", "again", "ok"]


def test_one_item_may_be_in_several_conversations(conversations: SqlConversations) -> None:
    hello = user_message("Hello")
    first = created(conversations, hello)
    second = created(conversations, hello)

    run(conversations.delete_item(P, first, hello.id))

    assert run(conversations.item(P, first, hello.id)) is None
    assert run(conversations.item(P, second, hello.id)) == hello


def test_items_page_forward_in_ascending_order(conversations: SqlConversations) -> None:
    conversation_id = created(conversations, *(user_message(str(n)) for n in range(5)))

    first = run(conversations.items(P, conversation_id, after=None, limit=2, order="asc"))
    assert first is not None
    second = run(
        conversations.items(P, conversation_id, after=first.items[-1].id, limit=2, order="asc")
    )
    assert second is not None

    assert (texts(first.items), first.has_more) == (["0", "1"], True)
    assert (texts(second.items), second.has_more) == (["2", "3"], True)


def test_items_page_backward_in_descending_order(conversations: SqlConversations) -> None:
    conversation_id = created(conversations, *(user_message(str(n)) for n in range(3)))

    first = run(conversations.items(P, conversation_id, after=None, limit=2, order="desc"))
    assert first is not None
    rest = run(
        conversations.items(P, conversation_id, after=first.items[-1].id, limit=2, order="desc")
    )
    assert rest is not None

    assert (texts(first.items), first.has_more) == (["2", "1"], True)
    assert (texts(rest.items), rest.has_more) == (["0"], False)


def test_items_after_an_item_not_in_the_conversation_raise(
    conversations: SqlConversations,
) -> None:
    conversation_id = created(conversations, user_message("a"))

    with pytest.raises(MissingItem) as caught:
        run(conversations.items(P, conversation_id, after="msg_gone", limit=2, order="asc"))

    assert caught.value.item_id == "msg_gone"


def test_order_follows_appends_across_deletions(conversations: SqlConversations) -> None:
    a, b = user_message("a"), user_message("b")
    conversation_id = created(conversations, a, b)
    run(conversations.delete_item(P, conversation_id, a.id))

    run(conversations.append(P, conversation_id, [a]))

    assert texts(everything(conversations, conversation_id)) == ["b", "a"]


def test_delete_item_of_an_unknown_item_is_false(conversations: SqlConversations) -> None:
    conversation_id = created(conversations)

    assert run(conversations.delete_item(P, conversation_id, "msg_nope")) is False


def test_find_item_finds_an_item_only_a_conversation_holds(
    store: SqlStore, conversations: SqlConversations
) -> None:
    hello = user_message("Hello")
    created(conversations, hello)

    assert run(store.find_item(P, hello.id)) == hello


def test_concurrent_appends_each_land_as_one_contiguous_block(url: str) -> None:
    """Appends from many threads at once (each its own transaction, on PostgreSQL truly
    concurrent): every block lands whole, none is lost, none interleaves another."""
    opened = run(open_store(url))
    assert isinstance(opened, SqlStore)
    conversation_id = created(opened.conversations)
    workers = 8
    start = threading.Barrier(workers)

    def append(n: int) -> None:
        block = [user_message(f"{n}-{part}") for part in range(3)]
        start.wait()
        asyncio.run(opened.conversations.append(P, conversation_id, block))

    threads = [threading.Thread(target=append, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = texts(everything(opened.conversations, conversation_id))
    run(opened.close())

    blocks = [stored[i : i + 3] for i in range(0, len(stored), 3)]
    assert sorted(blocks) == [[f"{n}-{part}" for part in range(3)] for n in range(workers)]


def test_conversations_survive_reopening_the_store(url: str) -> None:
    first = run(open_store(url))
    assert isinstance(first, SqlStore)
    made = conversation({"k": "v"})
    run(first.conversations.create(P, made, [user_message("kept")]))
    run(first.close())

    second = run(open_store(url))
    assert isinstance(second, SqlStore)
    try:
        assert run(second.conversations.get(P, made.id)) == made
        assert texts(everything(second.conversations, made.id)) == ["kept"]
    finally:
        run(second.close())
