"""Schema versions: the only place the tables are created or changed.

A database records the versions applied to it in `schema_version` (and the keys' tables,
which may live in a database of their own, in `keys_schema_version`), so every migration runs
exactly once per database, whichever release opens it. A schema change is a new entry at the
end of `MIGRATIONS` (or `KEY_MIGRATIONS`), never an edit of a released one: databases that
already ran the old version would not see the edit.

The SQL is plain DDL that PostgreSQL and DuckDB (and, for the keys, SQLite) all accept, and it
is frozen text rather than derived from the store's table objects, so that changing those
cannot rewrite history.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import ProgrammingError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "responses and their input and output items",
        (
            """
            CREATE TABLE responses (
                id VARCHAR PRIMARY KEY,
                created_at BIGINT NOT NULL,
                status VARCHAR,
                model VARCHAR,
                previous_response_id VARCHAR,
                body TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE response_items (
                response_id VARCHAR NOT NULL,
                role VARCHAR NOT NULL CHECK (role IN ('input', 'output')),
                position INTEGER NOT NULL,
                item_id VARCHAR NOT NULL,
                body TEXT NOT NULL,
                PRIMARY KEY (response_id, role, position)
            )
            """,
            # Single-column indexes: DuckDB looks nothing up through a compound one, the key
            # included. (PostgreSQL could use the key for response_id; this one costs little.)
            "CREATE INDEX response_items_response_id ON response_items (response_id)",
            "CREATE INDEX response_items_item_id ON response_items (item_id)",
        ),
    ),
    Migration(
        2,
        "files, vector stores, their files and file batches",
        (
            # `position` orders listings: created_at has one-second resolution.
            """
            CREATE TABLE files (
                id VARCHAR PRIMARY KEY,
                position BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                bytes BIGINT NOT NULL,
                filename VARCHAR NOT NULL,
                purpose VARCHAR NOT NULL
            )
            """,
            """
            CREATE TABLE vector_stores (
                id VARCHAR PRIMARY KEY,
                position BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                name VARCHAR,
                metadata TEXT,
                expires_after TEXT,
                last_active_at BIGINT
            )
            """,
            # A store's file_counts and usage_bytes are sums over these rows, never counters.
            """
            CREATE TABLE vector_store_files (
                vector_store_id VARCHAR NOT NULL,
                file_id VARCHAR NOT NULL,
                position BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                batch_id VARCHAR,
                status VARCHAR NOT NULL,
                last_error TEXT,
                chunking_strategy TEXT NOT NULL,
                attributes TEXT,
                usage_bytes BIGINT NOT NULL,
                PRIMARY KEY (vector_store_id, file_id)
            )
            """,
            "CREATE INDEX vector_store_files_store ON vector_store_files (vector_store_id)",
            "CREATE INDEX vector_store_files_file ON vector_store_files (file_id)",
            "CREATE INDEX vector_store_files_batch ON vector_store_files (batch_id)",
            """
            CREATE TABLE vector_store_file_batches (
                id VARCHAR PRIMARY KEY,
                vector_store_id VARCHAR NOT NULL,
                created_at BIGINT NOT NULL,
                cancelled BOOLEAN NOT NULL
            )
            """,
        ),
    ),
    Migration(
        3,
        "conversations and their items",
        (
            # next_position: the position the next appended item takes; it only grows, so
            # positions order items by when they were appended, across deletions.
            """
            CREATE TABLE conversations (
                id VARCHAR PRIMARY KEY,
                created_at BIGINT NOT NULL,
                metadata TEXT NOT NULL,
                next_position BIGINT NOT NULL
            )
            """,
            # entry is conversation_id/item_id, the single-column key DuckDB can look rows
            # up by (an item id appears once in a conversation, but may be in several).
            """
            CREATE TABLE conversation_items (
                entry VARCHAR PRIMARY KEY,
                conversation_id VARCHAR NOT NULL,
                position BIGINT NOT NULL,
                item_id VARCHAR NOT NULL,
                origin VARCHAR NOT NULL CHECK (origin IN ('input', 'output')),
                body TEXT NOT NULL
            )
            """,
            "CREATE INDEX conversation_items_conversation ON conversation_items (conversation_id)",
            "CREATE INDEX conversation_items_item_id ON conversation_items (item_id)",
        ),
    ),
    Migration(
        4,
        "the project of every object",
        (
            # What existed before projects belongs to the project of a server without keys.
            *(
                f"ALTER TABLE {table} ADD COLUMN project VARCHAR DEFAULT 'proj_default'"
                for table in (
                    "responses",
                    "response_items",
                    "conversations",
                    "conversation_items",
                    "files",
                    "vector_stores",
                    "vector_store_files",
                    "vector_store_file_batches",
                )
            ),
            # Listings are per project.
            "CREATE INDEX files_project ON files (project)",
            "CREATE INDEX vector_stores_project ON vector_stores (project)",
        ),
    ),
    Migration(
        5,
        "rate-limit counters shared by replicas",
        (
            # One row per bucket (a key's requests or tokens, a client address's failed
            # authentications): when it is full again, in microseconds (see ratelimit.base).
            """
            CREATE TABLE rate_counters (
                name VARCHAR PRIMARY KEY,
                tat BIGINT NOT NULL
            )
            """,
        ),
    ),
)

KEY_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "projects and their API keys",
        (
            # max_storage_bytes: the project's quota for files (NULL: the server's default).
            """
            CREATE TABLE projects (
                id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL UNIQUE,
                created_at BIGINT NOT NULL,
                max_storage_bytes BIGINT
            )
            """,
            # Only a key's SHA-256 is kept; `redacted` is what listings show of it.
            """
            CREATE TABLE api_keys (
                id VARCHAR PRIMARY KEY,
                project_id VARCHAR NOT NULL,
                hash VARCHAR NOT NULL UNIQUE,
                redacted VARCHAR NOT NULL,
                created_at BIGINT NOT NULL,
                revoked_at BIGINT,
                rpm BIGINT,
                tpm BIGINT
            )
            """,
        ),
    ),
)
"""The keys' own tables: in the store's database when it is PostgreSQL (replicas agree on
them), in a SQLite file beside a DuckDB one (see store.keys), which other processes (the
`openresponses keys` command) may write while the server holds the DuckDB file."""


@dataclass(frozen=True)
class Schema:
    """Tables migrated together; the versions applied are recorded in `table`."""

    table: str
    migrations: tuple[Migration, ...]
    lock_key: int
    """PostgreSQL advisory lock: any constant, the same in every process migrating it."""

    @property
    def latest(self) -> int:
        return self.migrations[-1].version


STORE = Schema("schema_version", MIGRATIONS, 0x6F70656E72657370)  # "openresp"
KEYS = Schema("keys_schema_version", KEY_MIGRATIONS, 0x6F70656E6B657973)  # "openkeys"


def migrate(engine: Engine, schema: Schema = STORE) -> None:
    """Apply the schema's missing migrations, all in one transaction.

    Running it again is a no-op. On PostgreSQL, processes starting together queue on an
    advisory lock, so one migrates and the others then find nothing to do. (A DuckDB file is
    locked to a single process by DuckDB itself; SQLite locks its file while writing.)
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": schema.lock_key})
        conn.execute(text(_version_table(schema.table)))
        applied = set(conn.execute(text(f"SELECT version FROM {schema.table}")).scalars())
        _refuse_newer(applied, schema.latest)
        for migration in schema.migrations:
            if migration.version not in applied:
                _apply(conn, schema.table, migration)


def applied_version(engine: Engine, schema: Schema = STORE) -> int:
    """The latest version applied to the database: 0 when its version table is missing
    (never migrated, or dropped since). Raises when the database cannot be reached."""
    with engine.connect() as conn:
        try:
            version = conn.execute(text(f"SELECT max(version) FROM {schema.table}")).scalar()
        except ProgrammingError:  # no such table
            return 0
    return int(version or 0)


def _version_table(name: str) -> str:
    return f"""
        CREATE TABLE IF NOT EXISTS {name} (
            version INTEGER PRIMARY KEY,
            description VARCHAR NOT NULL,
            applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
        )
    """


def _refuse_newer(applied: set[int], latest: int) -> None:
    """Stop before touching a database written by a newer release: its schema is unknown here."""
    unknown = sorted(version for version in applied if version > latest)
    if unknown:
        raise RuntimeError(
            f"the database has schema version {unknown[-1]}, newer than this release "
            f"knows ({latest}); upgrade openresponses"
        )


def _apply(conn: Connection, table: str, migration: Migration) -> None:
    for statement in migration.statements:
        conn.execute(text(statement))
    conn.execute(
        text(f"INSERT INTO {table} (version, description) VALUES (:version, :description)"),
        {"version": migration.version, "description": migration.description},
    )
