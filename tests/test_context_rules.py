"""The context the model would read is checked before any model is called: an output that
answers no earlier call, an approval that answers no request, a reference to nothing, a
reasoning item without its content are 400s in OpenAI's words, over HTTP (JSON and streamed)
and WebSocket, and the upstream never hears of the request."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import Server
from tests.upstream import Call, ScriptedUpstream, Text, ToolCalls


def _post(server: Server, body: dict[str, Any], path: str = "/responses") -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=10)


def _invalid(message: str, param: str, code: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _output(call_id: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": "18 C"}


def _call(call_id: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": "weather", "arguments": "{}"}


def _unmatched(call_id: str, index: int) -> dict[str, Any]:
    return _invalid(
        f"No tool call found for function call output with call_id {call_id}.",
        f"input[{index}].call_id",
    )


@pytest.mark.parametrize(
    ("input_", "call_id", "index"),
    [
        ([_user("Weather?"), _call("call_a"), _output("call_b")], "call_b", 2),
        ([_output("call_a"), _call("call_a")], "call_a", 0),
    ],
    ids=["no-call-with-its-id", "its-call-comes-after"],
)
def test_an_output_for_no_earlier_call_is_a_400_and_reaches_no_model(
    server: Server, upstream: ScriptedUpstream, input_: list[Any], call_id: str, index: int
) -> None:
    model = upstream.script(Text("never"))

    response = _post(server, {"model": model, "input": input_})

    assert (response.status_code, response.json()) == (400, _unmatched(call_id, index))
    assert upstream.requests(model) == []


def test_a_streamed_request_is_refused_before_any_event(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("never"))
    body = {"model": model, "input": [_output("call_b")], "stream": True}

    response = _post(server, body)

    assert response.headers["content-type"].startswith("application/json")
    assert (response.status_code, response.json()) == (400, _unmatched("call_b", 0))
    assert upstream.requests(model) == []


def test_an_output_answers_a_call_of_the_previous_response(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(ToolCalls([Call("weather", "{}", id="call_w")]), Text("18 C it is."))
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]
    first = _post(server, {"model": model, "input": "Weather?", "tools": tools}).json()

    second = _post(
        server,
        {"model": model, "previous_response_id": first["id"], "input": [_output("call_w")]},
    )

    assert second.status_code == 200
    assert second.json()["output"][0]["content"][0]["text"] == "18 C it is."


def test_an_output_for_no_call_in_a_conversation_names_the_conversation(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("never"))
    conversation = _post(server, {"items": [_output("call_z")]}, "/conversations").json()

    response = _post(
        server, {"model": model, "conversation": conversation["id"], "input": "Go on."}
    )

    assert (response.status_code, response.json()) == (
        400,
        _invalid(
            "No tool call found for function call output with call_id call_z.", "conversation"
        ),
    )
    assert upstream.requests(model) == []


def test_an_approval_for_no_request_is_a_400_and_reaches_no_model(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("never"))
    approval = {"type": "mcp_approval_response", "approval_request_id": "mcpr_x", "approve": True}

    response = _post(server, {"model": model, "input": [_user("Hi"), approval]})

    assert (response.status_code, response.json()) == (
        400,
        _invalid(
            "No approval request found for MCP approval response with approval_request_id mcpr_x.",
            "input[1].approval_request_id",
        ),
    )
    assert upstream.requests(model) == []


def test_a_reference_to_no_item_is_a_400_and_reaches_no_model(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("never"))
    reference = {"type": "item_reference", "id": "msg_nowhere"}

    response = _post(server, {"model": model, "input": [_user("Hi"), reference]})

    assert (response.status_code, response.json()) == (
        400,
        _invalid("Item with id 'msg_nowhere' not found.", "input[1].id", "item_not_found"),
    )
    assert upstream.requests(model) == []


def test_a_reasoning_item_without_content_that_was_never_stored_is_a_400(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("never"))
    bare = {"type": "reasoning", "id": "rs_unknown", "summary": []}

    response = _post(server, {"model": model, "input": [_user("Hi"), bare]})

    assert (response.status_code, response.json()) == (
        400,
        _invalid(
            "Item with id 'rs_unknown' not found. Items are not persisted when `store` is set "
            "to false. Try again with `store` set to true, or remove this item from your input.",
            "input[1]",
            "item_not_found",
        ),
    )
    assert upstream.requests(model) == []


def test_a_reasoning_item_without_content_stands_for_the_stored_one(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("4.", reasoning="Two and two."), Text("Still 4."))
    first = _post(server, {"model": model, "input": "2+2?"}).json()
    reasoning = first["output"][0]

    second = _post(
        server,
        {
            "model": model,
            "input": [{"type": "reasoning", "id": reasoning["id"], "summary": []}, _user("Sure?")],
        },
    )

    assert second.status_code == 200
    inputs = httpx.get(f"{server.base_url}/responses/{second.json()['id']}/input_items?order=asc")
    assert inputs.json()["data"][0] == reasoning


def test_a_compaction_of_an_output_for_no_call_is_a_400(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("never"))

    response = _post(server, {"model": model, "input": [_output("call_b")]}, "/responses/compact")

    assert (response.status_code, response.json()) == (400, _unmatched("call_b", 0))
    assert upstream.requests(model) == []


def test_over_websocket_the_failed_turn_evicts_the_response_it_continued(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello."))
    url = server.base_url.replace("http://", "ws://") + "/responses"
    with connect(url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "response.create", "model": model, "store": False}))
        event = json.loads(ws.recv(timeout=10))
        while event["type"] != "response.completed":
            event = json.loads(ws.recv(timeout=10))
        first = event["response"]
        for input_ in ([_output("call_b")], "Again"):
            ws.send(
                json.dumps(
                    {
                        "type": "response.create",
                        "model": model,
                        "store": False,
                        "previous_response_id": first["id"],
                        "input": input_,
                    }
                )
            )
        refused, evicted = json.loads(ws.recv(timeout=10)), json.loads(ws.recv(timeout=10))

    assert first["status"] == "completed"
    assert refused == {
        "type": "error",
        "status": 400,
        "error": {**_unmatched("call_b", 0)["error"], "code": "invalid_request_error"},
    }
    assert evicted["error"]["code"] == "previous_response_not_found"
    assert len(upstream.requests(model)) == 1
