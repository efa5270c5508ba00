"""The Open Responses dialect (OpenResponses-Version header), checked against the spec, and the
default dialect, checked against both OpenAI's spec and the Open Responses one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from openresponses.api.dialects import event_body
from openresponses.config import Dialect
from openresponses.conformance.context import Context
from openresponses.conformance.schemas import OPENAI, OPENRESPONSES, errors, event_errors
from openresponses.conformance.wire import Client, Target
from openresponses.conformance.wire import Dialect as HarnessDialect
from openresponses.generated import openai_models as m
from openresponses.generated import openresponses_models as orm
from tests.conftest import Server, server_env
from tests.upstream import Call, Cut, ScriptedUpstream, Text, ToolCalls

SPEC = {"OpenResponses-Version": "2026-04-24", "authorization": "Bearer sk-client"}
EXAMPLES = Path(__file__).parent.parent / "spec" / "openresponses" / "examples"


def _frames(server: Server, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(event line, data line) per SSE frame, read off the raw bytes."""
    with httpx.stream(
        "POST",
        f"{server.base_url}/responses",
        json={**body, "stream": True},
        headers=SPEC,
        timeout=10,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    frames = []
    for block in raw.split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        assert not any(line.startswith("id:") for line in lines)
        event = next((line[7:] for line in lines if line.startswith("event: ")), "")
        data = [line[6:] for line in lines if line.startswith("data: ")]
        assert len(data) == 1, block
        frames.append((event, data[0]))
    return frames


def test_stream_frames_follow_the_spec_wire_format(
    server: Server, upstream: ScriptedUpstream
) -> None:
    frames = _frames(
        server, {"model": upstream.script(Text("Hi there", reasoning="Greet.")), "input": "Hi"}
    )

    assert frames[-1] == ("", "[DONE]")
    events = [json.loads(data) for _, data in frames[:-1]]
    assert [event for event, _ in frames[:-1]] == [e["type"] for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        assert event_errors(event) == [], event["type"]


def test_reasoning_uses_the_spec_event_names(server: Server, upstream: ScriptedUpstream) -> None:
    frames = _frames(
        server, {"model": upstream.script(Text("A", reasoning="Because.")), "input": "Q"}
    )

    types = [json.loads(data)["type"] for _, data in frames[:-1]]
    assert "response.reasoning.delta" in types
    assert "response.reasoning.done" in types
    assert not any(t.startswith("response.reasoning_text") for t in types)


def test_function_call_stream_validates_against_the_spec(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(ToolCalls([Call("get_weather", '{"city":"Oslo"}')]))
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}

    frames = _frames(server, {"model": model, "input": "weather", "tools": [tool]})

    events = [json.loads(data) for _, data in frames[:-1]]
    for event in events:
        assert event_errors(event) == [], event["type"]
    final = events[-1]["response"]
    assert final["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": None,
            "parameters": {"type": "object"},
            "strict": None,
        }
    ]


def test_failed_stream_sends_a_spec_error_event_then_response_failed(
    server: Server, upstream: ScriptedUpstream
) -> None:
    frames = _frames(
        server, {"model": upstream.script(Cut(2, Text("abcdefgh", chunk_size=2))), "input": "x"}
    )

    events = [json.loads(data) for _, data in frames[:-1]]
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["error"]["type"] == "model_error"
    for event in events:
        assert event_errors(event) == [], event["type"]


def test_non_streaming_response_is_a_complete_response_resource(
    server: Server, upstream: ScriptedUpstream
) -> None:
    response = httpx.post(
        f"{server.base_url}/responses",
        headers=SPEC,
        timeout=10,
        json={"model": upstream.script(Text("ok")), "input": "hi"},
    )

    body = response.json()
    assert errors(body, "ResponseResource") == []
    required = [
        "completed_at",
        "incomplete_details",
        "previous_response_id",
        "instructions",
        "error",
        "usage",
        "max_output_tokens",
        "max_tool_calls",
        "safety_identifier",
        "prompt_cache_key",
        "presence_penalty",
        "frequency_penalty",
        "top_logprobs",
    ]
    assert all(key in body for key in required)
    assert body["store"] is True
    assert body["output"][0]["content"][0]["annotations"] == []
    assert body["usage"]["input_tokens_details"]["cached_tokens"] == 0
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] == 0


def test_retrieve_in_the_spec_dialect_validates(server: Server, upstream: ScriptedUpstream) -> None:
    created = httpx.post(
        f"{server.base_url}/responses",
        headers=SPEC,
        timeout=10,
        json={"model": upstream.script(Text("ok")), "input": "hi", "store": True},
    ).json()

    fetched = httpx.get(f"{server.base_url}/responses/{created['id']}", headers=SPEC).json()

    assert errors(fetched, "ResponseResource") == []
    assert fetched == created


def test_errors_use_the_spec_error_types(server: Server) -> None:
    missing = httpx.get(f"{server.base_url}/responses/resp_nope", headers=SPEC)
    invalid = httpx.post(f"{server.base_url}/responses", headers=SPEC, json={"input": "no model"})

    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "not_found")
    assert (invalid.status_code, invalid.json()["error"]["type"]) == (400, "invalid_request")


def test_assistant_input_messages_may_carry_phase(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))
    body = {
        "model": model,
        "input": [
            {
                "type": "message",
                "role": "assistant",
                "content": "Thinking aloud",
                "phase": "commentary",
            },
            {"type": "message", "role": "user", "content": "go on"},
        ],
    }

    response = httpx.post(f"{server.base_url}/responses", headers=SPEC, json=body, timeout=10)

    assert response.status_code == 200
    items = httpx.get(
        f"{server.base_url}/responses/{response.json()['id']}/input_items?order=asc", headers=SPEC
    ).json()["data"]
    assert items[0]["phase"] == "commentary"


def test_the_spec_request_example_validates_against_our_models() -> None:
    example = json.loads((EXAMPLES / "ResponseParam.json").read_text())

    orm.CreateResponseBody.model_validate(example)


def test_the_spec_response_example_fails_only_on_the_spec_own_omissions() -> None:
    """The published example omits four keys its own schema requires (spec 2026-04-24).

    If a later spec release fixes its example, this test fails and should become a plain
    validation, like the request example above.
    """
    example = json.loads((EXAMPLES / "ResponseResource.json").read_text())

    with pytest.raises(ValueError) as caught:
        orm.ResponseResource.model_validate(example)
    missing = sorted(".".join(map(str, e["loc"])) for e in caught.value.errors())  # type: ignore[attr-defined]
    assert missing == ["frequency_penalty", "presence_penalty", "text.format", "top_logprobs"]
    fixed = {
        **example,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "top_logprobs": 0,
        "text": {"format": {"type": "text"}},
    }
    orm.ResponseResource.model_validate(fixed)


def test_server_wide_dialect_applies_without_the_header(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    server = Server(tmp_path, server_env(upstream), ["--dialect", "openresponses"]).start()
    try:
        missing = httpx.get(f"{server.base_url}/responses/resp_nope")
        with httpx.stream(
            "POST",
            f"{server.base_url}/responses",
            timeout=10,
            json={"model": upstream.script(Text("ok")), "input": "x", "stream": True},
        ) as r:
            raw = r.read().decode()
    finally:
        server.stop()

    assert missing.json()["error"]["type"] == "not_found"
    assert raw.endswith("data: [DONE]\n\n")


def test_an_event_the_spec_does_not_define_carries_our_prefix() -> None:
    event = m.ResponseWebSearchCallInProgressEvent.model_construct(
        type="response.web_search_call.in_progress",
        sequence_number=7,
        output_index=1,
        item_id="ws_1",
    )

    assert event_body(event, Dialect.OPENRESPONSES, store=True) == {
        "type": "openresponses:response.web_search_call.in_progress",
        "sequence_number": 7,
        "output_index": 1,
        "item_id": "ws_1",
    }
    harness = Context(Client(Target("http://127.0.0.1:9/v1", "m"), HarnessDialect.OPENRESPONSES))
    assert harness.event_schema_errors([event_body(event, Dialect.OPENRESPONSES, store=True)]) == []
    assert event_body(event, Dialect.OPENAI, store=True)["type"] == (
        "response.web_search_call.in_progress"
    )


# --- The default dialect satisfies both specs -----------------------------------------------

CLIENT = {"authorization": "Bearer sk-client"}
"""No OpenResponses-Version header: how both OpenAI's SDKs and Open Responses clients call."""

PLAIN_TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
"""A function tool without the keys the Open Responses spec requires echoed (nullable)."""

CITY_FORMAT = {
    "type": "json_schema",
    "name": "city",
    "schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _both_spec_errors(response: dict[str, Any]) -> list[str]:
    return OPENRESPONSES.errors(response, "ResponseResource") + OPENAI.errors(response, "Response")


def test_a_default_response_and_its_retrieval_validate_against_both_specs(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text('{"city": "Oslo"}', reasoning="Think."))
    body = {"model": model, "input": "Q", "tools": [PLAIN_TOOL], "text": {"format": CITY_FORMAT},
            "reasoning": {"effort": "low"}}  # fmt: skip

    created = httpx.post(f"{server.base_url}/responses", json=body, headers=CLIENT, timeout=10)
    retrieved = httpx.get(f"{server.base_url}/responses/{created.json()['id']}", headers=CLIENT)

    for response in (created.json(), retrieved.json()):
        assert _both_spec_errors(response) == []
        assert response["text"]["format"] == {**CITY_FORMAT, "description": None, "strict": False}
        assert (response["store"], response["presence_penalty"]) == (True, 0.0)
        assert response["output"][0]["type"] == "reasoning"


def test_every_default_stream_event_validates_against_both_specs(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Sunny.", reasoning="Look it up."))
    body = {"model": model, "input": "Q", "tools": [PLAIN_TOOL], "store": False, "stream": True}
    with httpx.stream(
        "POST", f"{server.base_url}/responses", json=body, headers=CLIENT, timeout=10
    ) as response:
        raw = response.read().decode()
    events = [json.loads(line[6:]) for line in raw.split("\n") if line.startswith("data: {")]
    harness = Context(Client(Target("http://127.0.0.1:9/v1", "m"), HarnessDialect.OPENRESPONSES))

    assert raw.endswith("data: [DONE]\n\n")
    assert harness.event_schema_errors(events) == []  # OpenAI's reasoning names, spec shapes
    assert [e for event in events for e in OPENAI.event_errors(event)] == []
    assert events[-1]["response"]["store"] is False


def test_the_openai_sdk_reads_a_default_stream_to_its_end(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello there."))

    with server.client().responses.create(model=model, input="Hi", stream=True) as stream:
        events = list(stream)

    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "Hello there."


def test_a_default_cancelled_response_validates_against_both_specs(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("z" * 200, chunk_size=1, chunk_delay=0.05))
    body = {"model": model, "input": "Hi", "background": True}
    created = httpx.post(f"{server.base_url}/responses", json=body, headers=CLIENT, timeout=10)

    cancelled = httpx.post(f"{server.base_url}/responses/{created.json()['id']}/cancel",
                           headers=CLIENT, timeout=10)  # fmt: skip

    assert _both_spec_errors(created.json()) == []
    assert cancelled.json()["status"] == "cancelled"
    assert _both_spec_errors(cancelled.json()) == []


def test_the_spec_dialect_echoes_a_json_schema_format(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text('{"city": "Oslo"}'))
    body = {"model": model, "input": "Q", "text": {"format": CITY_FORMAT}}

    response = httpx.post(f"{server.base_url}/responses", json=body, headers=SPEC, timeout=10)

    assert response.json()["text"]["format"] == {
        **CITY_FORMAT, "description": None, "strict": False
    }  # fmt: skip
    assert errors(response.json(), "ResponseResource") == []
