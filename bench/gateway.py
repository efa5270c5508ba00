"""Gateway overhead: our /v1/responses against the same upstream called directly, in one run.

    python bench/gateway.py [--seconds 5] [--delay-ms 0]

A small asyncio upstream on loopback answers chat completions with a canned reply (after
`--delay-ms`, to imitate a model's latency). The same load generator then measures, side by
side, the upstream called directly and the gateway in front of it (stored and `store: false`,
streaming and not). The machine is noisy, so only ratios within one run mean anything.

Targets (issue 2): p50 overhead <= 1 ms at concurrency 1; throughput >= 80 % of direct at
concurrency 16.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
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

    async def start(self) -> int:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port: int = server.sockets[0].getsockname()[1]
        return port


@dataclass
class Result:
    name: str
    concurrency: int
    latencies: list[float]
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(
    name: str, call: Callable[[], Awaitable[None]], concurrency: int, seconds: float
) -> Result:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, concurrency, latencies, time.perf_counter() - begin)


def start_server(upstream_port: int, data_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        "OPENAI_API_KEY": "sk-bench",
    }
    command = Path(sys.executable).parent / "openresponses"
    process = subprocess.Popen(
        [
            str(command),
            "serve",
            "--port",
            str(port),
            "--data-dir",
            data_dir,
            "--log-level",
            "error",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(300):
        try:
            httpx.get(f"{base}/responses/resp_probe", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


async def run(seconds: float, delay_ms: float) -> list[Result]:
    upstream_port = await Upstream(delay_ms / 1000).start()
    direct_url = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
    chat = {"model": "bench", "messages": [{"role": "user", "content": "Say hello"}]}
    with tempfile.TemporaryDirectory() as data_dir:
        process, base = await asyncio.to_thread(start_server, upstream_port, data_dir)
        try:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:

                async def direct() -> None:
                    (await client.post(direct_url, json=chat)).raise_for_status()

                def gateway(**extra: object) -> Callable[[], Awaitable[None]]:
                    body = {"model": "bench", "input": "Say hello", **extra}

                    async def call() -> None:
                        (await client.post(f"{base}/responses", json=body)).raise_for_status()

                    return call

                variants = [
                    ("direct upstream", direct),
                    ("gateway store=true", gateway()),
                    ("gateway store=false", gateway(store=False)),
                    ("gateway stream", gateway(stream=True, store=False)),
                ]
                for _, call in variants:  # warm up connections, caches, DuckDB
                    for _ in range(50):
                        await call()
                results = []
                for concurrency in (1, 16):
                    for name, call in variants:
                        results.append(await load(name, call, concurrency, seconds))
                return results
        finally:
            process.terminate()
            process.wait()


def report(results: list[Result], delay_ms: float) -> str:
    lines = [
        f"upstream delay {delay_ms:g} ms",
        "",
        "| variant | conc. | req/s | p50 ms | p99 ms | p50 overhead ms | throughput vs direct |",
        "|---|---|---|---|---|---|---|",
    ]
    direct = {r.concurrency: r for r in results if r.name == "direct upstream"}
    for r in results:
        base = direct[r.concurrency]
        overhead = r.pct(0.5) - base.pct(0.5)
        lines.append(
            f"| {r.name} | {r.concurrency} | {r.rps:,.0f} | {r.pct(0.5):.2f} | "
            f"{r.pct(0.99):.2f} | {overhead:+.2f} | {r.rps / base.rps:.0%} |"
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
