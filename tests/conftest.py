"""Fixtures: a scripted upstream on loopback and the real server, started as a subprocess.

Tests talk to the server only over HTTP (the official `openai` SDK, or httpx for what the
SDK cannot send), exactly as a user would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import create_engine, text

from openresponses.config import PRESETS, WEB_SEARCH_BACKENDS
from tests.search_api import FakeSearchAPI
from tests.upstream import ScriptedUpstream

_PROVIDER_ENV_PREFIXES = tuple(
    f"{name.upper()}_" for name in (*PRESETS, *WEB_SEARCH_BACKENDS, "openresponses")
)
"""Environment variables of every preset provider and search backend, and ours: a test's
server sees only the ones the test sets."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running `openresponses serve` process."""

    data_dir: Path
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def log_path(self) -> Path:
        # Beside the data directory, whose contents some tests inspect.
        return self.data_dir.parent / f"{self.data_dir.name}-server-{self.port}.log"

    def output(self) -> str:
        """What the server has printed (its log goes to a file: a pipe nobody reads fills up
        and then blocks the server on its next log line)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self) -> Server:
        command = Path(sys.executable).parent / "openresponses"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(command),
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                "warning",
                *self.args,
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child has its own copy
        deadline = time.monotonic() + 60  # generous: CI machines are shared and slow at times
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                httpx.get(f"{self.base_url}/responses/resp_probe", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()  # a server that starts late must not outlive the test run
        raise RuntimeError("server did not start within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self, api_key: str = "sk-client", **kwargs: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kwargs)  # type: ignore[arg-type]


def server_env(upstream: ScriptedUpstream, **extra: str) -> dict[str, str]:
    """The environment of a fresh machine: no provider settings but the ones given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PROVIDER_ENV_PREFIXES)}
    env.update({"OPENAI_BASE_URL": upstream.base_url, **extra})
    return env


POSTGRES = "postgresql+psycopg://root@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections see only a fresh schema, dropped after the test."""
    with postgres_schema() as url:
        yield url


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections see only a fresh schema, dropped on leaving."""
    schema = f"test_store_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def upstream() -> Iterator[ScriptedUpstream]:
    up = ScriptedUpstream()
    up.start()
    yield up
    up.stop()


@pytest.fixture(scope="session")
def server(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The shared server: default settings, no key of its own (it forwards the client's)."""
    data_dir = tmp_path_factory.mktemp("data")
    config = data_dir / "openresponses.toml"
    config.write_text(
        "[providers.second]\n"
        f'kind = "openai-chat"\nbase_url = "{upstream.base_url}"\napi_key_env = "SECOND_KEY"\n'
    )
    # Tests script models as they go, so listings must not be reused (test_models_are_cached);
    # their tool servers (MCP, search) run on loopback, which the URL guard otherwise refuses.
    env = server_env(
        upstream,
        SECOND_KEY="sk-server-second",
        OPENRESPONSES_MODELS_TTL="0",
        OPENRESPONSES_ALLOW_PRIVATE_NETWORKS="true",
    )
    srv = Server(data_dir, env, ["--config", str(config)]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def postgres_server(
    upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server whose store is PostgreSQL, with a 100,000-byte upload limit."""
    with postgres_schema() as url:
        env = server_env(
            upstream, OPENRESPONSES_STORE_URL=url, OPENRESPONSES_MAX_FILE_BYTES="100000"
        )
        srv = Server(tmp_path_factory.mktemp("pg-data"), env).start()
        yield srv
        srv.stop()


@pytest.fixture(scope="module")
def site() -> Iterator[FakeSearchAPI]:
    """A web site on loopback, serving what tests script (the files `file_url`s name)."""
    fake = FakeSearchAPI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return server.client()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="record conformance/golden/ from the server instead of comparing against it",
    )


TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def final_response(client: openai.OpenAI, stream: bool, **fields: Any) -> Any:
    """The response a create call ends with, streamed (its terminal event's) or not."""
    if not stream:
        return client.responses.create(**fields)
    with client.responses.create(**fields, stream=True) as events:
        return next(e for e in events if e.type in TERMINAL).response
