"""Cost of one upstream call per HTTP client library, side by side in one run.

    python bench/upstream_clients.py [--calls 3000]

Why the providers use aiohttp: every response makes at least one upstream call, so the
client's own cost per call is gateway overhead. Each client posts the same chat-completions
body to the same loopback upstream (bench/loopback.py's) sequentially over one keep-alive
connection, and reads the JSON answer.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx

from bench.loopback import Upstream

BODY = {"model": "bench", "messages": [{"role": "user", "content": "Say hello"}]}


async def _time(calls: int, call: Callable[[], Awaitable[Any]]) -> float:
    for _ in range(200):
        await call()
    start = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - start) / calls * 1e6


async def run(calls: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{await Upstream(0).start()}/v1/chat/completions"
    results = {}
    async with httpx.AsyncClient() as client:

        async def with_httpx() -> Any:
            return (await client.post(url, json=BODY)).json()

        results["httpx 0.28"] = await _time(calls, with_httpx)
    async with aiohttp.ClientSession() as session:

        async def with_aiohttp() -> Any:
            async with session.post(url, json=BODY) as response:
                return await response.json()

        results["aiohttp 3.14"] = await _time(calls, with_aiohttp)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    for name, micros in asyncio.run(run(args.calls)).items():
        print(f"{name:14} {micros:6.0f} µs per call")


if __name__ == "__main__":
    main()
