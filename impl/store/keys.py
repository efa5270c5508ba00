"""Projects and their API keys (`migrations.KEY_MIGRATIONS`): in PostgreSQL, when the store
is there, so that replicas agree on them; beside a DuckDB store, in a SQLite file of their own
(`keys.sqlite` in the data directory), because a DuckDB file admits one process at a time and
`openresponses keys` must be able to add and revoke keys while the server runs.

A project owns objects; a key belongs to one project and may carry rate limits. A key is
shown once, when it is made: only its SHA-256 is kept. A key is 256 random bits, so a fast
hash is as safe as a slow one here (nothing to guess from), and checking a request's key
costs one hash and one indexed lookup.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    create_engine,
    make_url,
    select,
    update,
)

from openresponses.store.base import DEFAULT_PROJECT
from openresponses.store.codec import Varchar
from openresponses.store.migrations import KEYS, migrate
from openresponses.store.objects_db import ObjectsDb
from openresponses.store.sql import create_store_engine

KEY_PREFIX = "sk-proj-"
KEYS_FILE = "keys.sqlite"

_metadata = MetaData()
projects = Table(
    "projects",
    _metadata,
    Column("id", Varchar, primary_key=True),
    Column("name", Varchar),
    Column("created_at", BigInteger),
    Column("max_storage_bytes", BigInteger),
)
api_keys = Table(
    "api_keys",
    _metadata,
    Column("id", Varchar, primary_key=True),
    Column("project_id", Varchar),
    Column("hash", Varchar),
    Column("redacted", Varchar),
    Column("created_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("rpm", BigInteger),
    Column("tpm", BigInteger),
)


@dataclass(frozen=True)
class ApiKey:
    """A key as a request presents it: whose it is and what it may spend."""

    id: str
    project: str
    project_name: str
    """The name the project was made with (its id, for an environment key's)."""
    rpm: int | None = None
    """Requests per minute; None: no limit."""
    tpm: int | None = None
    """Tokens per minute, as upstreams report them; None: no limit."""


@dataclass(frozen=True)
class KeyListing:
    """A key as `keys list` shows it (never the key itself)."""

    id: str
    project_id: str
    project: str
    redacted: str
    created_at: int
    revoked_at: int | None
    rpm: int | None
    tpm: int | None


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    max_storage_bytes: int | None = None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def env_key(key: str) -> ApiKey:
    """A key listed in `OPENRESPONSES_API_KEYS`: a project of its own, named by its digest,
    so that its objects stay its own across restarts (and are lost to it if it changes)."""
    hashed = digest(key)
    project = f"proj_env_{hashed[:16]}"
    return ApiKey(id=f"key_env_{hashed[:16]}", project=project, project_name=project)


def _redact(key: str) -> str:
    return f"{key[: len(KEY_PREFIX) + 2]}…{key[-4:]}"


def keys_engine(store_url: str, data_dir: Path) -> Engine:
    """The database of the keys for a store at `store_url` (see the module's docstring)."""
    if make_url(store_url).get_backend_name() == "postgresql":
        return create_store_engine(store_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    return create_engine(f"sqlite:///{(data_dir / KEYS_FILE).resolve()}")


async def open_keys(store_url: str, data_dir: Path) -> Keys:
    """The keys of the store at `store_url`, their tables migrated."""
    engine = keys_engine(store_url, data_dir)
    try:
        await asyncio.to_thread(migrate, engine, KEYS)
    except BaseException:
        engine.dispose()
        raise
    return Keys(engine)


class Keys:
    """Projects and keys over an engine `migrations.migrate` has prepared (`KEYS`)."""

    def __init__(self, engine: Engine) -> None:
        self._db = ObjectsDb(engine)

    async def find_digest(self, hashed: str) -> ApiKey | None:
        """The live key whose SHA-256 is `hashed`, or None (unknown or revoked)."""
        query = (
            select(api_keys, projects.c.name)
            .join(projects, projects.c.id == api_keys.c.project_id)
            .where(api_keys.c.hash == hashed)
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None or row.revoked_at is not None:
            return None
        return ApiKey(row.id, row.project_id, row.name, rpm=row.rpm, tpm=row.tpm)

    async def project(self, project_id: str) -> Project | None:
        query = select(projects).where(projects.c.id == project_id)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return None if row is None else Project(row.id, row.name, row.max_storage_bytes)

    async def create(
        self,
        project: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        max_storage_bytes: int | None = None,
    ) -> tuple[str, KeyListing]:
        """A new key in the project named `project` (made if new; `max_storage_bytes` set
        when given): the key, which is never shown again, and its listing."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = int(time.time())

        def run(conn: Connection) -> KeyListing:
            found = _project_row(conn, project, max_storage_bytes, now)
            row = {
                "id": "key_" + secrets.token_hex(12),
                "project_id": found.id,
                "hash": digest(key),
                "redacted": _redact(key),
                "created_at": now,
                "revoked_at": None,
                "rpm": rpm,
                "tpm": tpm,
            }
            conn.execute(api_keys.insert(), row)
            return _listing(row, found.name)

        return key, await self._db.write(run)

    async def listing(self) -> list[KeyListing]:
        query = select(api_keys, projects.c.name).join(
            projects, projects.c.id == api_keys.c.project_id
        )
        rows: Sequence[Any] = await self._db.read(lambda conn: conn.execute(query).all())
        listed = [_listing(row._mapping, row.name) for row in rows]
        return sorted(listed, key=lambda key: (key.created_at, key.id))

    async def any_made(self) -> bool:
        """Whether a key was ever made, revoked ones included."""
        query = select(api_keys.c.id).limit(1)
        return await self._db.read(lambda conn: conn.execute(query).first() is not None)

    async def revoke(self, key_id: str) -> bool:
        """Revoke a live key; False when there is none with that id."""
        statement = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=int(time.time()))
            .returning(api_keys.c.id)
        )
        found = await self._db.write(lambda conn: conn.execute(statement).first())
        return found is not None

    async def close(self) -> None:
        await self._db.close()


def _project_row(conn: Connection, name: str, max_bytes: int | None, now: int) -> Project:
    """The project named `name`, made when new (the server's own project without keys is
    `default`, so that a key made for it reaches what was stored before keys)."""
    row = conn.execute(select(projects).where(projects.c.name == name)).first()
    if row is None:
        project_id = DEFAULT_PROJECT if name == "default" else "proj_" + secrets.token_hex(12)
        values = {"id": project_id, "name": name, "created_at": now}
        conn.execute(projects.insert(), {**values, "max_storage_bytes": max_bytes})
        return Project(project_id, name, max_bytes)
    if max_bytes is not None:
        statement = update(projects).where(projects.c.id == row.id)
        conn.execute(statement.values(max_storage_bytes=max_bytes))
    return Project(row.id, row.name, max_bytes if max_bytes is not None else row.max_storage_bytes)


def _listing(row: Any, project: str) -> KeyListing:
    return KeyListing(
        id=row["id"],
        project_id=row["project_id"],
        project=project,
        redacted=row["redacted"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        rpm=row["rpm"],
        tpm=row["tpm"],
    )


class KeyRing:
    """Who a bearer token is, for every request: the keys of `OPENRESPONSES_API_KEYS`, then
    the database's, each answer reused for `ttl` seconds (so a revoked key stops working
    within `ttl`, on every replica, and a request costs a hash and a dict lookup)."""

    _MAX_CACHED = 10_000

    def __init__(self, keys: Keys, env: Sequence[str] = (), ttl: float = 5.0) -> None:
        self._keys = keys
        self._env = {digest(key): env_key(key) for key in env}
        self._ttl = ttl
        self._found: dict[str, tuple[float, ApiKey | None]] = {}
        self._required: tuple[float, bool] | None = None
        self._looking = asyncio.Lock()

    async def required(self) -> bool:
        """Whether requests need a key: any is configured, in the environment or the
        database (revoked or not: revoking the last key must not open the server to all).
        A server that never had keys is open, and single-project."""
        if self._env:
            return True
        if not self._fresh():
            # One look for the requests that find it stale together, not one each.
            async with self._looking:
                if not self._fresh():
                    made = await self._keys.any_made()
                    self._required = (time.monotonic() + self._ttl, made)
        assert self._required is not None
        return self._required[1]

    def _fresh(self) -> bool:
        return self._required is not None and self._required[0] > time.monotonic()

    def known_open(self) -> bool:
        """Whether the server had no keys when `required` last looked, within `ttl`: a
        request can then go on without a lookup."""
        return self._fresh() and self._required is not None and not self._required[1]

    async def find(self, token: str) -> ApiKey | None:
        hashed = digest(token)
        answered, found = self._answer(hashed)
        if answered:
            return found
        found = await self._keys.find_digest(hashed)
        if len(self._found) >= self._MAX_CACHED:  # wrong keys must not grow it without end
            self._found.clear()
        self._found[hashed] = (time.monotonic() + self._ttl, found)
        return found

    def known(self, token: str) -> ApiKey | None:
        """The live key `token` is, when that is known without a lookup: an environment
        key, or a database key found within the last `ttl` seconds."""
        return self._answer(digest(token))[1]

    def _answer(self, hashed: str) -> tuple[bool, ApiKey | None]:
        """Whether who `hashed` is can be told without a lookup, and who (None: nobody, as
        looked up within `ttl`)."""
        if hashed in self._env:
            return True, self._env[hashed]
        hit = self._found.get(hashed)
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    async def project(self, project_id: str) -> Project | None:
        """The project's record; None for one that has none (an environment key's, the
        server's own without keys), whose settings are the server's."""
        return await self._keys.project(project_id)

    async def close(self) -> None:
        await self._keys.close()
