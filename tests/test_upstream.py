"""The scripted upstream itself, driven by plain httpx: the other tests trust its wire format,
its faults and its request log, so each behaviour is pinned here against the raw HTTP."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.upstream import (
    Call,
    Cut,
    Delay,
    Error,
    Hang,
    Raw,
    RecordedRequest,
    ScriptedUpstream,
    Text,
    ToolCalls,
    Usage,
)

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def up() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream()
    upstream.start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def http(up: ScriptedUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=up.base_url, timeout=5) as client:
        yield client


def chat(http: httpx.Client, model: str, **extra: Any) -> httpx.Response:
    return http.post("/chat/completions", json={"model": model, "messages": MESSAGES, **extra})


def sse_data(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, checking that every frame is exactly one data line."""
    frames = body.split("\n\n")
    assert frames[-1] == "", "the body must end with a complete frame"
    assert all(f.startswith("data: ") and "\n" not in f for f in frames[:-1])
    return [f.removeprefix("data: ") for f in frames[:-1]]


def stream_chunks(http: httpx.Client, model: str, **extra: Any) -> list[dict[str, Any]]:
    """The JSON chunks of a complete stream, which must end in `[DONE]`."""
    response = chat(http, model, stream=True, **extra)
    assert response.status_code == 200
    *data, done = sse_data(response.text)
    assert done == "[DONE]"
    return [json.loads(d) for d in data]


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def read_until_broken(http: httpx.Client, model: str) -> tuple[bytes, httpx.TransportError]:
    """Reads a stream that must break: the bytes that arrived, and the error it broke with."""
    received = b""
    with http.stream(
        "POST", "/chat/completions", json={"model": model, "messages": MESSAGES, "stream": True}
    ) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.TransportError) as broken:
            for piece in response.iter_bytes():
                received += piece
    return received, broken.value


def test_non_stream_text_is_a_chat_completion(up: ScriptedUpstream, http: httpx.Client) -> None:
    model = up.script(Text("Hello there", usage=Usage(prompt_tokens=7, completion_tokens=2)))

    response = chat(http, model)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", body.pop("id"))
    assert abs(body.pop("created") - time.time()) < 60
    assert body == {
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 7,
            "completion_tokens": 2,
            "total_tokens": 9,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def test_non_stream_tool_calls_are_in_the_message_with_null_content(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(
        ToolCalls([Call("get_weather", '{"city":"Oslo"}', id="call_1"), Call("f", "{}")])
    )

    choice = chat(http, model).json()["choices"][0]

    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    first, second = message["tool_calls"]
    assert first == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    }
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", second["id"])
    assert second["function"] == {"name": "f", "arguments": "{}"}


def test_non_stream_reasoning_is_the_message_reasoning_content(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("42", reasoning="Six times seven."))

    message = chat(http, model).json()["choices"][0]["message"]

    assert message["reasoning_content"] == "Six times seven."
    assert message["content"] == "42"


def test_usage_total_is_prompt_plus_completion(up: ScriptedUpstream, http: httpx.Client) -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=64, reasoning_tokens=8)
    model = up.script(Text("ok", usage=usage))

    wire = chat(http, model).json()["usage"]

    assert usage.total_tokens == 120
    assert wire["total_tokens"] == 120
    assert wire["prompt_tokens_details"] == {"cached_tokens": 64}
    assert wire["completion_tokens_details"] == {"reasoning_tokens": 8}


def test_stream_is_compact_sse_ending_in_done(up: ScriptedUpstream, http: httpx.Client) -> None:
    model = up.script(Text("Hello"))

    response = chat(http, model, stream=True)

    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.content.endswith(b"}\n\ndata: [DONE]\n\n")
    *data, _ = sse_data(response.text)
    chunks = [json.loads(d) for d in data]
    assert data == [json.dumps(c, separators=(",", ":")) for c in chunks]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert {c["model"] for c in chunks} == {model}


def test_stream_text_deltas_concatenate_to_the_text(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("Hello, streaming world", chunk_size=4))

    contents = [d["content"] for d in deltas(stream_chunks(http, model)) if "content" in d]

    assert "".join(contents) == "Hello, streaming world"
    assert contents[1:] == ["Hell", "o, s", "trea", "ming", " wor", "ld"]


def test_stream_first_chunk_carries_the_assistant_role(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("Hi"))

    first = stream_chunks(http, model)[0]["choices"][0]

    assert first["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert first["finish_reason"] is None


def test_stream_ends_with_an_empty_delta_carrying_the_finish_reason(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("Once upon a", finish_reason="length"))

    chunks = stream_chunks(http, model)

    assert chunks[-1]["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    ]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_stream_has_no_usage_without_include_usage(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("Hi"))

    chunks = stream_chunks(http, model)

    assert all("usage" not in c and c["choices"] for c in chunks)


def test_stream_usage_comes_in_a_last_chunk_without_choices_with_include_usage(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("Hi", usage=Usage(prompt_tokens=3, completion_tokens=1)))

    chunks = stream_chunks(http, model, stream_options={"include_usage": True})

    *rest, last = chunks
    assert last["choices"] == []
    assert last["usage"]["total_tokens"] == 4
    assert all(c["usage"] is None for c in rest)  # OpenAI sends `usage: null` on the others


def test_stream_tool_call_sends_id_and_name_once_then_arguments_in_pieces(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    arguments = '{"city": "Paris", "unit": "celsius"}'
    model = up.script(ToolCalls([Call("get_weather", arguments, id="call_7")]))

    calls = [d["tool_calls"] for d in deltas(stream_chunks(http, model)) if "tool_calls" in d]

    assert all(len(c) == 1 and c[0]["index"] == 0 for c in calls)
    head, *pieces = [c[0] for c in calls]
    assert head == {
        "index": 0,
        "id": "call_7",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert len(pieces) > 2
    assert all(
        p.keys() == {"index", "function"} and p["function"].keys() == {"arguments"} for p in pieces
    )
    assert "".join(p["function"]["arguments"] for p in pieces) == arguments


def test_stream_even_short_arguments_arrive_split(up: ScriptedUpstream, http: httpx.Client) -> None:
    model = up.script(ToolCalls([Call("ping", "{}")]))

    pieces = [
        d["tool_calls"][0]["function"]["arguments"]
        for d in deltas(stream_chunks(http, model))
        if "tool_calls" in d and "id" not in d["tool_calls"][0]
    ]

    assert pieces == ["{", "}"]


def test_stream_parallel_tool_calls_are_indexed_in_order(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(ToolCalls([Call("a", '{"x": 1}', id="call_a"), Call("b", '{"y": 2}')]))

    calls = [d["tool_calls"][0] for d in deltas(stream_chunks(http, model)) if "tool_calls" in d]

    heads = [c for c in calls if "id" in c]
    assert [(h["index"], h["function"]["name"]) for h in heads] == [(0, "a"), (1, "b")]
    assert heads[0]["id"] == "call_a"
    assert heads[1]["id"].startswith("call_")
    indices = [c["index"] for c in calls]
    assert indices == sorted(indices)  # each call's deltas finish before the next call starts
    for index, expected in [(0, '{"x": 1}'), (1, '{"y": 2}')]:
        args = "".join(c["function"]["arguments"] for c in calls if c["index"] == index)
        assert args == expected


def test_stream_tool_calls_follow_their_text(up: ScriptedUpstream, http: httpx.Client) -> None:
    model = up.script(ToolCalls([Call("f", "{}")], text="Let me check."))

    stream = deltas(stream_chunks(http, model))[1:-1]

    assert [list(d) for d in stream] == [["content"]] * 3 + [["tool_calls"]] * 3
    assert "".join(d["content"] for d in stream[:3]) == "Let me check."


def test_stream_reasoning_content_comes_before_content(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("Yes.", reasoning="Let me think.", chunk_size=5))

    stream = deltas(stream_chunks(http, model))[1:-1]

    assert [list(d) for d in stream] == [["reasoning_content"]] * 3 + [["content"]]
    assert "".join(d["reasoning_content"] for d in stream[:3]) == "Let me think."
    assert stream[3]["content"] == "Yes."


def test_error_reply_has_its_status_headers_and_openai_error_body(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(
        Error(
            429,
            "Slow down",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"retry-after": "2"},
        )
    )

    response = chat(http, model)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json() == {
        "error": {
            "message": "Slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def test_error_reply_to_a_stream_request_is_plain_json(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Error(500, "boom"))

    response = chat(http, model, stream=True)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == {
        "message": "boom",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_cut_stream_delivers_its_chunks_then_breaks_without_done(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Cut(2, Text("abcdefgh", chunk_size=2)))

    received, error = read_until_broken(http, model)

    # The client has both frames, complete, and then the chunked body stops short.
    assert isinstance(error, httpx.RemoteProtocolError)
    assert str(error) == (
        "peer closed connection without sending complete message body (incomplete chunked read)"
    )
    data = sse_data(received.decode())
    assert [deltas([json.loads(d)]) for d in data] == [
        [{"role": "assistant", "content": "", "refusal": None}],
        [{"content": "ab"}],
    ]


def test_cut_beyond_the_last_chunk_breaks_just_before_done(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Cut(100, Text("abc")))

    received, error = read_until_broken(http, model)

    assert isinstance(error, httpx.RemoteProtocolError)
    data = sse_data(received.decode())
    assert "[DONE]" not in data
    assert json.loads(data[-1])["choices"][0]["finish_reason"] == "stop"


def test_cut_non_stream_disconnects_without_a_response(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Cut(0, Text("never sent")))

    with pytest.raises(httpx.RemoteProtocolError) as error:
        chat(http, model)

    assert str(error.value) == "Server disconnected without sending a response."


def test_server_keeps_serving_after_a_cut(up: ScriptedUpstream, http: httpx.Client) -> None:
    model = up.script(Cut(1, Text("broken")), Text("fine"))
    read_until_broken(http, model)

    response = chat(http, model)

    assert response.json()["choices"][0]["message"]["content"] == "fine"


def test_delay_waits_before_answering(up: ScriptedUpstream, http: httpx.Client) -> None:
    model = up.script(Delay(0.3, Text("late")))

    started = time.monotonic()
    response = chat(http, model)

    assert time.monotonic() - started >= 0.3
    assert response.json()["choices"][0]["message"]["content"] == "late"


def test_delay_longer_than_the_client_timeout_is_a_read_timeout(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Delay(0.5, Text("too late")))

    with pytest.raises(httpx.ReadTimeout):
        http.post("/chat/completions", json={"model": model, "messages": MESSAGES}, timeout=0.1)


def _wait_until(condition: Any) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_hang_sends_nothing_and_holds_the_connection_until_the_client_leaves(
    up: ScriptedUpstream, stream: bool
) -> None:
    model = up.script(Hang())
    body = {"model": model, "messages": MESSAGES, "stream": stream}

    with pytest.raises(httpx.ReadTimeout):  # not even a status line
        httpx.post(f"{up.base_url}/chat/completions", json=body, timeout=0.3)

    _wait_until(lambda: up.hanging() == 0)  # released once the client has hung up


def test_hang_after_chunks_sends_them_then_holds_the_connection(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Hang(2, Text("abcdefgh", chunk_size=2)))
    body = {"model": model, "messages": MESSAGES, "stream": True}
    received = b""

    with http.stream("POST", "/chat/completions", json=body, timeout=1) as response:
        pieces = response.iter_bytes()
        while received.count(b"\n\n") < 2:
            received += next(pieces)
        _wait_until(lambda: up.hanging() == 1)
        with pytest.raises(httpx.ReadTimeout):
            next(pieces)  # nothing more comes

    assert [deltas([json.loads(d)]) for d in sse_data(received.decode())] == [
        [{"role": "assistant", "content": "", "refusal": None}],
        [{"content": "ab"}],
    ]
    _wait_until(lambda: up.hanging() == 0)


def test_raw_sends_exactly_its_bytes(up: ScriptedUpstream, http: httpx.Client) -> None:
    model = up.script(Raw(200, b"data: {not json\n\n", "text/event-stream"))

    response = chat(http, model, stream=True)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.content == b"data: {not json\n\n"


def test_nth_request_gets_nth_reply(up: ScriptedUpstream, http: httpx.Client) -> None:
    model = up.script(Text("one"), Error(503, "busy"), Text("three"))

    responses = [chat(http, model) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 503, 200]
    assert responses[2].json()["choices"][0]["message"]["content"] == "three"


def test_request_beyond_the_script_is_a_500_saying_it_is_exhausted(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("only"))
    chat(http, model)

    response = chat(http, model, stream=True)

    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert "exhausted" in error["message"]
    assert model in error["message"]


def test_unscripted_model_is_a_404_model_not_found(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    response = chat(http, "never-scripted")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert up.requests("never-scripted")[-1].json["model"] == "never-scripted"


def test_body_without_a_model_is_a_400(http: httpx.Client) -> None:
    response = http.post("/chat/completions", content=b'{"messages": []')

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_fresh_model_names_are_unique(up: ScriptedUpstream) -> None:
    names = {up.script(Text("x")) for _ in range(200)}

    assert len(names) == 200
    assert all(re.fullmatch(r"scripted-[0-9a-f]{6}", n) for n in names)


def test_a_chosen_name_is_scripted_and_rescripting_restarts_it(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    assert up.script(Text("first"), model="my-model") == "my-model"
    chat(http, "my-model")

    up.script(Text("again"), model="my-model")
    response = chat(http, "my-model")

    assert response.json()["choices"][0]["message"]["content"] == "again"
    assert len(up.requests("my-model")) == 1


def test_requests_records_path_headers_and_body_in_order(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("a"), Text("b"))

    chat(http, model, temperature=0.5)
    http.post(
        "/chat/completions",
        json={"model": model, "messages": [], "stream": True},
        headers={"Authorization": "Bearer sk-test", "X-Custom": "yes"},
    )

    first, second = up.requests(model)
    assert first == RecordedRequest(
        "/v1/chat/completions",
        first.headers,
        {"model": model, "messages": MESSAGES, "temperature": 0.5},
    )
    assert first.headers["content-type"] == "application/json"
    assert second.json == {"model": model, "messages": [], "stream": True}
    assert second.headers["authorization"] == "Bearer sk-test"
    assert second.headers["x-custom"] == "yes"


def test_models_lists_the_default_and_every_scripted_model(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(Text("x"))

    listing = http.get("/models").json()

    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert ids[0] == "scripted-default"
    assert model in ids
    assert all(
        m.keys() == {"id", "object", "created", "owned_by"} and m["object"] == "model"
        for m in listing["data"]
    )


def test_concurrent_requests_each_get_exactly_one_reply(
    up: ScriptedUpstream, http: httpx.Client
) -> None:
    model = up.script(*(Text(str(n)) for n in range(20)))
    answers: list[str] = []

    def ask() -> None:
        # One client per thread: the test is the server's locking, not httpx's pool.
        with httpx.Client(base_url=up.base_url, timeout=5) as own:
            answers.append(chat(own, model).json()["choices"][0]["message"]["content"])

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers, key=int) == [str(n) for n in range(20)]
    assert len(up.requests(model)) == 20


def test_stop_closes_the_port_and_a_second_stop_is_harmless() -> None:
    upstream = ScriptedUpstream()
    upstream.start()
    base_url = upstream.base_url
    assert httpx.get(f"{base_url}/models").status_code == 200

    upstream.stop()
    upstream.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/models")
