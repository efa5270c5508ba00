"""What the gateway benchmarks share: a loopback upstream, a thin load generator, and a way
to start this server in front of the upstream.

The upstream answers chat completions (`/v1/chat/completions`) and the Responses API
(`/v1/responses`), each as JSON or, when the body asks for `"stream": true`, as SSE, with
canned replies of the same text ("Hello from the bench.", three deltas when streamed), so
that the bridge and the native passthrough are measured against the same model output.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TEXT = ("Hello ", "from ", "the bench.")
USAGE = {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13}
CHAT_REPLY = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": "bench",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "".join(TEXT), "refusal": None},
        }
    ],
    "usage": USAGE,
}


def _sse(events: Sequence[dict[str, Any]], *, named: bool) -> bytes:
    """Events as SSE frames (`named`: with the `event:` line the Responses API sends), ended
    by chat completions' `[DONE]` when they are unnamed."""
    frames = [
        (f"event: {event['type']}\n" if named else "") + f"data: {json.dumps(event)}\n\n"
        for event in events
    ]
    return ("".join(frames) + ("" if named else "data: [DONE]\n\n")).encode()


def _chat_stream() -> bytes:
    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        head = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "bench"}
        return {**head, "choices": choices, **extra}

    deltas = [{"role": "assistant", "content": ""}, *({"content": text} for text in TEXT)]
    return _sse(
        [
            *(chunk([{"index": 0, "delta": d, "finish_reason": None}]) for d in deltas),
            chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            chunk([], usage=USAGE),
        ],
        named=False,
    )


def _responses_reply(status: str, text: str) -> dict[str, Any]:
    """A Responses API response object as OpenAI sends it (`store: false`, as gateways ask)."""
    done = status == "completed"
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    message = {"id": "msg_bench", "type": "message", "status": "completed", "role": "assistant"}
    return {
        "id": "resp_bench",
        "object": "response",
        "created_at": 0,
        "status": status,
        "background": False,
        "completed_at": 0 if done else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "bench",
        "output": [{**message, "content": content}] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 8,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 13,
        }
        if done
        else None,
        "metadata": {},
    }


def _responses_stream() -> bytes:
    """The Responses API's events for the same reply: lifecycle, item, part, three deltas."""
    text = "".join(TEXT)
    where = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    message = {"id": "msg_bench", "type": "message", "role": "assistant", "content": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _responses_reply("in_progress", "")},
        {"type": "response.in_progress", "response": _responses_reply("in_progress", "")},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message, "status": "in_progress"},
        },
        {"type": "response.content_part.added", **where, "part": part},
        *(
            {"type": "response.output_text.delta", **where, "delta": delta, "logprobs": []}
            for delta in TEXT
        ),
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": {**part, "text": text}},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**message, "status": "completed", "content": [{**part, "text": text}]},
        },
        {"type": "response.completed", "response": _responses_reply("completed", text)},
    ]
    return _sse([{**e, "sequence_number": n} for n, e in enumerate(events)], named=True)


class Upstream:
    """A minimal keep-alive HTTP/1.1 server: fast, so that it never is the bottleneck."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        json_type, sse_type = b"application/json", b"text/event-stream"
        self.answers = {
            (b"/v1/chat/completions", False): (json_type, json.dumps(CHAT_REPLY).encode()),
            (b"/v1/chat/completions", True): (sse_type, _chat_stream()),
            (b"/v1/responses", False): (
                json_type,
                json.dumps(_responses_reply("completed", "".join(TEXT))).encode(),
            ),
            (b"/v1/responses", True): (sse_type, _responses_stream()),
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                if self.delay:
                    await asyncio.sleep(self.delay)
                path = head.split(b" ", 2)[1].split(b"?")[0]
                stream = b'"stream":true' in body.replace(b" ", b"")
                kind, payload = self.answers.get((path, stream), (b"text/plain", b"not here"))
                status = b"200 OK" if (path, stream) in self.answers else b"404 Not Found"
                writer.write(
                    b"HTTP/1.1 "
                    + status
                    + b"\r\ncontent-type: "
                    + kind
                    + b"\r\ncontent-length: "
                    + str(len(payload)).encode()
                    + b"\r\n\r\n"
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
        except asyncio.CancelledError:  # the run is over; ending quietly spares Python 3.11's
            writer.close()  # stream callback a traceback about the cancelled task

    async def start(self) -> int:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port: int = server.sockets[0].getsockname()[1]
        return port


class Connection:
    """One keep-alive HTTP/1.1 connection, as thin as a client can be.

    httpx costs more per request than the upstream answering it, and its pool serialises
    under concurrency; a load generator that heavy would measure itself, not the gateway.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """The status and, unless the answer was chunked (a stream), the body."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer sk-bench\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = head.lower()
        if b"transfer-encoding: chunked" in headers:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    return status, b""
        length = int(headers.split(b"content-length:")[1].split(b"\r\n")[0])
        return status, await self.reader.readexactly(length)


@dataclass
class Result:
    name: str
    concurrency: int
    latencies: list[float]
    seconds: float
    server_cpu: float | None = None
    """Seconds of CPU the server's process spent on the run (None for the direct upstream):
    on a noisy machine, a steadier way than latency to compare two commits."""

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    path: str
    body: bytes
    chain: int = 0
    """Chains of this many responses, each continuing the one before by
    `previous_response_id`, as an agent's turns do (0: independent requests)."""

    def next_body(self, turn: int, previous: bytes) -> bytes:
        if not self.chain or turn % self.chain == 0:
            return self.body
        previous_id = json.loads(previous)["id"]
        return self.body[:-1] + f', "previous_response_id": "{previous_id}"}}'.encode()


async def load(target: Target, concurrency: int, seconds: float) -> Result:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        connection = Connection(target.port)
        answer = b""
        for turn in itertools.count():
            if time.perf_counter() >= deadline:
                break
            body = target.next_body(turn, answer)
            start = time.perf_counter()
            status, answer = await connection.post(target.path, body)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                raise RuntimeError(f"{target.name}: HTTP {status}: {answer[:300]!r}")

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(target.name, concurrency, latencies, time.perf_counter() - begin)


def process_cpu(pid: int) -> float:
    """User and system CPU seconds of a process so far (Linux: /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(
    process: subprocess.Popen[bytes], url: str, name: str, wait_seconds: float
) -> None:
    """Wait for any HTTP answer at `url`; kill the process if none comes in time."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{name} did not start")


RESPONSES_PROVIDER = "native"
"""The provider of `kind = "openai-responses"` that `start_server` configures: a request's
model `native@bench` goes through the Responses passthrough, `bench` through the bridge."""


def start_server(
    upstream_port: int,
    data_dir: str,
    *,
    python: Path | None = None,
    prefix: Sequence[str] = (),
    wait_seconds: float = 60.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """`openresponses serve` of the environment `python` belongs to (this one's by default),
    in front of the upstream, run under `prefix` (a profiler's command line, say)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{upstream_port}/v1"
    config = Path(data_dir) / "openresponses.toml"
    config.write_text(
        f'[providers.{RESPONSES_PROVIDER}]\nkind = "openai-responses"\n'
        f'base_url = "{base_url}"\napi_key_env = "OPENAI_API_KEY"\n'
    )
    env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench"}
    python = python or Path(sys.executable)
    command = [*prefix, str(python), str(python.parent / "openresponses"), "serve"]
    options = ["--port", str(port), "--data-dir", data_dir, "--config", str(config)]
    process = subprocess.Popen(
        [*command, *options, "--log-level", "error"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1/responses/resp_probe"
    wait_until_up(process, url, "the server", wait_seconds)
    return process, port
