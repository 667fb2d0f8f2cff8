"""Unit tests of consumer.limiter: token buckets, admission, reconciliation and the header feedback.

Time is fake throughout: single-task tests use ``FakeTime``, whose ``sleep``
advances its clock at once; concurrent tests use ``ManualClock``, whose
sleepers wake only when the test advances time; the multi-replica simulation
drives the limiters' coroutines by hand against a modelled API server.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from consumer.throttle.limiter import Permit, RateLimiter, TokenBucket
from schemas.metrics import Bucket, Metrics
from tests.helpers.clock import ManualClock

REQ_LIMIT = "anthropic-ratelimit-requests-limit"
REQ_REMAINING = "anthropic-ratelimit-requests-remaining"
REQ_RESET = "anthropic-ratelimit-requests-reset"
IN_LIMIT = "anthropic-ratelimit-input-tokens-limit"
IN_REMAINING = "anthropic-ratelimit-input-tokens-remaining"
OUT_REMAINING = "anthropic-ratelimit-output-tokens-remaining"


class FakeTime:
    """A clock plus a ``sleep`` that advances it instantly (for one task at a time)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.naps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if len(self.naps) > 100_000:
            raise AssertionError("the limiter keeps sleeping: it would never admit")
        self.naps.append(seconds)
        # A real clock always moves on between two naps; a float sum may not
        # (now + 1e-15 == now), which would stall the fake clock, not the limiter.
        self.now += max(seconds, 1e-9)


# The bucket mechanics are tested on buckets that hold a full minute and without slow start, so
# that the arithmetic reads plainly; what a replica really starts with has its own tests below.
MINUTE: dict[str, Any] = {"burst_seconds": 60.0, "slow_start": False}


def limiter(time: FakeTime, *, rpm: float = 0, itpm: float = 0, otpm: float = 0) -> RateLimiter:
    return RateLimiter(rpm=rpm, itpm=itpm, otpm=otpm, clock=time.clock, sleep=time.sleep, **MINUTE)


# --- the bucket ---------------------------------------------------------------


def test_bucket_starts_full_and_refills_continuously_up_to_capacity() -> None:
    """A bucket starts full, refills at limit/60 per second and never rises above its capacity."""
    bucket = TokenBucket(120, now=0.0, burst_seconds=60)
    assert bucket.level == 120
    bucket.take(120)
    bucket.refill(1.0)
    assert bucket.level == pytest.approx(2.0)
    bucket.refill(1.25)
    assert bucket.level == pytest.approx(2.5)
    bucket.refill(31.0)
    assert bucket.level == pytest.approx(62.0)
    bucket.refill(10_000.0)
    assert bucket.level == 120


def test_bucket_seconds_until_counts_the_missing_amount_at_the_refill_rate() -> None:
    """seconds_until is the shortfall divided by the refill rate, 0 when the amount fits."""
    bucket = TokenBucket(600, now=0.0, burst_seconds=60)  # 10 per second
    bucket.take(600)
    assert bucket.seconds_until(25, now=0.0) == pytest.approx(2.5)
    assert bucket.seconds_until(25, now=2.5) == 0.0
    assert bucket.seconds_until(1e9, now=2.5) == pytest.approx((600 - 25) / 10)


def test_unlimited_bucket_never_waits_and_never_changes() -> None:
    """A bucket with limit 0 is unlimited: no wait, and taking does not lower it."""
    bucket = TokenBucket(0, now=0.0, burst_seconds=60)
    assert bucket.unlimited
    bucket.take(1e12)
    assert bucket.seconds_until(1e12, now=0.0) == 0.0
    assert bucket.level == 0


# --- admission ----------------------------------------------------------------


async def test_full_bucket_admits_a_burst_then_waits_one_refill_interval() -> None:
    """With rpm=60 and a full bucket, 60 acquires pass at once and the 61st waits about 1 s."""
    time = FakeTime()
    limits = limiter(time, rpm=60)
    for _ in range(60):
        await limits.acquire(0, 0)
    assert time.now == 0.0
    assert time.naps == []
    await limits.acquire(0, 0)
    assert time.now == pytest.approx(1.0)


async def test_steady_rate_after_the_burst_is_the_limit_per_minute() -> None:
    """After the burst, acquires are admitted one per 60/rpm seconds."""
    time = FakeTime()
    limits = limiter(time, rpm=120)
    for _ in range(120):
        await limits.acquire(0, 0)
    for _ in range(240):
        await limits.acquire(0, 0)
    assert time.now == pytest.approx(120.0)


async def test_input_token_bucket_blocks_a_large_estimate_until_refilled() -> None:
    """An input estimate larger than the level waits for the refill to cover the difference."""
    time = FakeTime()
    limits = limiter(time, itpm=6000)  # 100 tokens per second
    await limits.acquire(5000, 0)
    assert time.now == 0.0
    await limits.acquire(3000, 0)  # level 1000: 2000 more needed
    assert time.now == pytest.approx(20.0)
    assert limits.buckets[Bucket.INPUT_TOKENS].level == pytest.approx(0.0, abs=1e-6)


async def test_output_token_bucket_blocks_like_the_input_bucket() -> None:
    """The output-token bucket holds a call whose output estimate does not fit."""
    time = FakeTime()
    limits = limiter(time, otpm=600)  # 10 tokens per second
    await limits.acquire(0, 600)
    await limits.acquire(0, 50)
    assert time.now == pytest.approx(5.0)


async def test_estimate_above_capacity_waits_for_a_full_bucket_not_forever() -> None:
    """An estimate above the bucket's capacity is admitted once the bucket is full, leaving a debt."""
    time = FakeTime()
    limits = limiter(time, itpm=6000)
    await limits.acquire(1000, 0)
    await limits.acquire(20_000, 0)  # capacity is 6000: wait until full, i.e. 1000 / 100 per s
    assert time.now == pytest.approx(10.0)
    assert limits.buckets[Bucket.INPUT_TOKENS].level == pytest.approx(6000 - 20_000)
    await limits.acquire(1, 0)  # the debt is repaid first
    assert time.now == pytest.approx(10.0 + 14_001 / 100)


async def test_the_slowest_bucket_decides_the_wait() -> None:
    """A call waits for the bucket that needs the longest refill, not the first one short."""
    time = FakeTime()
    limits = limiter(time, rpm=60, itpm=600, otpm=6000)
    await limits.acquire(600, 6000)
    await limits.acquire(100, 100)  # requests 1 s, input 10 s, output 1 s
    assert time.now == pytest.approx(10.0)


async def test_long_waits_are_taken_in_short_naps() -> None:
    """The limiter never sleeps more than half a second at a time, so pauses and shares apply promptly."""
    time = FakeTime()
    limits = limiter(time, rpm=6)
    for _ in range(7):
        await limits.acquire(0, 0)
    assert time.now == pytest.approx(10.0)
    assert max(time.naps) <= 0.5


# --- reconciliation -----------------------------------------------------------


async def test_reconcile_with_higher_usage_puts_the_bucket_in_debt() -> None:
    """Reported usage above the estimate drives the level below zero; the next call waits for repayment."""
    time = FakeTime()
    limits = limiter(time, itpm=6000, otpm=600)
    permit = await limits.acquire(1000, 100)
    limits.reconcile(permit, 8000, 700)
    assert limits.buckets[Bucket.INPUT_TOKENS].level == pytest.approx(-2000)
    assert limits.buckets[Bucket.OUTPUT_TOKENS].level == pytest.approx(-100)
    await limits.acquire(100, 0)  # input: 2100 short at 100/s; output: 100 short at 10/s
    assert time.now == pytest.approx(21.0)


async def test_reconcile_with_lower_usage_gives_tokens_back() -> None:
    """Reported usage below the estimate returns the difference to the bucket."""
    time = FakeTime()
    limits = limiter(time, itpm=6000)
    permit = await limits.acquire(5000, 0)
    limits.reconcile(permit, 1000, 0)
    assert limits.buckets[Bucket.INPUT_TOKENS].level == pytest.approx(5000)
    await limits.acquire(5000, 0)
    assert time.now == 0.0


async def test_reconcile_of_a_refused_call_refunds_the_whole_estimate() -> None:
    """Reconciling with zero usage (a refused call) returns the whole estimate but not the request."""
    time = FakeTime()
    limits = limiter(time, rpm=60, itpm=6000)
    permit = await limits.acquire(4000, 0)
    limits.reconcile(permit, 0, 0)
    assert limits.buckets[Bucket.INPUT_TOKENS].level == pytest.approx(6000)
    assert limits.buckets[Bucket.REQUESTS].level == pytest.approx(59)


# --- pause --------------------------------------------------------------------


async def test_pause_holds_the_next_acquire_until_it_ends() -> None:
    """pause(seconds) delays an acquire until the pause is over, even with an unlimited quota."""
    time = FakeTime()
    limits = limiter(time)
    limits.pause(7.5)
    assert limits.paused_for == pytest.approx(7.5)
    await limits.acquire(0, 0)
    assert time.now == pytest.approx(7.5)
    assert limits.paused_for == 0.0


async def test_a_shorter_pause_does_not_shorten_a_longer_one() -> None:
    """A second, shorter pause keeps the later end of the two."""
    time = FakeTime()
    limits = limiter(time)
    limits.pause(10)
    limits.pause(2)
    await limits.acquire(0, 0)
    assert time.now == pytest.approx(10.0)


async def test_pause_blocks_every_waiting_acquire() -> None:
    """While paused, every concurrent acquire waits; all are admitted once the pause ends."""
    clock = ManualClock()
    limits = RateLimiter(rpm=600, clock=clock.clock, sleep=clock.sleep, **MINUTE)
    limits.pause(5.0)
    tasks = [asyncio.create_task(limits.acquire(10, 10)) for _ in range(3)]
    await clock.advance(4.9)
    assert not any(task.done() for task in tasks)
    await clock.advance(0.2)
    assert all(task.done() for task in tasks)
    assert limits.buckets[Bucket.REQUESTS].level == pytest.approx(597, abs=0.1)


async def test_pause_during_a_wait_extends_it() -> None:
    """A pause that starts while a call waits for refill holds that call too."""
    clock = ManualClock()
    limits = RateLimiter(rpm=60, clock=clock.clock, sleep=clock.sleep, **MINUTE)
    for _ in range(60):
        await limits.acquire(0, 0)
    task = asyncio.create_task(limits.acquire(0, 0))  # needs 1 s of refill
    await clock.advance(0.1)
    limits.pause(3.0)  # until t=3.1
    await clock.advance(2.9)
    assert not task.done()
    await clock.advance(0.6)
    assert task.done()


# --- unlimited ----------------------------------------------------------------


async def test_limit_zero_is_unlimited_and_never_waits() -> None:
    """With every limit 0, any number of calls of any size pass without a single nap."""
    time = FakeTime()
    limits = limiter(time)
    for _ in range(1000):
        permit = await limits.acquire(1e9, 1e9)
        limits.reconcile(permit, 5e9, 5e9)
    assert time.now == 0.0
    assert time.naps == []


async def test_only_configured_buckets_limit() -> None:
    """An unlimited token bucket does not hold a call that the request bucket admits."""
    time = FakeTime()
    limits = limiter(time, rpm=60)
    await limits.acquire(1e12, 1e12)
    assert time.now == 0.0


# --- share --------------------------------------------------------------------


async def test_set_share_halves_capacity_and_refill_rate() -> None:
    """set_share(0.5) halves each bucket's capacity and its refill rate."""
    time = FakeTime()
    limits = limiter(time, rpm=120)
    limits.set_share(0.5)
    bucket = limits.buckets[Bucket.REQUESTS]
    assert bucket.capacity == 60
    assert bucket.level == pytest.approx(60)  # a full bucket stays full
    for _ in range(60):
        await limits.acquire(0, 0)
    assert time.now == 0.0
    await limits.acquire(0, 0)
    assert time.now == pytest.approx(1.0)  # 1 per second, not 2
    time.now += 1000
    bucket.refill(time.now)
    assert bucket.level == pytest.approx(60)


def test_set_share_keeps_the_level_in_proportion() -> None:
    """Changing the share scales the current level with the capacity, debts included."""
    time = FakeTime()
    limits = limiter(time, itpm=1000)
    bucket = limits.buckets[Bucket.INPUT_TOKENS]
    bucket.take(1500)  # level -500
    limits.set_share(0.25)
    assert bucket.level == pytest.approx(-125)
    assert bucket.capacity == 250


def test_set_share_is_clamped_to_a_sane_range() -> None:
    """A share of 0 is raised to 1 % and a share above 1 is cut to 1."""
    time = FakeTime()
    limits = limiter(time, rpm=1000)
    limits.set_share(0)
    assert limits.share == pytest.approx(0.01)
    assert limits.buckets[Bucket.REQUESTS].capacity == pytest.approx(10)
    limits.set_share(5)
    assert limits.share == 1.0
    assert limits.buckets[Bucket.REQUESTS].capacity == 1000


# --- response headers ---------------------------------------------------------


def test_header_limit_is_adopted() -> None:
    """A requests-limit header different from the setting becomes the bucket's limit, scaled by share."""
    time = FakeTime()
    limits = limiter(time, rpm=60)
    limits.set_share(0.5)
    limits.observe_headers({REQ_LIMIT: "1000"}, None)
    bucket = limits.buckets[Bucket.REQUESTS]
    assert bucket.limit == 1000
    assert bucket.capacity == 500
    assert bucket.level == pytest.approx(500)  # it was full, so it stays full


async def test_header_limit_is_adopted_when_configured_unlimited() -> None:
    """With rpm=0 (unlimited) configured, the API's requests-limit header turns the bucket on."""
    time = FakeTime()
    limits = limiter(time)
    limits.observe_headers({REQ_LIMIT: "600"}, None)
    bucket = limits.buckets[Bucket.REQUESTS]
    assert not bucket.unlimited
    assert bucket.level == pytest.approx(600)
    for _ in range(600):
        await limits.acquire(0, 0)
    assert time.now == 0.0
    await limits.acquire(0, 0)
    assert time.now == pytest.approx(0.1)


def test_unreadable_or_zero_headers_are_ignored() -> None:
    """A limit of 0 or a non-numeric header leaves the buckets as they were."""
    time = FakeTime()
    limits = limiter(time, rpm=60)
    permit = Permit(0, 0, spent_after={Bucket.REQUESTS: 1.0})
    limits.observe_headers({REQ_LIMIT: "0", REQ_REMAINING: "many"}, permit)
    limits.observe_headers({REQ_LIMIT: "", IN_REMAINING: "x"}, permit)
    assert limits.buckets[Bucket.REQUESTS].limit == 60
    assert limits.buckets[Bucket.REQUESTS].level == 60


async def test_remaining_header_lowers_the_level_to_the_replicas_share() -> None:
    """remaining × share becomes the level; the request that carried the header is not counted twice."""
    time = FakeTime()
    limits = limiter(time, rpm=600)
    limits.set_share(0.5)
    permit = await limits.acquire(0, 0)
    limits.observe_headers({REQ_REMAINING: "100"}, permit)
    assert limits.buckets[Bucket.REQUESTS].level == pytest.approx(50)


async def test_remaining_header_subtracts_calls_sent_after_that_request() -> None:
    """Calls this replica admitted after the permit are not yet in the header, so they are subtracted."""
    time = FakeTime()
    limits = limiter(time, rpm=600)
    limits.set_share(0.5)
    first = await limits.acquire(0, 0)
    for _ in range(3):
        await limits.acquire(0, 0)
    limits.observe_headers({REQ_REMAINING: "100"}, first)
    assert limits.buckets[Bucket.REQUESTS].level == pytest.approx(50 - 3)


async def test_remaining_header_raises_the_level_only_when_the_api_has_plenty_left() -> None:
    """Near empty, the organisation's figure only ever lowers the level (replicas racing on stale
    figures would overshoot); with at least a quarter of the API's bucket left (an idle quota),
    half the room it shows may be used at once."""
    time = FakeTime()
    limits = limiter(time, rpm=60)
    bucket = limits.buckets[Bucket.REQUESTS]
    for _ in range(50):
        await limits.acquire(0, 0)
    permit = await limits.acquire(0, 0)  # level 9
    limits.observe_headers({REQ_LIMIT: "60", REQ_REMAINING: "12"}, permit)
    assert bucket.level == 9  # 12 of 60 left: not plenty, and 12 > 9
    limits.observe_headers({REQ_LIMIT: "60", REQ_REMAINING: "40"}, permit)
    assert bucket.level == pytest.approx(20)  # plenty: half of the 40 shown


async def test_a_local_debt_is_repaid_by_refill_not_forgiven_by_a_header() -> None:
    """Real usage above the estimate is a debt; a later header showing some room (the API's bucket
    far from idle) does not cancel it."""
    time = FakeTime()
    limits = limiter(time, itpm=6000)
    permit = await limits.acquire(1000, 0)
    limits.reconcile(permit, 9000, 0)  # local level -3000
    later = await limits.acquire(0, 0)  # waits for the debt's refill
    level = limits.buckets[Bucket.INPUT_TOKENS].level
    limits.observe_headers({IN_REMAINING: "1400"}, later)
    assert limits.buckets[Bucket.INPUT_TOKENS].level == pytest.approx(min(level, 1400))


async def test_remaining_header_without_a_permit_is_ignored() -> None:
    """Without a permit (nothing to correct for) the remaining header does not move the level."""
    time = FakeTime()
    limits = limiter(time, rpm=600)
    await limits.acquire(0, 0)
    limits.observe_headers({REQ_REMAINING: "3"}, None)
    assert limits.buckets[Bucket.REQUESTS].level == pytest.approx(599)


async def test_remaining_header_of_an_unlimited_bucket_is_ignored() -> None:
    """A remaining header for a bucket without a limit (and no limit header) changes nothing."""
    time = FakeTime()
    limits = limiter(time, rpm=60)
    permit = await limits.acquire(0, 0)
    limits.observe_headers({OUT_REMAINING: "5"}, permit)
    assert limits.buckets[Bucket.OUTPUT_TOKENS].unlimited
    await limits.acquire(0, 1e9)
    assert time.now == 0.0


async def test_remaining_header_updates_the_metric() -> None:
    """The corrected level is published on the limiter_remaining gauge."""
    time = FakeTime()
    metrics = Metrics()
    limits = RateLimiter(rpm=600, metrics=metrics, clock=time.clock, sleep=time.sleep, **MINUTE)
    permit = await limits.acquire(0, 0)
    limits.observe_headers({REQ_REMAINING: "42"}, permit)
    assert metrics.registry.get_sample_value("docmill_limiter_remaining", {"bucket": "requests"}) == 42
    assert metrics.registry.get_sample_value("docmill_limiter_wait_seconds_count") == 1


async def test_remaining_token_header_does_not_count_the_request_twice() -> None:
    """The input-tokens-remaining header already counts this call's tokens: the level is remaining × share."""
    time = FakeTime()
    limits = limiter(time, itpm=10_000)
    permit = await limits.acquire(1000, 0)
    limits.reconcile(permit, 1000, 0)
    limits.observe_headers({IN_LIMIT: "10000", IN_REMAINING: "5000"}, permit)
    assert limits.buckets[Bucket.INPUT_TOKENS].level == pytest.approx(5000)  # actual: 4000


# --- several replicas sharing one quota ---------------------------------------------


class _Nap:
    """What the simulated ``sleep`` returns: awaiting it hands the wake-up time to the driver."""

    __slots__ = ("until",)

    def __init__(self, until: float) -> None:
        self.until = until

    def __await__(self) -> Generator[_Nap, None, None]:
        yield self


class VirtualTime:
    """Shared simulated time; the driver moves it from event to event."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> _Nap:
        # A real clock always moves on between two naps; a float sum may not
        # (now + 1e-17 == now), which would stall the simulation, not the limiter.
        return _Nap(self.now + max(seconds, 1e-9))


@dataclass
class Server:
    """The organisation's request bucket as the API keeps it: refused calls get a 429.

    It holds ``burst_seconds`` of refill (the API may hold far less than a minute) and
    answers with the limit, what remains, and when the bucket will be full again.
    """

    rpm: float
    burst_seconds: float = 60.0
    level: float = field(init=False)
    updated: float = 0.0
    ok: int = 0  # calls of the replicas that the API accepted
    rejected: int = 0  # calls of the replicas that got a 429
    tenant_ok: int = 0  # calls of another client that the API accepted

    def __post_init__(self) -> None:
        self.level = self.capacity

    @property
    def capacity(self) -> float:
        return self.rpm * self.burst_seconds / 60

    def call(self, now: float) -> tuple[dict[str, str], float | None]:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rpm / 60)
        self.updated = now
        headers = {REQ_LIMIT: str(int(self.rpm))}
        retry_after = None
        if self.level >= 1:
            self.level -= 1
            self.ok += 1
        else:
            self.rejected += 1
            retry_after = (1 - self.level) * 60 / self.rpm
        headers[REQ_REMAINING] = str(max(0, math.floor(self.level)))
        # Whole seconds, rounded down, like an RFC 3339 timestamp without fractions.
        full_at = math.floor(now + (self.capacity - self.level) * 60 / self.rpm)
        headers[REQ_RESET] = datetime.fromtimestamp(full_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return headers, retry_after


Response = tuple[Permit, dict[str, str], float | None]  # permit, headers, retry-after of a 429


@dataclass
class Replica:
    limiter: RateLimiter
    acquiring: Coroutine[Any, Any, Permit] | None = None
    in_flight: int = 0


def simulate(
    *,
    replicas: int,
    rpm: float,
    minutes: float,
    latency: float,
    jitter: float,
    max_in_flight: int,
    seed: int,
    share: float | None = None,
    tenant_rpm: float = 0.0,
    burst_seconds: float = 60.0,
    join_at: float | None = None,
) -> tuple[int, Server]:
    """Replicas that always have work call a modelled API; returns their permits and the server.

    ``share`` overrides each replica's share (1/replicas); ``tenant_rpm`` is
    another client of the same organisation, calling at a steady rate; the
    API holds ``burst_seconds`` of refill; with ``join_at``, the last replica
    joins the running group at that second (the others' shares shrink then).
    """
    time = VirtualTime()
    server = Server(rpm, burst_seconds)
    rng = random.Random(seed)
    fleet = [
        Replica(RateLimiter(rpm=rpm, clock=time.clock, sleep=time.sleep, wall_clock=time.clock))
        for _ in range(replicas)
    ]
    starting = replicas - 1 if join_at is not None else replicas
    for replica in fleet[:starting]:
        replica.limiter.set_share(share if share is not None else 1 / starting)
    events: list[tuple[float, int, int, Response | None]] = []
    seq = 0
    permits = 0

    def schedule(when: float, index: int, response: Response | None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (when, seq, index, response))

    def drive(index: int) -> None:
        """Runs the replica's acquire until it sleeps; sends every call it admits."""
        nonlocal permits
        replica = fleet[index]
        while True:
            if replica.acquiring is None:
                if replica.in_flight >= max_in_flight:
                    return
                replica.acquiring = replica.limiter.acquire(0, 0)
            try:
                nap = replica.acquiring.send(None)
            except StopIteration as admitted:
                replica.acquiring = None
                permits += 1
                replica.in_flight += 1
                headers, retry_after = server.call(time.now)
                arrival = time.now + latency + rng.uniform(0, jitter)
                schedule(arrival, index, (admitted.value, headers, retry_after))
                continue
            assert isinstance(nap, _Nap)
            schedule(nap.until, index, None)
            return

    for index in range(starting):
        drive(index)
    joining = -2
    if join_at is not None:
        schedule(join_at, joining, None)
    tenant = -1
    if tenant_rpm:
        schedule(0.0, tenant, None)
    end = minutes * 60
    while events:
        when, _, index, response = heapq.heappop(events)
        if when > end:
            break
        time.now = when
        if index == joining:
            for replica in fleet:
                replica.limiter.set_share(share if share is not None else 1 / replicas)
            drive(len(fleet) - 1)
            continue
        if index == tenant:
            _, refused = server.call(time.now)
            if refused is None:
                server.ok -= 1
                server.tenant_ok += 1
            else:
                server.rejected -= 1
            schedule(time.now + 60 / tenant_rpm, tenant, None)
            continue
        replica = fleet[index]
        if response is None:
            drive(index)
            continue
        permit, headers, retry_after = response
        replica.in_flight -= 1
        # As the Claude backend does: the call is answered, its headers observed, a 429 reported.
        replica.limiter.reconcile(permit, 0, 0)
        replica.limiter.observe_headers(headers, permit)
        if retry_after is not None:
            replica.limiter.rate_limited(retry_after, headers)
        if replica.acquiring is None:
            drive(index)
    for replica in fleet:
        if replica.acquiring is not None:
            replica.acquiring.close()
    return permits, server


@pytest.mark.parametrize(
    ("latency", "jitter", "max_in_flight", "seed"),
    [
        (0.0, 0.0, 1, 0),
        (0.05, 0.1, 2, 1),
        (0.8, 0.4, 8, 2),
        (2.0, 1.0, 32, 3),
        (5.0, 5.0, 64, 4),
    ],
)
@pytest.mark.parametrize("burst_seconds", [60.0, 5.0, 1.0])
def test_three_replicas_share_one_quota(
    latency: float, jitter: float, max_in_flight: int, seed: int, burst_seconds: float
) -> None:
    """Three replicas at share 1/3 against one 600 rpm quota use ≥ 95 % of it, measured from the
    first request, over 5 min with < 1 % 429s, whether the API holds a minute's burst or one second's."""
    rpm, minutes = 600, 5
    permits, server = simulate(
        replicas=3,
        rpm=rpm,
        minutes=minutes,
        latency=latency,
        jitter=jitter,
        max_in_flight=max_in_flight,
        seed=seed,
        burst_seconds=burst_seconds,
    )
    quota = rpm * minutes
    assert server.ok <= quota + server.capacity
    if max_in_flight * 3 * 60 / (latency + jitter / 2 + 1e-9) >= 1.2 * rpm:  # enough calls in flight
        # Slow start needs a few round trips to fill the pipe: at 5-10 s per answer that is ~20 s
        # of a 5-minute run (and a 1-second bucket leaves no burst to make it up).
        assert server.ok >= (0.90 if latency >= 5 else 0.95) * quota
    assert server.rejected < 0.01 * permits


@pytest.mark.parametrize("burst_seconds", [60.0, 5.0, 1.0])
def test_a_replica_that_joins_starts_from_what_is_left(burst_seconds: float) -> None:
    """Two replicas run; a third joins after a minute. It starts slowly from what the headers say
    is left, so the quota stays used and the join costs < 1 % 429s."""
    rpm, minutes = 600, 3
    permits, server = simulate(
        replicas=3,
        rpm=rpm,
        minutes=minutes,
        latency=0.8,
        jitter=0.4,
        max_in_flight=64,
        seed=9,
        burst_seconds=burst_seconds,
        join_at=60.0,
    )
    assert server.ok >= 0.95 * rpm * minutes
    assert server.rejected < 0.01 * permits


def test_a_4x_era_limiter_bursts_into_429s_where_the_api_holds_seconds() -> None:
    """The reason for all of the above: a limiter that assumes a full minute's bucket fires its
    whole window at start against an API that holds five seconds, and is answered 429s."""
    time = VirtualTime()
    server = Server(600, burst_seconds=5.0)
    old = RateLimiter(rpm=600, clock=time.clock, sleep=time.sleep, burst_seconds=60.0, slow_start=False)
    new = RateLimiter(rpm=600, clock=time.clock, sleep=time.sleep)
    burst = 0
    while True:  # everything the old limiter admits at t=0
        coroutine = old.acquire(0, 0)
        try:
            coroutine.send(None)
        except StopIteration:
            burst += 1
            server.call(0.0)
            continue
        coroutine.close()
        break
    assert burst == 600
    assert server.rejected == burst - 50
    admitted_at_start = 0
    while True:
        coroutine = new.acquire(0, 0)
        try:
            coroutine.send(None)
        except StopIteration:
            admitted_at_start += 1
            continue
        coroutine.close()
        break
    assert admitted_at_start <= 10  # one second's worth at most, before any header is seen


def test_headers_teach_the_bucket_its_real_capacity() -> None:
    """remaining + refill until reset = what the API holds; the bucket holds as much, no more."""
    time = FakeTime(start=1_000.0)
    limits = RateLimiter(rpm=600, clock=time.clock, sleep=time.sleep, wall_clock=time.clock)
    bucket = limits.buckets[Bucket.REQUESTS]
    assert bucket.capacity == pytest.approx(10)  # one second's worth until told otherwise
    reset = datetime.fromtimestamp(1_002, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    limits.observe_headers({REQ_LIMIT: "600", REQ_REMAINING: "30", REQ_RESET: reset}, None)
    assert bucket.capacity == pytest.approx(50)  # 30 left + 2 s × 10/s
    limits.rate_limited(1.0, {REQ_LIMIT: "600", REQ_REMAINING: "0"})
    # A 429: the API holds less than assumed (half the burst) and the rate backs off (× 0.7).
    assert bucket.capacity == pytest.approx(50 * 0.5 * 0.7)


async def test_slow_start_admits_a_few_calls_then_one_more_per_answer() -> None:
    clock = ManualClock()
    limits = RateLimiter(clock=clock.clock, sleep=clock.sleep)
    tasks = [asyncio.create_task(limits.acquire(0, 0)) for _ in range(limits.window)]
    await clock.advance(5.0)  # the ramp lets them through within a few seconds
    permits = [task.result() for task in tasks]
    waiter = asyncio.create_task(limits.acquire(0, 0))
    await clock.advance(5.0)
    assert not waiter.done()  # the window is full: no answer yet
    limits.answered(permits[0])
    limits.answered(permits[0])  # idempotent
    assert limits.window == len(permits) + 1
    await clock.advance(0.1)
    assert waiter.done()
    assert limits.in_flight == len(permits)


def test_a_429_halves_the_window() -> None:
    time = FakeTime()
    limits = RateLimiter(clock=time.clock, sleep=time.sleep)
    limits.window, limits.in_flight = 64, 40
    limits.rate_limited(2.0, None)
    assert limits.window == 20
    assert limits.paused_for == pytest.approx(2.0)


def test_a_429_with_room_in_every_bucket_slows_the_ramp_not_the_rate() -> None:
    """An acceleration limit refuses a sharp ramp while the buckets have room: the replica pauses
    and halves its window, but its rate and the bucket's capacity stay; a 429 from an empty
    bucket cuts both."""
    time = FakeTime(start=1_000.0)
    limits = RateLimiter(rpm=600, itpm=60_000, clock=time.clock, sleep=time.sleep, wall_clock=time.clock)
    bucket = limits.buckets[Bucket.REQUESTS]
    limits.window, limits.in_flight = 64, 40
    room = {
        REQ_LIMIT: "600",
        REQ_REMAINING: "7",
        "anthropic-ratelimit-input-tokens-limit": "60000",
        "anthropic-ratelimit-input-tokens-remaining": "900",
    }
    permit = Permit(input_tokens=500, output_tokens=0)
    capacity, rate = bucket.capacity, bucket.rate
    limits.rate_limited(1.0, room, permit)
    assert (limits.window, limits.paused_for) == (20, pytest.approx(1.0))
    assert (bucket.capacity, bucket.rate, limits.correction) == (capacity, rate, 1.0)
    # The input bucket could not hold this call's 500 tokens: that bucket was short.
    limits.rate_limited(1.0, {**room, "anthropic-ratelimit-input-tokens-remaining": "300"}, permit)
    assert limits.correction == pytest.approx(0.7)
    assert bucket.rate == pytest.approx(rate * 0.7)
    assert limits.buckets[Bucket.INPUT_TOKENS].burst_seconds == 1.0  # halved, down to its floor
    assert bucket.capacity == pytest.approx(capacity * 0.7)  # the requests bucket's burst is kept


def test_headers_correct_a_skewed_share() -> None:
    """Replicas whose shares add up to 1.5 (a stale backlog reading) still get < 1 % 429s at API latencies."""
    rpm, minutes = 600, 5
    permits, server = simulate(
        replicas=3, rpm=rpm, minutes=minutes, latency=2.0, jitter=1.0, max_in_flight=32, seed=5, share=0.5
    )
    assert server.ok >= 0.95 * rpm * minutes
    assert server.rejected < 0.01 * permits


def test_headers_make_room_for_another_tenant() -> None:
    """Another client spending 120 rpm of the quota is absorbed: the replicas use the rest with < 1 % 429s."""
    rpm, minutes, tenant_rpm = 600, 5, 120
    permits, server = simulate(
        replicas=3,
        rpm=rpm,
        minutes=minutes,
        latency=2.0,
        jitter=1.0,
        max_in_flight=32,
        seed=6,
        tenant_rpm=tenant_rpm,
    )
    assert server.tenant_ok >= tenant_rpm * minutes * 0.99
    assert server.ok + server.tenant_ok <= rpm * minutes + server.capacity
    assert server.ok >= 0.95 * (rpm * minutes - server.tenant_ok)
    assert server.rejected < 0.01 * permits


async def test_the_ramp_at_most_doubles_the_calls_of_the_second_before() -> None:
    """The API answers sharp ramps with 429s: started calls grow by at most 2× a second."""
    clock = ManualClock()
    limits = RateLimiter(clock=clock.clock, sleep=clock.sleep)
    limits.window = 10_000  # only the ramp holds calls here
    started: list[float] = []

    async def call() -> None:
        await limits.acquire(0, 0)
        started.append(clock.clock())

    tasks = [asyncio.create_task(call()) for _ in range(200)]
    for _ in range(60):
        await clock.advance(0.1)
    per_second = [sum(1 for t in started if second <= t < second + 1) for second in range(5)]
    assert per_second[0] <= 2
    assert all(later <= max(2, 2 * earlier) for earlier, later in itertools.pairwise(per_second))
    assert sum(per_second) >= 40  # and it does grow
    for task in tasks:
        task.cancel()
