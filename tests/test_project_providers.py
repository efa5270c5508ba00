"""A project's own provider credentials (`[projects.NAME.providers.X]` in the config file):
its requests reach the provider with its key, every other project's with the server's."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, server_env
from tests.upstream import ScriptedUpstream, Text

CONFIG = """
[projects.team-a.providers.openai]
api_key_env = "TEAM_A_OPENAI_API_KEY"
"""


def make_key(data_dir: Path, project: str) -> str:
    """A key made with the CLI, as an operator would (before the DuckDB server starts)."""
    command = Path(sys.executable).parent / "openresponses"
    made = subprocess.run(
        [str(command), "keys", "create", "--project", project, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"^sk-proj-\S+$", made.stdout, re.MULTILINE)
    assert found is not None, made.stdout
    return found.group(0)


@pytest.fixture
def started(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[tuple[Server, str, str]]:
    data_dir = tmp_path / "data"
    team_a, team_b = make_key(data_dir, "team-a"), make_key(data_dir, "team-b")
    config = tmp_path / "openresponses.toml"
    config.write_text(CONFIG)
    env = server_env(
        upstream, OPENAI_API_KEY="sk-server", TEAM_A_OPENAI_API_KEY="sk-team-a-upstream"
    )
    server = Server(data_dir, env, args=["--config", str(config)]).start()
    yield server, team_a, team_b
    server.stop()


def test_a_project_with_its_own_credentials_calls_the_provider_with_them(
    upstream: ScriptedUpstream, started: tuple[Server, str, str]
) -> None:
    server, team_a, _ = started
    model = upstream.script(Text("From A."))

    response = server.client(team_a).responses.create(model=model, input="Hi")

    assert response.output_text == "From A."
    [request] = upstream.requests(model)
    assert request.headers["authorization"] == "Bearer sk-team-a-upstream"


def test_a_project_without_its_own_credentials_uses_the_servers(
    upstream: ScriptedUpstream, started: tuple[Server, str, str]
) -> None:
    server, _, team_b = started
    model = upstream.script(Text("From B."))

    response = server.client(team_b).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}]
    )

    assert response.choices[0].message.content == "From B."
    [request] = upstream.requests(model)
    assert request.headers["authorization"] == "Bearer sk-server"


def test_a_project_provider_table_without_a_base_url_for_an_unknown_provider_is_refused(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    config = tmp_path / "openresponses.toml"
    config.write_text('[projects.team-a.providers.local]\napi_key_env = "LOCAL_KEY"\n')
    command = Path(sys.executable).parent / "openresponses"

    started = subprocess.run(
        [str(command), "serve", "--config", str(config), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=server_env(upstream),
        timeout=60,
    )

    assert started.returncode == 2
    assert started.stderr == (
        "openresponses: [projects.team-a.providers.local] needs at least base_url\n"
    )
