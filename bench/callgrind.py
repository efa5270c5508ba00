"""Instructions the gateway executes per request, counted by valgrind's callgrind.

    python -m bench.callgrind --variant store=true --requests 400 [--concurrency 8]
    python -m bench.callgrind --python /path/to/other/venv/bin/python   # another build

On this shared machine the CPU's speed changes between sessions and other work skews every
timing, so two commits compared by latency alone can differ by noise. Instruction counts do
not depend on the machine's load: the same build, request and data give the same count
within a fraction of a percent. The server runs under callgrind with counting switched on
only once it has served warm-up requests, so start-up is left out. Per-thread totals show
the event loop (the request path) apart from the store's writer thread.

Under valgrind the server runs ~50 times slower, so the journal gathers fewer saves per batch
than at full speed: the writer's share per stored response reads higher than it would.
Start-up under valgrind takes a minute or two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.loopback import RESPONSES_PROVIDER, Connection, Upstream, start_server

_BRIDGE = {"model": "bench", "input": "Say hello"}
_NATIVE = {**_BRIDGE, "model": f"{RESPONSES_PROVIDER}@bench"}
_CHAT = {"model": "bench", "messages": [{"role": "user", "content": "Say hello"}]}
_STREAM = {"stream": True, "store": False}
REQUESTS: dict[str, tuple[str, dict[str, object]]] = {
    "store=true": ("/v1/responses", _BRIDGE),
    "store=false": ("/v1/responses", {**_BRIDGE, "store": False}),
    "stream": ("/v1/responses", {**_BRIDGE, **_STREAM}),
    "passthrough": ("/v1/responses", {**_NATIVE, "store": False}),
    "passthrough-stream": ("/v1/responses", {**_NATIVE, **_STREAM}),
    "chat": ("/v1/chat/completions", _CHAT),
}
"""Each variant's path and body: the bridge (model `bench`), the native Responses passthrough
(see bench.loopback) and the chat completions relay. The passthrough is measured with
`store: false` like the bridge variant beside it, so that the two differ by provider only."""


def totals(path: Path) -> int:
    """The instruction count a callgrind output file records (0 for an idle thread)."""
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    return 0


async def measure(python: Path, variant: str, requests: int, concurrency: int, out: Path) -> None:
    upstream_port = await Upstream(0).start()
    with tempfile.TemporaryDirectory() as data_dir:
        prefix = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}/callgrind.%p",
            f"--log-file={out}/valgrind.log",
        ]
        process, port = await asyncio.to_thread(
            start_server, upstream_port, data_dir, python=python, prefix=prefix, wait_seconds=900
        )
        path, fields = REQUESTS[variant]
        body = json.dumps(fields).encode()

        async def worker(count: int) -> None:
            connection = Connection(port)
            for _ in range(count):
                status, _ = await connection.post(path, body)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}")

        try:
            await worker(200)  # warm-up: connections, caches, DuckDB, the first batches
            control = ["callgrind_control", "--instr"]
            subprocess.run([*control, "on", str(process.pid)], check=True, capture_output=True)
            await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
            await asyncio.sleep(1.0)  # the journal's last batch
            subprocess.run([*control, "off", str(process.pid)], check=True, capture_output=True)
        finally:
            process.terminate()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--variant", choices=sorted(REQUESTS), default="store=false")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        asyncio.run(measure(args.python, args.variant, args.requests, args.concurrency, Path(out)))
        counted = args.requests // args.concurrency * args.concurrency
        threads = sorted(Path(out).glob("callgrind.*-*"), key=lambda p: int(p.name.split("-")[-1]))
        print(f"{args.variant}, {counted} requests at concurrency {args.concurrency}")
        print("| thread (1: the event loop) | instructions per request |\n|---|---|")
        for path in threads:
            if (count := totals(path)) >= counted * 1000:  # idle threads count a few
                print(f"| {int(path.name.split('-')[-1])} | {count / counted:,.0f} |")
        print(f"| all | {sum(totals(p) for p in threads) / counted:,.0f} |")


if __name__ == "__main__":
    main()
