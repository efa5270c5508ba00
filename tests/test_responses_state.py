"""Stored responses: retrieve, delete, input_items, previous_response_id, store=false, restarts."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import Server, server_env
from tests.upstream import ScriptedUpstream, Text


def test_retrieve_returns_the_stored_response(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    created = client.responses.create(model=upstream.script(Text("Stored!")), input="Hi")

    fetched = client.responses.retrieve(created.id)

    assert fetched.model_dump() == created.model_dump()


def test_delete_removes_the_response(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    created = client.responses.create(model=upstream.script(Text("bye")), input="Hi")

    client.responses.delete(created.id)

    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(created.id)
    assert caught.value.body == {
        "message": f"Response with id '{created.id}' not found.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": "response_not_found",
    }


def test_delete_of_an_unknown_id_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.delete("resp_does_not_exist")


def test_store_false_is_never_persisted(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    created = client.responses.create(
        model=upstream.script(Text("ephemeral")), input="Hi", store=False
    )

    assert created.output_text == "ephemeral"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(created.id)


def test_store_false_response_cannot_be_continued(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("one"))
    created = client.responses.create(model=model, input="Hi", store=False)

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model, input="again", previous_response_id=created.id)
    assert caught.value.body["code"] == "previous_response_not_found"  # type: ignore[index]


def test_input_items_lists_the_normalised_input_newest_first_by_default(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    created = client.responses.create(
        model=upstream.script(Text("ok")),
        input=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "second"},
            {"role": "user", "content": [{"type": "input_text", "text": "third"}]},
        ],
    )

    page = client.responses.input_items.list(created.id)

    assert [item.type for item in page.data] == ["message"] * 3
    texts = [item.content[0].text for item in page.data]  # type: ignore[union-attr]
    assert texts == ["third", "second", "first"]
    assert [item.role for item in page.data] == ["user", "assistant", "user"]  # type: ignore[union-attr]
    assert all(item.id.startswith("msg_") for item in page.data)
    assert page.has_more is False
    assert page.first_id == page.data[0].id and page.last_id == page.data[-1].id


def test_input_items_paginates_with_after_and_limit(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    created = client.responses.create(
        model=upstream.script(Text("ok")),
        input=[{"role": "user", "content": str(n)} for n in range(5)],
    )

    first = client.responses.input_items.list(created.id, order="asc", limit=2)
    second = client.responses.input_items.list(
        created.id, order="asc", limit=2, after=first.last_id
    )
    pages = client.responses.input_items.list(created.id, order="asc", limit=2)
    everything = [item.content[0].text for item in pages]  # type: ignore[union-attr]

    assert [i.content[0].text for i in first.data] == ["0", "1"]  # type: ignore[union-attr]
    assert first.has_more is True
    assert [i.content[0].text for i in second.data] == ["2", "3"]  # type: ignore[union-attr]
    assert everything == ["0", "1", "2", "3", "4"]


def test_input_items_of_an_unknown_response_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_nope")


def test_previous_response_id_sends_the_whole_chain_upstream(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hi Ada."), Text("Your name is Ada."), Text("You said 'Ada'."))
    first = client.responses.create(model=model, input="My name is Ada.", instructions="Be nice.")
    second = client.responses.create(
        model=model, input="What is my name?", previous_response_id=first.id
    )

    client.responses.create(model=model, input="Sure?", previous_response_id=second.id)

    assert upstream.requests(model)[2].json["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "What is my name?"},
        {"role": "assistant", "content": "Your name is Ada."},
        {"role": "user", "content": "Sure?"},
    ]


def test_item_reference_resolves_to_a_stored_item(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Paris."), Text("ok"))
    first = client.responses.create(model=model, input="Capital of France?")

    client.responses.create(
        model=model,
        input=[
            {"type": "item_reference", "id": first.output[0].id},
            {"role": "user", "content": "Sure?"},
        ],
    )

    assert upstream.requests(model)[1].json["messages"] == [
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Sure?"},
    ]


def test_stored_responses_survive_a_restart(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    model = upstream.script(Text("Remember me."), Text("I remember."))
    first_server = Server(tmp_path, server_env(upstream)).start()
    try:
        created = first_server.client().responses.create(model=model, input="Hello")
    finally:
        first_server.stop()

    second_server = Server(tmp_path, server_env(upstream)).start()
    try:
        client = second_server.client()
        assert client.responses.retrieve(created.id).output_text == "Remember me."
        follow_up = client.responses.create(
            model=model, input="Again", previous_response_id=created.id
        )
    finally:
        second_server.stop()

    assert follow_up.output_text == "I remember."
    assert upstream.requests(model)[1].json["messages"][:2] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Remember me."},
    ]


def test_a_killed_server_keeps_what_it_stored(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    model = upstream.script(Text("Durable."))
    first_server = Server(tmp_path, server_env(upstream)).start()
    created = first_server.client().responses.create(model=model, input="Hello")
    assert first_server.process is not None
    first_server.process.kill()
    first_server.process.wait()

    second_server = Server(tmp_path, server_env(upstream)).start()
    try:
        assert second_server.client().responses.retrieve(created.id).output_text == "Durable."
    finally:
        second_server.stop()


def test_the_server_runs_on_postgresql_too(
    upstream: ScriptedUpstream, tmp_path: Path, postgres_url: str
) -> None:
    model = upstream.script(Text("Stored in PostgreSQL."), Text("Chained."))
    env = server_env(upstream, OPENRESPONSES_STORE_URL=postgres_url)
    server = Server(tmp_path, env).start()
    try:
        client = server.client()
        created = client.responses.create(model=model, input="Hello")
        follow_up = client.responses.create(
            model=model, input="Again", previous_response_id=created.id
        )
        fetched = client.responses.retrieve(created.id)
        items = client.responses.input_items.list(follow_up.id).data
    finally:
        server.stop()

    assert fetched.output_text == "Stored in PostgreSQL."
    assert [i.content[0].text for i in items] == ["Again"]  # type: ignore[union-attr]
    assert not (tmp_path / "openresponses.duckdb").exists()
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM responses")).scalar_one()
    engine.dispose()
    assert count == 2


def test_replicas_on_postgresql_read_each_others_responses_at_once(
    upstream: ScriptedUpstream, tmp_path: Path, postgres_url: str
) -> None:
    model = upstream.script(Text("Saved by one replica."), Text("Continued by another."))
    env = server_env(upstream, OPENRESPONSES_STORE_URL=postgres_url)
    one, other = Server(tmp_path / "one", env).start(), Server(tmp_path / "other", env).start()
    try:
        created = one.client().responses.create(model=model, input="Hello")
        fetched = other.client().responses.retrieve(created.id)  # no wait in between
        follow_up = other.client().responses.create(
            model=model, input="Again", previous_response_id=created.id
        )
    finally:
        other.stop()
        one.stop()

    assert fetched.model_dump() == created.model_dump()
    assert follow_up.output_text == "Continued by another."
    assert not (tmp_path / "one" / "journal").exists()  # written through, not journaled
