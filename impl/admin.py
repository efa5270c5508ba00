"""`openresponses keys`: projects and their API keys, where the server keeps them.

The commands open the keys' database of the server's store (PostgreSQL's own, with
`OPENRESPONSES_STORE_URL`; else `keys.sqlite` in `--data-dir`, beside the DuckDB file) and
migrate it like the server does. Servers running on it see a change within their key cache's
few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from openresponses.config import load_settings
from openresponses.store import duckdb_url
from openresponses.store.keys import KeyListing, Keys, open_keys


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke API keys (one project each)")
    verbs = keys.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="a new key for a project (made if new)")
    create.add_argument("--project", required=True, help="the project's name")
    create.add_argument("--rpm", type=_positive, help="requests per minute the key may make")
    create.add_argument("--tpm", type=_positive, help="tokens per minute the key may spend")
    create.add_argument(
        "--max-storage-bytes",
        type=int,
        help="the project's quota of file bytes (default OPENRESPONSES_PROJECT_STORAGE_BYTES)",
    )
    create.set_defaults(command_run=_create)
    verbs.add_parser("list", help="every key, never in clear").set_defaults(command_run=_list)
    revoke = verbs.add_parser("revoke", help="revoke a key by its id (key_…)")
    revoke.add_argument("key_id")
    revoke.set_defaults(command_run=_revoke)
    for parser in verbs.choices.values():
        parser.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
        parser.add_argument("--config", type=Path, help="openresponses.toml")
    keys.set_defaults(run=run)


def _positive(text: str) -> int:
    """A limit: a whole number above 0 (no option: no limit)."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    settings = load_settings(config_path=args.config, data_dir=args.data_dir)
    url = settings.store_url or duckdb_url(settings.data_dir)
    try:
        command = partial(args.command_run, args=args)
        code: int = asyncio.run(_with_keys(url, settings.data_dir, command))
    except DBAPIError as exc:
        print(f"openresponses: cannot open the database: {_reason(exc)}", file=sys.stderr)
        return 1
    return code


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).splitlines()[0]


async def _with_keys(url: str, data_dir: Path, command: Callable[[Keys], Awaitable[int]]) -> int:
    keys = await open_keys(url, data_dir)
    try:
        return await command(keys)
    finally:
        await keys.close()


async def _create(keys: Keys, args: argparse.Namespace) -> int:
    key, listing = await keys.create(
        args.project, rpm=args.rpm, tpm=args.tpm, max_storage_bytes=args.max_storage_bytes
    )
    print(f"Created {listing.id} in project '{listing.project}' ({listing.project_id}).")
    print("This is the only time the key is shown; keep it somewhere safe:")
    print()
    print(key)
    return 0


async def _list(keys: Keys, args: argparse.Namespace) -> int:
    rows = [_row(listing) for listing in await keys.listing()]
    head = ("ID", "PROJECT", "KEY", "CREATED", "REVOKED", "RPM", "TPM")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _row(listing: KeyListing) -> tuple[str, ...]:
    return (
        listing.id,
        listing.project,
        listing.redacted,
        _when(listing.created_at),
        _when(listing.revoked_at) if listing.revoked_at else "-",
        str(listing.rpm or "-"),
        str(listing.tpm or "-"),
    )


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


async def _revoke(keys: Keys, args: argparse.Namespace) -> int:
    if not await keys.revoke(args.key_id):
        print(f"openresponses: no live key with id '{args.key_id}'", file=sys.stderr)
        return 1
    print(f"Revoked {args.key_id}: servers refuse it within their key cache's few seconds.")
    return 0
