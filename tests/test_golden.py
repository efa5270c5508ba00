"""Golden event streams: our server's events for each scenario, compared with the recording.

A change in event output fails here with the first differing event and a line diff. When the
change is intended, record the streams again and review the diff of `conformance/golden/`:

    pytest tests/test_golden.py --update-golden
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openresponses.conformance import golden
from openresponses.conformance.wire import Client, Dialect, Target
from tests.conftest import Server, server_env
from tests.mcp_servers import McpTestServer
from tests.search_api import Answer, FakeSearchAPI, fixture
from tests.test_responses_create import WEATHER_TOOL
from tests.upstream import Call, Cut, Reply, ScriptedUpstream, Text, ToolCalls

GOLDEN = Path(__file__).parent.parent / "conformance" / "golden"

SCENARIOS: dict[str, tuple[Reply, str]] = {
    # name: (what the upstream answers, what the user asks)
    "text": (Text("Hello there, friend!"), "Say hello."),
    "multi_part_text": (
        Text("Here is the first half.", refusal="I can't write the second half."),
        "Write both halves.",
    ),
    "function_call": (
        ToolCalls([Call("get_weather", '{"city": "Paris"}', id="call_paris")]),
        "What is the weather in Paris?",
    ),
    "parallel_function_calls": (
        ToolCalls(
            [
                Call("get_weather", '{"city": "Paris"}', id="call_paris"),
                Call("get_weather", '{"city": "Tokyo"}', id="call_tokyo"),
            ]
        ),
        "What is the weather in Paris and in Tokyo?",
    ),
    "reasoning": (Text("It is 4.", reasoning="Two plus two makes four."), "What is 2 + 2?"),
    "refusal": (Text("", refusal="I can't help with that."), "Help me pick a lock."),
    "upstream_failure": (Cut(3, Text("This answer is cut off halfway.")), "Tell me a story."),
}

CASES = [(scenario, dialect) for scenario in SCENARIOS for dialect in Dialect]

MCP_URL = "<mcp_server_url>"
TOOL_SCENARIOS: dict[str, tuple[tuple[Reply, ...], str, dict[str, Any]]] = {
    # name: (the upstream's answers, one per round, what the user asks, the MCP tool)
    "mcp_call": (
        (ToolCalls([Call("tools__add", '{"a": 2, "b": 3}', id="call_add")]), Text("It is 5.")),
        "What is 2 + 3?",
        {"require_approval": "never"},
    ),
    "mcp_approval_request": (
        (ToolCalls([Call("tools__shout", '{"text": "hi"}', id="call_shout")]),),
        "Shout hi.",
        {"require_approval": "always"},
    ),
}
TOOL_CASES = [(scenario, dialect) for scenario in TOOL_SCENARIOS for dialect in Dialect]


def _target(server: Server, model: str) -> Target:
    """The server; the Open Responses recordings are of its strict mode (the header)."""
    return Target(server.base_url, model, "sk-client", {}, timeout=20, version_header=True)


def _stream(server: Server, upstream: ScriptedUpstream, scenario: str, dialect: Dialect) -> list:
    reply, question = SCENARIOS[scenario]
    model = upstream.script(reply, model=f"golden-{scenario}-{dialect.value}")
    client = Client(_target(server, model), dialect)
    try:
        body = {"model": model, "input": question, "tools": [WEATHER_TOOL]}
        return client.stream("/responses", body).events
    finally:
        client.close()


@pytest.mark.parametrize(("scenario", "dialect"), CASES, ids=[f"{s}-{d.value}" for s, d in CASES])
def test_the_event_stream_matches_its_golden_recording(
    server: Server,
    upstream: ScriptedUpstream,
    request: pytest.FixtureRequest,
    scenario: str,
    dialect: Dialect,
) -> None:
    path = GOLDEN / dialect.value / f"{scenario}.jsonl"
    events = _stream(server, upstream, scenario, dialect)
    if request.config.getoption("--update-golden"):
        golden.write(path, events)

    differences = golden.compare(golden.load(path), events)

    assert not differences, "\n".join(differences)


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpTestServer]:
    server = McpTestServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("scenario", "dialect"), TOOL_CASES, ids=[f"{s}-{d.value}" for s, d in TOOL_CASES]
)
def test_a_server_tool_event_stream_matches_its_golden_recording(
    server: Server,
    upstream: ScriptedUpstream,
    mcp_server: McpTestServer,
    request: pytest.FixtureRequest,
    scenario: str,
    dialect: Dialect,
) -> None:
    replies, question, settings = TOOL_SCENARIOS[scenario]
    model = upstream.script(*replies, model=f"golden-{scenario}-{dialect.value}")
    tool = {"type": "mcp", "server_label": "tools", "server_url": mcp_server.url, **settings}
    client = Client(_target(server, model), dialect)
    try:
        body = {"model": model, "input": question, "tools": [tool]}
        events = client.stream("/responses", body).events
    finally:
        client.close()
    # The MCP server's port changes from run to run.
    events = json.loads(json.dumps(events).replace(mcp_server.url, MCP_URL))
    path = GOLDEN / dialect.value / f"{scenario}.jsonl"
    if request.config.getoption("--update-golden"):
        golden.write(path, events)

    differences = golden.compare(golden.load(path), events)

    assert not differences, "\n".join(differences)


@pytest.fixture(scope="module")
def searching_server(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, FakeSearchAPI]]:
    api = FakeSearchAPI()
    api.start()
    env = server_env(upstream, OPENRESPONSES_WEB_SEARCH="searxng", SEARXNG_URL=api.url)
    server = Server(tmp_path_factory.mktemp("golden-search"), env).start()
    yield server, api
    server.stop()
    api.stop()


@pytest.mark.parametrize("dialect", list(Dialect), ids=[d.value for d in Dialect])
def test_a_web_search_event_stream_matches_its_golden_recording(
    searching_server: tuple[Server, FakeSearchAPI],
    upstream: ScriptedUpstream,
    request: pytest.FixtureRequest,
    dialect: Dialect,
) -> None:
    server, api = searching_server
    api.script(Answer(body=fixture("searxng_search.json")))
    model = upstream.script(
        ToolCalls([Call("web_search", '{"query": "asyncio timeout"}', id="call_search")]),
        Text("Use asyncio.timeout [1]."),
        model=f"golden-web_search-{dialect.value}",
    )
    client = Client(_target(server, model), dialect)
    try:
        body = {"model": model, "input": "Timeouts?", "tools": [{"type": "web_search"}]}
        events = client.stream("/responses", body).events
    finally:
        client.close()
    path = GOLDEN / dialect.value / "web_search.jsonl"
    if request.config.getoption("--update-golden"):
        golden.write(path, events)

    differences = golden.compare(golden.load(path), events)

    assert not differences, "\n".join(differences)


def test_normalising_numbers_ids_per_prefix_in_order_of_first_appearance() -> None:
    events = [
        {
            "type": "a",
            "response": {"id": "resp_9f", "created_at": 1795436990, "completed_at": None},
        },
        {"type": "b", "item": {"id": "msg_77", "call_id": "call_x"}, "item_id": "msg_77"},
        {"type": "c", "item_id": "msg_12", "previous_response_id": "resp_9f", "output_index": 3},
    ]

    assert golden.normalise(events) == [
        {
            "type": "a",
            "response": {"id": "<resp_1>", "created_at": "<timestamp>", "completed_at": None},
        },
        {"type": "b", "item": {"id": "<msg_1>", "call_id": "<call_1>"}, "item_id": "<msg_1>"},
        {"type": "c", "item_id": "<msg_2>", "previous_response_id": "<resp_1>", "output_index": 3},
    ]


def test_a_stream_that_mixes_up_two_ids_differs_from_its_golden() -> None:
    recorded = golden.normalise(
        [{"type": "a", "item_id": "msg_1"}, {"type": "b", "item_id": "msg_2"}]
    )
    live = [{"type": "a", "item_id": "msg_5"}, {"type": "b", "item_id": "msg_5"}]

    differences = golden.compare(recorded, live)

    assert differences[0] == "event 1 (b): $.item_id: expected '<msg_2>', got '<msg_1>'"
    assert '-{"type": "b", "item_id": "<msg_2>"}' in differences
    assert '+{"type": "b", "item_id": "<msg_1>"}' in differences
