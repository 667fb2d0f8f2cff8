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

A full minute's burst is never assumed: the API may enforce "60 RPM" as one
request per second. Each bucket holds only what it has *learnt* it may hold
— ``remaining`` plus the refill until ``reset`` (the moment the bucket is
full again) is the API's real capacity — starting from one second's worth;
calls start slowly (a window of a few calls in flight, one more for every
answer: doubling each round trip, as TCP's slow start), so neither a replica
that starts nor one that joins a running group fires its whole backlog at
once; and a 429 is evidence that the capacity is smaller than assumed, so
the capacity and the window shrink.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

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
# Until the API's headers say otherwise, a bucket holds one second of refill ("60 RPM may
# be enforced as 1 request per second"); it never holds more than a minute's.
ASSUMED_BURST_SECONDS = 1.0
_MAX_BURST_SECONDS = 60.0
# Slow start: calls in flight at first, and the least the window shrinks to after a 429.
SLOW_START_CALLS = 4
_MAX_WINDOW = 1_000_000
# Calls a second a replica may always start, however quiet the second before: small, because
# several replicas starting together add up, and the API's ramp limit is the group's.
_RAMP_FLOOR = 2
# A header showing at least this share of the API's bucket left may raise a bucket's level.
_PLENTY = 0.25
_RAISE = 0.5
# After a 429 the rate drops to this fraction, then recovers by a step per answer.
_CORRECTION_DECREASE = 0.7
_CORRECTION_STEP = 0.002
_MIN_CORRECTION = 0.1
_PLATEAU = 0.9
# How often a call held by the window looks again (answers arrive within milliseconds to minutes).
_WINDOW_NAP = 0.02


class TokenBucket:
    """A bucket refilled continuously at ``limit`` per minute, holding ``burst_seconds`` of refill.

    ``limit`` 0 means unlimited. The level may go below zero: real usage reported after a
    call can exceed its estimate, and the debt is repaid by refill before the next call.
    """

    def __init__(
        self, limit_per_minute: float, now: float, burst_seconds: float = ASSUMED_BURST_SECONDS
    ) -> None:
        self.limit = limit_per_minute
        self.share = 1.0
        self.burst_seconds = burst_seconds
        self.level = self.capacity
        self._updated = now

    @property
    def rate(self) -> float:
        """Refill per second: this replica's share of the organisation's rate."""
        return self.limit * self.share / 60.0

    @property
    def capacity(self) -> float:
        return self.limit * self.share * self.burst_seconds / 60.0

    @property
    def unlimited(self) -> bool:
        return self.limit <= 0

    def refill(self, now: float) -> None:
        if not self.unlimited:
            self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now

    def seconds_until(self, amount: float, now: float) -> float:
        """How long until ``amount`` fits (an amount above capacity waits for a full bucket)."""
        self.refill(now)
        if self.unlimited:
            return 0.0
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate if self.rate > 0 else math.inf

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

    def learn_burst(self, seconds: float) -> None:
        """The API showed that it holds at least ``seconds`` of refill: hold as much."""
        self.burst_seconds = min(_MAX_BURST_SECONDS, max(self.burst_seconds, seconds))

    def shrink_burst(self) -> None:
        """A 429: the API holds less than assumed."""
        self.burst_seconds = max(ASSUMED_BURST_SECONDS, self.burst_seconds / 2)
        self.level = min(self.level, self.capacity)


class Ramp:
    """Calls admitted in any second are at most twice those of the second before (or a few):
    the API answers sharper ramps with 429s ("acceleration limits") whatever its buckets hold."""

    def __init__(self, factor: float = 2.0) -> None:
        self._factor = factor
        self._stamps: deque[float] = deque()

    def seconds_until_next(self, now: float) -> float:
        stamps = self._stamps
        while stamps and stamps[0] <= now - 2.0:
            stamps.popleft()
        recent = [stamp for stamp in stamps if stamp > now - 1.0]
        before = len(stamps) - len(recent)
        if len(recent) < max(_RAMP_FLOOR, self._factor * before):
            return 0.0
        return recent[0] + 1.0 - now  # the oldest call of this second moves to the one before

    def admitted(self, now: float) -> None:
        self._stamps.append(now)


@dataclass
class Permit:
    """What one call debited, so that its real usage can replace the estimate."""

    input_tokens: float
    output_tokens: float
    # This replica's running debit totals just after this call was admitted (its own
    # debit included, and kept up to date by reconcile): what was spent after it is
    # what a response's headers cannot yet reflect.
    spent_after: dict[Bucket, float] = field(default_factory=dict)
    answered: bool = False
    admitted_at: float = 0.0  # the limiter's clock when the call was let through


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
        wall_clock: Clock = time.time,
        burst_seconds: float = ASSUMED_BURST_SECONDS,
        slow_start: bool = True,
    ) -> None:
        now = clock()
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._metrics = metrics
        self.buckets = {
            Bucket.REQUESTS: TokenBucket(rpm, now, burst_seconds),
            Bucket.INPUT_TOKENS: TokenBucket(itpm, now, burst_seconds),
            Bucket.OUTPUT_TOKENS: TokenBucket(otpm, now, burst_seconds),
        }
        # Running total of what this replica debited, per bucket: lets a
        # response's header be corrected for calls sent after that request.
        self._spent = dict.fromkeys(BUCKETS, 0.0)
        self._paused_until = 0.0
        self._probe_every: float | None = None  # set while the spend cap is reached
        self._turn = asyncio.Lock()  # first come, first served
        self.share = 1.0
        # Shrinks on every 429 and grows back with every answer (additive increase, multiplicative
        # decrease): replicas whose shares add up to more than one (a stale backlog reading, a
        # replica that has not noticed a join) converge on the quota instead of meeting 429s.
        self.correction = 1.0
        self._rate_limited_at = 1.0  # the correction the last 429s came at
        # Slow start: at most ``window`` calls unanswered; each answer widens it by one.
        self.window = SLOW_START_CALLS if slow_start else _MAX_WINDOW
        self._ramp = Ramp() if slow_start else None
        self.in_flight = 0

    # --- admission -------------------------------------------------------------

    async def acquire(self, input_tokens: float, output_tokens: float) -> Permit:
        """Waits until a call with these estimates fits, debits it, and returns its permit."""
        started = self._clock()
        need = {Bucket.REQUESTS: 1.0, Bucket.INPUT_TOKENS: input_tokens, Bucket.OUTPUT_TOKENS: output_tokens}
        async with self._turn:
            while True:
                if self.in_flight >= self.window:
                    await self._sleep(_WINDOW_NAP)  # type: ignore[misc]
                    continue
                now = self._clock()
                wait = max(
                    self._paused_until - now,
                    self._ramp.seconds_until_next(now) if self._ramp is not None else 0.0,
                    *(bucket.seconds_until(need[name], now) for name, bucket in self.buckets.items()),
                )
                if wait <= 0:
                    break
                await self._sleep(min(wait, _MAX_NAP))  # type: ignore[misc]
            if self._probe_every is not None:
                # Spend cap: this call is the probe; the next one waits a whole interval.
                self._paused_until = self._clock() + self._probe_every
            if self._ramp is not None:
                self._ramp.admitted(self._clock())
            for name, bucket in self.buckets.items():
                bucket.take(need[name])
                self._spent[name] += need[name]
            permit = Permit(
                input_tokens, output_tokens, spent_after=dict(self._spent), admitted_at=self._clock()
            )
            self.in_flight += 1
        self._observe_wait(self._clock() - started)
        return permit

    def answered(self, permit: Permit) -> None:
        """The permit's call is over, however it ended (idempotent): it leaves the window, which
        widens by one."""
        if not permit.answered:
            permit.answered = True
            self.in_flight -= 1
            self.window = min(_MAX_WINDOW, self.window + 1)
            if self.correction < 1.0:
                # Quickly back to just below where the 429s came, then slowly probe past it.
                near = self.correction >= _PLATEAU * self._rate_limited_at
                self._corrected(self.correction + (_CORRECTION_STEP / 10 if near else _CORRECTION_STEP))

    def reconcile(self, permit: Permit, input_tokens: float, output_tokens: float) -> None:
        """Replaces a permit's estimates with the usage the API reported; the call is answered."""
        self.answered(permit)
        for name, estimate, actual in (
            (Bucket.INPUT_TOKENS, permit.input_tokens, input_tokens),
            (Bucket.OUTPUT_TOKENS, permit.output_tokens, output_tokens),
        ):
            self.buckets[name].take(actual - estimate)
            self._spent[name] += actual - estimate
            # The correction belongs to this call, which the headers already count.
            permit.spent_after[name] = permit.spent_after.get(name, 0.0) + actual - estimate

    def rate_limited(
        self, retry_after: float | None, headers: Mapping[str, str] | None, permit: Permit | None = None
    ) -> None:
        """A 429: every call waits out ``retry-after`` (once: the retried call waits in
        ``acquire`` with the rest) and the window halves. If a bucket was short, the rate and
        that bucket's capacity were larger than the API's; if every bucket had room for the call,
        the API refused the ramp (an acceleration limit), not the rate, which stays."""
        self.pause(retry_after if retry_after is not None else 1.0)
        self.window = max(SLOW_START_CALLS, self.in_flight // 2)
        short = self._short_buckets(headers or {}, permit)
        if not short:
            return
        if self.correction >= self._rate_limited_at * _PLATEAU or self._rate_limited_at >= 1.0:
            self._rate_limited_at = self.correction  # a fresh episode, not its echo
        self._corrected(self.correction * _CORRECTION_DECREASE)
        for name in short:
            self.buckets[name].shrink_burst()

    def _short_buckets(self, headers: Mapping[str, str], permit: Permit | None) -> list[Bucket]:
        """The buckets whose ``remaining`` (as a 429 shows it) could not hold the refused call;
        a bucket without a readable figure counts as short."""
        need = {
            Bucket.REQUESTS: 1.0,
            Bucket.INPUT_TOKENS: max(1.0, permit.input_tokens) if permit is not None else 1.0,
            Bucket.OUTPUT_TOKENS: 1.0,  # output is counted after the call: any debt refuses
        }
        short = []
        for name, bucket in self.buckets.items():
            if bucket.unlimited:
                continue
            remaining = _number(headers.get(_HEADER.format(_HEADER_NAMES[name], "remaining")))
            if remaining is None or remaining < need[name]:
                short.append(name)
        return short

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
        self._rescale()

    @property
    def _effective_share(self) -> float:
        return self.share * self.correction

    def _rescale(self) -> None:
        now = self._clock()
        for bucket in self.buckets.values():
            bucket.rescale(bucket.limit, self._effective_share, now)

    def _corrected(self, factor: float) -> None:
        correction = min(1.0, max(_MIN_CORRECTION, factor))
        if correction != self.correction:
            self.correction = correction
            self._rescale()

    def observe_headers(self, headers: Mapping[str, str], permit: Permit | None) -> None:
        """Adapts the buckets to the organisation's limits and what it has left."""
        now = self._clock()
        for name, bucket in self.buckets.items():
            limit = _number(headers.get(_HEADER.format(_HEADER_NAMES[name], "limit")))
            if limit and limit != bucket.limit:
                # The API's figure is the organisation's real limit; a setting
                # of 0 (unlimited) or a stale one yields to it.
                bucket.rescale(limit, self._effective_share, now)
            remaining = _number(headers.get(_HEADER.format(_HEADER_NAMES[name], "remaining")))
            if remaining is None or bucket.unlimited:
                continue
            until_full = _seconds_until(
                headers.get(_HEADER.format(_HEADER_NAMES[name], "reset")), self._wall_clock()
            )
            if until_full is not None:
                # What is left plus the refill until full is what the API's bucket holds.
                bucket.learn_burst(remaining / (bucket.limit / 60.0) + until_full)
            if permit is None:
                continue
            bucket.refill(now)
            spent_since = self._spent[name] - permit.spent_after.get(name, 0.0)
            # The header is what was left when the request arrived; the bucket has refilled since
            # (an answer can take seconds) and this replica has spent more.
            refilled = bucket.rate * max(0.0, now - permit.admitted_at)
            estimate = remaining * self._effective_share + refilled - max(0.0, spent_since)
            # Near empty, replicas racing on stale figures would overshoot: there the figure only
            # lowers the level. With plenty left (a replica starting on an idle quota), the room
            # it shows may be used at once.
            plenty = remaining >= _PLENTY * bucket.limit * bucket.burst_seconds / 60.0
            if plenty:
                # Half of it per answer: replicas whose shares are still a guess (one that just
                # started counts itself alone) cannot together take more than is left.
                bucket.level = min(bucket.capacity, max(min(bucket.level, estimate), estimate * _RAISE))
            else:
                bucket.level = min(bucket.level, estimate)
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


def _seconds_until(reset: str | None, wall_now: float) -> float | None:
    """Seconds from now to an RFC 3339 ``reset`` header (0 if it has passed); None if unreadable."""
    if not reset:
        return None
    try:
        moment = datetime.fromisoformat(reset.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - wall_now)
