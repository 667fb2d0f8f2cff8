"""A token-bucket limiter shaped like the Messages API's own limits, shared by a replica's calls.

Three buckets, as Anthropic meters an organisation: requests, input tokens
and output tokens per minute, each refilled continuously. Before a call the
limiter debits an estimate; after it, the real usage replaces the estimate.

Many replicas share one quota without talking to each other:

* each replica runs its buckets at ``limit × share``, where ``share`` is its
  part of the group's backlog (the service measures it from Kafka's own lag),
  so the replicas' rates add up to the quota;
* every response's ``anthropic-ratelimit-*-remaining`` header is the shared
  truth: the replica resets each bucket to its share of what the organisation
  has left, minus what it has itself spent since that request left, so any
  drift (another tenant, a skewed share) is corrected within one round trip;
* a 429 pauses every call of the replica until its ``retry-after``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from schemas.metrics import Bucket, Metrics

Clock = Callable[[], float]

BUCKETS = tuple(Bucket)
_HEADER = "anthropic-ratelimit-{}-{}"
_HEADER_NAMES = {
    Bucket.REQUESTS: "requests",
    Bucket.INPUT_TOKENS: "input-tokens",
    Bucket.OUTPUT_TOKENS: "output-tokens",
}
# Never wait longer than this in one go, so pauses and share changes take effect promptly.
_MAX_NAP = 0.5


class TokenBucket:
    """A bucket of ``limit`` per minute, refilled continuously; ``limit`` 0 means unlimited.

    The level may go below zero: real usage reported after a call can exceed
    its estimate, and the debt is repaid by refill before the next call.
    """

    def __init__(self, limit_per_minute: float, now: float) -> None:
        self.limit = limit_per_minute
        self.share = 1.0
        self.level = self.capacity
        self._updated = now

    @property
    def capacity(self) -> float:
        return self.limit * self.share

    @property
    def unlimited(self) -> bool:
        return self.limit <= 0

    def refill(self, now: float) -> None:
        if not self.unlimited:
            self.level = min(self.capacity, self.level + (now - self._updated) * self.capacity / 60.0)
        self._updated = now

    def seconds_until(self, amount: float, now: float) -> float:
        """How long until ``amount`` fits (an amount above capacity waits for a full bucket)."""
        self.refill(now)
        if self.unlimited:
            return 0.0
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) * 60.0 / self.capacity if self.capacity > 0 else math.inf

    def take(self, amount: float) -> None:
        if not self.unlimited:
            self.level -= amount

    def rescale(self, limit: float, share: float, now: float) -> None:
        """Adopts a new limit or share; the level keeps its proportion of the capacity."""
        self.refill(now)
        old = self.capacity
        self.limit, self.share = limit, share
        if old > 0 and not self.unlimited:
            self.level = self.level * self.capacity / old
        elif not self.unlimited:
            self.level = self.capacity


@dataclass
class Permit:
    """What one call debited, so that its real usage can replace the estimate."""

    input_tokens: float
    output_tokens: float
    # This replica's running debit totals just after this call was admitted (its own
    # debit included, and kept up to date by reconcile): what was spent after it is
    # what a response's headers cannot yet reflect.
    spent_after: dict[Bucket, float] = field(default_factory=dict)


class RateLimiter:
    """Admits API calls within the replica's share of the organisation's limits."""

    def __init__(
        self,
        *,
        rpm: float = 0,
        itpm: float = 0,
        otpm: float = 0,
        metrics: Metrics | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        now = clock()
        self._clock = clock
        self._sleep = sleep
        self._metrics = metrics
        self.buckets = {
            Bucket.REQUESTS: TokenBucket(rpm, now),
            Bucket.INPUT_TOKENS: TokenBucket(itpm, now),
            Bucket.OUTPUT_TOKENS: TokenBucket(otpm, now),
        }
        # Running total of what this replica debited, per bucket: lets a
        # response's header be corrected for calls sent after that request.
        self._spent = dict.fromkeys(BUCKETS, 0.0)
        self._paused_until = 0.0
        self._probe_every: float | None = None  # set while the spend cap is reached
        self._turn = asyncio.Lock()  # first come, first served
        self.share = 1.0

    # --- admission -------------------------------------------------------------

    async def acquire(self, input_tokens: float, output_tokens: float) -> Permit:
        """Waits until a call with these estimates fits, debits it, and returns its permit."""
        started = self._clock()
        need = {Bucket.REQUESTS: 1.0, Bucket.INPUT_TOKENS: input_tokens, Bucket.OUTPUT_TOKENS: output_tokens}
        async with self._turn:
            while True:
                now = self._clock()
                wait = max(
                    self._paused_until - now,
                    *(bucket.seconds_until(need[name], now) for name, bucket in self.buckets.items()),
                )
                if wait <= 0:
                    break
                await self._sleep(min(wait, _MAX_NAP))  # type: ignore[misc]
            if self._probe_every is not None:
                # Spend cap: this call is the probe; the next one waits a whole interval.
                self._paused_until = self._clock() + self._probe_every
            for name, bucket in self.buckets.items():
                bucket.take(need[name])
                self._spent[name] += need[name]
            permit = Permit(input_tokens, output_tokens, spent_after=dict(self._spent))
        self._observe_wait(self._clock() - started)
        return permit

    def reconcile(self, permit: Permit, input_tokens: float, output_tokens: float) -> None:
        """Replaces a permit's estimates with the usage the API reported."""
        for name, estimate, actual in (
            (Bucket.INPUT_TOKENS, permit.input_tokens, input_tokens),
            (Bucket.OUTPUT_TOKENS, permit.output_tokens, output_tokens),
        ):
            self.buckets[name].take(actual - estimate)
            self._spent[name] += actual - estimate
            # The correction belongs to this call, which the headers already count.
            permit.spent_after[name] = permit.spent_after.get(name, 0.0) + actual - estimate

    def pause(self, seconds: float) -> None:
        """Stops every call of the replica for ``seconds`` (a 429's retry-after)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def hold_for_spend_limit(self, probe_every: float) -> None:
        """Admits one probe call per ``probe_every`` seconds until ``release_hold``."""
        self._probe_every = probe_every
        self.pause(probe_every)

    def release_hold(self) -> None:
        """A call succeeded: the spend cap is lifted, every waiting call may go."""
        if self._probe_every is not None:
            self._probe_every = None
            self._paused_until = 0.0

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())

    # --- adapting to the organisation ---------------------------------------------

    def set_share(self, share: float) -> None:
        """This replica's part of the group's work, in (0, 1]."""
        share = min(1.0, max(0.01, share))
        if abs(share - self.share) < 1e-3:
            return
        self.share = share
        now = self._clock()
        for bucket in self.buckets.values():
            bucket.rescale(bucket.limit, share, now)

    def observe_headers(self, headers: Mapping[str, str], permit: Permit | None) -> None:
        """Adapts the buckets to the organisation's limits and what it has left."""
        now = self._clock()
        for name, bucket in self.buckets.items():
            limit = _number(headers.get(_HEADER.format(_HEADER_NAMES[name], "limit")))
            if limit and limit != bucket.limit:
                # The API's figure is the organisation's real limit; a setting
                # of 0 (unlimited) or a stale one yields to it.
                bucket.rescale(limit, self.share, now)
            remaining = _number(headers.get(_HEADER.format(_HEADER_NAMES[name], "remaining")))
            if remaining is None or bucket.unlimited or permit is None:
                continue
            bucket.refill(now)
            spent_since = self._spent[name] - permit.spent_after.get(name, 0.0)
            bucket.level = min(bucket.capacity, remaining * self.share - max(0.0, spent_since))
            if self._metrics is not None:
                self._metrics.set_limiter_remaining(name, bucket.level)

    def _observe_wait(self, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.observe_limiter_wait(seconds)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
