"""The `openresponses` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openresponses.conformance import cli as conformance_cli
from openresponses.core.dialects import Dialect


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from openresponses.api.common import MAX_BODY_BYTES
    from openresponses.app import create_app
    from openresponses.config import load_settings

    try:
        settings = load_settings(
            config_path=args.config,
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            dialect=Dialect(args.dialect) if args.dialect else None,
        )
    except (OSError, ValueError) as exc:
        print(f"openresponses: {exc}", file=sys.stderr)
        return 2
    print(f"openresponses {_version()} serving at http://{settings.host}:{settings.port}/v1")
    print(f"  data: {settings.store_url or settings.data_dir.resolve()}")
    print(f"  dialect: {settings.dialect.value} (per request: OpenResponses-Version header)")
    if settings.api_keys:
        print(f"  auth: {len(settings.api_keys)} API key(s) from OPENRESPONSES_API_KEYS")
    else:
        print("  auth: none (set OPENRESPONSES_API_KEYS before exposing the port)")
    for name, provider in settings.providers.items():
        if not provider.found:
            continue
        key = "key set" if provider.api_key else "no key: forwards the client's bearer token"
        default = " (default)" if name == settings.default_provider else ""
        print(f"  provider {name}{default}: {provider.base_url} [{key}]")
    others = sorted(name for name, p in settings.providers.items() if not p.found)
    print(f"  also routable with the client's key: {', '.join(others)}")
    sys.stdout.flush()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=args.log_level == "debug",
        ws_max_size=MAX_BODY_BYTES,  # a WebSocket turn may be as large as an HTTP body
    )
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("openresponses")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openresponses", description="Open Responses server")
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
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(run=_serve)
    conformance_cli.add_parser(sub)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
