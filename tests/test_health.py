"""Running in production: the health probes `/healthz` and `/readyz` (outside API-key auth),
OpenAI's `x-request-id` and `openai-processing-ms` on every answer, and `--version`."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from openresponses.store.migrations import STORE
from tests.conftest import POSTGRES, Server, postgres_schema, server_env
from tests.upstream import ScriptedUpstream, Text

KEY = "sk-ours"
GENERATED = re.compile(r"req_[0-9a-f]{32}")


@pytest.fixture(scope="module")
def keyed(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on DuckDB (so with a journal) that needs an API key."""
    env = server_env(upstream, OPENRESPONSES_API_KEYS=KEY)
    server = Server(tmp_path_factory.mktemp("keyed"), env).start()
    yield server
    server.stop()


@pytest.fixture
def on_postgres(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A server whose store is a PostgreSQL schema of its own, and that schema's name."""
    with postgres_schema() as url:
        server = Server(tmp_path / "data", server_env(upstream, OPENRESPONSES_STORE_URL=url))
        yield server.start(), url.rsplit("%3D", 1)[1]
        server.stop()


def test_healthz_answers_without_an_api_key(keyed: Server) -> None:
    answer = httpx.get(f"{keyed.url}/healthz")

    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_readyz_checks_store_migrations_and_journal_without_an_api_key(keyed: Server) -> None:
    answer = httpx.get(f"{keyed.url}/readyz")

    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ready",
        "checks": {"store": "ok", "migrations": "ok", "journal": "ok"},
    }


def test_readyz_on_postgresql_has_no_journal_to_check(on_postgres: tuple[Server, str]) -> None:
    server, _ = on_postgres

    answer = httpx.get(f"{server.url}/readyz")

    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"store": "ok", "migrations": "ok"}}


def test_readyz_is_503_when_the_store_loses_its_tables(on_postgres: tuple[Server, str]) -> None:
    server, schema = on_postgres
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # emptied, not dropped: the fixture drops it at the end
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()

    answer = httpx.get(f"{server.url}/readyz")

    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unavailable",
        "checks": {
            "store": "ok",
            "migrations": f"schema version 0, this release needs {STORE.latest}",
        },
    }
    # The process itself still serves.
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_readyz_is_503_when_the_store_is_unreachable(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    database = f"test_health_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = POSTGRES.rsplit("/", 1)[0] + f"/{database}"
    server = Server(tmp_path / "data", server_env(upstream, OPENRESPONSES_STORE_URL=url)).start()
    try:
        with admin.connect() as conn:  # its connections are cut, and new ones refused
            conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
        answer = httpx.get(f"{server.url}/readyz")
    finally:
        server.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()

    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "checks": {"store": "unreachable"}}


def test_readyz_is_503_when_the_journal_directory_is_not_writable(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    server = Server(tmp_path / "data", server_env(upstream)).start()
    journal = server.data_dir / "journal"
    # Permissions do not stop root, who runs CI: a file where the directory was does.
    journal.rename(tmp_path / "journal-aside")
    journal.write_text("")
    try:
        answer = httpx.get(f"{server.url}/readyz")
    finally:
        journal.unlink()
        (tmp_path / "journal-aside").rename(journal)
        server.stop()

    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unavailable",
        "checks": {"store": "ok", "migrations": "ok", "journal": "not writable"},
    }


AUTH = {"authorization": f"Bearer {KEY}"}


def test_probes_refuse_other_methods_as_the_api_does(keyed: Server) -> None:
    answer = httpx.post(f"{keyed.url}/readyz")

    assert (answer.status_code, answer.headers["allow"]) == (405, "GET, HEAD")
    assert answer.json() == {
        "error": {
            "message": "Method POST is not allowed on /readyz.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def _json(server: Server, _: ScriptedUpstream, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{server.base_url}/files", headers={**AUTH, **headers})


def _stream(server: Server, upstream: ScriptedUpstream, headers: dict[str, str]) -> httpx.Response:
    body = {"model": upstream.script(Text("Hello.")), "input": "Hi", "stream": True}
    url = f"{server.base_url}/responses"
    answer = httpx.post(url, json=body, headers={**AUTH, **headers}, timeout=30)
    assert answer.headers["content-type"].startswith("text/event-stream")
    return answer


def _not_found(server: Server, _: ScriptedUpstream, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{server.base_url}/no-such-thing", headers={**AUTH, **headers})


def _unauthenticated(
    server: Server, _: ScriptedUpstream, headers: dict[str, str]
) -> httpx.Response:
    return httpx.get(f"{server.base_url}/files", headers=headers)


ANSWERS = {
    "json": (_json, 200),
    "sse": (_stream, 200),
    "404": (_not_found, 404),
    "401": (_unauthenticated, 401),
}


@pytest.mark.parametrize("kind", ANSWERS)
def test_the_clients_request_id_is_echoed(
    keyed: Server, upstream: ScriptedUpstream, kind: str
) -> None:
    send, status = ANSWERS[kind]

    answer = send(keyed, upstream, {"x-request-id": "client-trace-42"})

    assert answer.status_code == status
    assert answer.headers.get_list("x-request-id") == ["client-trace-42"]


@pytest.mark.parametrize("kind", ANSWERS)
def test_a_request_id_is_made_when_the_client_sends_none(
    keyed: Server, upstream: ScriptedUpstream, kind: str
) -> None:
    send, status = ANSWERS[kind]

    answer = send(keyed, upstream, {})

    assert answer.status_code == status
    assert GENERATED.fullmatch(answer.headers["x-request-id"])


@pytest.mark.parametrize("sent", ["has spaces", "x" * 129, "semi;colon"])
def test_a_request_id_unfit_for_logs_is_replaced(
    keyed: Server, upstream: ScriptedUpstream, sent: str
) -> None:
    answer = _unauthenticated(keyed, upstream, {"x-request-id": sent})

    assert GENERATED.fullmatch(answer.headers["x-request-id"])


@pytest.mark.parametrize("kind", ANSWERS)
def test_processing_ms_is_a_non_negative_integer(
    keyed: Server, upstream: ScriptedUpstream, kind: str
) -> None:
    send, _ = ANSWERS[kind]

    answer = send(keyed, upstream, {})

    assert re.fullmatch(r"[0-9]+", answer.headers["openai-processing-ms"])


def test_a_refused_websocket_upgrade_carries_a_request_id(keyed: Server) -> None:
    url = keyed.base_url.replace("http", "ws", 1) + "/responses"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers={"x-request-id": "socket-9"})

    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["x-request-id"] == "socket-9"


def test_the_sdk_sees_the_request_id(keyed: Server, upstream: ScriptedUpstream) -> None:
    model = upstream.script(Text("Hello."))

    raw = keyed.client(KEY).responses.with_raw_response.create(model=model, input="Hi")

    assert GENERATED.fullmatch(raw.request_id or "")
    assert raw.parse()._request_id == raw.headers["x-request-id"]


def test_version_prints_the_package_version() -> None:
    command = Path(sys.executable).parent / "openresponses"

    printed = subprocess.run([str(command), "--version"], capture_output=True, text=True)

    assert (printed.returncode, printed.stdout, printed.stderr) == (
        0,
        f"openresponses {version('openresponses')}\n",
        "",
    )
