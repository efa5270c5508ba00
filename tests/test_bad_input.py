"""Input a client chose never gets a 5xx: each case here once crashed the server (a 500, or a
stream that stopped before its first event) and is now a 4xx in OpenAI's shape, or, where
the input is legal, simply works, on DuckDB and PostgreSQL alike."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import Server
from tests.test_vector_stores import settled, upload
from tests.upstream import Delay, Error, ScriptedUpstream, Text


def _post(server: Server, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=30)


def _invalid(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def _ws_url(server: Server) -> str:
    return server.base_url.replace("http://", "ws://") + "/responses"


# --- embeddings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "param", "token"),
    [
        ([-5], "input[0]", -5),
        ([999999999], "input[0]", 999999999),
        ([4294967296], "input[0]", 4294967296),
        ([17, 100256], "input[1]", 100256),  # a gap in cl100k_base's ids
        ([[1, 2], [-1]], "input[1][0]", -1),
    ],
    ids=["negative", "past-the-vocabulary", "past-32-bits", "gap", "nested"],
)
def test_a_token_id_outside_the_vocabulary_is_a_400(
    server: Server, tokens: list[Any], param: str, token: int
) -> None:
    response = _post(server, "/embeddings", {"model": "all-MiniLM-L6-v2", "input": tokens})

    assert (response.status_code, response.json()) == (
        400,
        _invalid(
            f"Invalid value for '{param}': {token} is not a token id of cl100k_base.",
            param,
            "invalid_value",
        ),
    )


# --- vector store search filters -----------------------------------------------------------


@pytest.fixture(scope="module")
def attributed_store(server: Server) -> str:
    """A store of two files: one with attributes `{"lang": "en", "year": 2024}`, one with
    `{"lang": 7}` (a number where the other has a string)."""
    client = server.client()
    store = client.vector_stores.create(name="filters").id
    for name, attributes in (
        ("en.txt", {"lang": "en", "year": 2024}),
        ("seven.txt", {"lang": 7}),
    ):
        file_id = upload(client, name, f"document {name}")
        client.vector_stores.files.create(store, file_id=file_id, attributes=attributes)
    settled(client, store)
    return store


def _search(server: Server, store: str, filters: Any) -> httpx.Response:
    return _post(server, f"/vector_stores/{store}/search", {"query": "doc", "filters": filters})


@pytest.mark.parametrize(
    ("filters", "param"),
    [
        ({"type": "eq", "key": "", "value": "en"}, "filters.key"),
        (
            {"type": "or", "filters": [{"type": "in", "key": "", "value": ["en"]}]},
            "filters.filters[0].key",
        ),
    ],
    ids=["comparison", "inside-a-compound"],
)
def test_a_filter_on_an_empty_key_is_a_400(
    server: Server, attributed_store: str, filters: Any, param: str
) -> None:
    response = _search(server, attributed_store, filters)

    assert (response.status_code, response.json()) == (
        400,
        _invalid(
            f"Invalid '{param}': empty string. Expected a string with minimum length 1, but "
            "got an empty string instead.",
            param,
            "empty_string",
        ),
    )


@pytest.mark.parametrize("kind", ["in", "nin"])
def test_an_in_filter_may_mix_strings_and_numbers(
    server: Server, attributed_store: str, kind: str
) -> None:
    response = _search(server, attributed_store, {"type": kind, "key": "lang", "value": [7, "de"]})

    assert response.status_code == 200
    found = {hit["filename"] for hit in response.json()["data"]}
    assert found == ({"seven.txt"} if kind == "in" else {"en.txt"})


def test_a_file_search_tool_with_a_bad_filter_is_a_400_before_the_model(
    server: Server, upstream: ScriptedUpstream, attributed_store: str
) -> None:
    model = upstream.script(Text("never"))
    tool = {
        "type": "file_search",
        "vector_store_ids": [attributed_store],
        "filters": {"type": "eq", "key": "", "value": 1},
    }

    response = _post(server, "/responses", {"model": model, "input": "Hi", "tools": [tool]})

    assert (response.status_code, response.json()) == (
        400,
        _invalid(
            "Invalid 'tools[0].filters.key': empty string. Expected a string with minimum "
            "length 1, but got an empty string instead.",
            "tools[0].filters.key",
            "empty_string",
        ),
    )
    assert upstream.requests(model) == []


# --- nesting depth ---------------------------------------------------------------------------


def _schema(levels: int) -> dict[str, Any]:
    """A JSON schema of `levels` objects nested through `properties` (2 JSON levels each)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _too_deep(key: str) -> dict[str, Any]:
    return _invalid(
        f"The request body nests arrays and objects more than 100 levels deep (in '{key}').",
        key,
        "nesting_too_deep",
    )


def _function_tool(levels: int) -> dict[str, Any]:
    return {"type": "function", "name": "f", "parameters": _schema(levels)}


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("/responses", {"input": "Hi", "tools": [_function_tool(127)]}, "tools"),
        (
            "/responses",
            {
                "input": "Hi",
                "text": {"format": {"type": "json_schema", "name": "x", "schema": _schema(127)}},
            },
            "text",
        ),
        (
            "/chat/completions",
            {
                "messages": [{"role": "user", "content": "Hi"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": _schema(127)},
                },
            },
            "response_format",
        ),
        ("/responses", {"input": json.loads("[" * 300 + "]" * 300)}, "input"),
    ],
    ids=["function-parameters", "text-format-schema", "chat-response-format", "any-body"],
)
def test_a_body_nested_too_deeply_is_a_400_before_the_model(
    server: Server, upstream: ScriptedUpstream, path: str, body: dict[str, Any], key: str
) -> None:
    model = upstream.script(Text("never"))

    response = _post(server, path, {"model": model, **body})

    assert (response.status_code, response.json()) == (400, _too_deep(key))
    assert upstream.requests(model) == []


def test_a_schema_nested_to_the_limit_is_accepted(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Fine."))
    # body, tools, the tool, then the schema: 4 + 2 * 48 = 100 levels.
    body = {"model": model, "input": "Hi", "tools": [_function_tool(48)]}

    response = _post(server, "/responses", body)

    assert response.status_code == 200
    assert upstream.requests(model)[0].json["tools"][0]["function"]["parameters"] == _schema(48)


def test_a_websocket_message_nested_too_deeply_gets_an_error_and_the_socket_stays(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Still here."))
    with connect(_ws_url(server), open_timeout=10) as ws:
        create = {"type": "response.create", "model": model, "store": False}
        ws.send(json.dumps({**create, "tools": [_function_tool(127)]}))
        envelope = json.loads(ws.recv(timeout=10))
        ws.send(json.dumps(create))
        after = [json.loads(ws.recv(timeout=10)) for _ in range(2)]

    assert envelope == {
        "type": "error",
        "status": 400,
        "error": {**_too_deep("tools")["error"], "type": "invalid_request_error"},
    }
    assert after[0]["type"] == "response.created"
    assert len(upstream.requests(model)) == 1


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (
            -1,
            _invalid(
                "Invalid 'max_tool_calls': integer below minimum value. Expected a value >= 0, "
                "but got -1 instead.",
                "max_tool_calls",
                "integer_below_min_value",
            ),
        ),
        (
            2**31,
            _invalid(
                "Invalid 'max_tool_calls': integer above maximum value. Expected a value <= "
                "2147483647, but got 2147483648 instead.",
                "max_tool_calls",
                "integer_above_max_value",
            ),
        ),
    ],
    ids=["negative", "past-32-bits"],
)
def test_max_tool_calls_out_of_range_is_a_400(
    server: Server, upstream: ScriptedUpstream, value: int, error: dict[str, Any]
) -> None:
    model = upstream.script(Text("never"))

    response = _post(server, "/responses", {"model": model, "input": "Hi", "max_tool_calls": value})

    assert (response.status_code, response.json()) == (400, error)
    assert upstream.requests(model) == []


def test_max_tool_calls_at_its_maximum_is_accepted(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Fine."))

    response = _post(
        server, "/responses", {"model": model, "input": "Hi", "max_tool_calls": 2**31 - 1}
    )

    assert (response.status_code, response.json()["max_tool_calls"]) == (200, 2**31 - 1)


def _unknown(param: str) -> dict[str, Any]:
    return _invalid(f"Unknown parameter: '{param}'.", param, "unknown_parameter")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/responses", {"input": [{"role": "user", "content": "Hi", "x": 1}]}, "input[0].x"),
        (
            "/responses",
            {
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "Hi", "y": 2}],
                    }
                ]
            },
            "input[0].content[0].y",
        ),
        (
            "/responses",
            {
                "input": [
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c", "output": "o", "z": 3},
                ]
            },
            "input[1].z",
        ),
        ("/conversations", {"items": [{"role": "user", "content": "Hi", "x": 1}]}, "items[0].x"),
    ],
    ids=["message", "content-part", "function-call-output", "conversation-item"],
)
def test_an_unknown_field_inside_an_input_item_is_a_400(
    server: Server, upstream: ScriptedUpstream, path: str, body: dict[str, Any], param: str
) -> None:
    model = upstream.script(Text("never"))

    response = _post(server, path, {"model": model, **body} if path == "/responses" else body)

    assert (response.status_code, response.json()) == (400, _unknown(param))
    assert upstream.requests(model) == []


def test_an_item_as_the_api_lists_it_is_accepted_as_input(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello."), Text("Again."))
    first = _post(server, "/responses", {"model": model, "input": "Hi"}).json()
    listed = httpx.get(f"{server.base_url}/responses/{first['id']}/input_items").json()["data"]

    again = _post(server, "/responses", {"model": model, "input": listed})

    assert listed[0].keys() == {"id", "type", "role", "status", "content"}
    assert again.status_code == 200


# --- NUL in strings and ids ------------------------------------------------------------------


@pytest.fixture(params=["duckdb", "postgresql"])
def any_store(request: pytest.FixtureRequest) -> Server:
    """The shared server (DuckDB), then the PostgreSQL one."""
    found: Server = request.getfixturevalue(
        "server" if request.param == "duckdb" else "postgres_server"
    )
    return found


def test_a_nul_in_the_model_name_is_kept(any_store: Server, upstream: ScriptedUpstream) -> None:
    model = upstream.script(Text("Hi."), model=f"gpt\x00{secrets.token_hex(3)}")

    created = _post(any_store, "/responses", {"model": model, "input": "Hi"})
    stored = httpx.get(f"{any_store.base_url}/responses/{created.json()['id']}")

    assert (created.status_code, stored.status_code) == (200, 200)
    assert stored.json()["model"] == model
    assert stored.json()["status"] == "completed"


def test_a_streamed_response_with_a_nul_in_its_model_streams_to_the_end(
    any_store: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hi."), model=f"gpt\x00{secrets.token_hex(3)}")

    streamed = _post(any_store, "/responses", {"model": model, "input": "Hi", "stream": True})
    events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line[6:7] == "{"]

    assert streamed.status_code == 200
    assert [e["type"] for e in events][:: len(events) - 1] == [
        "response.created",
        "response.completed",
    ]
    stored = httpx.get(f"{any_store.base_url}/responses/{events[0]['response']['id']}").json()
    assert (stored["model"], stored["status"]) == (model, "completed")


def test_a_nul_in_message_text_and_metadata_is_stored_as_sent(
    any_store: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hi."))
    metadata = {"k\x00": "v\x00"}

    created = _post(
        any_store, "/responses", {"model": model, "input": "a\x00b", "metadata": metadata}
    ).json()
    items = httpx.get(f"{any_store.base_url}/responses/{created['id']}/input_items").json()

    assert items["data"][0]["content"][0]["text"] == "a\x00b"
    assert httpx.get(f"{any_store.base_url}/responses/{created['id']}").json()["metadata"] == (
        metadata
    )
    assert upstream.requests(model)[0].json["messages"] == [{"role": "user", "content": "a\x00b"}]


def test_a_vector_store_named_with_a_nul_keeps_its_name(any_store: Server) -> None:
    created = _post(any_store, "/vector_stores", {"name": "n\x00"})
    stored = httpx.get(f"{any_store.base_url}/vector_stores/{created.json()['id']}")

    assert (created.status_code, stored.status_code) == (200, 200)
    assert stored.json()["name"] == "n\x00"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (
            "/responses/resp_%00abc",
            _invalid(
                "Response with id 'resp_\x00abc' not found.", "response_id", "response_not_found"
            ),
        ),
        (
            "/responses/resp_%00abc/input_items",
            _invalid(
                "Response with id 'resp_\x00abc' not found.", "response_id", "response_not_found"
            ),
        ),
        (
            "/conversations/conv_%00",
            _invalid(
                "Conversation with id 'conv_\x00' not found.",
                "conversation_id",
                "conversation_not_found",
            ),
        ),
    ],
    ids=["response", "input-items", "conversation"],
)
def test_an_id_with_a_nul_is_not_found(any_store: Server, path: str, error: dict[str, Any]) -> None:
    response = httpx.get(f"{any_store.base_url}{path}")

    assert (response.status_code, response.json()) == (404, error)


@pytest.mark.parametrize("listing", ["/files", "/vector_stores"])
def test_a_cursor_with_a_nul_is_an_unknown_cursor(any_store: Server, listing: str) -> None:
    with_nul = httpx.get(f"{any_store.base_url}{listing}?after=%00")
    unknown = httpx.get(f"{any_store.base_url}{listing}?after=nothing-has-this-id")

    assert with_nul.status_code == unknown.status_code == 200
    assert with_nul.json() == unknown.json()


# --- WebSocket -------------------------------------------------------------------------------


def test_a_client_gone_before_its_error_frame_leaves_no_traceback(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Delay(0.5, Error(400, "Bad request upstream.")))
    logged = len(server.output())
    with connect(_ws_url(server), open_timeout=10) as ws:
        ws.send(json.dumps({"type": "response.create", "model": model, "input": "Hi"}))
        # Leave once the turn is waiting for the upstream: a close that arrives earlier
        # cancels the turn before it calls the model at all.
        deadline = time.monotonic() + 10
        while not upstream.requests(model) and time.monotonic() < deadline:
            time.sleep(0.02)
    time.sleep(1.5)  # the upstream's answer, then the server's try at sending the error

    assert upstream.requests(model) != []
    assert "Traceback" not in server.output()[logged:]
