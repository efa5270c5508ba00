"""The `openresponses` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openresponses import admin
from openresponses.config import Dialect
from openresponses.conformance import cli as conformance_cli


def _serve(args: argparse.Namespace) -> int:
    from openresponses.config import load_settings
    from openresponses.serving import serve

    try:
        settings = load_settings(
            config_path=args.config,
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            dialect=Dialect(args.dialect) if args.dialect else None,
            first_byte_timeout=args.first_byte_timeout,
            idle_timeout=args.idle_timeout,
            shutdown_timeout=args.shutdown_timeout,
            metrics_port=args.metrics_port,
        )
    except (OSError, ValueError) as exc:
        print(f"openresponses: {exc}", file=sys.stderr)
        return 2
    print(f"openresponses {_version()} serving at http://{settings.host}:{settings.port}/v1")
    print(f"  data: {settings.store_url or settings.data_dir.resolve()}")
    print(f"  dialect: {settings.dialect.value} (per request: OpenResponses-Version header)")
    metrics_port = settings.metrics_port or settings.port
    print(f"  metrics: http://{settings.host}:{metrics_port}/metrics (no key: see README)")
    for name, provider in settings.providers.items():
        if not provider.found:
            continue
        key = "key set" if provider.api_key else "no key"
        default = " (default)" if name == settings.default_provider else ""
        print(f"  provider {name}{default}: {provider.base_url} [{key}]")
    others = sorted(name for name, p in settings.providers.items() if not p.found)
    print(f"  also routable with the client's key: {', '.join(others)}")
    sys.stdout.flush()
    serve(settings, args.log_level)
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("openresponses")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openresponses", description="Open Responses server")
    parser.add_argument("--version", action="version", version=f"openresponses {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8080)")
    serve.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default ./data)"
    )
    serve.add_argument("--config", type=Path, default=None, help="openresponses.toml")
    serve.add_argument(
        "--dialect",
        choices=[d.value for d in Dialect],
        default=None,
        help="default stream/error dialect (default openai)",
    )
    serve.add_argument(
        "--first-byte-timeout",
        type=float,
        metavar="S",
        help="seconds a model call may send nothing before its first event, retries included, "
        "before the response fails with upstream_timeout; per provider: first_byte_timeout "
        "(default 60, env OPENRESPONSES_FIRST_BYTE_TIMEOUT)",
    )
    serve.add_argument(
        "--idle-timeout",
        type=float,
        metavar="S",
        help="the same between two events of a model call; per provider: idle_timeout "
        "(default 60, env OPENRESPONSES_IDLE_TIMEOUT)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        metavar="S",
        help="on SIGTERM, seconds requests in flight get to finish before they are stopped "
        "and stored failed (default 30, env OPENRESPONSES_SHUTDOWN_TIMEOUT)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve GET /metrics on this port (same host) instead of the API's "
        "(env OPENRESPONSES_METRICS_PORT)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(run=_serve)
    admin.add_parser(sub)
    conformance_cli.add_parser(sub)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
