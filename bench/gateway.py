"""Gateway overhead: our /v1/responses against the same upstream called directly, in one run.

    python bench/gateway.py [--seconds 5] [--delay-ms 0]

A small asyncio upstream on loopback answers chat completions with a canned reply (after
`--delay-ms`, to imitate a model's latency). The same load generator then measures, side by
side, the upstream called directly and the gateway in front of it (stored and `store: false`,
streaming and not, and chains of ten stored responses linked by `previous_response_id`, as an
agent's turns are). The machine is noisy, so only ratios within one run mean anything.

Targets (issue 2): p50 overhead <= 1 ms at concurrency 1; throughput >= 80 % of direct at
concurrency 16.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPLY = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": "bench",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "Hello from the bench.", "refusal": None},
        }
    ],
    "usage": {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13},
}
CHUNKS = [
    {"role": "assistant", "content": ""},
    {"content": "Hello "},
    {"content": "from "},
    {"content": "the bench."},
]


def _sse_body() -> bytes:
    frames = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        for delta in CHUNKS
    ]
    frames.append(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    )
    frames.append(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench",
            "choices": [],
            "usage": REPLY["usage"],
        }
    )
    body = "".join(f"data: {json.dumps(f)}\n\n" for f in frames) + "data: [DONE]\n\n"
    return body.encode()


class Upstream:
    """A minimal keep-alive HTTP/1.1 server: fast, so that it never is the bottleneck."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.json_body = json.dumps(REPLY).encode()
        self.sse_body = _sse_body()

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
                stream = b'"stream":true' in body.replace(b" ", b"")
                payload = self.sse_body if stream else self.json_body
                kind = b"text/event-stream" if stream else b"application/json"
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: "
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
    """Seconds of CPU the gateway's process spent on the run (None for the direct upstream):
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
                raise RuntimeError(f"{target.name}: HTTP {status}")

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(target.name, concurrency, latencies, time.perf_counter() - begin)


def process_cpu(pid: int) -> float:
    """User and system CPU seconds of a process so far (Linux: /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(
    upstream_port: int,
    data_dir: str,
    *,
    python: Path | None = None,
    prefix: Sequence[str] = (),
    wait_seconds: float = 15.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """`openresponses serve` of the environment `python` belongs to (this one's by default),
    in front of the upstream, run under `prefix` (a profiler's command line, say)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        "OPENAI_API_KEY": "sk-bench",
    }
    python = python or Path(sys.executable)
    command = [*prefix, str(python), str(python.parent / "openresponses"), "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--data-dir", data_dir, "--log-level", "error"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/responses/resp_probe", timeout=5)
            return process, port
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


async def run(seconds: float, delay_ms: float) -> list[Result]:
    upstream_port = await Upstream(delay_ms / 1000).start()
    chat = {"model": "bench", "messages": [{"role": "user", "content": "Say hello"}]}
    with tempfile.TemporaryDirectory() as data_dir:
        process, port = await asyncio.to_thread(start_server, upstream_port, data_dir)
        try:

            def gateway(name: str, chain: int = 0, **extra: object) -> Target:
                body = {"model": "bench", "input": "Say hello", **extra}
                return Target(name, port, "/v1/responses", json.dumps(body).encode(), chain)

            targets = [
                Target(
                    "direct upstream",
                    upstream_port,
                    "/v1/chat/completions",
                    json.dumps(chat).encode(),
                ),
                gateway("gateway store=true"),
                gateway("gateway store=false", store=False),
                gateway("gateway chained (10 turns)", chain=10),
                gateway("gateway stream", stream=True, store=False),
            ]
            for target in targets:  # warm up connections, caches, DuckDB
                await load(target, 1, min(seconds, 1.0))
            results = []
            for concurrency in (1, 16):
                for target in targets:
                    before = process_cpu(process.pid)
                    result = await load(target, concurrency, seconds)
                    if target.port == port:
                        result.server_cpu = process_cpu(process.pid) - before
                    results.append(result)
            return results
        finally:
            process.terminate()
            process.wait()


def report(results: list[Result], delay_ms: float) -> str:
    lines = [
        f"upstream delay {delay_ms:g} ms",
        "",
        "| variant | conc. | req/s | p50 ms | p99 ms | p50 overhead ms | throughput vs direct "
        "| server CPU ms/req |",
        "|---|---|---|---|---|---|---|---|",
    ]
    direct = {r.concurrency: r for r in results if r.name == "direct upstream"}
    for r in results:
        base = direct[r.concurrency]
        overhead = r.pct(0.5) - base.pct(0.5)
        cpu = "" if r.server_cpu is None else f"{r.server_cpu / len(r.latencies) * 1000:.2f}"
        lines.append(
            f"| {r.name} | {r.concurrency} | {r.rps:,.0f} | {r.pct(0.5):.2f} | "
            f"{r.pct(0.99):.2f} | {overhead:+.2f} | {r.rps / base.rps:.0%} | {cpu} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per variant and concurrency")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="upstream latency to imitate")
    args = parser.parse_args()
    results = asyncio.run(run(args.seconds, args.delay_ms))
    print(report(results, args.delay_ms))
    print(f"\nmedian of all gateway p50s: {statistics.median(r.pct(0.5) for r in results):.2f} ms")


if __name__ == "__main__":
    main()
