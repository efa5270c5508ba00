"""Named checks: what a check is, how one is declared, and how a check says how it went.

A check is a function of a `Context` declared with `@check(id, title, spec_ref)`. It returns
normally to pass (optionally with a message saying what it saw), or says how it went
otherwise with `outcomes` (`fail`, `skip`, `warn`). Each check runs once per selected dialect
unless it is declared for one dialect only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openresponses.conformance.context import Context
from openresponses.conformance.wire import Dialect

BOTH = frozenset(Dialect)
OPENRESPONSES_ONLY = frozenset({Dialect.OPENRESPONSES})

CheckFunction = Callable[[Context], "str | None"]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    spec_ref: str
    run: CheckFunction
    dialects: frozenset[Dialect] = BOTH
    fuzz: bool = False
    """Runs only with `--fuzz` (reported as skipped otherwise)."""


CHECKS: dict[str, Check] = {}


def check(
    id: str,
    title: str,
    spec_ref: str,
    *,
    dialects: frozenset[Dialect] = BOTH,
    fuzz: bool = False,
) -> Callable[[CheckFunction], CheckFunction]:
    """Registers the decorated function as the check `id`."""

    def register(function: CheckFunction) -> CheckFunction:
        if id in CHECKS:
            raise ValueError(f"two checks are named {id!r}")
        CHECKS[id] = Check(id, title, spec_ref, function, dialects, fuzz)
        return function

    return register
