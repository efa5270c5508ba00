"""The file_search tool in the loop: files uploaded and ingested through the API, the scripted
model searching them, the answer citing what it found."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import Server
from tests.test_vector_stores import (
    CORPUS,
    expired_error,
    expired_store,
    start_expiring_server,
    store_with,
)
from tests.upstream import Call, ScriptedUpstream, Text, ToolCalls


def _corpus_store(client: openai.OpenAI) -> str:
    documents = {path.name: path.read_text(encoding="utf-8") for path in CORPUS.glob("*.md")}
    return store_with(client, dict(documents.items()))


def test_file_search_finds_the_right_document_and_the_answer_cites_it(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    store_id = _corpus_store(client)
    model = upstream.script(
        ToolCalls([Call("file_search", '{"query": "How do volcanoes form?"}')]),
        Text("Magma rises through the crust [1]."),
    )

    response = client.responses.create(
        model=model,
        input="How do volcanoes form?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 3}],
        include=["file_search_call.results"],
    )

    call, message = response.output
    assert call.type == "file_search_call"
    assert call.status == "completed"
    assert call.queries == ["How do volcanoes form?"]
    assert call.results is not None and len(call.results) == 3
    assert call.results[0].filename == "volcanoes.md"
    [citation] = message.content[0].annotations
    assert citation.type == "file_citation"
    assert (citation.file_id, citation.filename) == (call.results[0].file_id, "volcanoes.md")
    assert citation.index == message.content[0].text.index("[1]")
    told = upstream.requests(model)[1].json["messages"][-1]
    assert told["role"] == "tool"
    assert told["content"].startswith("[1] volcanoes.md\n")


def test_a_streamed_file_search_reports_in_progress_searching_and_completed(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    store_id = _corpus_store(client)
    model = upstream.script(
        ToolCalls([Call("file_search", '{"query": "sourdough starter"}')]), Text("Flour [1].")
    )

    with client.responses.create(
        model=model,
        input="Starter?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
        stream=True,
    ) as stream:
        events = list(stream)

    kinds = [event.type for event in events]
    assert kinds[2:7] == [
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
    ]
    assert "response.output_text.annotation.added" in kinds
    final = events[-1].response
    assert final.output[0].results[0].filename == "sourdough.md"


def test_the_search_results_reach_the_model_on_the_next_turn_of_a_chain(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    store_id = _corpus_store(client)
    tool = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 1}
    model = upstream.script(
        ToolCalls([Call("file_search", '{"query": "Ruy Lopez and hypermodern chess openings"}')]),
        Text("See [1]."),
        Text("As I said."),
    )
    first = client.responses.create(model=model, input="Chess?", tools=[tool])

    client.responses.create(
        model=model, input="Again?", tools=[tool], previous_response_id=first.id
    )

    [found] = first.output[0].results
    messages = upstream.requests(model)[2].json["messages"]
    told = next(message for message in messages if message["role"] == "tool")
    assert told["content"] == f"{found.filename}\n{found.text}"


PARTS = "Part zorbalite-7 is the flange gasket of the feed pump; order it by that number."
"""A file whose made-up word no other file has, about nothing the corpus is about."""


def _searched(
    client: openai.OpenAI, upstream: ScriptedUpstream, query: str, tool: dict[str, Any]
) -> list[tuple[str, float]]:
    """(filename, score) of what the file_search tool found for the model's `query`."""
    model = upstream.script(
        ToolCalls([Call("file_search", json.dumps({"query": query}))]), Text("Done.")
    )
    response = client.responses.create(
        model=model, input=query, tools=[tool], include=["file_search_call.results"]
    )
    return [(hit.filename, hit.score) for hit in response.output[0].results or []]


def _corpus_and_parts(client: openai.OpenAI) -> str:
    documents = {path.name: path.read_text(encoding="utf-8") for path in CORPUS.glob("*.md")}
    return store_with(client, {**documents, "parts.txt": PARTS})


def test_text_weight_alone_ranks_by_keyword_matches_only(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    store_id = _corpus_and_parts(client)
    tool = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 5}
    keywords_only = {"hybrid_search": {"embedding_weight": 0, "text_weight": 1}}

    fused = _searched(client, upstream, "zorbalite", tool)
    keyword = _searched(client, upstream, "zorbalite", {**tool, "ranking_options": keywords_only})

    assert len(fused) == 5  # the vector leg brings in the nearest of the other files
    assert keyword == [("parts.txt", 1.0)]  # first by the one leg that counts


def test_embedding_weight_alone_ranks_as_vector_search_does(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    store_id = _corpus_and_parts(client)
    query = "Which part seals the pump?"
    vectors_only = {"hybrid_search": {"embedding_weight": 1, "text_weight": 0}}
    tool = {"type": "file_search", "vector_store_ids": [store_id], "ranking_options": vectors_only}

    found = _searched(client, upstream, query, tool)
    vector = client.vector_stores.search(store_id, query=query, ranking_options={"ranker": "none"})

    assert found == [(hit.filename, hit.score) for hit in vector.data]
    assert found != _searched(client, upstream, query, {**tool, "ranking_options": None})


@pytest.mark.parametrize(
    "weights",
    [{"embedding_weight": 0, "text_weight": 0}, {"embedding_weight": -1, "text_weight": 1}],
)
def test_hybrid_search_weights_all_zero_or_negative_are_a_400(
    client: openai.OpenAI, upstream: ScriptedUpstream, weights: dict[str, float]
) -> None:
    model = upstream.script(Text("never asked"))
    tool = {
        "type": "file_search",
        "vector_store_ids": [store_with(client, {"any.txt": "anything"})],
        "ranking_options": {"hybrid_search": weights},
    }

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model, input="Hi", tools=[tool])  # type: ignore[list-item]

    assert caught.value.body == {
        "message": "hybrid_search weights must not be negative, and one must be above 0.",
        "type": "invalid_request_error",
        "param": "tools[0].ranking_options.hybrid_search",
        "code": "invalid_value",
    }
    assert upstream.requests(model) == []


def test_file_search_of_an_unknown_store_is_a_404_before_the_model_runs(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    live = store_with(client, {"live.txt": "still here"})
    model = upstream.script(Text("never asked"))
    tool = {"type": "file_search", "vector_store_ids": [live, "vs_mistyped"]}

    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=model, input="Hi", tools=[tool])  # type: ignore[list-item]

    assert caught.value.body == {
        "message": "No vector store found with id 'vs_mistyped'.",
        "type": "invalid_request_error",
        "param": "tools[0].vector_store_ids",
        "code": "vector_store_not_found",
    }
    assert upstream.requests(model) == []


@pytest.fixture(scope="module")
def expiring(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start_expiring_server(upstream, tmp_path_factory.mktemp("expiring"))
    yield server
    server.stop()


def test_file_search_of_an_expired_store_is_a_400_before_the_model_runs(
    expiring: Server, upstream: ScriptedUpstream
) -> None:
    client = expiring.client()
    live = store_with(client, {"live.txt": "still here"})
    store = expired_store(client, {"tides.txt": "The moon's pull raises the tides."})
    model = upstream.script(Text("never asked"))
    tool = {"type": "file_search", "vector_store_ids": [live, store.id]}

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=model, input="Tides?", tools=[tool])  # type: ignore[list-item]

    assert caught.value.body == expired_error(store.id, "tools[0].vector_store_ids")
    assert upstream.requests(model) == []


def test_keyword_ranking_in_a_store_ignores_other_stores_files(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    """BM25 weighs a term by how rare it is among the documents searched: those of the
    store, not of every store on the server."""
    store_id = store_with(
        client,
        {"one.txt": "quorvex quorvex plain words", "two.txt": "zintrap zintrap zintrap plain"},
    )
    keywords_only = {"hybrid_search": {"embedding_weight": 0, "text_weight": 1}}
    tool = {"type": "file_search", "vector_store_ids": [store_id], "ranking_options": keywords_only}

    alone = _searched(client, upstream, "quorvex zintrap", tool)
    # Elsewhere, zintrap becomes a common word: in this store it is still as rare as quorvex.
    store_with(client, {f"other-{n}.txt": f"zintrap note number {n}" for n in range(20)})
    beside = _searched(client, upstream, "quorvex zintrap", tool)

    assert [name for name, _ in alone] == ["two.txt", "one.txt"]  # more occurrences
    assert beside == alone


def test_a_file_search_marks_its_stores_active(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    """Expiry counts from `last_active_at`: a store the tool keeps searching stays alive."""
    store_id = store_with(client, {"notes.txt": "the meeting moved to Thursday"})
    before = client.vector_stores.retrieve(store_id).last_active_at
    time.sleep(1.1)  # timestamps are whole seconds

    _searched(
        client,
        upstream,
        "When is the meeting?",
        {"type": "file_search", "vector_store_ids": [store_id]},
    )

    after = client.vector_stores.retrieve(store_id).last_active_at
    assert after is not None and before is not None and after > before
