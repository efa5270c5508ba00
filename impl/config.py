"""Settings: command-line options, environment variables and `openresponses.toml`.

Built-in presets make the common providers work from their usual environment variables
alone; the optional TOML file adds providers (or overrides a preset) by name:

    default_provider = "local"

    [providers.local]
    kind = "openai-chat"                  # the adapter; see providers/registry.py
    base_url = "http://127.0.0.1:1234/v1"
    api_key_env = "LOCAL_API_KEY"         # optional

and a project (by the name its keys were made with) may call providers with credentials of
its own, the server's still applying to the others:

    [projects.team-a.providers.openai]
    api_key_env = "TEAM_A_OPENAI_API_KEY" # base_url and the rest as above, all optional
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit


class Dialect(Enum):
    """How responses, events and errors are spelled for a client (see api.dialects)."""

    OPENAI = "openai"
    OPENRESPONSES = "openresponses"


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    kind: str
    base_url: str
    api_key_env: str | None = None
    api_key: str | None = None  # resolved from api_key_env at load time
    # Found in the environment or the config file: listed by /v1/models and at start-up.
    # Presets that were not found still route (`groq@…` with the client's own key).
    found: bool = True
    # Retries of a call that failed before any answer (see providers/http.py), and timeouts
    # in seconds (None: the server's; 10 s to connect). `first_byte_timeout` bounds every
    # upstream call until its first byte, retries included; `idle_timeout` each silence
    # after it; `read_timeout` any socket read.
    max_retries: int = 2
    connect_timeout: float | None = None
    read_timeout: float | None = None
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    store_url: str | None = None  # default: a DuckDB file in data_dir
    dialect: Dialect = Dialect.OPENAI
    default_provider: str = "openai"
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    # A project's own providers, by project name: those it overrides (its credentials).
    project_providers: dict[str, dict[str, ProviderConfig]] = field(default_factory=dict)
    upstream_timeout: float = 600.0
    # A model call that sends nothing for this long, before its first event or between two,
    # ends the response failed with `upstream_timeout` (per provider in the config file too).
    first_byte_timeout: float = 60.0
    idle_timeout: float = 60.0
    # On SIGTERM, requests in flight get this long to finish; those still running are then
    # stopped and stored failed.
    shutdown_timeout: float = 30.0
    # Keys clients may present as bearer tokens, each a project of its own, beside the
    # database's (`openresponses keys`); none anywhere: the server checks none.
    api_keys: tuple[str, ...] = ()
    # Seconds a key's lookup is reused: a revoked key stops working within this.
    key_cache_seconds: float = 5.0
    # Failed authentications (wrong keys) a client address may make per minute; past them its
    # requests get a 429 before their key is looked at. 0: no limit.
    auth_failures_per_minute: int = 20
    # Redis keeps the rate-limit counters when set (else the store's PostgreSQL, else memory),
    # its keys under `redis_prefix`.
    redis_url: str | None = None
    redis_prefix: str = "openresponses:"
    # fsync every journaled save: survives an OS crash too, at a disk flush per response.
    journal_fsync: bool = False
    # Seals compaction items; replicas sharing a database must share it. Default: a random
    # key in data_dir/secret.key.
    secret: str | None = None
    # Seconds a provider's model listing is reused (GET /v1/models).
    models_ttl: float = 60.0
    # WebSocket connections end after this long (the spec's 60 minutes).
    websocket_max_seconds: float = 3600.0
    # `GET /metrics` on a port of its own (on `host`), and not on the API's port; None: on
    # the API's port, beside it.
    metrics_port: int | None = None
    # URLs fetched on a caller's behalf (MCP servers, pages the model opens, input images and
    # files by URL) may reach loopback and private addresses: local development only
    # (see tools/guard.py).
    allow_private_networks: bool = False
    # The web_search tool's backend; None: the tool is refused with a 400 that says how
    # to configure one.
    web_search: WebSearchConfig | None = None
    # The bytes of files each project may keep (None: no quota); a project's own, set with
    # `openresponses keys create --max-storage-bytes`, comes first.
    project_storage_bytes: int | None = None
    # The largest upload `POST /v1/files` takes (OpenAI's limit: 512 MB).
    max_file_bytes: int = 512 * 1024 * 1024
    # The most bytes of files (uploads by `file_id`, fetched `file_url`s) inlined into one
    # model call, replayed turns included (see core/attachments.py): 32 MB, Anthropic's
    # request limit and OpenAI's for file inputs.
    max_attachment_bytes: int = 32 * 1024 * 1024
    # Chunks in the index from which an HNSW index is built and used (see vectors/index.py).
    hnsw_threshold: int = 50_000
    # Candidates the HNSW search keeps: higher finds more of the true neighbours, and takes
    # longer. None: vectors/index.py's HnswParams default.
    hnsw_ef_search: int | None = None
    # Seconds in a "day" of a vector store's `expires_after` policy. Only tests shorten it:
    # the API counts expiry in whole days, too long to wait for.
    expiry_day_seconds: int = 86_400


@dataclass(frozen=True)
class WebSearchConfig:
    backend: str  # a name in WEB_SEARCH_BACKENDS, implemented in tools/web/
    base_url: str
    api_key: str | None = None


# backend: (base-url variable, default base URL or None if required, api-key variable or None)
WEB_SEARCH_BACKENDS: dict[str, tuple[str, str | None, str | None]] = {
    "searxng": ("SEARXNG_URL", None, None),
    "brave": ("BRAVE_BASE_URL", "https://api.search.brave.com/res/v1", "BRAVE_API_KEY"),
    "tavily": ("TAVILY_BASE_URL", "https://api.tavily.com", "TAVILY_API_KEY"),
}


# name: (kind, base-url variable, default base URL, api-key variable)
PRESETS: dict[str, tuple[str, str, str, str | None]] = {
    "openai": ("openai-chat", "OPENAI_BASE_URL", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "anthropic": (
        "anthropic",
        "ANTHROPIC_BASE_URL",
        "https://api.anthropic.com/v1",
        "ANTHROPIC_API_KEY",
    ),
    "groq": ("openai-chat", "GROQ_BASE_URL", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "ollama": ("openai-chat", "OLLAMA_BASE_URL", "http://127.0.0.1:11434/v1", None),
    "vllm": ("openai-chat", "VLLM_BASE_URL", "http://127.0.0.1:8000/v1", "VLLM_API_KEY"),
    "openrouter": (
        "openai-chat",
        "OPENROUTER_BASE_URL",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
    ),
    # Gemini through Google's OpenAI-compatible endpoint; DeepSeek's reasoning_content is read
    # as reasoning by the chat adapter.
    "gemini": (
        "openai-chat",
        "GEMINI_BASE_URL",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "GEMINI_API_KEY",
    ),
    "deepseek": (
        "openai-chat",
        "DEEPSEEK_BASE_URL",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
    ),
    "together": (
        "openai-chat",
        "TOGETHER_BASE_URL",
        "https://api.together.xyz/v1",
        "TOGETHER_API_KEY",
    ),
    "mistral": ("openai-chat", "MISTRAL_BASE_URL", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
}


def _with_v1(url: str) -> str:
    """Ollama's documented base URL has no path; its OpenAI-compatible API is under /v1."""
    return url.rstrip("/") + "/v1" if urlsplit(url).path in ("", "/") else url


def _preset(name: str, env: Mapping[str, str]) -> ProviderConfig:
    kind, url_var, default_url, key_var = PRESETS[name]
    return ProviderConfig(
        name=name,
        kind=kind,
        base_url=_with_v1(env.get(url_var) or default_url),
        api_key_env=key_var,
        api_key=env.get(key_var) if key_var else None,
        found=bool(env.get(url_var) or (key_var and env.get(key_var))),
    )


def _seconds(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def load_providers(
    config: Mapping[str, object], env: Mapping[str, str]
) -> dict[str, ProviderConfig]:
    providers = {name: _preset(name, env) for name in PRESETS}
    table = config.get("providers", {})
    if not isinstance(table, dict):
        raise ValueError("[providers] must be a table")
    for name, entry in table.items():
        if not isinstance(entry, dict) or "base_url" not in entry:
            raise ValueError(f"[providers.{name}] needs at least base_url")
        providers[name] = _provider(name, entry, env, None)
    return providers


def _provider(
    name: str, entry: Mapping[str, object], env: Mapping[str, str], base: ProviderConfig | None
) -> ProviderConfig:
    """A provider from its TOML table; what the table leaves out is `base`'s (a project's
    version of the server's provider), or the defaults."""
    base = base or ProviderConfig(name=name, kind="openai-chat", base_url="")
    key_env = entry.get("api_key_env")
    return replace(
        base,
        kind=str(entry.get("kind", base.kind)),
        base_url=str(entry.get("base_url", base.base_url)),
        api_key_env=str(key_env) if key_env else base.api_key_env,
        api_key=env.get(str(key_env)) if key_env else base.api_key,
        max_retries=int(str(entry.get("max_retries", base.max_retries))),
        connect_timeout=_seconds(entry.get("connect_timeout", base.connect_timeout)),
        read_timeout=_seconds(entry.get("read_timeout", base.read_timeout)),
        first_byte_timeout=_seconds(entry.get("first_byte_timeout", base.first_byte_timeout)),
        idle_timeout=_seconds(entry.get("idle_timeout", base.idle_timeout)),
        found=True,
    )


def load_project_providers(
    config: Mapping[str, object], env: Mapping[str, str], providers: dict[str, ProviderConfig]
) -> dict[str, dict[str, ProviderConfig]]:
    """`[projects.NAME.providers.X]`: a project's own version of provider X (the server's,
    with what the table gives), or a provider of its own (then `base_url` is needed)."""
    table = config.get("projects", {})
    if not isinstance(table, dict):
        raise ValueError("[projects] must be a table")
    found: dict[str, dict[str, ProviderConfig]] = {}
    for project, entry in table.items():
        own = entry.get("providers", {}) if isinstance(entry, dict) else None
        if not isinstance(own, dict):
            raise ValueError(f"[projects.{project}.providers] must be a table")
        for name, provider in own.items():
            base = providers.get(name)
            if not isinstance(provider, dict) or (base is None and "base_url" not in provider):
                raise ValueError(f"[projects.{project}.providers.{name}] needs at least base_url")
            found.setdefault(project, {})[name] = _provider(name, provider, env, base)
    return found


def _true(value: str) -> bool:
    return value.lower() in ("1", "true", "yes")


def load_web_search(env: Mapping[str, str]) -> WebSearchConfig | None:
    """The backend `OPENRESPONSES_WEB_SEARCH` names, with its URL and key; a missing one is an
    error at start-up rather than on the first search."""
    name = env.get("OPENRESPONSES_WEB_SEARCH", "").strip().lower()
    if not name:
        return None
    if name not in WEB_SEARCH_BACKENDS:
        choices = "|".join(WEB_SEARCH_BACKENDS)
        raise ValueError(f"OPENRESPONSES_WEB_SEARCH={name} is not one of {choices}")
    url_var, default_url, key_var = WEB_SEARCH_BACKENDS[name]
    base_url = env.get(url_var) or default_url
    if not base_url:
        raise ValueError(f"OPENRESPONSES_WEB_SEARCH={name} needs {url_var}")
    api_key = env.get(key_var) if key_var else None
    if key_var and not api_key:
        raise ValueError(f"OPENRESPONSES_WEB_SEARCH={name} needs {key_var}")
    return WebSearchConfig(name, base_url.rstrip("/"), api_key)


def load_settings(
    *,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: object,
) -> Settings:
    """Settings from the config file and environment, then explicit overrides (CLI options)."""
    env = os.environ if env is None else env
    config: dict[str, object] = {}
    if config_path is not None:
        with config_path.open("rb") as f:
            config = tomllib.load(f)
    providers = load_providers(config, env)
    values: dict[str, object] = {
        "providers": providers,
        "project_providers": load_project_providers(config, env, providers),
        "default_provider": env.get("OPENRESPONSES_DEFAULT_PROVIDER")
        or config.get("default_provider", "openai"),
        "dialect": Dialect(env.get("OPENRESPONSES_DIALECT") or config.get("dialect", "openai")),
        "web_search": load_web_search(env),
    }
    if env.get("OPENRESPONSES_API_KEYS"):
        keys = (key.strip() for key in env["OPENRESPONSES_API_KEYS"].split(","))
        values["api_keys"] = tuple(key for key in keys if key)
    if env.get("OPENRESPONSES_KEY_CACHE_SECONDS"):
        values["key_cache_seconds"] = float(env["OPENRESPONSES_KEY_CACHE_SECONDS"])
    if env.get("OPENRESPONSES_AUTH_FAILURES_PER_MINUTE"):
        values["auth_failures_per_minute"] = int(env["OPENRESPONSES_AUTH_FAILURES_PER_MINUTE"])
    if env.get("OPENRESPONSES_REDIS_URL"):
        values["redis_url"] = env["OPENRESPONSES_REDIS_URL"]
    if env.get("OPENRESPONSES_REDIS_PREFIX"):
        values["redis_prefix"] = env["OPENRESPONSES_REDIS_PREFIX"]
    if env.get("OPENRESPONSES_JOURNAL_FSYNC"):
        values["journal_fsync"] = _true(env["OPENRESPONSES_JOURNAL_FSYNC"])
    if env.get("OPENRESPONSES_ALLOW_PRIVATE_NETWORKS"):
        values["allow_private_networks"] = _true(env["OPENRESPONSES_ALLOW_PRIVATE_NETWORKS"])
    if env.get("OPENRESPONSES_MODELS_TTL"):
        values["models_ttl"] = float(env["OPENRESPONSES_MODELS_TTL"])
    if env.get("OPENRESPONSES_WEBSOCKET_MAX_SECONDS"):
        values["websocket_max_seconds"] = float(env["OPENRESPONSES_WEBSOCKET_MAX_SECONDS"])
    if env.get("OPENRESPONSES_METRICS_PORT"):
        values["metrics_port"] = int(env["OPENRESPONSES_METRICS_PORT"])
    if env.get("OPENRESPONSES_MAX_FILE_BYTES"):
        values["max_file_bytes"] = int(env["OPENRESPONSES_MAX_FILE_BYTES"])
    if env.get("OPENRESPONSES_PROJECT_STORAGE_BYTES"):
        values["project_storage_bytes"] = int(env["OPENRESPONSES_PROJECT_STORAGE_BYTES"])
    if env.get("OPENRESPONSES_MAX_ATTACHMENT_BYTES"):
        values["max_attachment_bytes"] = int(env["OPENRESPONSES_MAX_ATTACHMENT_BYTES"])
    if env.get("OPENRESPONSES_HNSW_THRESHOLD"):
        values["hnsw_threshold"] = int(env["OPENRESPONSES_HNSW_THRESHOLD"])
    if env.get("OPENRESPONSES_HNSW_EF_SEARCH"):
        values["hnsw_ef_search"] = int(env["OPENRESPONSES_HNSW_EF_SEARCH"])
    if env.get("OPENRESPONSES_EXPIRY_DAY_SECONDS"):
        values["expiry_day_seconds"] = int(env["OPENRESPONSES_EXPIRY_DAY_SECONDS"])
    for name in ("first_byte_timeout", "idle_timeout", "shutdown_timeout"):
        if env.get(f"OPENRESPONSES_{name.upper()}"):
            values[name] = float(env[f"OPENRESPONSES_{name.upper()}"])
    if env.get("OPENRESPONSES_SECRET"):
        values["secret"] = env["OPENRESPONSES_SECRET"]
    if env.get("OPENRESPONSES_STORE_URL"):
        values["store_url"] = env["OPENRESPONSES_STORE_URL"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)  # type: ignore[arg-type]
    default = settings.providers.get(settings.default_provider)
    if default is None:
        raise ValueError(f"default provider '{settings.default_provider}' is not configured")
    settings.providers[default.name] = replace(default, found=True)
    for table in (settings.providers, *settings.project_providers.values()):
        for name, provider in table.items():
            table[name] = _silence_bounds(provider, settings)
    return settings


def _silence_bounds(provider: ProviderConfig, settings: Settings) -> ProviderConfig:
    """The provider's own first-byte and idle timeouts, else the server's."""
    first, idle = provider.first_byte_timeout, provider.idle_timeout
    return replace(
        provider,
        first_byte_timeout=settings.first_byte_timeout if first is None else first,
        idle_timeout=settings.idle_timeout if idle is None else idle,
    )
