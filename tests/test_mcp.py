"""Remote MCP tools: the server lists the tools, runs the calls and loops with the model.

Real MCP servers (the `mcp` SDK's own, over streamable HTTP and legacy SSE) run on loopback;
the model is the scripted upstream, which calls the tools as functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Server, final_response, server_env
from tests.mcp_servers import McpTestServer
from tests.upstream import Call, ScriptedUpstream, Text, ToolCalls


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpTestServer]:
    server = McpTestServer().start()
    yield server
    server.stop()


def _tool(server: McpTestServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "tools",
        "server_url": server.url,
        "require_approval": "never",
        **extra,
    }


def _tool_messages(request: Any) -> list[dict[str, Any]]:
    return [message for message in request.json["messages"] if message["role"] == "tool"]


@pytest.mark.parametrize("stream", [False, True])
def test_an_mcp_call_runs_on_the_server_and_the_model_answers_with_its_result(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer, stream: bool
) -> None:
    model = upstream.script(
        ToolCalls([Call("tools__add", '{"a": 2, "b": 3}', id="call_add")]),
        Text("The sum is 5."),
    )

    response = final_response(
        client, stream, model=model, input="What is 2 + 3?", tools=[_tool(mcp_server)]
    )

    listing, call, message = response.output
    assert listing.type == "mcp_list_tools"
    assert listing.server_label == "tools"
    assert [tool.name for tool in listing.tools] == ["add", "shout", "explode", "slow"]
    assert listing.tools[0].annotations == {"readOnlyHint": True}
    assert call.type == "mcp_call"
    assert (call.server_label, call.name, call.arguments) == ("tools", "add", '{"a": 2, "b": 3}')
    assert (call.status, call.output, call.error) == ("completed", "5", None)
    assert message.content[0].text == "The sum is 5."
    assert response.status == "completed"
    first, second = upstream.requests(model)
    offered = [tool["function"]["name"] for tool in first.json["tools"]]
    assert offered == ["tools__add", "tools__shout", "tools__explode", "tools__slow"]
    *_, asked, told = second.json["messages"]
    assert asked["role"] == "assistant"
    [called] = asked["tool_calls"]
    assert called["function"] == {"name": "tools__add", "arguments": '{"a": 2, "b": 3}'}
    assert told == {"role": "tool", "tool_call_id": called["id"], "content": "5"}


def test_a_streamed_mcp_call_reports_each_step(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(
        ToolCalls([Call("tools__shout", '{"text": "hi"}')]),
        Text("HI it is."),
    )

    with client.responses.create(
        model=model, input="Shout hi", tools=[_tool(mcp_server)], stream=True
    ) as stream:
        events = list(stream)

    assert [e.sequence_number for e in events] == list(range(len(events)))
    tool_events = [e.type for e in events if "mcp" in e.type or "output_item" in e.type][:10]
    assert tool_events == [
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.output_item.done",
    ]
    assert events[-1].type == "response.completed"
    assert events[-1].response.output[1].output == "HI"


def test_a_failing_tool_is_reported_in_its_item_and_to_the_model(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(ToolCalls([Call("tools__explode", "{}", id="c1")]), Text("It broke."))

    response = client.responses.create(model=model, input="Explode", tools=[_tool(mcp_server)])

    call = response.output[1]
    assert call.status == "failed"
    assert call.output is None
    assert call.error is not None
    assert response.status == "completed"
    [told] = _tool_messages(upstream.requests(model)[1])
    assert told["content"].startswith("Error: ")


def test_an_unreachable_server_is_an_error_in_the_listing_not_a_failed_response(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("No tools today."))
    dead = {"type": "mcp", "server_label": "gone", "server_url": "http://127.0.0.1:9/mcp"}

    response = client.responses.create(model=model, input="Hi", tools=[dead])

    listing, message = response.output
    assert listing.type == "mcp_list_tools"
    assert listing.tools == []
    assert listing.error is not None
    assert listing.error.startswith("Error retrieving tool list from MCP server 'gone': ")
    assert message.content[0].text == "No tools today."
    assert "tools" not in upstream.requests(model)[0].json


def test_allowed_tools_limits_what_the_model_is_offered(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(Text("ok"))

    client.responses.create(
        model=model,
        input="Hi",
        tools=[_tool(mcp_server, allowed_tools={"read_only": True})],
    )

    offered = [tool["function"]["name"] for tool in upstream.requests(model)[0].json["tools"]]
    assert offered == ["tools__add"]


def test_parallel_calls_run_at_the_same_time(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(
        ToolCalls(
            [
                Call("tools__slow", '{"label": "one", "seconds": 0.5}'),
                Call("tools__slow", '{"label": "two", "seconds": 0.5}'),
            ]
        ),
        Text("Both done."),
    )

    response = client.responses.create(model=model, input="Go", tools=[_tool(mcp_server)])

    assert [item.output for item in response.output[1:3]] == ["one done", "two done"]
    spans = {label: (began, ended) for label, began, ended in mcp_server.journal.slow_calls}
    assert spans["one"][0] < spans["two"][1] and spans["two"][0] < spans["one"][1]


def test_the_tool_list_is_reused_from_the_previous_response(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(Text("first"), Text("second"))
    first = client.responses.create(model=model, input="Hi", tools=[_tool(mcp_server)])

    second = client.responses.create(
        model=model, input="Again", tools=[_tool(mcp_server)], previous_response_id=first.id
    )

    assert [item.type for item in first.output] == ["mcp_list_tools", "message"]
    assert [item.type for item in second.output] == ["message"]
    offered = [tool["function"]["name"] for tool in upstream.requests(model)[1].json["tools"]]
    assert "tools__add" in offered


def test_a_call_waits_for_approval_and_runs_once_the_client_approves(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(ToolCalls([Call("tools__add", '{"a": 1, "b": 1}')]), Text("It is 2."))
    tool = _tool(mcp_server, require_approval="always")
    first = client.responses.create(model=model, input="1 + 1?", tools=[tool])

    request = first.output[-1]
    assert request.type == "mcp_approval_request"
    assert (request.name, request.arguments) == ("add", '{"a": 1, "b": 1}')
    assert first.status == "completed"
    assert len(upstream.requests(model)) == 1

    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[tool],
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
        ],
    )

    call, message = second.output
    assert (call.type, call.output, call.approval_request_id) == ("mcp_call", "2", request.id)
    assert message.content[0].text == "It is 2."
    [told] = _tool_messages(upstream.requests(model)[1])
    assert told["content"] == "2"


def test_a_declined_call_is_not_run_and_the_model_is_told(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(ToolCalls([Call("tools__shout", '{"text": "x"}')]), Text("Fine."))
    tool = _tool(mcp_server, require_approval="always")
    first = client.responses.create(model=model, input="Shout", tools=[tool])
    request = first.output[-1]

    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[tool],
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": request.id,
                "approve": False,
                "reason": "too loud",
            }
        ],
    )

    assert [item.type for item in second.output] == ["message"]
    [told] = _tool_messages(upstream.requests(model)[1])
    assert told["content"] == "The user declined this call (too loud)."


def test_an_approval_for_an_unknown_request_is_a_400(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(Text("never"))

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(
            model=model,
            tools=[_tool(mcp_server)],
            input=[
                {"type": "mcp_approval_response", "approval_request_id": "mcpr_x", "approve": True}
            ],
        )

    assert raised.value.param == "input[0].approval_request_id"


def test_max_tool_calls_ends_a_loop_that_keeps_calling_as_incomplete(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    again = ToolCalls([Call("tools__add", '{"a": 1, "b": 1}')])
    model = upstream.script(again, again, again)

    response = client.responses.create(
        model=model, input="Loop", tools=[_tool(mcp_server)], max_tool_calls=2
    )

    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_tool_calls"
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "mcp_call"]
    assert len(upstream.requests(model)) == 3


def test_a_function_call_for_the_client_ends_the_loop_after_the_server_calls_run(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(
        ToolCalls([Call("tools__add", '{"a": 4, "b": 4}'), Call("get_weather", '{"city": "Oslo"}')])
    )
    weather = {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }

    response = client.responses.create(model=model, input="Go", tools=[_tool(mcp_server), weather])

    assert [item.type for item in response.output] == [
        "mcp_list_tools",
        "function_call",
        "mcp_call",
    ]
    assert response.output[2].output == "8"
    assert len(upstream.requests(model)) == 1


def test_authorization_and_headers_reach_the_mcp_server(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(Text("ok"))
    tool = _tool(mcp_server, authorization="tok-123", headers={"X-Team": "blue"})

    client.responses.create(model=model, input="Hi", tools=[tool])

    seen = mcp_server.journal.headers[-1]
    assert seen["authorization"] == "Bearer tok-123"
    assert seen["x-team"] == "blue"


def test_the_legacy_sse_transport_works_too(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    sse = McpTestServer(transport="sse").start()
    try:
        model = upstream.script(ToolCalls([Call("legacy__add", '{"a": 20, "b": 22}')]), Text("42"))
        tool = {
            "type": "mcp",
            "server_label": "legacy",
            "server_url": sse.url,
            "require_approval": "never",
        }

        response = client.responses.create(model=model, input="20 + 22?", tools=[tool])
    finally:
        sse.stop()

    assert response.output[1].output == "42"


def test_mcp_items_carry_the_extension_prefix_in_the_open_responses_dialect(
    server: Server, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(ToolCalls([Call("tools__add", '{"a": 1, "b": 2}')]), Text("3"))
    body = {"model": model, "input": "1 + 2?", "tools": [_tool(mcp_server)]}

    answer = httpx.post(
        f"{server.base_url}/responses",
        json=body,
        headers={"OpenResponses-Version": "2026-04-24"},
        timeout=30,
    ).json()

    assert [item["type"] for item in answer["output"]] == [
        "openresponses:mcp_list_tools",
        "openresponses:mcp_call",
        "message",
    ]
    assert [tool["type"] for tool in answer["tools"]] == ["openresponses:mcp"]
    assert json.loads(answer["output"][1]["arguments"]) == {"a": 1, "b": 2}


def test_an_mcp_server_on_a_private_network_is_refused_unless_the_server_allows_it(
    upstream: ScriptedUpstream, mcp_server: McpTestServer, tmp_path: Path
) -> None:
    model = upstream.script(Text("never"))
    guarded = Server(tmp_path, server_env(upstream)).start()
    try:
        with pytest.raises(openai.BadRequestError) as raised:
            guarded.client().responses.create(
                model=model,
                input="Hi",
                tools=[{"type": "function", "name": "f"}, _tool(mcp_server)],
            )
    finally:
        guarded.stop()

    assert raised.value.param == "tools[1].server_url"
    assert raised.value.code == "url_not_allowed"
    assert "a loopback address" in raised.value.message
    assert "OPENRESPONSES_ALLOW_PRIVATE_NETWORKS=true" in raised.value.message
    assert upstream.requests(model) == []


def test_a_listing_that_fails_streams_the_failed_event(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("No tools."))
    dead = {"type": "mcp", "server_label": "gone", "server_url": "http://127.0.0.1:9/mcp"}

    with client.responses.create(model=model, input="Hi", tools=[dead], stream=True) as stream:
        kinds = [event.type for event in stream]

    assert "response.mcp_list_tools.failed" in kinds
    assert "response.mcp_list_tools.completed" not in kinds


def test_tool_choice_mcp_names_one_tool_of_one_server(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(Text("ok"))

    client.responses.create(
        model=model,
        input="Hi",
        tools=[_tool(mcp_server)],
        tool_choice={"type": "mcp", "server_label": "tools", "name": "shout"},
    )

    sent = upstream.requests(model)[0].json
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "tools__shout"}}


def test_tool_choice_mcp_without_a_name_requires_one_of_the_servers_tools(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(Text("ok"))
    weather = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}

    client.responses.create(
        model=model,
        input="Hi",
        tools=[weather, _tool(mcp_server, allowed_tools=["add", "shout"])],
        tool_choice={"type": "mcp", "server_label": "tools"},
    )

    sent = upstream.requests(model)[0].json
    assert sent["tool_choice"] == "required"
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["tools__add", "tools__shout"]


def test_require_approval_per_tool_asks_only_for_the_tools_it_names(
    client: openai.OpenAI, upstream: ScriptedUpstream, mcp_server: McpTestServer
) -> None:
    model = upstream.script(
        ToolCalls([Call("tools__add", '{"a": 1, "b": 2}'), Call("tools__shout", '{"text": "hey"}')])
    )
    tool = _tool(mcp_server, require_approval={"never": {"tool_names": ["add"]}})

    response = client.responses.create(model=model, input="Go", tools=[tool])

    kinds = [(item.type, getattr(item, "name", None)) for item in response.output]
    assert kinds == [
        ("mcp_list_tools", None),
        ("mcp_call", "add"),
        ("mcp_approval_request", "shout"),
    ]
    assert response.output[1].output == "3"
