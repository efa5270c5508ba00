"""POST /v1/responses through the official SDK: the non-streaming path and its request features."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import Server
from tests.upstream import Call, ScriptedUpstream, Text, ToolCalls, Usage


def test_plain_text_response_has_the_full_response_shape(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        Text("Hello there!", usage=Usage(prompt_tokens=12, completion_tokens=3))
    )

    response = client.responses.create(model=model, input="Say hello")

    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == model
    assert response.error is None
    assert response.incomplete_details is None
    assert response.output_text == "Hello there!"
    [message] = response.output
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.status == "completed"
    assert message.id.startswith("msg_")
    assert [(p.type, p.text, p.annotations) for p in message.content] == [
        ("output_text", "Hello there!", [])
    ]
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)
    assert response.usage.total_tokens == 15
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.completed_at is not None and response.completed_at >= response.created_at


def test_string_input_reaches_the_upstream_as_a_user_message(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))

    client.responses.create(model=model, input="What is 2+2?")

    [sent] = upstream.requests(model)
    assert sent.json["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert sent.json["model"] == model
    assert "stream" not in sent.json


def test_instructions_become_the_first_system_message(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))

    response = client.responses.create(model=model, instructions="Be brief.", input="Hi")

    assert response.instructions == "Be brief."
    [sent] = upstream.requests(model)
    assert sent.json["messages"][0] == {"role": "system", "content": "Be brief."}


def test_message_items_with_parts_and_roles_are_translated(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))

    client.responses.create(
        model=model,
        input=[
            {"role": "developer", "content": "Answer in French."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/cat.png",
                        "detail": "low",
                    },
                ],
            },
            {"role": "assistant", "content": "Un chat."},
            {"role": "user", "content": [{"type": "input_text", "text": "Sure?"}]},
        ],
    )

    [sent] = upstream.requests(model)
    assert sent.json["messages"] == [
        {"role": "developer", "content": "Answer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/cat.png", "detail": "low"},
                },
            ],
        },
        {"role": "assistant", "content": "Un chat."},
        {"role": "user", "content": "Sure?"},
    ]


def test_input_file_part_is_forwarded_as_a_chat_file_part(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))
    data = "data:application/pdf;base64,JVBERi0xLjQK"

    client.responses.create(
        model=model,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_file", "filename": "a.pdf", "file_data": data},
                    {"type": "input_text", "text": "Summarise."},
                ],
            }
        ],
    )

    [sent] = upstream.requests(model)
    assert sent.json["messages"][0]["content"] == [
        {"type": "file", "file": {"file_data": data, "filename": "a.pdf"}},
        {"type": "text", "text": "Summarise."},
    ]


def test_sampling_parameters_are_forwarded_and_echoed(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))

    response = client.responses.create(
        model=model,
        input="Hi",
        temperature=0.3,
        top_p=0.9,
        max_output_tokens=50,
        user="u-1",
        metadata={"team": "blue"},
    )

    [sent] = upstream.requests(model)
    assert (sent.json["temperature"], sent.json["top_p"]) == (0.3, 0.9)
    assert sent.json["max_completion_tokens"] == 50
    assert sent.json["user"] == "u-1"
    assert (response.temperature, response.top_p, response.max_output_tokens) == (0.3, 0.9, 50)
    assert response.metadata == {"team": "blue"}
    assert response.user == "u-1"


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_function_call_output_item_carries_name_call_id_and_arguments(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(ToolCalls([Call("get_weather", '{"city":"Paris"}', id="call_1")]))

    response = client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER_TOOL])

    assert response.status == "completed"
    [call] = response.output
    assert call.type == "function_call"
    assert (call.name, call.call_id, call.arguments) == (
        "get_weather",
        "call_1",
        '{"city":"Paris"}',
    )
    assert call.status == "completed"
    assert call.id.startswith("fc_")
    [sent] = upstream.requests(model)
    assert sent.json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": WEATHER_TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    assert response.tools[0].name == "get_weather"


def test_parallel_tool_calls_become_separate_items(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        ToolCalls(
            [
                Call("get_weather", '{"city":"Paris"}', id="call_a"),
                Call("get_weather", '{"city":"Rome"}', id="call_b"),
            ]
        )
    )

    response = client.responses.create(
        model=model, input="Paris and Rome?", tools=[WEATHER_TOOL], parallel_tool_calls=True
    )

    assert [(o.type, o.call_id, json.loads(o.arguments)["city"]) for o in response.output] == [
        ("function_call", "call_a", "Paris"),
        ("function_call", "call_b", "Rome"),
    ]
    assert upstream.requests(model)[0].json["parallel_tool_calls"] is True


def test_function_call_output_round_trip_sends_tool_messages(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        ToolCalls([Call("get_weather", '{"city":"Paris"}', id="call_1")]),
        Text("It is sunny in Paris."),
    )
    first = client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER_TOOL])

    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'}],
    )

    assert second.output_text == "It is sunny in Paris."
    assert second.previous_response_id == first.id
    messages = upstream.requests(model)[1].json["messages"]
    assert messages == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]


def test_function_call_items_given_as_input_are_accepted_without_ids(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("done"))

    response = client.responses.create(
        model=model,
        input=[
            {"role": "user", "content": "Weather?"},
            {"type": "function_call", "call_id": "c9", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c9", "output": "rainy"},
        ],
    )

    assert response.status == "completed"
    items = client.responses.input_items.list(response.id, order="asc").data
    assert [i.type for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1].id.startswith("fc_")
    assert items[2].id.startswith("fco_")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", "required"),
        ("none", "none"),
        (
            {"type": "function", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_is_translated(
    client: openai.OpenAI, upstream: ScriptedUpstream, choice: object, expected: object
) -> None:
    model = upstream.script(Text("ok"))

    client.responses.create(model=model, input="x", tools=[WEATHER_TOOL], tool_choice=choice)  # type: ignore[arg-type]

    assert upstream.requests(model)[0].json["tool_choice"] == expected


def test_allowed_tools_limits_the_tools_sent_upstream(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))
    other = {**WEATHER_TOOL, "name": "send_email", "description": "Send mail"}

    client.responses.create(
        model=model,
        input="x",
        tools=[WEATHER_TOOL, other],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "get_weather"}],
        },
    )

    sent = upstream.requests(model)[0].json
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["tool_choice"] == "required"


def test_json_schema_text_format_becomes_response_format(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text('{"answer": 4}'))
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }

    response = client.responses.create(
        model=model,
        input="2+2?",
        text={"format": {"type": "json_schema", "name": "math", "schema": schema, "strict": True}},
    )

    assert json.loads(response.output_text) == {"answer": 4}
    assert response.text.format.type == "json_schema"
    assert upstream.requests(model)[0].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "math", "schema": schema, "strict": True},
    }


def test_json_object_text_format_becomes_response_format(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("{}"))

    client.responses.create(
        model=model, input="json please", text={"format": {"type": "json_object"}}
    )

    assert upstream.requests(model)[0].json["response_format"] == {"type": "json_object"}


def test_length_finish_makes_the_response_incomplete(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Once upon a", finish_reason="length"))

    response = client.responses.create(model=model, input="Tell a story", max_output_tokens=16)

    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[-1].status == "incomplete"
    assert response.output_text == "Once upon a"


def test_reasoning_content_becomes_a_reasoning_item_before_the_message(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(
        Text("42", reasoning="Six times seven.", usage=Usage(reasoning_tokens=4))
    )

    response = client.responses.create(model=model, input="6*7?")

    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert reasoning.id.startswith("rs_")
    assert [(c.type, c.text) for c in reasoning.content or []] == [
        ("reasoning_text", "Six times seven.")
    ]
    assert message.type == "message"
    assert response.output_text == "42"
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 4


def test_provider_prefix_routes_to_the_named_provider_with_its_own_key(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("from second"))

    response = client.responses.create(model=f"second@{model}", input="Hi")

    assert response.output_text == "from second"
    assert response.model == f"second@{model}"
    [sent] = upstream.requests(model)
    assert sent.json["model"] == model
    assert sent.headers["authorization"] == "Bearer sk-server-second"


def test_provider_header_routes_like_a_prefix(server: Server, upstream: ScriptedUpstream) -> None:
    model = upstream.script(Text("via header"))
    client = server.client(default_headers={"x-model-provider": "second"})

    response = client.responses.create(model=model, input="Hi")

    assert response.output_text == "via header"
    assert upstream.requests(model)[0].headers["authorization"] == "Bearer sk-server-second"


def test_client_bearer_token_is_forwarded_when_the_server_has_no_key(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))

    server.client(api_key="sk-user-own").responses.create(model=model, input="Hi")

    assert upstream.requests(model)[0].headers["authorization"] == "Bearer sk-user-own"


def test_reasoning_effort_and_cache_hints_are_forwarded(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))

    response = client.responses.create(
        model=model,
        input="Think hard.",
        reasoning={"effort": "high"},
        prompt_cache_key="tenant-7",
        safety_identifier="user-hash-1",
    )

    sent = upstream.requests(model)[0].json
    assert sent["reasoning_effort"] == "high"
    assert (sent["prompt_cache_key"], sent["safety_identifier"]) == ("tenant-7", "user-hash-1")
    assert response.reasoning is not None and response.reasoning.effort == "high"
    assert response.prompt_cache_key == "tenant-7"


def test_absent_hints_are_not_sent_upstream(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))

    client.responses.create(model=model, input="Hi")

    sent = upstream.requests(model)[0].json
    assert set(sent) == {"model", "messages"}
