"""Which backend keeps the buckets: Redis when `OPENRESPONSES_REDIS_URL` is set, else the
store's PostgreSQL (replicas share both), else this process's memory (a DuckDB store has one
process)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import make_url

from openresponses.config import Settings
from openresponses.ratelimit.base import Counters
from openresponses.ratelimit.memory import MemoryCounters
from openresponses.ratelimit.postgres import PostgresCounters
from openresponses.ratelimit.redisdb import RedisCounters
from openresponses.store.sql import create_store_engine

BACKENDS: dict[str, Callable[[Settings, str], Counters]] = {
    "redis": lambda settings, _: RedisCounters(str(settings.redis_url), settings.redis_prefix),
    "postgresql": lambda _, store_url: PostgresCounters(create_store_engine(store_url)),
    "memory": lambda _, __: MemoryCounters(),
}


def open_counters(settings: Settings, store_url: str) -> Counters:
    """The server's counters; `store_url` is the store it opened (migrated already)."""
    if settings.redis_url:
        return BACKENDS["redis"](settings, store_url)
    backend = make_url(store_url).get_backend_name()
    return BACKENDS[backend if backend in BACKENDS else "memory"](settings, store_url)
