"""`openresponses keys` against a running server: a key made while it serves works at once
(within the key cache's lifetime), a revoked one stops working, on DuckDB and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import Server, postgres_schema, server_env
from tests.upstream import ScriptedUpstream, Text

CACHE_SECONDS = 0.5


def keys(server: Server, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The CLI, run as an operator would, on the running server's data directory and store."""
    command = Path(sys.executable).parent / "openresponses"
    return subprocess.run(
        [str(command), "keys", *arguments, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        env=server.env,
        timeout=60,
    )


def created_key(server: Server, project: str) -> tuple[str, str]:
    """(key id, key) of a new key in `project`."""
    made = keys(server, "create", "--project", project)
    assert made.returncode == 0, made.stderr
    key = re.search(r"^sk-proj-[\w-]{43}$", made.stdout, re.MULTILINE)
    key_id = re.search(r"^Created (key_[0-9a-f]{24}) in project ", made.stdout)
    assert key is not None and key_id is not None, made.stdout
    return key_id.group(1), key.group(0)


@pytest.fixture(params=["duckdb", "postgresql"])
def running(
    request: pytest.FixtureRequest, upstream: ScriptedUpstream, tmp_path: Path
) -> Iterator[Server]:
    extra = {"OPENRESPONSES_KEY_CACHE_SECONDS": str(CACHE_SECONDS)}
    with postgres_schema() as url:
        if request.param == "postgresql":
            extra["OPENRESPONSES_STORE_URL"] = url
        server = Server(tmp_path / "data", server_env(upstream, **extra)).start()
        yield server
        server.stop()


def test_a_key_made_while_the_server_runs_is_served(
    upstream: ScriptedUpstream, running: Server
) -> None:
    _, key = created_key(running, "team-a")
    model = upstream.script(Text("Served."))
    time.sleep(CACHE_SECONDS)  # the server last looked: it had no keys

    response = running.client(key).responses.create(model=model, input="Hi")

    assert response.output_text == "Served."


def test_a_revoked_key_is_refused_once_the_cache_lets_go(
    upstream: ScriptedUpstream, running: Server
) -> None:
    key_id, key = created_key(running, "team-a")
    time.sleep(CACHE_SECONDS)
    running.client(key).files.list()  # served, and cached as live

    revoked = keys(running, "revoke", key_id)
    time.sleep(CACHE_SECONDS)

    assert revoked.stdout == (
        f"Revoked {key_id}: servers refuse it within their key cache's few seconds.\n"
    )
    with pytest.raises(openai.AuthenticationError) as refused:
        running.client(key).files.list()
    assert refused.value.status_code == 401
    assert refused.value.body == {
        "message": "Incorrect API key provided.",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_api_key",
    }


def test_keys_list_shows_every_key_redacted_and_never_the_key(running: Server) -> None:
    first_id, first = created_key(running, "team-a")
    second_id, second = created_key(running, "team-b")
    keys(running, "revoke", second_id)

    listed = keys(running, "list").stdout.splitlines()

    assert first not in "\n".join(listed) and second not in "\n".join(listed)
    assert re.fullmatch(r"ID +PROJECT +KEY +CREATED +REVOKED +RPM +TPM", listed[0])
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d"
    assert re.fullmatch(
        rf"{first_id} +team-a +{re.escape(first[:10])}…{re.escape(first[-4:])} +{when} +- +- +-",
        listed[1],
    )
    redacted = f"{re.escape(second[:10])}…{re.escape(second[-4:])}"
    assert re.fullmatch(rf"{second_id} +team-b +{redacted} +{when} +{when} +- +-", listed[2])
    assert len(listed) == 3


def test_revoking_the_last_key_leaves_the_server_closed(running: Server) -> None:
    key_id, key = created_key(running, "team-a")
    keys(running, "revoke", key_id)
    time.sleep(CACHE_SECONDS)

    for anyone in (key, "sk-anyone"):
        with pytest.raises(openai.AuthenticationError) as refused:
            running.client(anyone).files.list()
        assert refused.value.body == {
            "message": "Incorrect API key provided.",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }


def test_revoking_an_unknown_key_says_so(running: Server) -> None:
    revoked = keys(running, "revoke", "key_nope")

    assert revoked.returncode == 1
    assert revoked.stderr == "openresponses: no live key with id 'key_nope'\n"
