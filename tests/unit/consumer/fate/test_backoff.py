"""Unit tests of consumer.retry.Backoff: full-jitter delays, retry-after floors and give-up rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.fate.backoff import Backoff


@given(
    base=st.floats(min_value=0.01, max_value=10),
    cap=st.floats(min_value=0.01, max_value=120),
    attempt=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_within_full_jitter_window(base: float, cap: float, attempt: int, seed: int) -> None:
    """Every delay lies in [0, min(cap, base * 2**(attempt-1))]."""
    backoff = Backoff(base_seconds=base, max_seconds=cap)
    delay = backoff.delay(attempt, rng=random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_delays_are_jittered_and_grow_with_attempts() -> None:
    """Delays vary between draws and their window doubles per attempt until the cap."""
    backoff = Backoff(base_seconds=1.0, max_seconds=8.0)
    rng = random.Random(42)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (30, 8.0)]:
        draws = [backoff.delay(attempt, rng=rng) for _ in range(300)]
        assert max(draws) <= ceiling
        assert len(set(draws)) > 250  # jittered, not a fixed value
        assert max(draws) > ceiling * 0.9  # the whole window is used
        assert min(draws) < ceiling * 0.1


def test_same_seed_gives_same_delays() -> None:
    """With the same seeded Random the delays are reproducible."""
    backoff = Backoff()
    first = [backoff.delay(n, rng=random.Random(7)) for n in range(1, 7)]
    second = [backoff.delay(n, rng=random.Random(7)) for n in range(1, 7)]
    assert first == second


@given(
    attempt=st.integers(min_value=1, max_value=20),
    retry_after=st.floats(min_value=0, max_value=3600),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_retry_after_is_a_floor(attempt: int, retry_after: float, seed: int) -> None:
    """A server-given retry-after is never shortened; the delay is at least it."""
    backoff = Backoff(base_seconds=1.0, max_seconds=60.0)
    delay = backoff.delay(attempt, retry_after=retry_after, rng=random.Random(seed))
    assert delay >= retry_after
    assert delay <= max(retry_after, min(60.0, 2 ** (attempt - 1)))


def test_retry_after_beyond_the_cap_is_honoured() -> None:
    """A retry-after longer than max_seconds is still waited in full."""
    backoff = Backoff(base_seconds=1.0, max_seconds=5.0)
    assert backoff.delay(1, retry_after=120.0, rng=random.Random(1)) == 120.0


def test_zero_retry_after_still_jitters() -> None:
    """retry-after 0 is a floor of 0, not a fixed zero delay."""
    backoff = Backoff(base_seconds=1.0, max_seconds=60.0)
    delays = {backoff.delay(5, retry_after=0.0, rng=random.Random(s)) for s in range(20)}
    assert len(delays) == 20
    assert all(0 <= d <= 16.0 for d in delays)


@pytest.mark.parametrize(("attempt", "expected"), [(1, False), (5, False), (6, True), (9, True)])
def test_gives_up_by_attempts(attempt: int, expected: bool) -> None:
    """With max_attempts 6, a record that failed 6 times stops; 5 failures may retry."""
    backoff = Backoff(max_attempts=6, total_seconds=10_000)
    assert backoff.gives_up(attempt, elapsed=0.0, next_delay=1.0) is expected


@pytest.mark.parametrize(
    ("elapsed", "next_delay", "expected"),
    [(0.0, 10.0, False), (80.0, 20.0, False), (80.0, 20.5, True), (101.0, 0.0, True)],
)
def test_gives_up_by_total_time(elapsed: float, next_delay: float, expected: bool) -> None:
    """A retry whose wait would end past total_seconds is not taken."""
    backoff = Backoff(total_seconds=100.0, max_attempts=1000)
    assert backoff.gives_up(2, elapsed=elapsed, next_delay=next_delay) is expected
