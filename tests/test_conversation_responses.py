"""`conversation` on `POST /v1/responses`: the conversation's items are the context, and the
turn is appended to it; streamed and not, concurrently, and across a restart."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Server, final_response, server_env
from tests.upstream import Call, Cut, Delay, Error, ScriptedUpstream, Text, ToolCalls

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}


def _listed(client: openai.OpenAI, conversation_id: str) -> list[Any]:
    return list(client.conversations.items.list(conversation_id, order="asc", limit=100))


def _texts(items: list[Any]) -> list[str]:
    return [item.content[0].text for item in items]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_conversation_is_the_context_and_gains_the_turn(
    client: openai.OpenAI, upstream: ScriptedUpstream, stream: bool
) -> None:
    model = upstream.script(Text("Hello Ada."), Text("Your name is Ada."))
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "developer", "content": "Be brief."}]
    )

    first = final_response(
        client, stream, model=model, input="I am Ada.", conversation=conversation.id
    )
    second = final_response(
        client, stream, model=model, input="Who am I?", conversation={"id": conversation.id}
    )

    assert second.output_text == "Your name is Ada."
    assert upstream.requests(model)[1].json["messages"] == [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "Who am I?"},
    ]
    items = _listed(client, conversation.id)
    assert _texts(items) == [
        "Be brief.",
        "I am Ada.",
        "Hello Ada.",
        "Who am I?",
        "Your name is Ada.",
    ]
    assert [items[2].id, items[4].id] == [first.output[0].id, second.output[0].id]
    assert [i.id for i in client.responses.input_items.list(second.id)] == [items[3].id]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_the_response_echoes_its_conversation(
    client: openai.OpenAI, upstream: ScriptedUpstream, stream: bool
) -> None:
    conversation = client.conversations.create()

    response = final_response(
        client, stream, model=upstream.script(Text("ok")), input="Hi", conversation=conversation.id
    )

    assert response.conversation is not None
    assert response.conversation.model_dump() == {"id": conversation.id}
    assert client.responses.retrieve(response.id).conversation == response.conversation
    assert response.previous_response_id is None


def test_a_response_without_a_conversation_has_no_conversation_key(
    server: Server, upstream: ScriptedUpstream
) -> None:
    body = {"model": upstream.script(Text("ok")), "input": "Hi"}

    answer = httpx.post(f"{server.base_url}/responses", json=body, timeout=10).json()

    assert "conversation" not in answer


def test_the_stream_starts_with_the_conversation_and_it_is_extended_before_the_end(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    conversation = client.conversations.create()
    model = upstream.script(Text("Streamed answer"))

    with client.responses.create(
        model=model, input="Hi", conversation=conversation.id, stream=True
    ) as events:
        created = next(events)
        assert created.type == "response.created"
        assert created.response.conversation is not None
        assert created.response.conversation.id == conversation.id
        for event in events:
            if event.type == "response.completed":
                break
        items_at_completion = _listed(client, conversation.id)

    assert _texts(items_at_completion) == ["Hi", "Streamed answer"]


def test_function_calls_round_trip_through_a_conversation(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        ToolCalls([Call("get_weather", '{"city":"Paris"}', id="call_1")]), Text("Sunny.")
    )
    conversation = client.conversations.create()
    first = client.responses.create(
        model=model, input="Weather in Paris?", tools=[WEATHER], conversation=conversation.id
    )

    client.responses.create(
        model=model,
        tools=[WEATHER],
        conversation=conversation.id,
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "21C"}],
    )

    assert upstream.requests(model)[1].json["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21C"},
    ]
    items = _listed(client, conversation.id)
    assert [item.type for item in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert items[1].id == first.output[0].id


def test_items_added_through_the_api_are_model_input(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Rainy, then."))
    conversation = client.conversations.create(
        items=[
            {"role": "user", "content": "Weather?"},
            {"type": "function_call", "call_id": "c9", "name": "get_weather", "arguments": "{}"},
        ]
    )
    client.conversations.items.create(
        conversation.id,
        items=[
            {"type": "function_call_output", "call_id": "c9", "output": "rainy"},
            {"role": "assistant", "content": "It is rainy."},
        ],
    )

    client.responses.create(model=model, input="And tomorrow?", conversation=conversation.id)

    assert upstream.requests(model)[0].json["messages"] == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c9", "content": "rainy"},
        {"role": "assistant", "content": "It is rainy."},
        {"role": "user", "content": "And tomorrow?"},
    ]


def test_a_referenced_item_the_conversation_holds_is_not_added_twice(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "Hi"}])
    [hi] = _listed(client, conversation.id)

    client.responses.create(
        model=upstream.script(Text("ok")),
        input=[{"type": "item_reference", "id": hi.id}, {"role": "user", "content": "Again"}],
        conversation=conversation.id,
    )

    assert _texts(_listed(client, conversation.id)) == ["Hi", "Again", "ok"]


def test_store_false_still_extends_the_conversation(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    conversation = client.conversations.create()

    response = client.responses.create(
        model=upstream.script(Text("Unstored.")),
        input="Hi",
        conversation=conversation.id,
        store=False,
    )

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    assert _texts(_listed(client, conversation.id)) == ["Hi", "Unstored."]


def test_an_incomplete_response_extends_the_conversation(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    conversation = client.conversations.create()

    response = client.responses.create(
        model=upstream.script(Text("Cut sho", finish_reason="length")),
        input="Tell me everything.",
        conversation=conversation.id,
    )

    assert response.status == "incomplete"
    assert _texts(_listed(client, conversation.id)) == ["Tell me everything.", "Cut sho"]


def test_a_response_failed_mid_stream_adds_nothing(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "Before"}])

    failed = final_response(
        client,
        True,
        model=upstream.script(Cut(3, Text("This breaks off", chunk_size=3))),
        input="Hi",
        conversation=conversation.id,
    )

    assert failed.status == "failed"
    assert _texts(_listed(client, conversation.id)) == ["Before"]


def test_a_refused_request_adds_nothing(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    conversation = client.conversations.create()

    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model=upstream.script(Error(400, "No.", type="invalid_request_error")),
            input="Hi",
            conversation=conversation.id,
        )

    assert _listed(client, conversation.id) == []


def test_conversation_with_previous_response_id_is_a_400_naming_both(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("first"))
    previous = client.responses.create(model=model, input="Hi")
    conversation = client.conversations.create()

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model, input="Hi", conversation=conversation.id, previous_response_id=previous.id
        )

    assert caught.value.body == {
        "message": "Mutually exclusive parameters. Ensure you are only providing one of: "
        "'previous_response_id' or 'conversation'.",
        "type": "invalid_request_error",
        "param": None,
        "code": "mutually_exclusive_parameters",
    }
    assert len(upstream.requests(model)) == 1


def test_an_unknown_conversation_is_a_404(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("never"))

    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=model, input="Hi", conversation="conv_nope")

    assert caught.value.body == {
        "message": "Conversation with id 'conv_nope' not found.",
        "type": "invalid_request_error",
        "param": "conversation",
        "code": "conversation_not_found",
    }
    assert upstream.requests(model) == []


def test_input_token_counts_include_the_conversation(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    conversation = client.conversations.create(
        items=[{"role": "user", "content": "A long message that the count has to include."}]
    )

    alone = client.responses.input_tokens.count(model="gpt-4.1-mini", input="Hi")
    within = client.responses.input_tokens.count(
        model="gpt-4.1-mini", input="Hi", conversation=conversation.id
    )

    assert within.input_tokens > alone.input_tokens


def test_concurrent_responses_on_one_conversation_each_land_as_one_block(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    """Appends are atomic: neither turn is lost, and no turn's items interleave another's."""
    conversation = client.conversations.create()
    model = upstream.responder(
        lambda request: Delay(0.3, Text(f"answer to {request['messages'][-1]['content']}")),
        model="conversation-concurrency",
    )
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def turn(n: int) -> None:
        start.wait()
        try:
            final_response(
                client, n % 2 == 0, model=model, input=f"q{n}", conversation=conversation.id
            )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=turn, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    texts = _texts(_listed(client, conversation.id))
    pairs = [tuple(texts[i : i + 2]) for i in range(0, len(texts), 2)]
    assert sorted(pairs) == [(f"q{n}", f"answer to q{n}") for n in range(4)]


def test_conversations_survive_a_restart(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    model = upstream.script(Text("Noted, Ada."), Text("You are Ada."))
    first_server = Server(tmp_path, server_env(upstream)).start()
    try:
        client = first_server.client()
        conversation = client.conversations.create(metadata={"user": "ada"})
        client.responses.create(model=model, input="I am Ada.", conversation=conversation.id)
        before = _listed(client, conversation.id)
    finally:
        first_server.stop()

    second_server = Server(tmp_path, server_env(upstream)).start()
    try:
        client = second_server.client()
        assert client.conversations.retrieve(conversation.id) == conversation
        assert _listed(client, conversation.id) == before
        client.responses.create(model=model, input="Who am I?", conversation=conversation.id)
    finally:
        second_server.stop()

    assert upstream.requests(model)[1].json["messages"][:2] == [
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Noted, Ada."},
    ]


def test_a_killed_server_keeps_the_turn_and_its_response(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """The response is saved write-behind (journal), the conversation written through; both
    are durable once the client has the response, whichever way the process dies."""
    model = upstream.script(Text("Durable."))
    first_server = Server(tmp_path, server_env(upstream)).start()
    client = first_server.client()
    conversation = client.conversations.create()
    response = client.responses.create(model=model, input="Hi", conversation=conversation.id)
    assert first_server.process is not None
    first_server.process.kill()
    first_server.process.wait()

    second_server = Server(tmp_path, server_env(upstream)).start()
    try:
        client = second_server.client()
        assert client.responses.retrieve(response.id).output_text == "Durable."
        assert _texts(_listed(client, conversation.id)) == ["Hi", "Durable."]
    finally:
        second_server.stop()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_the_open_responses_dialect_echoes_the_conversation(
    server: Server, client: openai.OpenAI, upstream: ScriptedUpstream, stream: bool
) -> None:
    """The spec has no `conversation`; it allows optional fields that extend its schemas."""
    conversation = client.conversations.create()
    body = {
        "model": upstream.script(Text("ok")),
        "input": "Hi",
        "conversation": conversation.id,
        "stream": stream,
    }

    answer = httpx.post(
        f"{server.base_url}/responses",
        json=body,
        headers={"OpenResponses-Version": "2026-04-24"},
        timeout=10,
    )

    assert answer.status_code == 200
    if stream:
        frames = [line[6:] for line in answer.text.splitlines() if line.startswith("data: {")]
        response = json.loads(frames[-1])["response"]
    else:
        response = answer.json()
    assert response["conversation"] == {"id": conversation.id}
    assert response["status"] == "completed"
