"""The limits: a key's requests and tokens per minute, and a client address's failed
authentications per minute.

Each is a token bucket holding a minute's worth of its limit and refilling continuously
(GCRA, see `base`): a key with `rpm` 60 may make 60 requests at once, then one a second.
A request needs room for one request and one token; its request is drawn at once, its
tokens when its response has ended and the upstream has said how many it used, so a key
may end up owing tokens and then waits until it has room again. Keys without limits, and
servers without keys, never reach the counters.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from openresponses import metrics
from openresponses.errors import APIError, ErrorKind
from openresponses.ratelimit.base import WINDOW, Counters, Draw
from openresponses.store.keys import ApiKey

log = logging.getLogger("openresponses")

_NAMES = {"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)"}
_UPFRONT = {"requests": 1, "tokens": 0}
"""What a request draws as it is admitted; its tokens are drawn when its response ends."""


def _span(units: int, limit: int) -> int:
    """The time (µs) a bucket of `limit` per minute takes to refill `units`."""
    return units * WINDOW // max(limit, 1)


def _ceil(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def duration(micros: int) -> str:
    """A duration as OpenAI's rate-limit headers write it (Go's style, to the millisecond,
    rounded up): `120ms`, `6s`, `8.64s`, `1m0s`."""
    millis = _ceil(max(micros, 0), 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    minutes, millis = divmod(millis, 60_000)
    hours, minutes = divmod(minutes, 60)
    seconds = f"{millis / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + seconds


def reported_tokens(answer: object) -> int:
    """`usage.total_tokens` of an upstream's JSON answer (a completion, a chunk, embeddings);
    0 when it has none."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return total if isinstance(total, int) else 0


@dataclass(frozen=True)
class Level:
    """One limit of a key, as a request leaves it: what the `x-ratelimit-*` headers say."""

    dimension: str
    """`requests` or `tokens` (`auth_failures`: an address's wrong keys)."""
    limit: int
    ahead: int
    """µs until the bucket is full again (the `reset` headers)."""

    @property
    def used(self) -> int:
        return _ceil(self.ahead * self.limit, WINDOW)

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def wait(self) -> int:
        """µs until the bucket has room for one more (0: it has)."""
        return max(self.ahead + _span(1, self.limit) - WINDOW, 0)


@dataclass(frozen=True)
class Admission:
    """A key's levels after a request was counted, and the 429 when it was refused."""

    levels: tuple[Level, ...]
    refusal: APIError | None = None


def rate_limited(message: str, wait: int) -> APIError:
    """OpenAI's 429, with `Retry-After` in whole seconds (at least one)."""
    seconds = max(_ceil(wait, 1_000_000), 1)
    return APIError(
        ErrorKind.RATE_LIMIT,
        f"{message} Please try again in {duration(wait)}.",
        code="rate_limit_exceeded",
        headers={"retry-after": str(seconds)},
    )


class Limiter:
    """Every limit of the server, over its counters (see `registry`)."""

    def __init__(self, counters: Counters, auth_failures_per_minute: int) -> None:
        self._counters = counters
        self._failures = auth_failures_per_minute

    async def admit(self, key: ApiKey | None) -> Admission | None:
        """Count a request of `key`, if it has room; None for a key without limits."""
        if key is None or (key.rpm is None and key.tpm is None):
            return None
        limits = [(d, n) for d, n in (("requests", key.rpm), ("tokens", key.tpm)) if n]
        draws = [
            Draw(f"key:{key.id}:{dimension}", _span(1, limit), _span(_UPFRONT[dimension], limit))
            for dimension, limit in limits
        ]
        taken = await self._counters.take(draws)
        levels = tuple(
            Level(dimension, limit, ahead)
            for (dimension, limit), ahead in zip(limits, taken.ahead, strict=True)
        )
        if taken.fitted:
            return Admission(levels)
        worst = max(levels, key=lambda level: level.wait)
        metrics.RATE_LIMITED.labels(worst.dimension).inc()
        message = (
            f"Rate limit reached for {key.id} in project {key.project} on "
            f"{_NAMES[worst.dimension]}: Limit {worst.limit}, Used {worst.used}, Requested 1."
        )
        return Admission(levels, rate_limited(message, worst.wait))

    def meter(self, key: ApiKey | None) -> Callable[[int], Awaitable[None]] | None:
        """What spends a response's tokens against `key`; None when it has no token limit."""
        if key is None or key.tpm is None:
            return None
        return partial(self.spend, key)

    async def spend(self, key: ApiKey | None, tokens: int) -> None:
        """Draw `tokens` from `key`'s bucket, whether or not it has room (it may owe)."""
        if key is None or key.tpm is None or tokens <= 0:
            return
        draw = Draw(f"key:{key.id}:tokens", 0, _span(tokens, key.tpm))
        try:
            await self._counters.take([draw])
        except Exception:  # the answer is made: tokens that could not be counted are let go
            log.exception("could not count %d tokens of %s", tokens, key.id)

    async def check_address(self, address: str | None) -> None:
        """Refuse (429) a client address that has used up its failed authentications."""
        if address is None or self._failures <= 0:
            return
        draw = Draw(f"auth:{address}", _span(1, self._failures), 0)
        taken = await self._counters.take([draw])
        if not taken.fitted:
            metrics.RATE_LIMITED.labels("auth_failures").inc()
            level = Level("auth_failures", self._failures, taken.ahead[0])
            message = (
                f"Too many requests with a wrong API key from {address}: the limit is "
                f"{self._failures} per minute."
            )
            raise rate_limited(message, level.wait)

    async def failed(self, address: str | None) -> None:
        """Count a failed authentication from `address`."""
        if address is None or self._failures <= 0:
            return
        await self._counters.take([Draw(f"auth:{address}", 0, _span(1, self._failures))])

    async def close(self) -> None:
        await self._counters.close()
