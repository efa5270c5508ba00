"""The native Responses adapter (`kind = "openai-responses"`): the upstream speaks `/v1/responses`,
this server keeps the state and streams with its own ids and sequence numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from openresponses.conformance import grammar, runner
from openresponses.conformance.schemas import OPENAI as OPENAI_SCHEMAS
from openresponses.conformance.schemas import OPENRESPONSES as OPENRESPONSES_SCHEMAS
from openresponses.conformance.wire import Client, Dialect, Target
from tests import conformance_model
from tests.attachments import PDF, PNG, data_url, upload
from tests.conftest import Server, final_response, server_env
from tests.upstream import (
    Call,
    Error,
    ScriptedUpstream,
    Text,
    ToolCalls,
    Usage,
    encrypted,
    reasoning_id,
)

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


@pytest.fixture(scope="module")
def native(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("native")
    config = data / "openresponses.toml"
    config.write_text(
        f'[providers.native]\nkind = "openai-responses"\nbase_url = "{upstream.base_url}"\n'
    )
    server = Server(data, server_env(upstream), ["--config", str(config)]).start()
    yield server
    server.stop()


@pytest.fixture
def client(native: Server) -> openai.OpenAI:
    return native.client()


def _sent(upstream: ScriptedUpstream, model: str, index: int = 0) -> dict[str, Any]:
    request = upstream.requests(model)[index]
    assert request.path == "/v1/responses"
    return request.json


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_text_answer_is_relayed_and_stored_here(
    client: openai.OpenAI, upstream: ScriptedUpstream, stream: bool
) -> None:
    model = upstream.script(Text("Native hello.", usage=Usage(9, 3, cached_tokens=4)))

    response = final_response(
        client,
        stream,
        model=f"native@{model}",
        input="Hi",
        instructions="Be kind.",
        temperature=0.2,
    )

    assert response.output_text == "Native hello."
    assert response.model == f"native@{model}"
    usage = response.usage.model_dump()
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (9, 3, 12)
    assert usage["input_tokens_details"]["cached_tokens"] == 4
    assert client.responses.retrieve(response.id).output_text == "Native hello."
    sent = _sent(upstream, model)
    assert {k: v for k, v in sent.items() if k != "stream"} == {
        "model": model,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
        ],
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "instructions": "Be kind.",
        "temperature": 0.2,
    }


def test_the_stream_carries_this_servers_ids_and_sequence_numbers(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Numbered by us."))

    with client.responses.create(model=f"native@{model}", input="Hi", stream=True) as stream:
        events = list(stream)

    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert final.id.startswith("resp_") and len(final.id) == 53  # ours: 48 hex digits
    assert final.output[0].id.startswith("msg_") and len(final.output[0].id) == 52


def sealed(reasoning: str) -> str:
    """What this server keeps as a native reasoning item's `encrypted_content`: the
    upstream's id for the item, then the upstream's encrypted content."""
    return f"upstream_id:{reasoning_id(reasoning)}:{encrypted(reasoning)}"


def test_encrypted_reasoning_is_sent_back_under_the_upstreams_item_id(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    thought = "Greet the user back."
    model = upstream.script(Text("Hello!", reasoning=thought), Text("Hello again!"))

    first = client.responses.create(
        model=f"native@{model}", input="Hi", reasoning={"effort": "high"}
    )
    client.responses.create(
        model=f"native@{model}", previous_response_id=first.id, input="Hi again"
    )

    reasoning = first.output[0]
    assert (reasoning.type, reasoning.encrypted_content) == ("reasoning", sealed(thought))
    assert reasoning.id != reasoning_id(thought)  # the item's id is this server's
    assert [part.text for part in reasoning.content] == [thought]
    assert _sent(upstream, model, 0)["reasoning"] == {"effort": "high"}
    assert _sent(upstream, model, 1)["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {
            "type": "reasoning",
            "id": reasoning_id(thought),
            "summary": [],
            "encrypted_content": encrypted(thought),
            "status": "completed",
        },
        {
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "Hello!", "annotations": [], "logprobs": []}
            ],
        },
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi again"}],
        },
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_function_calls_round_trip(
    client: openai.OpenAI, upstream: ScriptedUpstream, stream: bool
) -> None:
    model = upstream.script(
        ToolCalls(
            [
                Call("get_weather", '{"city": "Oslo"}', "call_o"),
                Call("get_weather", '{"city": "Rome"}', "call_r"),
            ]
        ),
        Text("Cold in Oslo, warm in Rome."),
    )

    first = final_response(
        client, stream, model=f"native@{model}", input="Oslo and Rome?", tools=[WEATHER]
    )
    second = client.responses.create(
        model=f"native@{model}",
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[
            {"type": "function_call_output", "call_id": "call_o", "output": "-3 °C"},
            {"type": "function_call_output", "call_id": "call_r", "output": "21 °C"},
        ],
    )

    assert [(o.call_id, o.name, json.loads(o.arguments)) for o in first.output] == [
        ("call_o", "get_weather", {"city": "Oslo"}),
        ("call_r", "get_weather", {"city": "Rome"}),
    ]
    assert second.output_text == "Cold in Oslo, warm in Rome."
    sent = _sent(upstream, model, 1)
    assert sent["tools"] == [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    ]
    assert [(i["type"], i.get("call_id")) for i in sent["input"]] == [
        ("message", None),
        ("function_call", "call_o"),
        ("function_call", "call_r"),
        ("function_call_output", "call_o"),
        ("function_call_output", "call_r"),
    ]


def test_an_incomplete_upstream_response_stays_incomplete(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Cut", finish_reason="length"))

    response = client.responses.create(model=f"native@{model}", input="Hi", max_output_tokens=16)

    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert _sent(upstream, model)["max_output_tokens"] == 16


def test_a_rate_limit_with_a_long_retry_after_passes_through_at_once(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    slow_down = Error(429, "Slow down", type="rate_limit_error", headers={"retry-after": "30"})
    model = upstream.script(slow_down)

    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=f"native@{model}", input="Hi")

    assert caught.value.response.headers["retry-after"] == "30"
    assert len(upstream.requests(model)) == 1


def test_the_conformance_harness_passes_with_a_native_upstream(
    native: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.responder(conformance_model.answer, "conformance-native")
    target = Target(native.base_url, f"native@{model}", "sk-client", {}, timeout=20)

    results = runner.run(target, runner.select(list(Dialect)))

    assert [(r.id, r.message) for r in results if r.status == runner.FAIL] == []


@pytest.mark.parametrize("dialect", list(Dialect), ids=[d.value for d in Dialect])
def test_a_reasoning_summary_streams_as_summary_parts(
    native: Server, upstream: ScriptedUpstream, dialect: Dialect
) -> None:
    summary = "**Comparing decimals** Tenths decide: 9.8 wins."
    model = upstream.script(Text("9.8 is greater.", summary=summary))
    client = Client(
        Target(native.base_url, f"native@{model}", "sk-client", {}, timeout=20), dialect
    )
    try:
        streamed = client.stream(
            "/responses", {"model": f"native@{model}", "input": "9.11 or 9.8?",
                           "reasoning": {"effort": "low", "summary": "detailed"}},
        )  # fmt: skip
    finally:
        client.close()

    events = streamed.events
    assert [e["type"] for e in events if "summary" in e["type"]] == [
        "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * 10,
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    ]
    reasoning = events[-1]["response"]["output"][0]
    assert reasoning["summary"] == [{"type": "summary_text", "text": summary}]
    assert reasoning["encrypted_content"] == sealed(summary)
    assert grammar.check(events).violations == []
    schemas = OPENRESPONSES_SCHEMAS if dialect is Dialect.OPENRESPONSES else OPENAI_SCHEMAS
    assert [p for e in events for p in schemas.event_errors(e)] == []
    assert _sent(upstream, model)["reasoning"] == {"effort": "low", "summary": "detailed"}


def test_a_provider_that_writes_no_summaries_refuses_a_requested_one(
    native: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("ok"))

    with pytest.raises(openai.BadRequestError) as caught:
        native.client().responses.create(
            model=model, input="Hi", reasoning={"effort": "low", "summary": "concise"}
        )
    auto = native.client().responses.create(
        model=model, input="Hi", reasoning={"effort": "low", "summary": "auto"}
    )

    assert caught.value.body["message"] == (
        "reasoning.summary 'concise' is not supported by provider 'openai' (chat completions)."
    )
    assert caught.value.body["param"] == "reasoning.summary"
    assert auto.output_text == "ok"
    assert "reasoning_summary" not in upstream.requests(model)[0].json


def test_reasoning_a_client_hands_back_goes_upstream_under_the_upstreams_id(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    thought = "Count the letters."
    model = upstream.script(Text("Five.", reasoning=thought), Text("Yes."))
    first = client.responses.create(
        model=f"native@{model}",
        input="How many letters in 'hello'?",
        store=False,
        include=["reasoning.encrypted_content"],
    )
    context = [item.model_dump(exclude_none=True) for item in first.output]

    client.responses.create(
        model=f"native@{model}", store=False, input=[*context, {"role": "user", "content": "Sure?"}]
    )

    assert _sent(upstream, model, 1)["input"][0] == {
        "type": "reasoning",
        "id": reasoning_id(thought),
        "summary": [],
        "encrypted_content": encrypted(thought),
        "status": "completed",
    }


def test_uploads_by_file_id_go_upstream_inline(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("A pixel and a contract."))
    image, pdf = upload(client, "pixel.png", PNG), upload(client, "contract.pdf", PDF)

    client.responses.create(
        model=f"native@{model}",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "file_id": image, "detail": "high"},
                    {"type": "input_file", "file_id": pdf},
                ],
            }
        ],
    )

    assert _sent(upstream, model)["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_image", "image_url": data_url("image/png", PNG), "detail": "high"},
                {
                    "type": "input_file",
                    "file_data": data_url("application/pdf", PDF),
                    "filename": "contract.pdf",
                },
            ],
        }
    ]


def test_a_file_url_goes_upstream_as_given(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    """At a public address (a literal: no DNS); this server, offline, could not fetch it."""
    model = upstream.script(Text("A report."))
    url = "https://93.184.216.34/report.pdf"

    client.responses.create(
        model=f"native@{model}",
        input=[{"role": "user", "content": [{"type": "input_file", "file_url": url}]}],
    )

    assert _sent(upstream, model)["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_file", "file_url": url}]}
    ]
