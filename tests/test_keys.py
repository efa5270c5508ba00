"""`openresponses keys` against a running server: a key made while it serves works at once
(within the key cache's lifetime), a revoked one stops working, a key of the `default` project
reaches what was stored before keys, and a project's storage quota holds, on DuckDB and
PostgreSQL."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
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


CREATED = re.compile(
    r"Created (key_[0-9a-f]{24}) in project '[\w-]+' \(proj_\w+\)\.\n"
    r"This is the only time the key is shown; keep it somewhere safe:\n\n(sk-proj-[\w-]{43})\n"
)
"""All `keys create` prints: the key, once."""


def created_key(server: Server, project: str, *options: str) -> tuple[str, str]:
    """(key id, key) of a new key in `project`."""
    made = keys(server, "create", "--project", project, *options)
    assert made.returncode == 0, made.stderr
    printed = CREATED.fullmatch(made.stdout)
    assert printed is not None, made.stdout
    return printed.group(1), printed.group(2)


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
    # The key was for this server: the provider, which has none of its own, gets none.
    assert "authorization" not in upstream.requests(model)[0].headers


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


def test_a_key_of_the_default_project_sees_what_was_stored_before_keys_existed(
    upstream: ScriptedUpstream, running: Server
) -> None:
    model = upstream.script(Text("Stored before keys."))
    before = running.client().responses.create(model=model, input="Hi")
    _, default = created_key(running, "default")
    _, other = created_key(running, "other")
    time.sleep(CACHE_SECONDS)  # the server last looked: it had no keys

    seen = running.client(default).responses.retrieve(before.id)
    with pytest.raises(openai.NotFoundError) as unseen:
        running.client(other).responses.retrieve(before.id)

    assert (seen.id, seen.output_text) == (before.id, "Stored before keys.")
    assert unseen.value.body == {
        "message": f"Response with id '{before.id}' not found.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": "response_not_found",
    }


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def quotas(
    request: pytest.FixtureRequest,
    upstream: ScriptedUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server whose projects may keep 200 bytes of files each (OPENRESPONSES_PROJECT_
    STORAGE_BYTES) but `small`, made with a quota of its own of 100; and a key per project
    (`small`'s from `openresponses keys`, the others' from OPENRESPONSES_API_KEYS)."""
    with contextlib.ExitStack() as stack:
        store = {}
        if request.param == "postgresql":
            store["OPENRESPONSES_STORE_URL"] = stack.enter_context(postgres_schema())
        named = {name: f"sk-{name}" for name in ("roomy", "first", "second")}
        env = server_env(
            upstream,
            OPENRESPONSES_PROJECT_STORAGE_BYTES="200",
            OPENRESPONSES_API_KEYS=",".join(named.values()),
            **store,
        )
        server = Server(tmp_path_factory.mktemp("quota-data"), env)
        named["small"] = created_key(server, "small", "--max-storage-bytes", "100")[1]
        server.start()
        stack.callback(server.stop)
        yield server, named


def _upload(server: Server, key: str, size: int) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/files",
        headers={"authorization": f"Bearer {key}"},
        files={"file": ("blob.txt", b"x" * size)},
        data={"purpose": "assistants"},
    )


def _over_quota(size: int, quota: int) -> dict[str, Any]:
    return {
        "error": {
            "message": (
                f"Uploading this file ({size} bytes) would take the project's files past its "
                f"storage quota of {quota} bytes. Delete files to make room, or raise the quota "
                "(OPENRESPONSES_PROJECT_STORAGE_BYTES, or `openresponses keys create "
                "--max-storage-bytes`)."
            ),
            "type": "invalid_request_error",
            "param": "file",
            "code": "storage_quota_exceeded",
        }
    }


def test_an_upload_past_the_projects_own_quota_is_refused_and_others_are_unaffected(
    quotas: tuple[Server, dict[str, str]],
) -> None:
    server, named = quotas
    small = [_upload(server, named["small"], 60) for _ in range(2)]
    roomy = [_upload(server, named["roomy"], 60) for _ in range(3)]

    assert [answer.status_code for answer in small] == [200, 413]
    assert small[1].json() == _over_quota(60, 100)
    assert [answer.status_code for answer in roomy] == [200, 200, 200]
    kept = server.client(named["small"]).files.list().data
    assert [file.bytes for file in kept] == [60]


def test_the_servers_default_quota_holds_each_project_alone(
    quotas: tuple[Server, dict[str, str]],
) -> None:
    server, named = quotas
    first = [_upload(server, named["first"], size) for size in (150, 51, 50)]
    second = _upload(server, named["second"], 200)

    assert [answer.status_code for answer in first] == [200, 413, 200]
    assert first[1].json() == _over_quota(51, 200)
    assert second.status_code == 200
