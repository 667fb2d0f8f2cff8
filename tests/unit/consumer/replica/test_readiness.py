"""/readyz: ready while owning partitions, not stopping, connected, and heard from Kafka recently."""

from __future__ import annotations

import asyncio

from consumer.replica.readiness import Readiness
from tests.helpers.clock import ManualClock


def test_ready_only_when_every_condition_holds() -> None:
    """Each condition alone turns readiness off."""
    clock = ManualClock()
    owns = [True]
    stopping = asyncio.Event()
    readiness = Readiness(
        owns_partitions=lambda: owns[0], stopping=stopping, clock=clock.clock, silence_seconds=30
    )
    assert not readiness.ready()  # not connected yet
    readiness.connected()
    assert readiness.ready()
    owns[0] = False
    assert not readiness.ready()
    owns[0] = True
    stopping.set()
    assert not readiness.ready()
    stopping.clear()
    readiness.disconnected()
    assert not readiness.ready()


def test_kafka_silence_turns_readiness_off_until_kafka_answers() -> None:
    """Thirty seconds without an answer from Kafka: not ready; the next answer makes it ready again."""
    clock = ManualClock()
    readiness = Readiness(owns_partitions=lambda: True, stopping=asyncio.Event(), clock=clock.clock)
    readiness.connected()
    clock.now = 29.9
    assert readiness.ready()
    clock.now = 30.0
    assert not readiness.ready()
    readiness.heard_from_kafka()
    assert readiness.ready()
