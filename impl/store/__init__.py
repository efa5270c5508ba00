"""What the server keeps, in DuckDB or PostgreSQL: responses (`base`, `sql`, with the
`journal` that makes an acknowledged save survive a crash), `conversations`, and the
metadata of files and vector stores (`objects`, one module per resource), projects and their
API keys (`keys`), on the schema of `migrations`; every object belongs to a project. This
module opens it: one call that leaves it ready, so the server never sees an old schema.

May import: items, config, errors and generated; nothing above.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import make_url

from openresponses.store.base import Store
from openresponses.store.journal import JournaledStore
from openresponses.store.migrations import migrate
from openresponses.store.sql import SqlStore, create_store_engine

DUCKDB_FILE = "openresponses.duckdb"


def duckdb_url(data_dir: Path) -> str:
    """The default store: a DuckDB file in the data directory (absolute, so `cd` cannot move it)."""
    return f"duckdb:///{(data_dir / DUCKDB_FILE).resolve()}"


async def open_store(
    url: str, *, journal_dir: Path | None = None, journal_fsync: bool = False
) -> Store:
    """The store at a SQLAlchemy `url`, its schema migrated to the latest version.

    With `journal_dir`, saves go through the write-behind journal there (see `journal`).
    """
    _create_parent_dir(url)
    engine = create_store_engine(url)
    try:
        await asyncio.to_thread(migrate, engine)
    except BaseException:
        engine.dispose()
        raise
    store = SqlStore(engine)
    if journal_dir is None:
        return store
    journaled = JournaledStore(store, journal_dir, fsync=journal_fsync)
    await journaled.start()
    return journaled


def single_process(url: str) -> bool:
    """Whether only this process can be using the store: a DuckDB file takes one writer
    process (a second server on it fails to start), PostgreSQL serves many replicas."""
    return make_url(url).get_backend_name() == "duckdb"


def _create_parent_dir(url: str) -> None:
    """DuckDB creates its file but not the directories above it."""
    parsed = make_url(url)
    database = parsed.database or ":memory:"
    if parsed.get_backend_name() == "duckdb" and not database.startswith(":memory:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


__all__ = ["DUCKDB_FILE", "Store", "duckdb_url", "open_store", "single_process"]
