"""WebSocket mode at `/v1/responses`, driven by a real client (the `websockets` package)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from openresponses.conformance import grammar
from openresponses.conformance.schemas import OPENRESPONSES
from tests.conftest import Server, server_env
from tests.upstream import Cut, Error, ScriptedUpstream, Text

SPEC = {"OpenResponses-Version": "2026-04-24"}
TERMINAL = {"response.completed", "response.failed", "response.incomplete"}


def _url(server: Server) -> str:
    return server.base_url.replace("http://", "ws://") + "/responses"


@contextmanager
def _socket(server: Server, headers: dict[str, str] | None = None) -> Iterator[ClientConnection]:
    with connect(
        _url(server), additional_headers=SPEC if headers is None else headers, open_timeout=10
    ) as ws:
        yield ws


def _send(ws: ClientConnection, model: str, **fields: Any) -> None:
    ws.send(json.dumps({"type": "response.create", "model": model, **fields}))


def _receive_turn(ws: ClientConnection) -> list[dict[str, Any]]:
    """Messages up to and including a terminal event or an error envelope."""
    messages = []
    while True:
        message = json.loads(ws.recv(timeout=10))
        messages.append(message)
        if message["type"] in TERMINAL or (message["type"] == "error" and "status" in message):
            return messages


def _turn(ws: ClientConnection, model: str, **fields: Any) -> list[dict[str, Any]]:
    _send(ws, model, **fields)
    return _receive_turn(ws)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"type": "message", "role": "user", "content": text}]


def test_a_turn_streams_the_same_events_as_sse(server: Server, upstream: ScriptedUpstream) -> None:
    model = upstream.script(Text("Hello over the socket."), Text("Hello over the socket."))
    with _socket(server) as ws:
        events = _turn(ws, model, store=False, input=_user("Hi"))
    sse = httpx.post(
        f"{server.base_url}/responses",
        headers=SPEC,
        json={"model": model, "store": False, "input": _user("Hi"), "stream": True},
    )
    streamed = [json.loads(line[6:]) for line in sse.text.splitlines() if line[6:7] == "{"]

    assert [e["type"] for e in events] == [e["type"] for e in streamed]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Hello over the socket."
    assert [p for e in events for p in OPENRESPONSES.event_errors(e)] == []
    assert grammar.check(events).violations == []


def test_turns_sent_back_to_back_run_one_after_the_other(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("first answer", chunk_delay=0.02), Text("second answer"))
    with _socket(server) as ws:
        _send(ws, model, store=False, input=_user("one"))
        _send(ws, model, store=False, input=_user("two"))
        first, second = _receive_turn(ws), _receive_turn(ws)

    assert (first[0]["type"], first[-1]["type"]) == ("response.created", "response.completed")
    assert (second[0]["type"], second[-1]["type"]) == ("response.created", "response.completed")
    texts = [turn[-1]["response"]["output"][0]["content"][0]["text"] for turn in (first, second)]
    assert texts == ["first answer", "second answer"]


def test_store_false_continues_on_the_same_socket_without_storing(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello Ada."), Text("Your name is Ada."))
    with _socket(server) as ws:
        first = _turn(ws, model, store=False, input=_user("My name is Ada."))[-1]["response"]
        second = _turn(
            ws, model, store=False, previous_response_id=first["id"], input=_user("My name?")
        )[-1]["response"]

    assert second["previous_response_id"] == first["id"]
    assert [m["content"] for m in upstream.requests(model)[1].json["messages"]] == [
        "My name is Ada.",
        "Hello Ada.",
        "My name?",
    ]
    assert httpx.get(f"{server.base_url}/responses/{first['id']}").status_code == 404


def _not_found(envelope: dict[str, Any], response_id: str) -> None:
    assert envelope == {
        "type": "error",
        "status": 400,
        "error": {
            "message": f"Previous response with id '{response_id}' not found.",
            "type": "invalid_request",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        },
    }


def test_store_false_state_does_not_survive_a_new_connection(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello."))
    with _socket(server) as ws:
        first = _turn(ws, model, store=False, input=_user("Hi"))[-1]["response"]
    with _socket(server) as ws:
        (envelope,) = _turn(ws, model, store=False, previous_response_id=first["id"])

    _not_found(envelope, first["id"])


def test_an_unknown_previous_response_id_is_not_found(server: Server) -> None:
    with _socket(server) as ws:
        (envelope,) = _turn(ws, "any", previous_response_id="resp_unknown", input=_user("Hi"))

    _not_found(envelope, "resp_unknown")


def test_stored_responses_continue_on_any_connection(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello Ada."), Text("Your name is Ada."))
    with _socket(server) as ws:
        first = _turn(ws, model, store=True, input=_user("My name is Ada."))[-1]["response"]
    with _socket(server) as ws:
        second = _turn(ws, model, previous_response_id=first["id"], input=_user("My name?"))

    assert second[-1]["response"]["status"] == "completed"
    assert len(upstream.requests(model)[1].json["messages"]) == 3


def test_a_failed_continuation_evicts_its_previous_response(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello."), *[Error(500, "upstream exploded")] * 3)
    with _socket(server) as ws:
        first = _turn(ws, model, store=False, input=_user("Hi"))[-1]["response"]
        (failed,) = _turn(
            ws, model, store=False, previous_response_id=first["id"], input=_user("Again")
        )
        (evicted,) = _turn(
            ws, model, store=False, previous_response_id=first["id"], input=_user("Again")
        )

    assert (failed["status"], failed["error"]["code"]) == (502, "upstream_error")
    _not_found(evicted, first["id"])
    assert len(upstream.requests(model)) == 4  # 1 + 3 tries; the evicted id reached no model


def test_a_continuation_that_fails_mid_stream_evicts_too(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello."), Cut(2, Text("This breaks off.")))
    with _socket(server) as ws:
        first = _turn(ws, model, store=False, input=_user("Hi"))[-1]["response"]
        broken = _turn(ws, model, store=False, previous_response_id=first["id"], input=_user("Go"))
        (evicted,) = _turn(ws, model, store=False, previous_response_id=first["id"])

    assert [e["type"] for e in broken[-2:]] == ["error", "response.failed"]
    _not_found(evicted, first["id"])


@pytest.mark.parametrize(
    ("field", "value"),
    [("stream", True), ("stream_options", {"include_obfuscation": False}), ("background", False)],
)
def test_http_transport_fields_that_change_nothing_are_accepted(
    server: Server, upstream: ScriptedUpstream, field: str, value: Any
) -> None:
    # The OpenAI Agents SDK's WebSocket transport sends `stream: true` in every message.
    model = upstream.script(Text("Streamed anyway."))
    with _socket(server) as ws:
        events = _turn(ws, model, store=False, input=_user("Hi"), **{field: value})

    assert events[-1]["type"] == "response.completed"
    assert not grammar.check(events).violations
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Streamed anyway."


@pytest.mark.parametrize(("field", "value"), [("stream", False), ("background", True)])
def test_http_transport_fields_that_conflict_are_refused_and_the_socket_stays_usable(
    server: Server, upstream: ScriptedUpstream, field: str, value: Any
) -> None:
    model = upstream.script(Text("Still here."))
    with _socket(server) as ws:
        (envelope,) = _turn(ws, model, input=_user("Hi"), **{field: value})
        after = _turn(ws, model, store=False, input=_user("Hi"))

    assert envelope == {
        "type": "error",
        "status": 400,
        "error": {
            "message": f"'{field}': {json.dumps(value)} conflicts with WebSocket mode, where "
            "every response streams over the socket while the client waits; leave "
            f"'{field}' out.",
            "type": "invalid_request",
            "param": field,
            "code": "unsupported_parameter",
        },
    }
    assert after[-1]["type"] == "response.completed"


@pytest.mark.parametrize(
    ("message", "code", "param"),
    [
        ("not json", "invalid_json", None),
        ('{"type": "response.cancel"}', "invalid_message_type", "type"),
        ('{"type": "response.create", "input": "Hi"}', "missing_required_parameter", "model"),
        (
            '{"type": "response.create", "model": "m", "temperature": "hot"}',
            "invalid_type",
            "temperature",
        ),
    ],
    ids=["not-json", "unknown-type", "no-model", "bad-type"],
)
def test_a_bad_message_gets_an_error_envelope(
    server: Server, message: str, code: str, param: str | None
) -> None:
    with _socket(server) as ws:
        ws.send(message)
        envelope = json.loads(ws.recv(timeout=10))

    assert (envelope["type"], envelope["status"]) == ("error", 400)
    assert (envelope["error"]["code"], envelope["error"]["param"]) == (code, param)
    assert envelope["error"]["type"] == "invalid_request"


def test_a_binary_frame_is_refused_and_the_socket_stays_usable(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Still here."))
    with _socket(server) as ws:
        ws.send(json.dumps({"type": "response.create", "model": model}).encode())
        envelope = json.loads(ws.recv(timeout=10))
        after = _turn(ws, model, store=False, input=_user("Hi"))

    assert envelope["status"] == 400
    assert envelope["error"]["message"] == "Send each message as JSON in a text frame."
    assert after[-1]["type"] == "response.completed"


def test_without_the_spec_header_events_use_openai_names(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("It is 4.", reasoning="Two and two."))
    with _socket(server, headers={}) as ws:
        events = _turn(ws, model, store=False, input=_user("2+2?"))

    assert "response.reasoning_text.delta" in {e["type"] for e in events}


@pytest.fixture
def limited(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[Server]:
    env = server_env(
        upstream, OPENRESPONSES_WEBSOCKET_MAX_SECONDS="1", OPENRESPONSES_API_KEYS="sk-ours"
    )
    server = Server(tmp_path, env).start()
    yield server
    server.stop()


def test_a_connection_ends_at_its_time_limit_with_the_specs_error(limited: Server) -> None:
    started = time.monotonic()
    with _socket(limited, {**SPEC, "Authorization": "Bearer sk-ours"}) as ws:
        envelope = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)

    assert envelope["error"]["code"] == "websocket_connection_limit_reached"
    assert envelope["error"]["message"].startswith(
        "The WebSocket connection reached its 1-second limit."
    )
    assert envelope["status"] == 400
    assert time.monotonic() - started >= 1


def test_the_upgrade_needs_the_servers_key(limited: Server) -> None:
    with pytest.raises(InvalidStatus) as caught:
        connect(_url(limited), additional_headers={"Authorization": "Bearer wrong"})

    assert caught.value.response.status_code == 401
    assert json.loads(caught.value.response.body or b"{}")["error"]["code"] == "invalid_api_key"


def test_other_paths_refuse_the_upgrade(server: Server) -> None:
    with pytest.raises(InvalidStatus) as caught:
        connect(server.base_url.replace("http://", "ws://") + "/models", open_timeout=10)

    assert caught.value.response.status_code == 404


def test_a_client_that_hangs_up_mid_turn_leaves_a_failed_stored_response(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A long, slow answer " * 5, chunk_delay=0.05))
    with _socket(server) as ws:
        _send(ws, model, store=True, input=_user("Talk slowly."))
        created = json.loads(ws.recv(timeout=10))["response"]
        json.loads(ws.recv(timeout=10))  # in_progress: the turn is under way

    deadline = time.monotonic() + 10
    stored = httpx.get(f"{server.base_url}/responses/{created['id']}").json()
    while stored["status"] == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
        stored = httpx.get(f"{server.base_url}/responses/{created['id']}").json()
    assert stored["status"] == "failed"
    assert stored["error"]["message"] == "The client disconnected before the response completed."


def test_a_conversation_over_the_socket_is_the_context_and_gains_the_turn(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Noted."), Text("Chained."))
    conversation = httpx.post(f"{server.base_url}/conversations", json={"items": _user("Hi")})
    conversation_id = conversation.json()["id"]
    with _socket(server) as ws:
        first = _turn(ws, model, input=_user("I am Ada."), conversation=conversation_id)
        response_id = first[-1]["response"]["id"]
        _turn(ws, model, input=_user("Again"), previous_response_id=response_id)
    items = httpx.get(f"{server.base_url}/conversations/{conversation_id}/items?order=asc")

    assert first[-1]["response"]["conversation"] == {"id": conversation_id}
    texts = [item["content"][0]["text"] for item in items.json()["data"]]
    assert texts == ["Hi", "I am Ada.", "Noted."]
    # Continuing the response by id follows its chain, as over HTTP: the conversation's
    # earlier items were its context, not part of it.
    assert upstream.requests(model)[1].json["messages"] == [
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Again"},
    ]
