"""The Anthropic Messages adapter, against a scripted upstream speaking Anthropic's wire format
(`/v1/messages`, JSON and SSE), driven through the official `openai` SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from openresponses.conformance import runner
from openresponses.conformance.wire import Dialect, Target
from tests import conformance_model
from tests.attachments import PDF, PNG, b64, upload
from tests.conftest import Server, final_response, server_env
from tests.upstream import Call, Error, ScriptedUpstream, Text, ToolCalls, Usage, signature

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def anthropic(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = server_env(upstream, ANTHROPIC_BASE_URL=upstream.base_url)
    server = Server(tmp_path_factory.mktemp("anthropic"), env).start()
    yield server
    server.stop()


@pytest.fixture
def client(anthropic: Server) -> openai.OpenAI:
    return anthropic.client()


def _sent(upstream: ScriptedUpstream, model: str, index: int = 0) -> dict[str, Any]:
    request = upstream.requests(model)[index]
    assert request.path == "/v1/messages"
    return request.json


def test_a_text_answer_maps_request_and_response(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Hello from Claude.", usage=Usage(12, 4, cached_tokens=2)))

    response = client.responses.create(
        model=f"anthropic@{model}", input="Hi", instructions="Be brief.", temperature=0.5
    )

    assert response.output_text == "Hello from Claude."
    assert response.status == "completed"
    usage = response.usage.model_dump()
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (12, 4, 16)
    assert usage["input_tokens_details"]["cached_tokens"] == 2
    assert _sent(upstream, model) == {
        "model": model,
        "max_tokens": 8192,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "system": "Be brief.",
        "temperature": 0.5,
    }
    headers = upstream.requests(model)[0].headers
    assert (headers["x-api-key"], headers["anthropic-version"]) == ("sk-client", "2023-06-01")
    assert "authorization" not in headers


def test_a_streamed_answer_arrives_as_semantic_events(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Streaming from Claude, in pieces."))

    with client.responses.create(model=f"anthropic@{model}", input="Hi", stream=True) as stream:
        events = list(stream)

    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Streaming from Claude, in pieces."
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens == 5
    assert _sent(upstream, model)["stream"] is True


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_parallel_tool_use_becomes_function_calls(
    client: openai.OpenAI, upstream: ScriptedUpstream, stream: bool
) -> None:
    calls = [
        Call("get_weather", '{"city": "Paris"}', "call_p"),
        Call("get_weather", '{"city": "Rome"}', "call_r"),
    ]
    model = upstream.script(ToolCalls(calls))

    response = final_response(
        client, stream, model=f"anthropic@{model}", input="Paris and Rome?", tools=[WEATHER]
    )

    assert [(o.type, o.call_id, o.name, json.loads(o.arguments)) for o in response.output] == [
        ("function_call", "toolu_p", "get_weather", {"city": "Paris"}),
        ("function_call", "toolu_r", "get_weather", {"city": "Rome"}),
    ]
    sent = _sent(upstream, model)
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert sent["tool_choice"] == {"type": "auto"}


def test_tool_results_go_back_as_tool_result_blocks(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        ToolCalls([Call("get_weather", '{"city": "Paris"}', "call_1")]), Text("Sunny, 18 °C.")
    )
    first = client.responses.create(model=f"anthropic@{model}", input="Paris?", tools=[WEATHER])

    second = client.responses.create(
        model=f"anthropic@{model}",
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": "toolu_1", "output": "18 °C, sunny"}],
    )

    assert second.output_text == "Sunny, 18 °C."
    assert _sent(upstream, model, 1)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 °C, sunny"}
            ],
        },
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_thinking_becomes_a_reasoning_item_that_keeps_its_signature(
    client: openai.OpenAI, upstream: ScriptedUpstream, stream: bool
) -> None:
    thought = "The user greets me; greet back."
    model = upstream.script(Text("Hello!", reasoning=thought), Text("Again, hello."))

    first = final_response(
        client, stream, model=f"anthropic@{model}", input="Hi", reasoning={"effort": "low"}
    )
    client.responses.create(
        model=f"anthropic@{model}", previous_response_id=first.id, input="Hi again"
    )

    reasoning, message = first.output
    assert reasoning.type == "reasoning"
    assert [part.text for part in reasoning.content] == [thought]
    assert reasoning.encrypted_content == signature(thought)
    assert message.content[0].text == "Hello!"
    sent = _sent(upstream, model, 0)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] == 2048 + 8192
    assert _sent(upstream, model, 1)["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": thought, "signature": signature(thought)},
            {"type": "text", "text": "Hello!"},
        ],
    }


def test_max_tokens_ends_the_response_incomplete(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Cut sho", finish_reason="length"))

    response = client.responses.create(model=f"anthropic@{model}", input="Hi", max_output_tokens=16)

    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert _sent(upstream, model)["max_tokens"] == 16


def test_an_overloaded_upstream_is_a_503(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    model = upstream.script(*[Error(529, "Overloaded", type="overloaded_error")] * 3)

    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model=f"anthropic@{model}", input="Hi")

    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "upstream_unavailable"
    assert "Overloaded" in caught.value.body["message"]


def test_images_and_pdfs_become_content_blocks(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A cat and a contract."))

    client.responses.create(
        model=f"anthropic@{model}",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/AAAA"},
                    {"type": "input_image", "image_url": "https://93.184.216.34/cat.png"},
                    {
                        "type": "input_file",
                        "filename": "c.pdf",
                        "file_data": "data:application/pdf;base64,JVBE",
                    },
                    {"type": "input_text", "text": "What are these?"},
                ],
            }
        ],
    )

    assert _sent(upstream, model)["messages"][0]["content"] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/AAAA"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://93.184.216.34/cat.png"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            "title": "c.pdf",
        },
        {"type": "text", "text": "What are these?"},
    ]


PNG_SOURCE = {"type": "base64", "media_type": "image/png", "data": b64(PNG)}


def test_uploads_by_file_id_become_image_and_document_blocks(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A pixel, a contract and minutes."))
    notes = b"Minutes: ship it.\n"
    image, pdf = upload(client, "pixel.png", PNG), upload(client, "contract.pdf", PDF)
    text = upload(client, "minutes.md", notes)

    client.responses.create(
        model=f"anthropic@{model}",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "file_id": image, "detail": "auto"},
                    {"type": "input_file", "file_id": pdf},
                    {"type": "input_file", "file_id": text},
                ],
            }
        ],
    )

    assert _sent(upstream, model)["messages"][0]["content"] == [
        {"type": "image", "source": PNG_SOURCE},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)},
            "title": "contract.pdf",
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "Minutes: ship it.\n"},
            "title": "minutes.md",
        },
    ]


def test_a_file_url_stays_a_url_document(client: openai.OpenAI, upstream: ScriptedUpstream) -> None:
    """At a public address (a literal: no DNS); this server, offline, could not fetch it."""
    model = upstream.script(Text("A report."))
    url = "https://93.184.216.34/report.pdf"

    client.responses.create(
        model=f"anthropic@{model}",
        input=[{"role": "user", "content": [{"type": "input_file", "file_url": url}]}],
    )

    assert _sent(upstream, model)["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "url", "url": url}}
    ]


def test_an_image_by_file_id_in_a_function_output_becomes_a_tool_result_image(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A pixel."))
    image = upload(client, "pixel.png", PNG)
    call = {"type": "function_call", "call_id": "toolu_1", "name": "snap", "arguments": "{}"}
    output = {
        "type": "function_call_output",
        "call_id": "toolu_1",
        "output": [{"type": "input_image", "file_id": image}],
    }

    client.responses.create(model=f"anthropic@{model}", input=[call, output])  # type: ignore[list-item]

    assert _sent(upstream, model)["messages"] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "snap", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [
                        {
                            "type": "image",
                            "source": PNG_SOURCE,
                        }
                    ],
                }
            ],
        },
    ]


@pytest.mark.parametrize(
    ("fields", "param", "what"),
    [
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "input_file",
                                "filename": "a.zip",
                                "file_data": "data:application/zip;base64,UEsDBA==",
                            }
                        ],
                    }
                ]
            },
            "input",
            "input_file of type application/zip",
        ),
    ],
    ids=["zip-file"],
)
def test_what_anthropic_cannot_take_is_a_400_naming_it(
    client: openai.OpenAI, upstream: ScriptedUpstream, fields: dict[str, Any], param: str, what: str
) -> None:
    model = upstream.script()

    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=f"anthropic@{model}", **fields)

    assert caught.value.body["message"] == (
        f"{what} is not supported by provider 'anthropic' (Anthropic Messages)."
    )
    assert caught.value.body["param"] == param
    assert upstream.requests(model) == []


def test_tool_choice_and_parallel_calls_map_to_anthropic_terms(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        ToolCalls([Call("get_weather", "{}")]), ToolCalls([Call("get_weather", "{}")])
    )

    client.responses.create(
        model=f"anthropic@{model}", input="Hi", tools=[WEATHER], tool_choice="required",
        parallel_tool_calls=False,
    )  # fmt: skip
    client.responses.create(
        model=f"anthropic@{model}", input="Hi", tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    )  # fmt: skip

    assert _sent(upstream, model, 0)["tool_choice"] == {
        "type": "any",
        "disable_parallel_tool_use": True,
    }
    assert _sent(upstream, model, 1)["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_system_and_developer_messages_join_the_system_prompt(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))

    client.responses.create(
        model=f"anthropic@{model}",
        instructions="Rule one.",
        input=[
            {"role": "developer", "content": "Rule two."},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": "Still me"},
        ],
    )

    sent = _sent(upstream, model)
    assert sent["system"] == "Rule one.\n\nRule two."
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Still me"}],
        }
    ]


def test_the_server_key_wins_over_the_clients(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    env = server_env(
        upstream, ANTHROPIC_BASE_URL=upstream.base_url, ANTHROPIC_API_KEY="sk-ant-server"
    )
    server = Server(tmp_path, env).start()
    model = upstream.script(Text("ok"))
    try:
        server.client().responses.create(model=f"anthropic@{model}", input="Hi")
    finally:
        server.stop()

    assert upstream.requests(model)[0].headers["x-api-key"] == "sk-ant-server"


def test_the_conformance_harness_passes_with_anthropic_behind_the_server(
    anthropic: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.responder(conformance_model.answer, "conformance-anthropic")
    target = Target(anthropic.base_url, f"anthropic@{model}", "sk-client", {}, timeout=20)

    results = runner.run(target, runner.select(list(Dialect)))

    assert [(r.id, r.message) for r in results if r.status == runner.FAIL] == []


CITY = {
    "type": "json_schema",
    "name": "city",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["name", "population"],
        "additionalProperties": False,
    },
}


def test_a_json_schema_is_asked_for_in_the_instructions_and_the_answer_checked(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    fenced = '```json\n{"name": "Oslo", "population": 709000}\n```'
    model = upstream.script(Text(fenced))

    response = client.responses.create(
        model=f"anthropic@{model}", input="Biggest city in Norway?", instructions="Be exact.",
        text={"format": CITY},
    )  # fmt: skip

    assert json.loads(response.output_text) == {"name": "Oslo", "population": 709000}
    assert response.output_text == '{"name": "Oslo", "population": 709000}'
    system = _sent(upstream, model)["system"]
    assert system.startswith("Be exact.\n\nAnswer with a single JSON value that validates")
    assert json.dumps(CITY["schema"], separators=(",", ":")) in system
    assert "output_format" not in _sent(upstream, model)


def test_an_answer_off_the_schema_gets_one_more_try(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        Text('{"name": "Oslo"}'), Text('{"name": "Oslo", "population": 709000}')
    )

    response = client.responses.create(
        model=f"anthropic@{model}", input="Biggest city in Norway?", text={"format": CITY}
    )

    assert response.status == "completed"
    assert json.loads(response.output_text)["population"] == 709000
    assert response.usage.input_tokens == 20  # both attempts are paid for
    retry = _sent(upstream, model, 1)["messages"]
    assert retry[-2] == {
        "role": "assistant",
        "content": [{"type": "text", "text": '{"name": "Oslo"}'}],
    }
    assert retry[-1]["content"][0]["text"].startswith(
        "That answer is not valid: at the top level: 'population' is a required property."
    )


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_two_answers_off_the_schema_end_incomplete(
    client: openai.OpenAI, upstream: ScriptedUpstream, stream: bool
) -> None:
    model = upstream.script(Text("Oslo, I think."), Text("Still Oslo."))

    response = final_response(
        client, stream, model=f"anthropic@{model}", input="City?", text={"format": CITY}
    )

    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "json_schema_mismatch"
    assert response.output_text == "Still Oslo."
    assert len(upstream.requests(model)) == 2


def test_json_object_needs_only_an_object(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("[1, 2]"), Text('{"ok": true}'))

    response = client.responses.create(
        model=f"anthropic@{model}", input="Say ok.", text={"format": {"type": "json_object"}}
    )

    assert json.loads(response.output_text) == {"ok": True}
    assert (
        "it is not a JSON object" in _sent(upstream, model, 1)["messages"][-1]["content"][0]["text"]
    )


def test_chat_completions_go_to_anthropics_compatible_endpoint_with_a_bearer_token(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Compatible."))

    completion = client.chat.completions.create(
        model=f"anthropic@{model}", messages=[{"role": "user", "content": "Hi"}]
    )

    assert completion.choices[0].message.content == "Compatible."
    (sent,) = upstream.requests(model)
    assert (sent.path, sent.headers["authorization"]) == (
        "/v1/chat/completions",
        "Bearer sk-client",
    )
