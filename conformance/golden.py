"""Golden event streams: a recorded stream, normalised, compared event by event.

The grammar and the schemas say whether a stream is *allowed*; a golden file says whether it is
*the same as before*. One file per scenario holds the events a server sent, one JSON object per
line, so a change in event output shows as a readable line diff in review. What differs between
two runs of the same scenario (ids, timestamps) is normalised first: each id becomes its prefix
and its order of first appearance (`<msg_1>`), so a stream that reuses an id where it should
not, or mixes two up, still differs.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from openresponses.conformance.grammar import first_difference

ID_KEYS = frozenset({"id", "item_id", "call_id", "previous_response_id", "response_id"})
"""Keys whose string values are generated ids."""

TIME_KEYS = frozenset({"created_at", "completed_at"})
"""Keys whose integer values are clock readings."""


class _Ids:
    """Stable placeholders for ids, numbered per prefix in order of first appearance."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def __call__(self, value: str) -> str:
        if value not in self._seen:
            prefix = value.split("_", 1)[0] if "_" in value else value.split("-", 1)[0]
            self._counts[prefix] = self._counts.get(prefix, 0) + 1
            self._seen[value] = f"<{prefix}_{self._counts[prefix]}>"
        return self._seen[value]


def normalise(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with ids and timestamps replaced by placeholders (one numbering per stream)."""
    ids = _Ids()

    def walk(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if key in ID_KEYS and isinstance(node, str):
            return ids(node)
        if key in TIME_KEYS and isinstance(node, int) and not isinstance(node, bool):
            return "<timestamp>"
        return node

    return [walk(event) for event in events]


def dumps(events: list[dict[str, Any]]) -> str:
    """JSON Lines, keys in the order the server sent them, so a diff reads like the stream."""
    return "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events)


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write(path: Path, events: list[dict[str, Any]]) -> None:
    """Records `events`, normalised, as the golden stream at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(normalise(events)), encoding="utf-8")


def compare(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Differences between a golden stream and a live one (normalised here), empty when equal:
    the first differing event with the JSON path where it differs, then a line diff."""
    actual = normalise(actual)
    if expected == actual:
        return []
    index = next(
        (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
        min(len(expected), len(actual)),
    )
    if index < min(len(expected), len(actual)):
        kind = expected[index].get("type")
        where = f"event {index} ({kind}): {first_difference(expected[index], actual[index])}"
    else:
        where = f"{len(expected)} events expected, got {len(actual)}"
    diff = difflib.unified_diff(
        dumps(expected).splitlines(), dumps(actual).splitlines(), "golden", "live", lineterm=""
    )
    return [where, *diff]
