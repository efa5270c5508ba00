"""Rate limits: a key's requests and tokens per minute (`keys create --rpm/--tpm`), OpenAI's
`x-ratelimit-*` headers and 429s, counters shared by replicas (PostgreSQL, Redis), and
clients that keep presenting wrong keys.

Buckets refill continuously, so the resets a test reads depend on how long it took: they
are compared within `SLACK` seconds. Token limits are low enough that a token takes at least
2 s to come back, so counts are exact on any machine that answers a request within that.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from sqlalchemy import create_engine, text
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import Server, postgres_schema, server_env
from tests.upstream import ScriptedUpstream, Text

REDIS = "redis://127.0.0.1:6379/0"
SLACK = 3.0
TRANSPORTS = (
    "json",
    "sse",
    "background",
    "websocket",
    "compact",
    "chat",
    "chat_stream",
    "embeddings",
)


@dataclass(frozen=True)
class Key:
    secret: str
    id: str
    project_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def make_key(data_dir: Path, project: str, *limits: str, env: dict[str, str] | None = None) -> Key:
    """A key made with the CLI, as an operator would (before a DuckDB server starts)."""
    command = str(Path(sys.executable).parent / "openresponses")
    made = subprocess.run(
        [command, "keys", "create", "--project", project, "--data-dir", str(data_dir), *limits],
        capture_output=True,
        text=True,
        check=True,
        env=env or dict(os.environ),
    )
    ids = re.search(r"^Created (key_\w+) in project '[^']+' \((proj_\w+)\)\.$", made.stdout, re.M)
    secret = re.search(r"^sk-proj-\S+$", made.stdout, re.MULTILINE)
    assert ids is not None and secret is not None, made.stdout
    return Key(secret.group(0), ids.group(1), ids.group(2))


def seconds(duration: str) -> float:
    """OpenAI's duration (`1m29.5s`, `120ms`, `0s`) in seconds."""
    found = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s|(\d+)ms)", duration)
    assert found is not None, duration
    minutes, whole, millis = found.groups()
    return int(minutes or 0) * 60 + float(whole or 0) + int(millis or 0) / 1000


def limits(headers: httpx.Headers) -> tuple[dict[str, str], dict[str, float]]:
    """The `x-ratelimit-*` headers: the limits and remainders as sent, the resets in seconds."""
    found = {name: value for name, value in headers.items() if name.startswith("x-ratelimit-")}
    resets = {name: seconds(value) for name, value in found.items() if "-reset-" in name}
    return {name: value for name, value in found.items() if name not in resets}, resets


def expected(**trios: tuple[int, int, float]) -> tuple[dict[str, str], Any]:
    """What `limits` reads for `requests=(limit, remaining, reset)` and `tokens=…`, the resets
    within SLACK."""
    counts, resets = {}, {}
    for dimension, (limit, remaining, reset) in trios.items():
        counts[f"x-ratelimit-limit-{dimension}"] = str(limit)
        counts[f"x-ratelimit-remaining-{dimension}"] = str(remaining)
        resets[f"x-ratelimit-reset-{dimension}"] = reset
    return counts, pytest.approx(resets, abs=SLACK)


def error(message: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def waited(body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """A 429 body with the wait its message names written `{wait}`, and the wait in seconds."""
    found = re.fullmatch(r"(.* Please try again in )(\S+)\.", body["error"]["message"])
    assert found is not None, body
    return error(f"{found.group(1)}{{wait}}."), seconds(found.group(2))


def retry_after(response: httpx.Response) -> int:
    return int(response.headers["retry-after"])


def rpm_message(key: Key, limit: int) -> dict[str, Any]:
    return error(
        f"Rate limit reached for {key.id} in project {key.project_id} on requests per min "
        f"(RPM): Limit {limit}, Used {limit}, Requested 1. Please try again in {{wait}}."
    )


@pytest.fixture(scope="module")
def keys(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, Key]]]:
    """A DuckDB server and its keys, made before it starts: counters in its memory."""
    data_dir = tmp_path_factory.mktemp("limits") / "data"
    made = {
        "rpm": make_key(data_dir, "rpm", "--rpm", "2", "--tpm", "30"),
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
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, Key]]
) -> None:
    server, made = keys
    key = made["rpm"]
    model = upstream.script(Text("One."), Text("Two."))  # 15 tokens each
    client = server.client(key.secret)

    first = client.responses.with_raw_response.create(model=model, input="Hi")
    second = client.responses.with_raw_response.create(model=model, input="Hi")
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=model, input="Hi")

    assert first.parse().output_text == "One."
    assert limits(first.headers) == expected(requests=(2, 1, 30), tokens=(30, 30, 0))
    assert second.parse().output_text == "Two."
    # The first answer's 15 tokens of 30 a minute: half the bucket, back in 30 s.
    assert limits(second.headers) == expected(requests=(2, 0, 60), tokens=(30, 15, 30))
    refused = caught.value.response
    body, wait = waited(refused.json())
    assert refused.status_code == 429
    assert limits(refused.headers) == expected(requests=(2, 0, 60), tokens=(30, 0, 60))
    assert body == rpm_message(key, 2)
    assert wait == pytest.approx(30, abs=SLACK)  # until one request is back
    assert retry_after(refused) == pytest.approx(30, abs=SLACK)
    assert len(upstream.requests(model)) == 2  # the refused request never reached the model


def test_a_key_over_its_tokens_per_minute_is_refused_once_usage_is_spent(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, Key]]
) -> None:
    server, made = keys
    key = made["tpm"]
    model = upstream.script(Text("One."), Text("Two."), Text("Three."))  # 15 tokens each
    client = server.client(key.secret)

    first = client.responses.with_raw_response.create(model=model, input="Hi")
    second = client.responses.with_raw_response.create(model=model, input="Hi")
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=model, input="Hi")

    assert limits(first.headers) == expected(tokens=(20, 20, 0))
    assert limits(second.headers) == expected(tokens=(20, 5, 45))  # a token back every 3 s
    refused = caught.value.response
    body, wait = waited(refused.json())
    assert refused.status_code == 429
    assert limits(refused.headers) == expected(tokens=(20, 0, 90))
    # 30 tokens spent of 20: the key owes 10, and waits for them and one more (33 s).
    assert body == error(
        f"Rate limit reached for {key.id} in project {key.project_id} on tokens per min "
        "(TPM): Limit 20, Used 30, Requested 1. Please try again in {wait}."
    )
    assert wait == pytest.approx(33, abs=SLACK)
    assert retry_after(refused) == pytest.approx(33, abs=SLACK)
    assert len(upstream.requests(model)) == 2


def _json(client: openai.OpenAI, server: Server, key: Key, model: str) -> None:
    client.responses.create(model=model, input="Hi")


def _sse(client: openai.OpenAI, server: Server, key: Key, model: str) -> None:
    with client.responses.create(model=model, input="Hi", stream=True) as events:
        assert [e.type for e in events][-1] == "response.completed"


def _background(client: openai.OpenAI, server: Server, key: Key, model: str) -> None:
    response = client.responses.create(model=model, input="Hi", background=True)
    deadline = time.monotonic() + 10
    while response.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.05)
        response = client.responses.retrieve(response.id)
    assert response.status == "completed"


def _websocket(client: openai.OpenAI, server: Server, key: Key, model: str) -> None:
    url = server.base_url.replace("http://", "ws://") + "/responses"
    with connect(url, additional_headers=key.auth) as ws:
        ws.send(json.dumps({"type": "response.create", "model": model, "input": "Hi"}))
        while (event := json.loads(ws.recv(timeout=10)))["type"] != "response.completed":
            assert event["type"] != "error", event


def _compact(client: openai.OpenAI, server: Server, key: Key, model: str) -> None:
    client.responses.compact(model=model, input="Summarise me.")


def _chat(client: openai.OpenAI, server: Server, key: Key, model: str) -> None:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])


def _chat_stream(client: openai.OpenAI, server: Server, key: Key, model: str) -> None:
    chunks = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert [chunk.usage for chunk in chunks][-1] is not None


def _embeddings(client: openai.OpenAI, server: Server, key: Key, model: str) -> None:
    # The scripted upstream reports a token per input.
    client.embeddings.create(model=model, input=[f"text {n}" for n in range(15)])


SPENDERS: dict[str, Callable[[openai.OpenAI, Server, Key, str], None]] = {
    "json": _json,
    "sse": _sse,
    "background": _background,
    "websocket": _websocket,
    "compact": _compact,
    "chat": _chat,
    "chat_stream": _chat_stream,
    "embeddings": _embeddings,
}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_kind_of_answer_spends_the_tokens_its_upstream_reported(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, Key]], transport: str
) -> None:
    server, made = keys
    key = made[transport]
    model = upstream.script(Text("Fifteen tokens."))  # 10 in, 5 out

    SPENDERS[transport](server.client(key.secret), server, key, model)
    after = httpx.get(f"{server.base_url}/responses/resp_probe", headers=key.auth)

    assert after.status_code == 404
    assert limits(after.headers) == expected(tokens=(30, 15, 30))


def test_limits_are_per_key(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, Key]]
) -> None:
    server, made = keys
    model = upstream.script(Text("For A."), Text("For B."))

    answered = server.client(made["a"].secret).responses.create(model=model, input="Hi")
    with pytest.raises(openai.RateLimitError) as caught:
        server.client(made["a"].secret).responses.create(model=model, input="Hi")
    other = server.client(made["b"].secret).responses.with_raw_response.create(
        model=model, input="Hi"
    )

    assert answered.output_text == "For A."
    assert waited(caught.value.response.json())[0] == rpm_message(made["a"], 1)
    assert other.parse().output_text == "For B."
    assert limits(other.headers) == expected(requests=(1, 0, 60))


def test_a_key_without_limits_gets_no_rate_limit_headers(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, Key]]
) -> None:
    server, made = keys
    model = upstream.script(Text("Free."))
    client = server.client(made["free"].secret)

    answer = client.responses.with_raw_response.create(model=model, input="Hi")

    assert answer.parse().output_text == "Free."
    assert limits(answer.headers) == ({}, {})


def test_a_websocket_turn_over_the_limit_gets_the_error_event(
    upstream: ScriptedUpstream, keys: tuple[Server, dict[str, Key]]
) -> None:
    server, made = keys
    key = made["socket"]
    model = upstream.script(Text("Once."))
    url = server.base_url.replace("http://", "ws://") + "/responses"
    create = json.dumps({"type": "response.create", "model": model, "input": "Hi"})

    with connect(url, additional_headers=key.auth) as ws:
        ws.send(create)
        while json.loads(ws.recv(timeout=10))["type"] != "response.completed":
            pass
        ws.send(create)
        refused = json.loads(ws.recv(timeout=10))

    body, wait = waited({"error": refused.pop("error")})
    assert refused == {"type": "error", "status": 429}
    assert body == rpm_message(key, 1)
    assert wait == pytest.approx(60, abs=SLACK)
    assert len(upstream.requests(model)) == 1


@pytest.fixture
def guarded(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[tuple[Server, Key]]:
    """A server that allows three wrong keys per minute from one address."""
    data_dir = tmp_path / "data"
    key = make_key(data_dir, "team")
    env = server_env(upstream, OPENRESPONSES_AUTH_FAILURES_PER_MINUTE="3")
    server = Server(data_dir, env).start()
    yield server, key
    server.stop()


def test_an_address_that_keeps_sending_wrong_keys_gets_429s(guarded: tuple[Server, Key]) -> None:
    server, key = guarded
    url = f"{server.base_url}/responses/resp_x"
    wrong = {"Authorization": "Bearer sk-wrong"}

    failed = [httpx.get(url, headers=wrong) for _ in range(3)]
    throttled = httpx.get(url, headers=wrong)
    right_key = httpx.get(url, headers=key.auth)  # refused before it is looked up
    # Another address: uvicorn takes X-Forwarded-For from a proxy on this machine.
    elsewhere = httpx.get(url, headers={**wrong, "X-Forwarded-For": "203.0.113.9"})

    assert [r.status_code for r in failed] == [401, 401, 401]
    assert failed[0].json()["error"]["code"] == "invalid_api_key"
    for refused in (throttled, right_key):
        body, wait = waited(refused.json())
        assert refused.status_code == 429
        assert limits(refused.headers) == ({}, {})
        assert body == error(
            "Too many requests with a wrong API key from 127.0.0.1: the limit is 3 per "
            "minute. Please try again in {wait}."
        )
        assert wait == pytest.approx(20, abs=SLACK)  # one failure back every 20 s
        assert retry_after(refused) == pytest.approx(20, abs=SLACK)
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (401, "invalid_api_key")


def test_a_throttled_address_is_refused_the_websocket_upgrade(
    guarded: tuple[Server, Key],
) -> None:
    server, key = guarded
    wrong = {"Authorization": "Bearer sk-wrong"}
    for _ in range(3):
        httpx.get(f"{server.base_url}/responses/resp_x", headers=wrong)
    url = server.base_url.replace("http://", "ws://") + "/responses"

    with pytest.raises(InvalidStatus) as caught:
        connect(url, additional_headers=key.auth)

    denied = caught.value.response
    body, wait = waited(json.loads(denied.body or b"{}"))
    assert denied.status_code == 429
    assert int(denied.headers["retry-after"]) == pytest.approx(20, abs=SLACK)
    assert body == error(
        "Too many requests with a wrong API key from 127.0.0.1: the limit is 3 per "
        "minute. Please try again in {wait}."
    )
    assert wait == pytest.approx(20, abs=SLACK)


def _shared_run(servers: list[Server], key: Key, model: str) -> list[httpx.Response]:
    """Four requests of one key (rpm 3), alternating between the servers."""
    body = {"model": model, "input": "Hi"}
    return [
        httpx.post(f"{servers[n % 2].base_url}/responses", headers=key.auth, json=body, timeout=30)
        for n in range(4)
    ]


def _assert_shared(answers: list[httpx.Response], key: Key) -> None:
    """The fourth request, wherever it goes, is refused: both servers counted the others."""
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [limits(r.headers) for r in answers] == [
        expected(requests=(3, 2, 20)),
        expected(requests=(3, 1, 40)),
        expected(requests=(3, 0, 60)),
        expected(requests=(3, 0, 60)),
    ]
    body, wait = waited(answers[3].json())
    assert body == rpm_message(key, 3)
    assert wait == pytest.approx(20, abs=SLACK)


@pytest.fixture
def replicas(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Starts two servers on one PostgreSQL schema, with the settings given, and a key of
    rpm 3 there; stops them."""
    started: list[Server] = []

    def start(url: str, **extra: str) -> tuple[list[Server], Key]:
        env = server_env(upstream, OPENRESPONSES_STORE_URL=url, **extra)
        key = make_key(tmp_path / "cli", "shared", "--rpm", "3", env=env)
        for name in ("a", "b"):
            started.append(Server(tmp_path / name, env).start())
        return started, key

    yield start
    for server in started:
        server.stop()


def _counter_rows(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT name FROM rate_counters")).scalars())
    finally:
        engine.dispose()


def test_replicas_on_one_postgresql_share_the_counters(
    upstream: ScriptedUpstream, replicas: Callable[..., Any]
) -> None:
    model = upstream.script(*[Text("Shared.")] * 3)
    with postgres_schema() as url:
        servers, key = replicas(url)
        answers = _shared_run(servers, key, model)
        rows = _counter_rows(url)
        for server in servers:
            server.stop()

    _assert_shared(answers, key)
    assert rows == [f"key:{key.id}:requests"]


def test_concurrent_requests_through_two_replicas_never_pass_the_limit(
    upstream: ScriptedUpstream, replicas: Callable[..., Any]
) -> None:
    model = upstream.script(*[Text("Raced.")] * 8)  # enough for every request that got through
    body = {"model": model, "input": "Hi"}
    with postgres_schema() as url:
        servers, key = replicas(url)
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda n: httpx.post(
                        f"{servers[n % 2].base_url}/responses",
                        headers=key.auth,
                        json=body,
                        timeout=30,
                    ),
                    range(8),
                )
            )
        for server in servers:
            server.stop()

    served = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert sorted(r.headers["x-ratelimit-remaining-requests"] for r in served) == ["0", "1", "2"]
    assert [r.status_code for r in refused] == [429] * 5
    assert [waited(r.json())[0] for r in refused] == [rpm_message(key, 3)] * 5
    assert len(upstream.requests(model)) == 3


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
            in_redis = [name.decode() for name in store.scan_iter(f"{prefix}*")]
            expires = [store.pttl(name) for name in in_redis]
            rows = _counter_rows(url)
            for server in servers:
                server.stop()
    finally:
        for name in store.scan_iter(f"{prefix}*"):
            store.delete(name)
        store.close()

    _assert_shared(answers, key)
    assert in_redis == [f"{prefix}rate:key:{key.id}:requests"]
    assert len(expires) == 1 and 0 < expires[0] <= 60_001  # gone once full again
    assert rows == []
