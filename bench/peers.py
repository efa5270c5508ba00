"""This server beside the gateways a user would pick instead, on the same upstream, in one run.

    python -m bench.peers [--seconds 3] [--rounds 2] [--servers ours,litellm,ors]
        [--baseline /path/to/other/venv/bin/python]

The loopback upstream of bench.loopback answers chat completions and the Responses API; the
same load generator measures, for each path, the upstream called directly, this server and
each peer that serves the path, interleaved (every variant once per round, concurrency 1
then 16), so that the machine's drift touches all alike. The peers are installed by this
script, pinned, each into its own virtual environment under `~/.cache/openresponses-bench/`
(PyPI is needed once), and run with their default settings apart from the upstream and
logging:

- LiteLLM's proxy (`litellm[proxy]`), model `bench` as `openai/bench` at the upstream: it
  relays chat completions and passes the Responses API through to an OpenAI upstream.
  Pinned to a release that is not one of the compromised 1.82.7, 1.82.8 and 1.107.0.
- open-responses-server, which bridges the Responses API (streamed only) to chat
  completions and relays chat completions.

The table gives, per path and server, the p50 overhead over the direct call at
concurrency 1 and the requests per second at concurrency 16 ("—": the server does not
serve the path). Figures and the machine they came from are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.loopback import (
    RESPONSES_PROVIDER,
    Result,
    Target,
    Upstream,
    free_port,
    load,
    process_cpu,
    start_server,
    wait_until_up,
)

CACHE = Path.home() / ".cache" / "openresponses-bench"
LITELLM = "1.108.7"
ORS = "0.4.1"

CHAT = {"model": "bench", "messages": [{"role": "user", "content": "Say hello"}]}
ASK = {"model": "bench", "input": "Say hello"}
STREAM = {"stream": True, "store": False}


@dataclass(frozen=True)
class Row:
    """One row: what is asked, and the upstream call it stands for (the direct baseline)."""

    name: str
    route: str
    """`chat` (`/v1/chat/completions`), `bridge` (`/v1/responses` on a chat model) or
    `native` (`/v1/responses` on a Responses model)."""
    body: dict[str, object]

    @property
    def direct(self) -> tuple[str, dict[str, object]]:
        if self.route == "native":
            return "/v1/responses", self.body
        return "/v1/chat/completions", {**CHAT, **({"stream": True} if self.streamed else {})}

    @property
    def streamed(self) -> bool:
        return self.body.get("stream") is True


ROWS = [
    Row("chat completions relay", "chat", CHAT),
    Row("Responses → chat bridge, stored", "bridge", ASK),
    Row("bridge, `store: false`", "bridge", {**ASK, "store": False}),
    Row("bridge, streamed (`store: false`)", "bridge", {**ASK, **STREAM}),
    Row("native Responses passthrough, stored", "native", ASK),
    Row("passthrough, streamed (`store: false`)", "native", {**ASK, **STREAM}),
]


@dataclass
class Server:
    """A gateway under test: its port, process, and the HTTP path and model of each route it
    serves (a streamed-only route is marked by `streamed_only`)."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    routes: dict[str, tuple[str, str]]
    streamed_only: frozenset[str] = frozenset()

    def target(self, path: Row) -> Target | None:
        route = self.routes.get(path.route)
        if route is None or (path.route in self.streamed_only and not path.streamed):
            return None
        http_path, model = route
        body = json.dumps({**path.body, "model": model}).encode()
        return Target(self.name, self.port, http_path, body)


def venv(name: str, requirement: str, entry: str) -> Path:
    """The command `entry` of a virtual environment holding `requirement`, made on first use."""
    home = CACHE / name
    command = home / "bin" / entry
    if not command.exists():
        print(f"installing {requirement} into {home} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
        pip = [str(home / "bin" / "python"), "-m", "pip", "install", "-q", requirement]
        subprocess.run(pip, check=True)
    return command


def _start(name: str, command: list[str], env: dict[str, str], cwd: Path, probe: str) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command],
        env={**os.environ, **{k: v.replace("{port}", str(port)) for k, v in env.items()}},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_up(process, f"http://127.0.0.1:{port}{probe}", name, 180)
    return Server(name, process, port, {})


def litellm(upstream: int, work: Path) -> Server:
    command = venv(f"litellm-{LITELLM}", f"litellm[proxy]=={LITELLM}", "litellm")
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n"
        f"      api_base: http://127.0.0.1:{upstream}/v1\n      api_key: sk-bench\n"
    )
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the cost map at start-up
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        # No key check, as this server runs in the benchmark (LiteLLM refuses that unless told).
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
    }
    arguments = ["--config", str(config), "--host", "127.0.0.1", "--port", "{port}"]
    server = _start(
        f"LiteLLM {LITELLM}", [str(command), *arguments], env, work, "/health/liveliness"
    )
    server.routes = {
        "chat": ("/v1/chat/completions", "bench"),
        "native": ("/v1/responses", "bench"),
    }
    return server


def open_responses_server(upstream: int, work: Path) -> Server:
    python = venv(f"open-responses-server-{ORS}", f"open-responses-server=={ORS}", "otc")
    env = {
        "OPENAI_BASE_URL_INTERNAL": f"http://127.0.0.1:{upstream}",
        "OPENAI_BASE_URL": "http://127.0.0.1:{port}",
        "OPENAI_API_KEY": "sk-bench",
        "API_ADAPTER_HOST": "127.0.0.1",
        "API_ADAPTER_PORT": "{port}",
    }
    # Its own entry point, minus `reload=True` (a file watcher that restarts on changes).
    command = [
        str(python.parent / "python"),
        "-m",
        "uvicorn",
        "open_responses_server.server_entrypoint:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
    ]
    server = _start(f"open-responses-server {ORS}", command, env, work, "/health")
    # It serves the Responses API at `/responses`, and only streamed.
    server.routes = {"chat": ("/v1/chat/completions", "bench"), "bridge": ("/responses", "bench")}
    server.streamed_only = frozenset({"bridge"})
    return server


def ours(upstream: int, work: Path, python: Path | None = None, name: str = "ours") -> Server:
    """This server, from this environment or the one `python` belongs to (another build)."""
    process, port = start_server(upstream, str(work), python=python)
    routes = {
        "chat": ("/v1/chat/completions", "bench"),
        "bridge": ("/v1/responses", "bench"),
        "native": ("/v1/responses", f"{RESPONSES_PROVIDER}@bench"),
    }
    return Server(name, process, port, routes)


STARTERS: dict[str, Callable[[int, Path], Server]] = {
    "ours": ours,
    "litellm": litellm,
    "ors": open_responses_server,
}


@dataclass
class Cell:
    """One server on one path at one concurrency, over all rounds."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0
    failure: str | None = None

    def add(self, result: Result) -> None:
        self.latencies += result.latencies
        self.seconds += result.seconds
        self.cpu += result.server_cpu or 0.0

    @property
    def result(self) -> Result:
        return Result("", 0, self.latencies, self.seconds)


@contextmanager
def servers(
    starters: dict[str, Callable[[int, Path], Server]], upstream: int
) -> Iterator[list[Server]]:
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        started = []
        for name, starter in starters.items():
            work = Path(tmp) / name
            work.mkdir()
            server = starter(upstream, work)
            stack.callback(_stop, server.process)
            started.append(server)
        yield started


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


async def measure(
    starters: dict[str, Callable[[int, Path], Server]], seconds: float, rounds: int
) -> tuple[list[Server], dict[tuple[str, str, int], Cell]]:
    upstream = await Upstream(0).start()
    cells: dict[tuple[str, str, int], Cell] = {}
    with servers(starters, upstream) as started:
        runs: list[tuple[Row, str, Target, Server | None]] = []
        for path in ROWS:
            http_path, body = path.direct
            direct = Target("direct", upstream, http_path, json.dumps(body).encode())
            runs.append((path, "direct", direct, None))
            for server in started:
                target = server.target(path)
                if target is not None:
                    runs.append((path, server.name, target, server))
        for _, _, target, _ in runs:  # warm-up: connections, caches, first-call imports
            with contextlib.suppress(RuntimeError):  # reported by the measured runs
                await load(target, 1, 1.0)
        for _ in range(rounds):
            for concurrency in (1, 16):
                for path, name, target, server in runs:
                    cell = cells.setdefault((path.name, name, concurrency), Cell())
                    if cell.failure:
                        continue
                    before = process_cpu(server.process.pid) if server else 0.0
                    try:
                        result = await load(target, concurrency, seconds)
                    except (RuntimeError, OSError, asyncio.IncompleteReadError) as exc:
                        cell.failure = str(exc)[:200]
                        continue
                    if server:
                        result.server_cpu = process_cpu(server.process.pid) - before
                    cell.add(result)
        return started, cells


def report(servers: list[Server], cells: dict[tuple[str, str, int], Cell]) -> str:
    names = [server.name for server in servers]
    lines = [
        "p50 overhead over the direct call at concurrency 1, requests/s at concurrency 16",
        "",
        "| path | direct | " + " | ".join(names) + " |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    cpu_lines = [
        "server CPU per request, ms, at concurrency 1 / 16",
        "",
        "| path | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for path in ROWS:
        direct = cells[(path.name, "direct", 1)].result
        direct16 = cells[(path.name, "direct", 16)].result
        row = [f"{direct.pct(0.5):.2f} ms, {direct16.rps:,.0f}/s"]
        cpu_row = []
        for name in names:
            one, sixteen = cells.get((path.name, name, 1)), cells.get((path.name, name, 16))
            if one is None or sixteen is None:
                row.append("—")
                cpu_row.append("—")
            elif one.failure or sixteen.failure:
                row.append(f"fails: {one.failure or sixteen.failure}")
                cpu_row.append("")
            else:
                overhead = one.result.pct(0.5) - direct.pct(0.5)
                row.append(f"{overhead:+.2f} ms, {sixteen.result.rps:,.0f}/s")
                per = [cell.cpu / len(cell.latencies) * 1000 for cell in (one, sixteen)]
                cpu_row.append(f"{per[0]:.2f} / {per[1]:.2f}")
        lines.append(f"| {path.name} | " + " | ".join(row) + " |")
        cpu_lines.append(f"| {path.name} | " + " | ".join(cpu_row) + " |")
    return "\n".join([*lines, "", *cpu_lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--servers", default=",".join(STARTERS), help=f"among {', '.join(STARTERS)}"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="the python of another build's environment, measured as one more server",
    )
    args = parser.parse_args()
    starters = {name: STARTERS[name] for name in args.servers.split(",")}
    if args.baseline:
        starters["baseline"] = functools.partial(
            ours, python=args.baseline, name=f"ours ({args.baseline.parents[2].name})"
        )
    started, cells = asyncio.run(measure(starters, args.seconds, args.rounds))
    print(report(started, cells))


if __name__ == "__main__":
    main()
