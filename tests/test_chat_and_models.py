"""POST /v1/chat/completions (forwarded) and GET /v1/models, through the official SDK."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import Server, server_env
from tests.upstream import Call, Cut, Error, Raw, ScriptedUpstream, Text, ToolCalls


def test_chat_completion_is_forwarded_and_relayed(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("Bonjour"))

    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello in French"}], temperature=0.2
    )

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Bonjour"
    assert completion.choices[0].finish_reason == "stop"
    [sent] = upstream.requests(model)
    assert sent.json == {
        "model": model,
        "messages": [{"role": "user", "content": "Hello in French"}],
        "temperature": 0.2,
    }


def test_chat_completion_stream_is_relayed_chunk_by_chunk(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(ToolCalls([Call("lookup", '{"q": "x"}', id="call_q")]))

    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "look up x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index, union-attr]
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert arguments == '{"q": "x"}'
    assert chunks[-1].usage is not None


def test_a_chat_stream_that_breaks_off_ends_in_an_error_the_sdk_raises(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Cut(2, Text("Hello, and then nothing")))
    deltas = []

    with pytest.raises(openai.APIError) as raised:
        for chunk in client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hi"}], stream=True
        ):
            deltas.append(chunk.choices[0].delta.content)

    assert deltas == ["", "Hello"]
    assert type(raised.value) is openai.APIError  # the server's error, not a broken connection
    assert raised.value.body == {
        "message": "the stream from openai broke off before it was complete",
        "type": "upstream_error",
        "param": None,
        "code": "upstream_error",
    }


def test_chat_completion_routes_by_provider_prefix(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("second says hi"))

    completion = client.chat.completions.create(
        model=f"second@{model}", messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.choices[0].message.content == "second says hi"
    assert upstream.requests(model)[0].headers["authorization"] == "Bearer sk-server-second"


def test_chat_completion_without_messages_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=None)  # type: ignore[arg-type]

    assert caught.value.body["param"] == "messages"  # type: ignore[index]


def test_chat_completion_upstream_error_keeps_its_status(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(*[Error(429, "Too many", type="rate_limit_error")] * 3)

    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])

    assert len(upstream.requests(model)) == 3  # the first try and two retries


def test_models_lists_found_providers_with_their_prefix(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Text("x"))

    ids = {m.id for m in client.models.list()}

    assert f"openai@{model}" in ids
    assert f"second@{model}" in ids
    assert "openai@scripted-default" in ids
    assert not any(i.startswith(("groq@", "openrouter@")) for i in ids)


def test_models_are_cached_per_provider_and_client_key(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    server = Server(tmp_path, server_env(upstream)).start()
    try:
        before = {m.id for m in server.client(api_key="sk-one").models.list()}
        model = upstream.script(Text("new"))
        again = {m.id for m in server.client(api_key="sk-one").models.list()}
        other_key = {m.id for m in server.client(api_key="sk-two").models.list()}
    finally:
        server.stop()

    assert f"openai@{model}" not in before
    assert again == before  # reused for 60 s
    assert f"openai@{model}" in other_key  # another key, another listing


SPARSE_COMPLETION = (
    b'{"id": "c1", "object": "chat.completion", "created": 1, "model": "m",'
    b' "system_fingerprint": null,'
    b' "choices": [{"index": 0, "finish_reason": "stop",'
    b' "message": {"role": "assistant", "content": "Hi"}}]}'
)


def test_a_completion_missing_what_the_spec_requires_is_completed(
    server: Server, upstream: ScriptedUpstream
) -> None:
    model = upstream.script(Raw(200, SPARSE_COMPLETION))

    response = httpx.post(
        f"{server.base_url}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Hi"}]},
        headers={"authorization": "Bearer sk-client"},
    )

    assert response.json() == {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": "Hi", "refusal": None},
            }
        ],
    }


def test_a_stream_chunk_missing_what_the_spec_requires_is_completed(
    server: Server, upstream: ScriptedUpstream
) -> None:
    chunk = b'{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",'
    chunk += b' "choices": [{"index": 0, "delta": {"content": "Hi"}}]}'
    stream = b"data: " + chunk + b"\n\ndata: [DONE]\n\n"
    model = upstream.script(Raw(200, stream, "text/event-stream"))

    response = httpx.post(
        f"{server.base_url}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        headers={"authorization": "Bearer sk-client"},
    )

    first, done = [line for line in response.text.split("\n") if line]
    assert json.loads(first.removeprefix("data: ")) == {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}
        ],
    }
    assert done == "data: [DONE]"
