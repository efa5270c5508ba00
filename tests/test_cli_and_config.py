"""`openresponses serve` start-up, and how settings come from the environment and the TOML file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openresponses.config import Dialect, load_settings
from tests.conftest import Server, server_env
from tests.upstream import ScriptedUpstream

CLI = str(Path(sys.executable).parent / "openresponses")


def test_serve_prints_its_url_and_the_providers_it_found(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    server = Server(tmp_path, server_env(upstream, GROQ_API_KEY="gsk-1")).start()
    try:
        server.stop()
        output = server.output()
    finally:
        server.stop()

    lines = output.splitlines()
    assert lines[0].startswith("openresponses ")
    assert lines[0].endswith(f"serving at http://127.0.0.1:{server.port}/v1")
    assert f"  metrics: http://127.0.0.1:{server.port}/metrics (no key: see README)" in lines
    assert f"  provider openai (default): {upstream.base_url} [no key]" in lines
    assert "  provider groq: https://api.groq.com/openai/v1 [key set]" in lines
    assert (
        "  auth: none: anyone who reaches the port is served, all in one project, and "
        "providers without a key get the client's bearer token (create a key with "
        "`openresponses keys create --project NAME` before exposing the port)"
    ) in lines
    others = "anthropic, deepseek, gemini, mistral, ollama, openrouter, together, vllm"
    assert f"  also routable with the client's key: {others}" in lines


def test_serve_with_keys_says_that_providers_get_no_client_token(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    env = server_env(upstream, OPENRESPONSES_API_KEYS="sk-ours")
    server = Server(tmp_path, env).start()
    try:
        server.stop()
        output = server.output()
    finally:
        server.stop()

    assert (
        "  auth: API keys, each of one project (`openresponses keys`, 1 from "
        "OPENRESPONSES_API_KEYS); providers without a key of their own get none"
    ) in output.splitlines()


def test_serve_creates_its_duckdb_file_in_the_data_dir(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    data_dir = tmp_path / "fresh" / "data"
    server = Server(data_dir, server_env(upstream)).start()
    server.stop()

    assert (data_dir / "openresponses.duckdb").is_file()


def test_serve_with_a_missing_config_file_exits_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [CLI, "serve", "--config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "nope.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_presets_use_their_environment_variables() -> None:
    settings = load_settings(env={"OLLAMA_BASE_URL": "http://gpu-box:11434", "VLLM_API_KEY": "k"})

    ollama, vllm = settings.providers["ollama"], settings.providers["vllm"]
    assert (ollama.base_url, ollama.found) == ("http://gpu-box:11434/v1", True)
    assert (vllm.api_key, vllm.found) == ("k", True)
    assert settings.providers["groq"].found is False
    assert settings.providers["openai"].found is True  # the default provider is always listed


def test_config_file_adds_providers_and_sets_the_default(tmp_path: Path) -> None:
    config = tmp_path / "openresponses.toml"
    config.write_text(
        'default_provider = "local"\ndialect = "openresponses"\n'
        '[providers.local]\nbase_url = "http://127.0.0.1:1234/v1"\napi_key_env = "LOCAL_KEY"\n'
    )

    settings = load_settings(config_path=config, env={"LOCAL_KEY": "secret"})

    local = settings.providers["local"]
    assert (local.kind, local.base_url, local.api_key) == (
        "openai-chat",
        "http://127.0.0.1:1234/v1",
        "secret",
    )
    assert settings.default_provider == "local"
    assert settings.dialect is Dialect.OPENRESPONSES


def test_an_unconfigured_default_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="default provider 'nowhere'"):
        load_settings(env={"OPENRESPONSES_DEFAULT_PROVIDER": "nowhere"})


def test_a_provider_without_base_url_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "openresponses.toml"
    config.write_text('[providers.broken]\nkind = "openai-chat"\n')

    with pytest.raises(ValueError, match=r"\[providers.broken\] needs at least base_url"):
        load_settings(config_path=config, env={})


def test_journal_fsync_is_off_unless_asked_for() -> None:
    assert load_settings(env={}).journal_fsync is False
    assert load_settings(env={"OPENRESPONSES_JOURNAL_FSYNC": "true"}).journal_fsync is True


def test_private_networks_are_closed_to_tools_unless_allowed() -> None:
    assert load_settings(env={}).allow_private_networks is False
    env = {"OPENRESPONSES_ALLOW_PRIVATE_NETWORKS": "true"}
    assert load_settings(env=env).allow_private_networks is True


def test_silence_and_shutdown_timeouts_default_to_60_60_and_30_s() -> None:
    settings = load_settings(env={})

    assert (settings.first_byte_timeout, settings.idle_timeout) == (60.0, 60.0)
    assert settings.shutdown_timeout == 30.0
    openai = settings.providers["openai"]
    assert (openai.first_byte_timeout, openai.idle_timeout) == (60.0, 60.0)


def test_a_provider_keeps_its_own_timeouts_and_the_others_take_the_servers(
    tmp_path: Path,
) -> None:
    config = tmp_path / "openresponses.toml"
    config.write_text(
        '[providers.slow]\nbase_url = "http://127.0.0.1:1234/v1"\n'
        "first_byte_timeout = 300\nidle_timeout = 120\n"
    )
    env = {"OPENRESPONSES_FIRST_BYTE_TIMEOUT": "20", "OPENRESPONSES_IDLE_TIMEOUT": "10"}

    settings = load_settings(config_path=config, env=env, idle_timeout=5.0)

    slow, openai = settings.providers["slow"], settings.providers["openai"]
    assert (slow.first_byte_timeout, slow.idle_timeout) == (300.0, 120.0)
    assert (openai.first_byte_timeout, openai.idle_timeout) == (20.0, 5.0)  # the flag wins


def test_the_shutdown_timeout_comes_from_the_environment() -> None:
    env = {"OPENRESPONSES_SHUTDOWN_TIMEOUT": "2.5"}

    assert load_settings(env=env).shutdown_timeout == 2.5
