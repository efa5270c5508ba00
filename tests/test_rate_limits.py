"""Rate limits: a key's requests and tokens per minute (`keys create --rpm/--tpm`), OpenAI's
`x-ratelimit-*` headers and 429s, counters shared by replicas (PostgreSQL, Redis), and
clients that keep presenting wrong keys."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from sqlalchemy import create_engine, text
from websockets.sync.client import connect

from tests.conftest import Server, postgres_schema, server_env
from tests.upstream import ScriptedUpstream, Text

REDIS = "redis://127.0.0.1:6379/0"
TRANSPORTS = ("json", "sse", "background", "websocket", "chat", "chat_stream", "embeddings")


def make_key(data_dir: Path, project: str, *limits: str, env: dict[str, str] | None = None) -> str:
    """A key made with the CLI, as an operator would (before a DuckDB server starts)."""
    command = Path(sys.executable).parent / "openresponses"
    made = subprocess.run(
        [
            str(command),
            "keys",
            "create",
            "--project",
            project,
            "--data-dir",
            str(data_dir),
            *limits,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env or dict(os.environ),
    )
    found = re.search(r"^sk-proj-\S+$", made.stdout, re.MULTILINE)
    assert found is not None, made.stdout
    return found.group(0)


def limit_headers(headers: httpx.Headers) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.startswith("x-ratelimit-")}


def _durations(headers: httpx.Headers) -> dict[str, str]:
    """The `x-ratelimit-*` headers, each reset a moment short of whole seconds written
    `S.x` (`59.x` for 59.98s): how long the test took is no part of the shape."""
    return {
        name: re.sub(r"^((?:\d+m)?\d+)\.\d+s$", r"\1.x", value)
        for name, value in limit_headers(headers).items()
    }


def probe(server: Server, key: str) -> httpx.Response:
    """A request that reaches nothing (a 404), to read a key's headers."""
    auth = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{server.base_url}/responses/resp_probe", headers=auth)


def refusal(caught: pytest.ExceptionInfo[openai.RateLimitError]) -> tuple[Any, str]:
    """The body of a 429 the SDK raised, and its message."""
    body = caught.value.response.json()
    return body, body["error"]["message"]


@pytest.fixture(scope="module")
def keys(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    """A DuckDB server and its keys, made before it starts: counters in its memory."""
    data_dir = tmp_path_factory.mktemp("limits") / "data"
    made = {
        "rpm": make_key(data_dir, "rpm", "--rpm", "2", "--tpm", "60"),
        "tpm": make_key(data_dir, "tpm", "--tpm", "20"),
        "a": make_key(data_dir, "a", "--rpm", "1"),
        "b": make_key(data_dir, "b", "--rpm", "1"),
        "socket": make_key(data_dir, "socket", "--rpm", "1"),
        "free": make_key(data_dir, "free"),
        **{name: make_key(data_dir, name, "--tpm", "30") for name in TRANSPORTS},
    }
    server = Server(data_dir, server_env(upstream)).start()
    yield server, made
    server.stop()


def test_a_key_over_its_requests_per_minute_gets_a_429_with_retry_after(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, str]]
) -> None:
    server, made = keys
    model = upstream.script(Text("One."), Text("Two."))
    client = server.client(made["rpm"])

    first = client.responses.with_raw_response.create(model=model, input="Hi")
    second = client.responses.with_raw_response.create(model=model, input="Hi")
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=model, input="Hi")

    assert first.parse().output_text == "One."
    assert limit_headers(first.headers) == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "60",
        "x-ratelimit-remaining-tokens": "60",
        "x-ratelimit-reset-tokens": "0s",
    }
    assert second.parse().output_text == "Two."
    # 60 tokens a minute come back one a second: the first answer's 15 are still out.
    assert _durations(second.headers) == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "59.x",
        "x-ratelimit-limit-tokens": "60",
        "x-ratelimit-remaining-tokens": "45",
        "x-ratelimit-reset-tokens": "14.x",
    }
    refused = caught.value.response
    body, message = refusal(caught)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert _durations(refused.headers) == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "59.x",
        "x-ratelimit-limit-tokens": "60",
        "x-ratelimit-remaining-tokens": "30",
        "x-ratelimit-reset-tokens": "29.x",
    }
    assert re.fullmatch(
        r"Rate limit reached for key_\w+ in project proj_\w+ on requests per min \(RPM\): "
        r"Limit 2, Used 2, Requested 1\. Please try again in 29\.\d+s\.",
        message,
    )
    assert body == {
        "error": {
            "message": message,
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert len(upstream.requests(model)) == 2  # the refused request never reached the model


def test_a_key_over_its_tokens_per_minute_is_refused_once_usage_is_spent(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, str]]
) -> None:
    server, made = keys
    model = upstream.script(Text("One."), Text("Two."), Text("Three."))  # 15 tokens each
    client = server.client(made["tpm"])

    first = client.responses.with_raw_response.create(model=model, input="Hi")
    second = client.responses.with_raw_response.create(model=model, input="Hi")
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=model, input="Hi")

    assert limit_headers(first.headers) == {
        "x-ratelimit-limit-tokens": "20",
        "x-ratelimit-remaining-tokens": "20",
        "x-ratelimit-reset-tokens": "0s",
    }
    assert _durations(second.headers) == {
        "x-ratelimit-limit-tokens": "20",
        "x-ratelimit-remaining-tokens": "5",
        "x-ratelimit-reset-tokens": "44.x",
    }
    refused = caught.value.response
    body, message = refusal(caught)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "33"
    assert _durations(refused.headers) == {
        "x-ratelimit-limit-tokens": "20",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "1m29.x",
    }
    # 30 tokens spent of 20 (a token comes back every 3 s): the key owes 10 and waits 33 s.
    assert re.fullmatch(
        r"Rate limit reached for key_\w+ in project proj_\w+ on tokens per min \(TPM\): "
        r"Limit 20, Used 30, Requested 1\. Please try again in 32\.\d+s\.",
        message,
    )
    assert body == {
        "error": {
            "message": message,
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def _json(client: openai.OpenAI, server: Server, key: str, model: str) -> None:
    client.responses.create(model=model, input="Hi")


def _sse(client: openai.OpenAI, server: Server, key: str, model: str) -> None:
    with client.responses.create(model=model, input="Hi", stream=True) as events:
        assert [e.type for e in events][-1] == "response.completed"


def _background(client: openai.OpenAI, server: Server, key: str, model: str) -> None:
    response = client.responses.create(model=model, input="Hi", background=True)
    deadline = time.monotonic() + 10
    while response.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.05)
        response = client.responses.retrieve(response.id)
    assert response.status == "completed"


def _websocket(client: openai.OpenAI, server: Server, key: str, model: str) -> None:
    url = server.base_url.replace("http://", "ws://") + "/responses"
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        ws.send(json.dumps({"type": "response.create", "model": model, "input": "Hi"}))
        while (event := json.loads(ws.recv(timeout=10)))["type"] != "response.completed":
            assert event["type"] != "error", event


def _chat(client: openai.OpenAI, server: Server, key: str, model: str) -> None:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])


def _chat_stream(client: openai.OpenAI, server: Server, key: str, model: str) -> None:
    chunks = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert [chunk.usage for chunk in chunks][-1] is not None


def _embeddings(client: openai.OpenAI, server: Server, key: str, model: str) -> None:
    # The scripted upstream reports a token per input.
    client.embeddings.create(model=model, input=[f"text {n}" for n in range(15)])


SPENDERS: dict[str, Callable[[openai.OpenAI, Server, str, str], None]] = {
    "json": _json,
    "sse": _sse,
    "background": _background,
    "websocket": _websocket,
    "chat": _chat,
    "chat_stream": _chat_stream,
    "embeddings": _embeddings,
}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_kind_of_answer_spends_the_tokens_its_upstream_reported(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, str]], transport: str
) -> None:
    server, made = keys
    model = upstream.script(Text("Fifteen tokens."))  # 10 in, 5 out
    key = made[transport]

    SPENDERS[transport](server.client(key), server, key, model)
    after = probe(server, key)

    # 30 per minute refill one every 2 s: 15 spent stay 15 for the probe's first 2 s.
    assert _durations(after.headers) == {
        "x-ratelimit-limit-tokens": "30",
        "x-ratelimit-remaining-tokens": "15",
        "x-ratelimit-reset-tokens": "29.x",
    }
    assert after.status_code == 404


def test_limits_are_per_key(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, str]]
) -> None:
    server, made = keys
    model = upstream.script(Text("For A."), Text("For B."))

    answered = server.client(made["a"]).responses.create(model=model, input="Hi")
    with pytest.raises(openai.RateLimitError):
        server.client(made["a"]).responses.create(model=model, input="Hi")
    other = server.client(made["b"]).responses.with_raw_response.create(model=model, input="Hi")

    assert answered.output_text == "For A."
    assert other.parse().output_text == "For B."
    assert limit_headers(other.headers) == {
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m0s",
    }


def test_a_key_without_limits_gets_no_rate_limit_headers(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, str]]
) -> None:
    server, made = keys
    model = upstream.script(Text("Free."))

    answer = server.client(made["free"]).responses.with_raw_response.create(model=model, input="Hi")

    assert answer.parse().output_text == "Free."
    assert limit_headers(answer.headers) == {}


def test_a_websocket_turn_over_the_limit_gets_the_error_event(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, str]]
) -> None:
    server, made = keys
    model = upstream.script(Text("Once."))
    url = server.base_url.replace("http://", "ws://") + "/responses"
    create = json.dumps({"type": "response.create", "model": model, "input": "Hi"})

    with connect(url, additional_headers={"Authorization": f"Bearer {made['socket']}"}) as ws:
        ws.send(create)
        while json.loads(ws.recv(timeout=10))["type"] != "response.completed":
            pass
        ws.send(create)
        refused = json.loads(ws.recv(timeout=10))

    message = refused["error"]["message"]
    assert re.fullmatch(
        r"Rate limit reached for key_\w+ in project proj_\w+ on requests per min \(RPM\): "
        r"Limit 1, Used 1, Requested 1\. Please try again in (59\.\d+s|1m0s)\.",
        message,
    )
    assert refused == {
        "type": "error",
        "status": 429,
        "error": {
            "message": message,
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    }
    assert len(upstream.requests(model)) == 1


@pytest.fixture
def guarded(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A server that allows three wrong keys per minute from one address."""
    data_dir = tmp_path / "data"
    key = make_key(data_dir, "team")
    env = server_env(upstream, OPENRESPONSES_AUTH_FAILURES_PER_MINUTE="3")
    server = Server(data_dir, env).start()
    yield server, key
    server.stop()


def test_an_address_that_keeps_sending_wrong_keys_gets_429s(
    guarded: tuple[Server, str],
) -> None:
    server, key = guarded
    url = f"{server.base_url}/responses/resp_x"

    wrong = [httpx.get(url, headers={"Authorization": "Bearer sk-wrong"}) for _ in range(3)]
    throttled = httpx.get(url, headers={"Authorization": "Bearer sk-wrong"})
    right_key = httpx.get(url, headers={"Authorization": f"Bearer {key}"})
    # Another address (uvicorn trusts X-Forwarded-For from 127.0.0.1, the proxy's place).
    elsewhere = httpx.get(
        url, headers={"Authorization": "Bearer sk-wrong", "X-Forwarded-For": "203.0.113.9"}
    )

    assert [r.status_code for r in wrong] == [401, 401, 401]
    assert wrong[0].json()["error"]["code"] == "invalid_api_key"
    for refused in (throttled, right_key):
        message = refused.json()["error"]["message"]
        assert refused.status_code == 429
        assert refused.headers["retry-after"] in ("19", "20")
        assert limit_headers(refused.headers) == {}
        assert re.fullmatch(
            r"Too many requests with a wrong API key from 127\.0\.0\.1: the limit is 3 per "
            r"minute\. Please try again in (19\.\d+s|20s)\.",
            message,
        )
        assert refused.json() == {
            "error": {
                "message": message,
                "type": "rate_limit_error",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    assert elsewhere.status_code == 401


def _shared_run(servers: list[Server], key: str, model: str) -> list[httpx.Response]:
    """Four requests of one key, alternating between the servers."""
    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": model, "input": "Hi"}
    return [
        httpx.post(f"{servers[n % 2].base_url}/responses", headers=auth, json=body, timeout=30)
        for n in range(4)
    ]


def _assert_shared(answers: list[httpx.Response]) -> None:
    """rpm 3 across two servers: the fourth request, wherever it goes, is refused."""
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    remaining = [r.headers["x-ratelimit-remaining-requests"] for r in answers]
    assert remaining == ["2", "1", "0", "0"]
    assert answers[3].json()["error"]["code"] == "rate_limit_exceeded"
    assert re.fullmatch(
        r"Rate limit reached for key_\w+ in project proj_\w+ on requests per min \(RPM\): "
        r"Limit 3, Used 3, Requested 1\. Please try again in (19\.\d+s|20s)\.",
        answers[3].json()["error"]["message"],
    )


@pytest.fixture
def replicas(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Starts two servers on one PostgreSQL schema, with the settings given; stops them."""
    started: list[Server] = []

    def start(url: str, **extra: str) -> tuple[list[Server], str]:
        env = server_env(upstream, OPENRESPONSES_STORE_URL=url, **extra)
        key = make_key(tmp_path / "cli", "shared", "--rpm", "3", env=env)
        for name in ("a", "b"):
            started.append(Server(tmp_path / name, env).start())
        return started, key

    yield start
    for server in started:
        server.stop()


def test_replicas_on_one_postgresql_share_the_counters(
    upstream: ScriptedUpstream, replicas: Callable[..., Any]
) -> None:
    model = upstream.script(*[Text("Shared.")] * 3)
    with postgres_schema() as url:
        servers, key = replicas(url)
        answers = _shared_run(servers, key, model)
        for server in servers:
            server.stop()
        engine = create_engine(url)
        with engine.connect() as conn:
            names = conn.execute(text("SELECT name FROM rate_counters")).scalars().all()
        engine.dispose()

    _assert_shared(answers)
    assert len(names) == 1 and re.fullmatch(r"key:key_\w+:requests", names[0])


def test_replicas_with_redis_share_the_counters_there(
    upstream: ScriptedUpstream, replicas: Callable[..., Any]
) -> None:
    model = upstream.script(*[Text("Shared.")] * 3)
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    store = redis.Redis.from_url(REDIS)
    try:
        with postgres_schema() as url:
            servers, key = replicas(
                url, OPENRESPONSES_REDIS_URL=REDIS, OPENRESPONSES_REDIS_PREFIX=prefix
            )
            answers = _shared_run(servers, key, model)
            in_redis = sorted(name.decode() for name in store.scan_iter(f"{prefix}*"))
            ttl = store.pttl(in_redis[0]) if in_redis else None
            engine = create_engine(url)
            with engine.connect() as conn:
                in_postgres = conn.execute(text("SELECT count(*) FROM rate_counters")).scalar()
            engine.dispose()
            for server in servers:
                server.stop()
    finally:
        for name in store.scan_iter(f"{prefix}*"):
            store.delete(name)
        store.close()

    _assert_shared(answers)
    assert len(in_redis) == 1
    assert re.fullmatch(rf"{re.escape(prefix)}rate:key:key_\w+:requests", in_redis[0])
    assert ttl is not None and 0 < ttl <= 60_001  # gone once the bucket is full again
    assert in_postgres == 0
