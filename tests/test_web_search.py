"""The web_search tool in the loop: a server configured with a search backend (a loopback fake
of SearXNG's JSON API, tests/search_api.py), the scripted model calling the tool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import Server, server_env
from tests.scrape import delta, scrape
from tests.search_api import Answer, FakeSearchAPI, fixture
from tests.upstream import Call, ScriptedUpstream, Text, ToolCalls

DOCS = "https://docs.python.org/3/library/asyncio-task.html"


@pytest.fixture(scope="module")
def search_api() -> Iterator[FakeSearchAPI]:
    fake = FakeSearchAPI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def searching_server(
    upstream: ScriptedUpstream, search_api: FakeSearchAPI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = server_env(
        upstream,
        OPENRESPONSES_WEB_SEARCH="searxng",
        SEARXNG_URL=search_api.url,
        OPENRESPONSES_ALLOW_PRIVATE_NETWORKS="true",  # open_page reads the fake's pages
    )
    server = Server(Path(tmp_path_factory.mktemp("search")), env).start()
    yield server
    server.stop()


def test_a_web_search_runs_on_the_server_and_the_answer_cites_its_sources(
    searching_server: Server, upstream: ScriptedUpstream, search_api: FakeSearchAPI
) -> None:
    search_api.script(Answer(body=fixture("searxng_search.json")))
    model = upstream.script(
        ToolCalls([Call("web_search", '{"query": "asyncio timeout"}')]),
        Text("Use asyncio.timeout [1]."),
    )

    response = searching_server.client().responses.create(
        model=model, input="How do I time out a coroutine?", tools=[{"type": "web_search"}]
    )

    call, message = response.output
    assert call.type == "web_search_call"
    assert call.status == "completed"
    assert call.action.type == "search"
    assert call.action.query == "asyncio timeout"
    assert DOCS in [source.url for source in call.action.sources]
    title = "Coroutines and Tasks — Python 3.13 documentation"
    text = message.content[0]
    assert text.text == "Use asyncio.timeout [1]."
    [citation] = text.annotations
    assert citation.type == "url_citation"
    assert (citation.url, citation.start_index, citation.end_index) == (DOCS, 20, 23)
    assert citation.title == title
    assert search_api.requests[0].query["q"] == "asyncio timeout"
    told = upstream.requests(model)[1].json["messages"][-1]
    assert told["role"] == "tool"
    assert told["content"].startswith(
        f"[1] Coroutines and Tasks — Python 3.13 documentation\n{DOCS}"
    )


def test_a_web_search_is_counted_in_the_metrics_with_both_model_calls(
    searching_server: Server, upstream: ScriptedUpstream, search_api: FakeSearchAPI
) -> None:
    search_api.script(Answer(body=fixture("searxng_search.json")))
    model = upstream.script(
        ToolCalls([Call("web_search", '{"query": "asyncio timeout"}')]), Text("Found it.")
    )
    before = scrape(searching_server)

    searching_server.client().responses.create(
        model=model, input="How do I time out a coroutine?", tools=[{"type": "web_search"}]
    )
    after = scrape(searching_server)

    tool_calls = "openresponses_tool_calls_total"
    assert delta(before, after, tool_calls, type="web_search_call", outcome="completed") == 1
    call = {"provider": "openai", "model": model}
    assert delta(before, after, "openresponses_model_call_duration_seconds_count", **call) == 2
    assert delta(before, after, "openresponses_input_tokens_total", **call) == 20
    assert delta(before, after, "openresponses_output_tokens_total", **call) == 10


def test_a_streamed_web_search_reports_its_steps_and_citations(
    searching_server: Server, upstream: ScriptedUpstream, search_api: FakeSearchAPI
) -> None:
    search_api.script(Answer(body=fixture("searxng_search.json")))
    model = upstream.script(
        ToolCalls([Call("web_search", '{"query": "asyncio timeout"}')]), Text("See [1].")
    )

    with searching_server.client().responses.create(
        model=model, input="Timeouts?", tools=[{"type": "web_search"}], stream=True
    ) as stream:
        kinds = [event.type for event in stream]

    assert kinds[2:8] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
        "response.output_item.added",
    ]
    assert "response.output_text.annotation.added" in kinds
    assert kinds.index("response.output_text.annotation.added") < kinds.index(
        "response.output_text.done"
    )


def test_allowed_domains_reach_the_backend(
    searching_server: Server, upstream: ScriptedUpstream, search_api: FakeSearchAPI
) -> None:
    search_api.script(Answer(body=fixture("searxng_search.json")))
    model = upstream.script(ToolCalls([Call("web_search", '{"query": "timeout"}')]), Text("ok"))
    tool = {"type": "web_search", "filters": {"allowed_domains": ["docs.python.org"]}}

    searching_server.client().responses.create(model=model, input="Hi", tools=[tool])

    assert "site:docs.python.org" in search_api.requests[0].query["q"]


def test_open_page_reads_a_page_as_text(
    searching_server: Server, upstream: ScriptedUpstream, search_api: FakeSearchAPI
) -> None:
    page = b"<html><head><title>Notes</title></head><body><p>The answer is 42.</p></body></html>"
    search_api.script(Answer(body=page, content_type="text/html"))
    url = f"{search_api.url}/notes"
    model = upstream.script(ToolCalls([Call("open_page", f'{{"url": "{url}"}}')]), Text("42 [1]"))

    response = searching_server.client().responses.create(
        model=model, input="Read it", tools=[{"type": "web_search_preview"}]
    )

    call = response.output[0]
    assert (call.action.type, call.action.url, call.status) == ("open_page", url, "completed")
    told = upstream.requests(model)[1].json["messages"][-1]["content"]
    assert "The answer is 42." in told
    assert response.output[1].content[0].annotations[0].url == url


def test_a_failing_backend_is_reported_to_the_model_not_as_a_failed_response(
    searching_server: Server, upstream: ScriptedUpstream, search_api: FakeSearchAPI
) -> None:
    search_api.script(Answer(status=500, body=b"down"))
    model = upstream.script(ToolCalls([Call("web_search", '{"query": "x"}')]), Text("Sorry."))

    response = searching_server.client().responses.create(
        model=model, input="Hi", tools=[{"type": "web_search"}]
    )

    assert response.status == "completed"
    assert response.output[0].status == "failed"
    told = upstream.requests(model)[1].json["messages"][-1]["content"]
    assert told.startswith("Error: ")


def test_web_search_without_a_backend_is_a_400_that_says_how_to_configure_one(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("never"))

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=model, input="Hi", tools=[{"type": "web_search"}])

    assert raised.value.param == "tools[0].type"
    assert raised.value.code == "web_search_not_configured"
    assert "OPENRESPONSES_WEB_SEARCH" in raised.value.message
