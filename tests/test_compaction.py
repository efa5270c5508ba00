"""`POST /v1/responses/compact`: a conversation folded into the user's messages and a summary
that later requests accept as input and expand for the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Server, server_env
from tests.upstream import ScriptedUpstream, Text

HISTORY: list[Any] = [
    {"role": "user", "content": "I am planning a trip to Lisbon in May."},
    {"role": "assistant", "content": "Lisbon in May is mild and sunny."},
    {"role": "user", "content": "I like seafood and old trams."},
]
SUMMARY = "User plans Lisbon in May; likes seafood and trams. Assistant said May is mild."
PREAMBLE = "Summary of the earlier part of this conversation, written by the assistant:"


def _as_input(window: list[Any]) -> list[dict[str, Any]]:
    """A window sent back as input. The SDK types every message of a compacted window as an
    assistant output message, so dumping a user message's `input_text` parts warns; the JSON
    is what the API sent."""
    return [item.model_dump(exclude_none=True, warnings=False) for item in window]


def _texts(window: list[Any]) -> list[tuple[str, str | None, str | None]]:
    """(type, role, text) of each item of a window."""
    return [
        (
            item.type,
            getattr(item, "role", None),
            getattr(item, "content", [None])[0] and item.content[0].text,
        )
        for item in window
    ]


def test_compaction_keeps_the_users_messages_and_adds_a_compaction_item(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text(SUMMARY))

    compacted = client.responses.compact(model=model, input=HISTORY)

    assert compacted.object == "response.compaction"
    assert compacted.id.startswith("resp_")
    assert _texts(compacted.output) == [
        ("message", "user", "I am planning a trip to Lisbon in May."),
        ("message", "user", "I like seafood and old trams."),
        ("compaction", None, None),
    ]
    item = compacted.output[2]
    assert item.id.startswith("cmp_")
    assert item.encrypted_content.startswith("orc1.")
    assert SUMMARY not in item.encrypted_content  # compressed, not readable at a glance
    assert compacted.usage.model_dump()["total_tokens"] == 15


def test_the_model_is_asked_for_a_summary_of_the_whole_conversation(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text(SUMMARY))

    client.responses.compact(model=model, input=HISTORY, instructions="Be a travel agent.")

    (sent,) = upstream.requests(model)
    messages = sent.json["messages"]
    assert messages[0]["role"] == "system"
    assert messages[0]["content"].startswith("You are compacting a conversation")
    assert messages[0]["content"].endswith("own instructions:\nBe a travel agent.")
    assert messages[1:] == [
        {"role": "user", "content": "I am planning a trip to Lisbon in May."},
        {"role": "assistant", "content": "Lisbon in May is mild and sunny."},
        {"role": "user", "content": "I like seafood and old trams."},
        {"role": "user", "content": "Write the summary now."},
    ]
    assert not sent.json.get("stream")


def test_the_compacted_window_is_accepted_as_input_and_expanded_for_the_model(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text(SUMMARY), Text("Ride tram 28 to the Alfama."))
    window = client.responses.compact(model=model, input=HISTORY).output
    follow_up = _as_input(window)

    answer = client.responses.create(
        model=model, input=[*follow_up, {"role": "user", "content": "One thing to do?"}]
    )

    assert answer.output_text == "Ride tram 28 to the Alfama."
    messages = upstream.requests(model)[1].json["messages"]
    assert messages == [
        {"role": "user", "content": "I am planning a trip to Lisbon in May."},
        {"role": "user", "content": "I like seafood and old trams."},
        {"role": "user", "content": f"{PREAMBLE}\n\n{SUMMARY}"},
        {"role": "user", "content": "One thing to do?"},
    ]
    stored = client.responses.input_items.list(answer.id, order="asc").data
    assert [item.type for item in stored] == ["message", "message", "compaction", "message"]
    assert stored[2].model_dump()["encrypted_content"] == window[2].encrypted_content


def test_a_previous_response_chain_can_be_compacted(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello Ada."), Text(SUMMARY))
    first = client.responses.create(model=model, input="My name is Ada.")

    compacted = client.responses.compact(
        model=model, previous_response_id=first.id, input="And I like trams."
    )

    assert _texts(compacted.output) == [
        ("message", "user", "My name is Ada."),
        ("message", "user", "And I like trams."),
        ("compaction", None, None),
    ]
    messages = upstream.requests(model)[1].json["messages"]
    assert [m["content"] for m in messages[1:]] == [
        "My name is Ada.",
        "Hello Ada.",
        "And I like trams.",
        "Write the summary now.",
    ]


def test_compacting_a_window_again_folds_the_old_summary_into_the_new_one(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text(SUMMARY), Text("A newer summary."))
    window = client.responses.compact(model=model, input=HISTORY).output
    again = _as_input(window)

    compacted = client.responses.compact(model=model, input=again)

    assert [item.type for item in compacted.output] == ["message", "message", "compaction"]
    assert compacted.output[2].encrypted_content != window[2].encrypted_content
    messages = upstream.requests(model)[1].json["messages"]
    assert {"role": "user", "content": f"{PREAMBLE}\n\n{SUMMARY}"} in messages


def test_an_altered_compaction_item_is_refused(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text(SUMMARY))
    item = client.responses.compact(model=model, input=HISTORY).output[2]
    forged = item.encrypted_content[:-4] + (
        "AAAA" if not item.encrypted_content.endswith("AAAA") else "BBBB"
    )

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=model,
            input=[{"type": "compaction", "id": item.id, "encrypted_content": forged}],
        )

    assert caught.value.body == {
        "message": f"The compaction item '{item.id}' was not produced by this server, or was "
        "altered: its encrypted_content does not verify.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "invalid_encrypted_content",
    }
    assert len(upstream.requests(model)) == 1  # the model never saw the forged summary


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"input": HISTORY}, "model", "Missing required parameter: 'model'."),
        (
            {"model": "any"},
            "input",
            "Nothing to compact: give 'input', 'previous_response_id' or both.",
        ),
        (
            {"model": "any", "previous_response_id": "resp_nope"},
            "previous_response_id",
            "Previous response with id 'resp_nope' not found.",
        ),
    ],
    ids=["no-model", "nothing-to-compact", "unknown-previous"],
)
def test_a_compaction_request_that_cannot_be_served_is_a_400(
    server: Server, body: dict[str, Any], param: str, message: str
) -> None:
    answer = httpx.post(f"{server.base_url}/responses/compact", json=body)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["param"], error["message"]) == (
        "invalid_request_error",
        param,
        message,
    )


def _on_two_servers(
    first_env: dict[str, str], second_env: dict[str, str], data: Path, model: str
) -> Any:
    """Compacts `HISTORY` on one server, then sends the window to another with its own data
    directory (another replica, or another installation); returns that server's response."""
    first = Server(data / "a", first_env).start()
    try:
        window = first.client().responses.compact(model=model, input=HISTORY).output
    finally:
        first.stop()
    second = Server(data / "b", second_env).start()
    try:
        return second.client().responses.create(model=model, input=_as_input(window))
    finally:
        second.stop()


def test_compaction_items_verify_on_every_server_sharing_the_secret(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    env = server_env(upstream, OPENRESPONSES_SECRET="shared between replicas")
    model = upstream.script(Text(SUMMARY), Text("Welcome back."))

    answer = _on_two_servers(env, env, tmp_path, model)

    assert answer.output_text == "Welcome back."


def test_without_a_shared_secret_another_server_refuses_the_item(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    model = upstream.script(Text(SUMMARY))

    with pytest.raises(openai.BadRequestError) as caught:
        _on_two_servers(server_env(upstream), server_env(upstream), tmp_path, model)

    assert caught.value.code == "invalid_encrypted_content"
    assert (tmp_path / "a" / "secret.key").stat().st_mode & 0o777 == 0o600
