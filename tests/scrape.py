"""Reading a server's `GET /metrics` in tests: samples by name and labels, and their change."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: Server) -> Samples:
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def requests_total(samples: Samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == "openresponses_requests_total")


def settled(server: Server, before: Samples, answered: int) -> Samples:
    """The samples once `answered` more requests are counted (a request is counted once its
    answer has ended: a moment after its client may have read it)."""
    deadline = time.monotonic() + 5
    while True:
        after = scrape(server)
        if (
            requests_total(after) - requests_total(before) >= answered
            or time.monotonic() > deadline
        ):
            return after
        time.sleep(0.02)


def gauges(server: Server, *names: str, until: tuple[float, ...]) -> tuple[float, ...]:
    """The gauges `names`, once they read `until` (or after 5 s: what they read then)."""
    deadline = time.monotonic() + 5
    while True:
        samples = scrape(server)
        found = tuple(samples[name, ()] for name in names)
        if found == until or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)
