"""`POST /v1/responses/input_tokens`: tiktoken counts for OpenAI-family models, offline.

The expected counts below are facts about the encodings (tiktoken's own output, checked once):
'人工知能は世界を変える' is 8 tokens in o200k_base and 13 in cl100k_base, 'hello world' is 2 in
both, and every role name is 1. A message costs 3 tokens of framing and every request 3 more.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Server
from tests.upstream import ScriptedUpstream, Text

JAPANESE = "人工知能は世界を変える"
FRAMING = 3  # per message
PRIMING = 3  # per request


def _count(server: Server, **body: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/responses/input_tokens", json=body)


def test_an_openai_model_is_counted_exactly_with_its_encoding(client: openai.OpenAI) -> None:
    counted = client.responses.input_tokens.count(model="gpt-4.1-mini", input=JAPANESE)

    assert counted.object == "response.input_tokens"
    assert counted.input_tokens == FRAMING + 1 + 8 + PRIMING


@pytest.mark.parametrize(
    ("model", "tokens", "kind"),
    [
        ("gpt-4o", 8, "exact"),
        ("openai@gpt-5", 8, "exact"),
        ("gpt-4", 13, "exact"),
        ("gpt-3.5-turbo", 13, "exact"),
        ("ollama@llama3.2", 8, "estimate"),
        ("", 8, "estimate"),
    ],
)
def test_each_model_family_gets_its_own_encoding(
    server: Server, model: str, tokens: int, kind: str
) -> None:
    answer = _count(server, model=model, input=JAPANESE)

    assert answer.status_code == 200
    assert answer.json() == {
        "object": "response.input_tokens",
        "input_tokens": FRAMING + 1 + tokens + PRIMING,
    }
    assert answer.headers["openresponses-token-count"] == kind


def test_instructions_count_as_a_system_message(server: Server) -> None:
    plain = _count(server, model="gpt-4o", input="hello world").json()["input_tokens"]
    instructed = _count(
        server, model="gpt-4o", input="hello world", instructions="hello world"
    ).json()["input_tokens"]

    assert instructed - plain == FRAMING + 1 + 2


def test_every_item_of_the_input_counts(server: Server) -> None:
    items = [
        {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": JAPANESE},
        {"type": "function_call", "call_id": "c1", "name": "tool", "arguments": "hello world"},
        {"type": "function_call_output", "call_id": "c1", "output": JAPANESE},
    ]

    counted = _count(server, model="gpt-4o", input=items).json()["input_tokens"]

    assert counted == (
        (FRAMING + 1 + 2) + (FRAMING + 1 + 8) + (FRAMING + 1 + 1 + 2) + (FRAMING + 1 + 8) + PRIMING
    )


def test_images_count_at_a_flat_rate(server: Server) -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
    message = {"role": "user", "content": [{"type": "input_text", "text": "hello world"}, image]}

    counted = _count(server, model="gpt-4o", input=[message]).json()["input_tokens"]

    assert counted == FRAMING + 1 + 2 + 765 + PRIMING


def test_tools_and_a_json_schema_add_to_the_count(server: Server) -> None:
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}
    schema = {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}
    plain = _count(server, model="gpt-4o", input="hello world").json()["input_tokens"]

    with_tool = _count(server, model="gpt-4o", input="hello world", tools=[tool])
    with_schema = _count(server, model="gpt-4o", input="hello world", text={"format": schema})

    assert with_tool.json()["input_tokens"] > plain + 7
    assert with_schema.json()["input_tokens"] > plain + 7


def test_a_previous_response_chain_counts_as_context(
    client: openai.OpenAI, server: Server, upstream: ScriptedUpstream
) -> None:
    first = client.responses.create(model=upstream.script(Text("hello world")), input=JAPANESE)

    counted = _count(server, model="gpt-4o", previous_response_id=first.id, input="hello world")

    assert counted.json()["input_tokens"] == (
        (FRAMING + 1 + 8) + (FRAMING + 1 + 2) + (FRAMING + 1 + 2) + PRIMING
    )


def test_an_unknown_previous_response_is_a_400(server: Server) -> None:
    answer = _count(server, model="gpt-4o", previous_response_id="resp_nope", input="hi")

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "previous_response_not_found"


def test_the_encodings_come_from_the_data_directory_not_the_internet(server: Server) -> None:
    _count(server, model="gpt-4", input="hello world")

    cached = sorted(path.stat().st_size for path in (server.data_dir / "tiktoken").iterdir())
    assert cached == [1681126, 3613922]  # cl100k_base and o200k_base, as tiktoken expects them
