"""Opening the store: one call that leaves it ready, so the server never sees an old schema."""

from __future__ import annotations

import asyncio
from pathlib import Path

from openresponses.store.base import Store
from openresponses.store.migrations import migrate
from openresponses.store.sql import SqlStore, create_store_engine
from sqlalchemy import make_url

DUCKDB_FILE = "openresponses.duckdb"


def duckdb_url(data_dir: Path) -> str:
    """The default store: a DuckDB file in the data directory (absolute, so `cd` cannot move it)."""
    return f"duckdb:///{(data_dir / DUCKDB_FILE).resolve()}"


async def open_store(url: str) -> Store:
    """The store at a SQLAlchemy `url`, its schema migrated to the latest version."""
    _create_parent_dir(url)
    engine = create_store_engine(url)
    try:
        await asyncio.to_thread(migrate, engine)
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(engine)


def _create_parent_dir(url: str) -> None:
    """DuckDB creates its file but not the directories above it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "duckdb" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


__all__ = ["DUCKDB_FILE", "Store", "duckdb_url", "open_store"]
