"""Buckets in this process's memory: for a server that is the only one on its store."""

from __future__ import annotations

import time
from collections.abc import Sequence

from openresponses.ratelimit.base import WINDOW, Draw, Taken, settle


class MemoryCounters:
    """Atomic because a take never awaits: nothing else runs in between."""

    def __init__(self) -> None:
        self._tats: dict[str, int] = {}
        self._sweep_at = 0

    async def take(self, draws: Sequence[Draw]) -> Taken:
        now = time.time_ns() // 1000
        self._sweep(now)
        fitted, tats = settle([self._tats.get(d.name, 0) for d in draws], draws, now)
        if fitted:
            self._tats.update((d.name, tat) for d, tat in zip(draws, tats, strict=True))
        return Taken(fitted, tuple(tat - now for tat in tats))

    def _sweep(self, now: int) -> None:
        """Forget full buckets once a minute (one per client address that ever failed)."""
        if now < self._sweep_at:
            return
        self._tats = {name: tat for name, tat in self._tats.items() if tat > now}
        self._sweep_at = now + WINDOW

    async def close(self) -> None:
        pass
