"""How a check says it did not pass: `fail(...)` to fail, `skip(...)` when the target
legitimately lacks what it needs (an optional feature) and `warn(...)` for an advisory: the
target made a choice the spec leaves it, but one that real clients trip over (a warning is
never a failure).
"""

from __future__ import annotations

from typing import NoReturn


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
