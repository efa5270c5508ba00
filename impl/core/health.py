"""Whether this process can serve: what a load balancer or an orchestrator asks before
sending it traffic. Each check is cheap and local; none calls a provider, whose outage is a
failed response, not a reason to take this replica out of rotation.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from openresponses.core.services import Services
from openresponses.store.migrations import STORE

log = logging.getLogger("openresponses")

TIMEOUT = 2.0
"""Seconds a check may take: a database that answers slower than this is not serving."""

OK = "ok"

T = TypeVar("T")


async def readiness(services: Services) -> dict[str, str]:
    """Each check's name and `ok`, or what failed: the store reachable, its migrations
    applied, and the journal's directory writable (when the store has a journal)."""
    checks: dict[str, str] = {}
    version = await _bounded(services.store.schema_version(), "store", "unreachable")
    checks["store"] = OK if isinstance(version, int) else version
    if isinstance(version, int):
        latest = STORE.latest
        applied = f"schema version {version}, this release needs {latest}"
        checks["migrations"] = OK if version == latest else applied
    if services.journal_dir is not None:
        probe = asyncio.to_thread(_write_probe, services.journal_dir)
        writable = await _bounded(probe, "journal", "not writable")
        checks["journal"] = OK if writable is None else writable
    return checks


async def _bounded(check: Awaitable[T], name: str, failed: str) -> T | str:
    """The check's result, or why it has none: `failed` when it raised (the exception is
    logged, not answered: a probe needs to know which check failed, not a database's text)."""
    try:
        return await asyncio.wait_for(check, TIMEOUT)
    except TimeoutError:
        return f"no answer within {TIMEOUT:g} s"
    except Exception as exc:
        # One line: probes repeat every few seconds for as long as the fault lasts.
        reason = (str(exc).splitlines() or [""])[0]
        log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, reason)
        return failed


def _write_probe(directory: Path) -> None:
    """Creates and removes a file there: unlike `os.access`, which tells root it may write
    everywhere, this also fails on a read-only mount."""
    with tempfile.TemporaryFile(dir=directory):
        pass
