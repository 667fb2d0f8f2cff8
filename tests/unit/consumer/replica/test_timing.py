"""The poll loop's periodic duties come due once their interval has passed since they last ran."""

from __future__ import annotations

from consumer.replica.timing import Every
from tests.helpers.clock import ManualClock


def test_due_after_the_interval_and_again_after_running() -> None:
    """Not due before the interval; due at it; running it restarts the interval."""
    clock = ManualClock()
    every = Every(1.0, clock.clock)
    assert not every.due()
    clock.now = 0.99
    assert not every.due()
    clock.now = 1.0
    assert every.due()
    every.ran()
    assert not every.due()
    clock.now = 2.5
    assert every.due()
