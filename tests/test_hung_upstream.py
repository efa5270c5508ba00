"""An upstream that accepts a model call and never answers (or stops mid-answer) holds nothing
for long: the response fails `upstream_timeout` after the first-byte or idle timeout, a client
that leaves frees the upstream connection at once, and SIGTERM ends within its grace period."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import Server, server_env
from tests.upstream import Error, Hang, ScriptedUpstream, Text


@pytest.fixture(scope="module")
def lone_upstream() -> Iterator[ScriptedUpstream]:
    """An upstream of this module's servers alone: the connections to it are theirs."""
    up = ScriptedUpstream()
    up.start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def impatient(
    lone_upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server that waits 1 s for a model call's first byte and 1 s between two chunks."""
    args = ["--first-byte-timeout", "1", "--idle-timeout", "1"]
    srv = Server(tmp_path_factory.mktemp("impatient"), server_env(lone_upstream), args).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def patient(
    lone_upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server with the default timeouts (60 s): only a client can end a hung call here."""
    srv = Server(tmp_path_factory.mktemp("patient"), server_env(lone_upstream)).start()
    yield srv
    srv.stop()


def _create(server: Server, timeout: float = 30, **fields: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/responses", json=fields, timeout=timeout)


def _event(line: str) -> dict[str, Any] | None:
    """The event on an SSE line, if it carries one (not `data: [DONE]`, not `event:`)."""
    if not line.startswith("data:") or line == "data: [DONE]":
        return None
    event: dict[str, Any] = json.loads(line[5:])
    return event


def _events(response: httpx.Response) -> list[dict[str, Any]]:
    return [event for line in response.text.splitlines() if (event := _event(line))]


def _timeout_error(when: str) -> dict[str, Any]:
    return {
        "message": f"openai sent nothing for 1 s {when}.",
        "type": "upstream_error",
        "param": None,
        "code": "upstream_timeout",
    }


def _settled(server: Server, response_id: str) -> dict[str, Any]:
    """The response once it is no longer queued or in progress (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        found: dict[str, Any] = httpx.get(f"{server.base_url}/responses/{response_id}").json()
        if found["status"] not in ("queued", "in_progress") or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


NEVER_BEGAN = "before its answer began"
STOPPED = "between two chunks of its answer"


HI = [{"role": "user", "content": "Hi"}]

CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "responses json": ("/responses", {"input": "Hi"}),
    "responses stream": ("/responses", {"input": "Hi", "stream": True}),
    "chat json": ("/chat/completions", {"messages": HI}),
    "chat stream": ("/chat/completions", {"messages": HI, "stream": True}),
    "embeddings": ("/embeddings", {"input": "Hi"}),
    "compact": ("/responses/compact", {"input": "Hi"}),
}
"""A request of each kind that calls a model upstream: its path and body but the model."""


def _call(server: Server, call: str, model: str) -> httpx.Response:
    path, fields = CALLS[call]
    return httpx.post(f"{server.base_url}{path}", json={"model": model, **fields}, timeout=30)


@pytest.mark.parametrize("call", CALLS)
def test_an_upstream_that_never_answers_is_a_504_upstream_timeout(
    impatient: Server, lone_upstream: ScriptedUpstream, call: str
) -> None:
    model = lone_upstream.script(Hang())
    started = time.monotonic()

    answer = _call(impatient, call, model)

    assert time.monotonic() - started < 3
    assert answer.status_code == 504
    assert answer.json() == {"error": _timeout_error(NEVER_BEGAN)}


def test_a_providers_own_first_byte_timeout_applies_to_it(
    lone_upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    config = tmp_path / "openresponses.toml"
    config.write_text(
        f'[providers.tuned]\nbase_url = "{lone_upstream.base_url}"\nfirst_byte_timeout = 1\n'
    )
    server = Server(tmp_path, server_env(lone_upstream), ["--config", str(config)]).start()
    model = lone_upstream.script(Hang())
    started = time.monotonic()
    try:
        answer = _create(server, model=f"tuned@{model}", input="Hi")
    finally:
        server.stop()

    assert time.monotonic() - started < 3  # not the server's 60 s
    message = "tuned sent nothing for 1 s before its answer began."
    assert answer.json() == {"error": _timeout_error(NEVER_BEGAN) | {"message": message}}


def test_a_provider_whose_model_listing_never_answers_is_left_out_after_the_timeout(
    lone_upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # never accepts: the kernel takes requests
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
    config = tmp_path / "openresponses.toml"
    config.write_text(f'[providers.silent]\nbase_url = "{url}"\nfirst_byte_timeout = 1\n')
    server = Server(tmp_path, server_env(lone_upstream), ["--config", str(config)]).start()
    started = time.monotonic()
    try:
        listing = httpx.get(f"{server.base_url}/models", timeout=30)
    finally:
        server.stop()
        silent.close()

    assert time.monotonic() - started < 3
    assert listing.status_code == 200
    assert {model["id"].split("@")[0] for model in listing.json()["data"]} == {"openai"}


def test_a_stream_whose_upstream_stops_mid_answer_ends_failed_after_the_idle_timeout(
    impatient: Server, lone_upstream: ScriptedUpstream
) -> None:
    model = lone_upstream.script(Hang(after_chunks=2, reply=Text("Hello, and then nothing")))

    events = _events(_create(impatient, model=model, input="Hi", stream=True))

    assert [e["type"] for e in events][:2] == ["response.created", "response.in_progress"]
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    message = _timeout_error(STOPPED)["message"]
    error = {k: v for k, v in events[-2].items() if k != "sequence_number"}
    assert error == {"type": "error", "code": "upstream_timeout", "message": message, "param": None}
    failed = events[-1]["response"]
    # The spec's response error codes have no timeout: the `error` event carries it.
    assert failed["error"] == {"code": "server_error", "message": message}
    stored = httpx.get(f"{impatient.base_url}/responses/{failed['id']}").json()
    assert (stored["status"], stored["error"]) == ("failed", failed["error"])
    assert lone_upstream.hanging() == 0


def test_a_chat_stream_whose_upstream_stops_mid_answer_ends_in_an_error_the_sdk_raises(
    impatient: Server, lone_upstream: ScriptedUpstream
) -> None:
    model = lone_upstream.script(Hang(after_chunks=2, reply=Text("Hello, and then nothing")))
    client = openai.OpenAI(base_url=impatient.base_url, api_key="t", max_retries=0, timeout=30)
    deltas = []

    with pytest.raises(openai.APIError) as raised:
        for chunk in client.chat.completions.create(model=model, messages=HI, stream=True):
            deltas.append(chunk.choices[0].delta.content)

    assert deltas == ["", "Hello"]
    assert type(raised.value) is openai.APIError  # not a connection error: the server's own
    assert raised.value.body == _timeout_error(STOPPED)
    _wait_for(lambda: lone_upstream.hanging() == 0, 1.0)  # the upstream sees the close soon


def test_a_background_response_whose_upstream_never_answers_is_stored_failed(
    impatient: Server, lone_upstream: ScriptedUpstream
) -> None:
    model = lone_upstream.script(Hang())

    queued = _create(impatient, model=model, input="Hi", background=True).json()
    found = _settled(impatient, queued["id"])

    assert found["status"] == "failed"
    message = _timeout_error(NEVER_BEGAN)["message"]
    assert found["error"] == {"code": "server_error", "message": message}


def test_retries_and_their_waits_count_toward_the_first_byte_timeout(
    impatient: Server, lone_upstream: ScriptedUpstream
) -> None:
    busy = Error(503, "busy", headers={"retry-after": "0.5"})
    model = lone_upstream.script(busy, Hang())
    started = time.monotonic()

    answer = _create(impatient, model=model, input="Hi")

    assert answer.status_code == 504
    assert time.monotonic() - started < 1.9  # 1 s in all, not 0.5 s plus another 1 s
    assert len(lone_upstream.requests(model)) == 2


def test_a_retry_that_would_outlast_the_first_byte_timeout_is_not_made(
    impatient: Server, lone_upstream: ScriptedUpstream
) -> None:
    model = lone_upstream.script(Error(503, "busy", headers={"retry-after": "2"}), Text("late"))

    answer = _create(impatient, model=model, input="Hi")

    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "upstream_unavailable"
    assert len(lone_upstream.requests(model)) == 1


# --- Clients that leave -----------------------------------------------------------------------


def _sockets_to(pid: int, port: int) -> int:
    """How many of process `pid`'s open sockets are connected to `port` (Linux: the socket
    inodes among its file descriptors, looked up in its network namespace's TCP tables)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for fields in (line.split() for line in lines):
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            count += remote_port == port and fields[9] in inodes
    return count


def _held(server: Server, upstream: ScriptedUpstream) -> tuple[int, int]:
    """The connections to the upstream: the server's sockets, and those the upstream holds."""
    assert server.process is not None
    port = int(upstream.base_url.rsplit(":", 1)[1].split("/")[0])
    return _sockets_to(server.process.pid, port), upstream.hanging()


def _wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until `condition()` held (checked every 10 ms); fails after `seconds`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.01)
    return time.monotonic() - started


def _post_raw(call: str) -> Callable[[Server, str], Callable[[], None]]:
    """How to send one of `CALLS` over a plain socket and read nothing; that returns how to
    hang up."""
    path, fields = CALLS[call]

    def send(server: Server, model: str) -> Callable[[], None]:
        sock = socket.create_connection(("127.0.0.1", server.port))
        data = json.dumps({"model": model, **fields}).encode()
        head = f"POST /v1{path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        return sock.close

    return send


def _over_websocket(server: Server, body: dict[str, Any]) -> Callable[[], None]:
    opened = contextlib.ExitStack()
    url = server.base_url.replace("http://", "ws://") + "/responses"
    ws = opened.enter_context(connect(url, open_timeout=10))
    ws.send(json.dumps({"type": "response.create", **body}))
    return opened.close


CLIENTS = 8

LEAVING = {
    **{f"{call} before its first byte": (Hang(), _post_raw(call)) for call in CALLS},
    "responses stream mid-answer": (Hang(after_chunks=2), _post_raw("responses stream")),
    "chat stream mid-answer": (Hang(after_chunks=2), _post_raw("chat stream")),
    "websocket": (Hang(), lambda s, m: _over_websocket(s, {"model": m, "input": "Hi"})),
}


@pytest.mark.parametrize("how", LEAVING)
def test_clients_that_leave_free_their_upstream_connections_within_a_second(
    patient: Server, lone_upstream: ScriptedUpstream, how: str
) -> None:
    reply, send = LEAVING[how]
    model = lone_upstream.script(*[reply] * CLIENTS)
    hang_ups = [send(patient, model) for _ in range(CLIENTS)]
    _wait_for(lambda: _held(patient, lone_upstream) == (CLIENTS, CLIENTS), 10)

    for hang_up in hang_ups:
        hang_up()

    assert _wait_for(lambda: _held(patient, lone_upstream) == (0, 0), 1.0) < 1.0


# --- Stopping -----------------------------------------------------------------------------------

SHUT_DOWN = "The server shut down before the response completed."


def _stream_in_thread(
    server: Server, model: str, into: list[dict[str, Any]], call: str = "responses stream"
) -> threading.Thread:
    """A stream (one of `CALLS`) read to its end in a thread; its events go `into` as they
    arrive."""
    path, fields = CALLS[call]

    def read() -> None:
        body = {"model": model, **fields}
        with httpx.stream("POST", f"{server.base_url}{path}", json=body, timeout=60) as answer:
            into.extend(event for line in answer.iter_lines() if (event := _event(line)))

    thread = threading.Thread(target=read)
    thread.start()
    return thread


def _websocket_in_thread(
    server: Server, model: str, into: list[dict[str, Any]]
) -> threading.Thread:
    """A WebSocket turn read until the server closes the socket, in a thread."""

    def read() -> None:
        url = server.base_url.replace("http://", "ws://") + "/responses"
        with connect(url, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "response.create", "model": model, "input": "Hi"}))
            with contextlib.suppress(ConnectionClosed):
                while True:
                    into.append(json.loads(ws.recv(timeout=60)))

    thread = threading.Thread(target=read)
    thread.start()
    return thread


def test_sigterm_stops_hanging_requests_within_the_shutdown_timeout_and_stores_them_failed(
    lone_upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    env = server_env(lone_upstream)
    server = Server(tmp_path / "data", env, ["--shutdown-timeout", "2"]).start()
    kept = _create(server, model=lone_upstream.script(Text("Kept.")), input="Hi").json()
    hung = lone_upstream.script(*[Hang(after_chunks=2)] * 4, Hang(), Hang())
    streams: list[list[dict[str, Any]]] = [[], [], []]
    readers = [_stream_in_thread(server, hung, events) for events in streams]
    _wait_for(lambda: lone_upstream.hanging() == 3, 10)
    socket_events: list[dict[str, Any]] = []
    readers.append(_websocket_in_thread(server, hung, socket_events))
    _wait_for(lambda: lone_upstream.hanging() == 4, 10)
    waiting: list[httpx.Response] = []  # a JSON create, waiting for the first byte
    waiter = threading.Thread(
        target=lambda: waiting.append(_create(server, model=hung, input="Hi"))
    )
    waiter.start()
    background = _create(server, model=hung, input="Hi", background=True).json()
    _wait_for(lambda: lone_upstream.hanging() == 6, 10)
    assert server.process is not None
    started = time.monotonic()

    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=30)

    assert time.monotonic() - started < 2 + 2  # the grace period, and a margin to end
    # uvicorn re-raises the signal once it has shut down: the exit of a SIGTERMed process.
    assert code == -signal.SIGTERM
    for thread in [*readers, waiter]:
        thread.join(timeout=5)
    assert "Traceback" not in server.output()
    assert [events[-1]["type"] for events in streams] == ["response.failed"] * 3
    assert waiting[0].status_code == 503
    assert waiting[0].json() == {
        "error": {
            "message": "The server is shutting down.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    restarted = Server(tmp_path / "data", env).start()
    try:
        stored = [
            _settled(restarted, id_)
            for id_ in [events[0]["response"]["id"] for events in [*streams, socket_events]]
            + [background["id"]]
        ]
        assert _settled(restarted, kept["id"])["status"] == "completed"
    finally:
        restarted.stop()
    failed = {"code": "server_error", "message": SHUT_DOWN}
    assert [(r["status"], r["error"]) for r in stored] == [("failed", failed)] * 5


def test_sigterm_ends_hanging_chat_completions_and_embeddings_within_the_shutdown_timeout(
    lone_upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    server = Server(tmp_path, server_env(lone_upstream), ["--shutdown-timeout", "2"]).start()
    hung = lone_upstream.script(Hang(after_chunks=2), Hang(), Hang())
    events: list[dict[str, Any]] = []
    reader = _stream_in_thread(server, hung, events, "chat stream")
    _wait_for(lambda: lone_upstream.hanging() == 1, 10)
    waiting: list[httpx.Response] = []  # requests waiting for the first byte
    waiters = [
        threading.Thread(target=lambda call=call: waiting.append(_call(server, call, hung)))
        for call in ("chat json", "embeddings")
    ]
    for waiter in waiters:
        waiter.start()
    _wait_for(lambda: lone_upstream.hanging() == 3, 10)
    assert server.process is not None
    started = time.monotonic()

    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=30)

    assert time.monotonic() - started < 2 + 2  # the grace period, and a margin to end
    for thread in [reader, *waiters]:
        thread.join(timeout=5)
    assert "Traceback" not in server.output()
    shutting_down = {
        "error": {
            "message": "The server is shutting down.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert events[-1] == shutting_down
    assert [(r.status_code, r.json()) for r in waiting] == [(503, shutting_down)] * 2


def test_ctrl_c_stops_the_server_quietly(lone_upstream: ScriptedUpstream, tmp_path: Path) -> None:
    server = Server(tmp_path / "data", server_env(lone_upstream)).start()
    assert server.process is not None

    server.process.send_signal(signal.SIGINT)
    code = server.process.wait(timeout=30)

    assert code == 0
    assert "Traceback" not in server.output()
    assert "KeyboardInterrupt" not in server.output()
