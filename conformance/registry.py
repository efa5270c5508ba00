"""Named checks: what a check is, how one is declared, and how a check says how it went.

A check is a function of a `Context` declared with `@check(id, title, spec_ref)`. It returns
normally to pass (optionally with a message saying what it saw), calls `fail(...)` to fail,
`skip(...)` when the target legitimately lacks what it needs (an optional feature) and
`warn(...)` for an advisory: the target made a choice the spec leaves it, but one that real
clients trip over (a warning is never a failure). Each check
runs once per selected dialect unless it is declared for one dialect only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from openresponses.conformance.wire import Dialect

if TYPE_CHECKING:
    from openresponses.conformance.context import Context

BOTH = frozenset(Dialect)
OPENRESPONSES_ONLY = frozenset({Dialect.OPENRESPONSES})

CheckFunction = Callable[["Context"], "str | None"]


class Failed(Exception):
    """The target departed from the spec; the message says where."""


class Skipped(Exception):
    """The check does not apply to this target (an optional feature it does not offer)."""


class Warned(Exception):
    """The target is within the spec but departs from what real clients depend on."""


def fail(message: str) -> NoReturn:
    raise Failed(message)


def skip(message: str) -> NoReturn:
    raise Skipped(message)


def warn(message: str) -> NoReturn:
    raise Warned(message)


def require(condition: object, message: str) -> None:
    if not condition:
        raise Failed(message)


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
