"""Selecting checks, running them against a target, and collecting results."""

from __future__ import annotations

import fnmatch
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from openresponses.conformance import checks as _checks  # noqa: F401 - registers the checks
from openresponses.conformance.context import Context
from openresponses.conformance.outcomes import Failed, Skipped, Warned
from openresponses.conformance.registry import CHECKS, Check
from openresponses.conformance.wire import Client, Dialect, Target, TransportError

PASS, FAIL, SKIP, WARN = "pass", "fail", "skip", "warn"
"""A warning is advisory: it is reported, but it never fails a run."""


@dataclass(frozen=True)
class Result:
    id: str
    """`dialect/check`, e.g. `openresponses/stream.lifecycle`."""
    check: Check
    dialect: Dialect
    status: str
    message: str
    seconds: float

    @property
    def title(self) -> str:
        return self.check.title


def select(dialects: Iterable[Dialect], only: Iterable[str] = ()) -> list[tuple[Check, Dialect]]:
    """Every (check, dialect) pair to run, in registration order within each dialect.

    `only` holds glob patterns matched against both `check.id` and `dialect/check.id`.
    """
    patterns = list(only)
    chosen = []
    for dialect in dialects:
        for check in CHECKS.values():
            if dialect not in check.dialects:
                continue
            names = (check.id, f"{dialect.value}/{check.id}")
            if patterns and not any(fnmatch.fnmatchcase(n, p) for n in names for p in patterns):
                continue
            chosen.append((check, dialect))
    return chosen


def run_one(check: Check, ctx: Context) -> tuple[str, str]:
    """(status, message) of one check: anything a check raises is a verdict, never a crash."""
    if check.fuzz and not ctx.fuzz_examples:
        return SKIP, "fuzzing runs only with --fuzz"
    try:
        message = check.run(ctx)
    except Failed as exc:
        return FAIL, str(exc)
    except Skipped as exc:
        return SKIP, str(exc)
    except Warned as exc:
        return WARN, str(exc)
    except TransportError as exc:
        return FAIL, f"transport: {exc}"
    except Exception as exc:  # the target sent something so odd that the check tripped on it
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return (
            FAIL,
            f"unexpected answer ({type(exc).__name__}: {exc} at {where.name}:{where.lineno})",
        )
    return PASS, message or ""


Progress = Callable[[int, int, str, "Result | None"], None]


def run(
    target: Target,
    selected: list[tuple[Check, Dialect]],
    *,
    fuzz_examples: int = 0,
    progress: Progress | None = None,
) -> list[Result]:
    """Runs `selected` in order; `progress(done, total, id, result)` is called before each
    check (with `None`) and after it. `fuzz.*` checks run only with `fuzz_examples`."""
    contexts: dict[Dialect, Context] = {}
    results: list[Result] = []
    try:
        for number, (check, dialect) in enumerate(selected):
            ident = f"{dialect.value}/{check.id}"
            if progress:
                progress(number, len(selected), ident, None)
            if dialect not in contexts:
                contexts[dialect] = Context(Client(target, dialect), fuzz_examples=fuzz_examples)
            started = time.monotonic()
            status, message = run_one(check, contexts[dialect])
            result = Result(ident, check, dialect, status, message, time.monotonic() - started)
            results.append(result)
            if progress:
                progress(number + 1, len(selected), ident, result)
    finally:
        for ctx in contexts.values():
            ctx.client.close()
    return results
