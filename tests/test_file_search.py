"""The file_search tool in the loop: files uploaded and ingested through the API, the scripted
model searching them, the answer citing what it found."""

from __future__ import annotations

import openai

from tests.test_vector_stores import CORPUS, store_with
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
