"""Unit tests of consumer.breaker.CircuitBreaker, on a manual clock: no real time passes."""

from __future__ import annotations

import asyncio
from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from consumer.throttle.breaker import BreakerState, CircuitBreaker
from schemas.metrics import Metrics
from tests.helpers.clock import ManualClock


def make_breaker(clock: ManualClock, **settings: float) -> CircuitBreaker:
    config: dict[str, float] = {
        "window": 10,
        "min_calls": 4,
        "failure_ratio": 0.5,
        "cooldown_seconds": 5.0,
        "max_cooldown_seconds": 60.0,
    } | settings
    return CircuitBreaker(
        window=int(config["window"]),
        min_calls=int(config["min_calls"]),
        failure_ratio=config["failure_ratio"],
        cooldown_seconds=config["cooldown_seconds"],
        max_cooldown_seconds=config["max_cooldown_seconds"],
        clock=clock.clock,
        sleep=clock.sleep,
    )


def trip(breaker: CircuitBreaker) -> None:
    while breaker.state is BreakerState.CLOSED:
        breaker.record_failure()


async def admitted_at(breaker: CircuitBreaker, clock: ManualClock, horizon: float = 1000.0) -> float:
    """The fake time at which a new admit() returns (advancing the clock as far as ``horizon``)."""

    async def timed() -> float:
        await breaker.admit()
        return clock.now

    task = asyncio.create_task(timed())
    await clock.advance(horizon)
    assert task.done(), "admit() never returned"
    return task.result()


# --- closed -------------------------------------------------------------------


async def test_stays_closed_below_min_calls() -> None:
    """Fewer than min_calls outcomes never open the breaker, even if all are failures."""
    clock = ManualClock()
    breaker = make_breaker(clock, min_calls=10, window=20)
    for _ in range(9):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert not breaker.is_open
    await breaker.admit()  # returns at once: no sleep needed
    assert clock.now == 0.0


def test_opens_when_the_failure_ratio_is_reached() -> None:
    """With min_calls reached, the breaker opens on the call that brings failures to the ratio."""
    clock = ManualClock()
    breaker = make_breaker(clock, min_calls=10, window=20, failure_ratio=0.5)
    for _ in range(5):
        breaker.record_success()
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED  # 9 calls: below min_calls
    breaker.record_failure()  # 10 calls, 5 failures
    assert breaker.state is BreakerState.OPEN
    assert breaker.is_open


def test_failures_below_the_ratio_keep_it_closed() -> None:
    """Successes interleaved with failures, below the ratio, keep the breaker closed indefinitely."""
    clock = ManualClock()
    breaker = make_breaker(clock, min_calls=10, window=20, failure_ratio=0.5)
    for _ in range(500):
        breaker.record_failure()
        breaker.record_success()
        breaker.record_success()
        assert breaker.state is BreakerState.CLOSED


def test_old_failures_slide_out_of_the_window() -> None:
    """Only the last ``window`` outcomes count: a burst of failures followed by successes is forgotten."""
    clock = ManualClock()
    breaker = make_breaker(clock, min_calls=4, window=10, failure_ratio=0.5)
    for _ in range(4):
        breaker.record_success()
    for _ in range(3):
        breaker.record_failure()
    for _ in range(10):
        breaker.record_success()
    for _ in range(4):
        breaker.record_failure()  # 4 of the last 10
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()  # 5 of the last 10
    assert breaker.state is BreakerState.OPEN


def test_neutral_outcomes_do_not_count() -> None:
    """record_neutral (a 400, a 429) is neither a success nor a failure for the ratio."""
    clock = ManualClock()
    breaker = make_breaker(clock, min_calls=4, window=10, failure_ratio=0.5)
    for _ in range(3):
        breaker.record_failure()
        breaker.record_neutral()
    assert breaker.state is BreakerState.CLOSED  # 3 calls counted
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


@given(
    outcomes=st.lists(st.booleans(), max_size=200),
    window=st.integers(min_value=1, max_value=30),
    min_calls=st.integers(min_value=1, max_value=30),
    ratio=st.sampled_from([0.1, 0.25, 0.5, 0.75, 1.0]),
)
def test_opens_exactly_when_the_windowed_ratio_says_so(
    outcomes: list[bool], window: int, min_calls: int, ratio: float
) -> None:
    """The breaker opens on the first failure that brings the windowed failure ratio to the threshold."""
    clock = ManualClock()
    breaker = make_breaker(clock, window=window, min_calls=min_calls, failure_ratio=ratio)
    model: deque[bool] = deque(maxlen=window)
    for failed in outcomes:
        model.append(failed)
        if failed:
            breaker.record_failure()
        else:
            breaker.record_success()
        should_open = failed and len(model) >= min_calls and sum(model) / len(model) >= ratio
        assert breaker.is_open == should_open
        if should_open:
            break


# --- open and half-open -------------------------------------------------------


async def test_open_breaker_blocks_then_admits_one_probe_after_the_cooldown() -> None:
    """While open, admit() waits; after the cooldown exactly one caller gets through as the probe."""
    clock = ManualClock()
    breaker = make_breaker(clock, cooldown_seconds=5.0)
    trip(breaker)
    first = asyncio.create_task(breaker.admit())
    second = asyncio.create_task(breaker.admit())
    await clock.advance(4.9)
    assert not first.done()
    assert not second.done()
    assert breaker.state is BreakerState.OPEN
    await clock.advance(0.2)
    assert first.done() != second.done()  # exactly one probe
    assert breaker.state is BreakerState.HALF_OPEN
    await clock.advance(100.0)  # the probe is still out: the other caller keeps waiting
    assert not (first.done() and second.done())
    breaker.record_success()
    await clock.advance(1.0)
    assert first.done()
    assert second.done()
    assert breaker.state is BreakerState.CLOSED


async def test_probe_success_closes_and_resets_the_cooldown() -> None:
    """A successful probe closes the breaker; the next trip waits the base cooldown again."""
    clock = ManualClock()
    breaker = make_breaker(clock, cooldown_seconds=5.0)
    trip(breaker)
    assert await admitted_at(breaker, clock, 20) == 5.0
    breaker.record_failure()  # probe fails: cooldown doubles to 10
    start = clock.now
    assert await admitted_at(breaker, clock, 20) == start + 10
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    await breaker.admit()  # closed: immediate
    trip(breaker)
    start = clock.now
    assert await admitted_at(breaker, clock, 20) == start + 5  # reset to the base cooldown


async def test_probe_failure_doubles_the_cooldown_up_to_the_cap() -> None:
    """Each failed probe reopens the breaker with twice the cooldown, never more than max_cooldown."""
    clock = ManualClock()
    breaker = make_breaker(clock, cooldown_seconds=5.0, max_cooldown_seconds=30.0)
    trip(breaker)
    waits = []
    for _ in range(6):
        start = clock.now
        probe_time = await admitted_at(breaker, clock, 100)
        waits.append(probe_time - start)
        assert breaker.state is BreakerState.HALF_OPEN
        clock.now = probe_time
        breaker.record_failure()
        assert breaker.state is BreakerState.OPEN
    assert waits == [5.0, 10.0, 20.0, 30.0, 30.0, 30.0]


async def test_failed_probe_lets_the_waiting_caller_probe_next() -> None:
    """A caller that waited during a failed probe becomes the next probe after the doubled cooldown."""
    clock = ManualClock()
    breaker = make_breaker(clock, cooldown_seconds=5.0)
    trip(breaker)
    await clock.advance(5.0)
    await breaker.admit()  # the probe
    waiter = asyncio.create_task(breaker.admit())
    await clock.advance(1.0)
    breaker.record_failure()  # at t=6: reopen until t=16
    await clock.advance(9.9)
    assert not waiter.done()
    await clock.advance(0.2)
    assert waiter.done()
    assert breaker.state is BreakerState.HALF_OPEN


async def test_neutral_outcome_of_the_probe_frees_the_probe_slot() -> None:
    """record_neutral during half-open lets the next caller probe, without closing or reopening."""
    clock = ManualClock()
    breaker = make_breaker(clock, cooldown_seconds=5.0)
    trip(breaker)
    await clock.advance(5.0)
    await breaker.admit()  # the probe
    waiter = asyncio.create_task(breaker.admit())
    await clock.advance(30.0)
    assert not waiter.done()
    breaker.record_neutral()  # e.g. the probe got a 400: says nothing about the API
    assert breaker.state is BreakerState.HALF_OPEN
    await clock.advance(1.0)  # the waiter checks every 0.5 s
    assert waiter.done()
    assert breaker.state is BreakerState.HALF_OPEN
    third = asyncio.create_task(breaker.admit())
    await clock.advance(30.0)
    assert not third.done()  # the waiter is now the probe
    breaker.record_success()
    await clock.advance(1.0)
    assert third.done()
    assert breaker.state is BreakerState.CLOSED


async def test_neutral_outcome_when_closed_changes_nothing() -> None:
    """record_neutral on a closed breaker leaves it closed and admitting at once."""
    clock = ManualClock()
    breaker = make_breaker(clock)
    breaker.record_neutral()
    assert breaker.state is BreakerState.CLOSED
    await breaker.admit()
    assert clock.now == 0.0


async def test_closing_forgets_the_failures_before_the_outage() -> None:
    """After a probe closes the breaker, one new failure does not reopen it (the window was cleared)."""
    clock = ManualClock()
    breaker = make_breaker(clock, min_calls=4, window=10)
    trip(breaker)
    await clock.advance(5.0)
    await breaker.admit()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


async def test_state_is_published_on_the_metric() -> None:
    """The breaker_state gauge follows closed (0), open (1) and half-open (2)."""
    clock = ManualClock()
    metrics = Metrics()
    breaker = CircuitBreaker(
        min_calls=1, window=1, cooldown_seconds=1.0, metrics=metrics, clock=clock.clock, sleep=clock.sleep
    )

    def gauge() -> float | None:
        return metrics.registry.get_sample_value("docmill_circuit_breaker_state")

    breaker.record_failure()
    assert gauge() == 1
    await clock.advance(1.0)
    await breaker.admit()
    assert gauge() == 2
    breaker.record_success()
    assert gauge() == 0


async def test_a_probe_that_never_reports_does_not_wedge_the_breaker() -> None:
    """A probe whose caller ends without an outcome (cancelled) frees the slot via probe_done()."""
    clock = ManualClock()
    breaker = make_breaker(clock, cooldown_seconds=5.0, max_cooldown_seconds=60.0)
    trip(breaker)
    probe = asyncio.create_task(breaker.admit())
    await clock.advance(5.0)
    assert probe.result() is True  # this caller is the probe
    waiter = asyncio.create_task(breaker.admit())
    try:
        await clock.advance(2.0)
        assert not waiter.done()  # one probe at a time
        breaker.probe_done()  # the caller's `finally`, after a cancellation recorded nothing
        await clock.advance(1.0)
        assert waiter.done()
        assert waiter.result() is True  # it becomes the next probe
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
