"""The databases every store test runs on: a real DuckDB file, and the PostgreSQL at
127.0.0.1:5432 with a schema of the test's own (through the URL's search_path), dropped
afterwards, so that tests can run in parallel and leave nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from openresponses.store import duckdb_url, open_store
from openresponses.store.sql import SqlStore


@pytest.fixture(params=["duckdb", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return duckdb_url(tmp_path / "not-yet-created")
    value: str = request.getfixturevalue("postgres_url")
    return value


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    opened = asyncio.run(open_store(url))
    assert isinstance(opened, SqlStore)
    yield opened
    asyncio.run(opened.close())
