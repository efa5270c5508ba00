"""Buckets in PostgreSQL's `rate_counters` table (migration 5): replicas sharing the store
share them, on the database's clock.

A take is one transaction of two statements: an upsert that locks the buckets' rows (made
if new, in name order, so that two takes never wait on each other in a circle) and returns
them with the time, then the update of those that were drawn from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, text

from openresponses.ratelimit.base import WINDOW, Draw, Taken, settle
from openresponses.store.objects_db import ObjectsDb

_NOW = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"


def _lock(count: int) -> str:
    rows = ", ".join(f"(:name{i}, 0)" for i in range(count))
    return (
        f"INSERT INTO rate_counters (name, tat) VALUES {rows} "
        "ON CONFLICT (name) DO UPDATE SET tat = rate_counters.tat "
        f"RETURNING name, tat, {_NOW} AS now"
    )


_UPDATE = text("UPDATE rate_counters SET tat = :tat WHERE name = :name")
_SWEEP = text(f"DELETE FROM rate_counters WHERE tat < {_NOW}")


class PostgresCounters:
    def __init__(self, engine: Engine) -> None:
        self._db = ObjectsDb(engine)
        self._sweep_at = 0.0

    async def take(self, draws: Sequence[Draw]) -> Taken:
        taken = await self._db.write(lambda conn: _take(conn, draws))
        if time.monotonic() >= self._sweep_at:
            # Full buckets read as missing ones: one per client address that ever failed.
            self._sweep_at = time.monotonic() + WINDOW / 1e6
            await self._db.write(lambda conn: conn.execute(_SWEEP))
        return taken

    async def close(self) -> None:
        await self._db.close()


def _take(conn: Connection, draws: Sequence[Draw]) -> Taken:
    names = sorted({draw.name for draw in draws})
    rows = conn.execute(text(_lock(len(names))), {f"name{i}": n for i, n in enumerate(names)})
    found = {row.name: row for row in rows}
    now = max(row.now for row in found.values())
    fitted, tats = settle([found[draw.name].tat for draw in draws], draws, now)
    if fitted and any(draw.cost for draw in draws):
        values = [{"name": d.name, "tat": tat} for d, tat in zip(draws, tats, strict=True)]
        conn.execute(_UPDATE, values)
    return Taken(fitted, tuple(tat - now for tat in tats))
