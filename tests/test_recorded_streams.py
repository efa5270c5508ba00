"""Provider streams as the providers send them (tests/fixtures/), replayed byte for byte."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import Server, server_env
from tests.upstream import Raw, ScriptedUpstream, Text

FIXTURES = Path(__file__).parent / "fixtures"
SSE = "text/event-stream"


@pytest.fixture(scope="module")
def server(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("recorded")
    config = data / "openresponses.toml"
    config.write_text(
        f'[providers.native]\nkind = "openai-responses"\nbase_url = "{upstream.base_url}"\n'
    )
    env = server_env(upstream, ANTHROPIC_BASE_URL=upstream.base_url)
    srv = Server(data, env, ["--config", str(config)]).start()
    yield srv
    srv.stop()


def _replay(upstream: ScriptedUpstream, fixture: str, status: int = 200, times: int = 1) -> str:
    path = FIXTURES / fixture
    kind = SSE if path.suffix == ".sse" else "application/json"
    return upstream.script(*[Raw(status, path.read_bytes(), kind)] * times)


def _final(server: Server, model: str) -> Any:
    with server.client().responses.create(model=model, input="Hi", stream=True) as stream:
        events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events[-1]


def test_anthropic_thinking_text_and_tool_use(server: Server, upstream: ScriptedUpstream) -> None:
    model = _replay(upstream, "anthropic/thinking_tool_use.sse")

    final = _final(server, f"anthropic@{model}").response

    reasoning, message, call = final.output
    assert [part.text for part in reasoning.content] == [
        "The user wants the weather in Paris. I should call get_weather."
    ]
    assert reasoning.encrypted_content == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    assert message.content[0].text == "Let me check the weather."
    assert (call.call_id, call.name) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert json.loads(call.arguments) == {"city": "Paris", "unit": "celsius"}
    usage = final.usage.model_dump()
    assert (usage["input_tokens"], usage["output_tokens"]) == (600, 89)
    assert usage["input_tokens_details"]["cached_tokens"] == 128


def test_an_anthropic_error_event_mid_stream_fails_the_response(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = _replay(upstream, "anthropic/error_mid_stream.sse")

    final = _final(server, f"anthropic@{model}")

    assert final.type == "response.failed"
    assert final.response.output[0].content[0].text == "Once upon"
    assert final.response.error.message == "anthropic failed mid-stream: Overloaded"


def test_an_overloaded_anthropic_is_a_503_after_retries(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = _replay(upstream, "anthropic/overloaded.json", status=529, times=3)

    with pytest.raises(openai.InternalServerError) as caught:
        server.client().responses.create(model=f"anthropic@{model}", input="Hi")

    assert caught.value.status_code == 503
    assert caught.value.body["message"] == "anthropic returned HTTP 529: Overloaded"


def test_deepseek_reasoning_content_becomes_a_reasoning_item(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = _replay(upstream, "deepseek/reasoning_stream.sse")

    final = _final(server, model).response

    reasoning, message = final.output
    assert [part.text for part in reasoning.content] == ["9.11 versus 9.8: compare tenths, 8 > 1."]
    assert message.content[0].text == "9.8 is greater."
    assert final.usage.output_tokens_details.reasoning_tokens == 31


def test_openai_responses_reasoning_that_is_only_encrypted_and_a_call(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = _replay(upstream, "openai/responses_reasoning_call.sse")

    final = _final(server, f"native@{model}").response

    reasoning, call = final.output
    # The upstream's id for its reasoning travels inside the opaque encrypted content, to go
    # back with it (see providers.openai_responses.UPSTREAM_ID).
    assert (reasoning.content, reasoning.encrypted_content) == (
        [],
        "upstream_id:rs_68af0c20a6f08190b0c6e58f4dd9b6a10c6b8f2d1a3e4f5b:"
        "gAAAAABor_wgZ3ZkYXNkZmFzZGZhc2RmYXNkZmFzZGY=",
    )
    assert (call.call_id, call.arguments) == ("call_Ue7mcpJ3WpJ1kxCTq9ELyJ8v", '{"city":"Paris"}')
    assert final.id != "resp_68af0c1f1e8c8190a4e7e4c3b2b5a0d10c6b8f2d1a3e4f5b"  # ours, not theirs
    assert final.usage.output_tokens_details.reasoning_tokens == 128


def test_anthropic_thinking_blocks_and_redacted_thinking_round_trip(
    server: Server, upstream: ScriptedUpstream
) -> None:
    path = FIXTURES / "anthropic/redacted_thinking.sse"
    model = upstream.script(Raw(200, path.read_bytes(), SSE), Text("Continued."))

    final = _final(server, f"anthropic@{model}").response
    server.client().responses.create(
        model=f"anthropic@{model}", previous_response_id=final.id, input="Go on."
    )

    assert [(o.type, getattr(o, "encrypted_content", None)) for o in final.output] == [
        ("reasoning", "SigOfTheFirstBlock=="),
        (
            "reasoning",
            "redacted_thinking:EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP",
        ),
        ("reasoning", "SigOfTheThirdBlock=="),
        ("message", None),
    ]
    assert upstream.requests(model)[1].json["messages"][1] == {
        "role": "assistant",
        "content": [
            {
                "type": "thinking",
                "thinking": "First, the plain part.",
                "signature": "SigOfTheFirstBlock==",
            },
            {
                "type": "redacted_thinking",
                "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP",
            },
            {"type": "thinking", "thinking": "Then the rest.", "signature": "SigOfTheThirdBlock=="},
            {"type": "text", "text": "Done thinking."},
        ],
    }
