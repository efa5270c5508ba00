"""Gateway overhead: our /v1/responses against the same upstream called directly, in one run.

    python -m bench.gateway [--seconds 5] [--delay-ms 0]

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
import json
import statistics
import tempfile

from bench.loopback import Result, Target, Upstream, load, process_cpu, start_server


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
