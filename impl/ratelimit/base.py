"""The one operation a counters backend performs: several buckets checked and drawn from
together, atomically, on the backend's own clock.

A bucket is GCRA's "theoretical arrival time" (`tat`, microseconds): the moment it will be
full again. Drawing `cost` moves it `cost` later; a draw fits while the bucket stays within
`WINDOW` of now. The arithmetic of limits (which cost is one request, one token) stays in
`limiter`: backends only add durations, so that all of them agree to the microsecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

WINDOW = 60_000_000
"""A minute in microseconds: a bucket holds a minute's worth of its limit."""


@dataclass(frozen=True)
class Draw:
    """One bucket of a `take`: it must have room for `need` (µs), and then gives `cost`."""

    name: str
    need: int
    cost: int


@dataclass(frozen=True)
class Taken:
    """What a `take` found: whether every draw fitted (and so was made), and each bucket's
    `ahead` afterwards, `tat - now` in µs (0: full), in the order of the draws."""

    fitted: bool
    ahead: tuple[int, ...]


def settle(tats: Sequence[int], draws: Sequence[Draw], now: int) -> tuple[bool, list[int]]:
    """GCRA for backends that compute in Python: whether all `draws` fit buckets standing at
    `tats` (0: never used), and the buckets' `tat` afterwards (unchanged unless they fit)."""
    current = [max(tat, now) for tat in tats]
    fitted = all(tat + draw.need - now <= WINDOW for tat, draw in zip(current, draws, strict=True))
    if not fitted:
        return False, current
    return True, [tat + draw.cost for tat, draw in zip(current, draws, strict=True)]


class Counters(Protocol):
    """Where buckets live: one process's memory, or a store replicas share."""

    async def take(self, draws: Sequence[Draw]) -> Taken:
        """Draw from every bucket of `draws` if all have room for their `need`, else from
        none; atomically, across every process sharing the backend."""
        ...

    async def close(self) -> None: ...
