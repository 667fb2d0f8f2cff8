"""Outages and a spent budget slow the consumer down; they never flood the dead-letter topic."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import KafkaSettings, TopicSettings
from tests.helpers.documents import document_ref, invoice_text, write_file
from tests.helpers.kafka import consumer_config, publish_refs, read_all, running, wait_until

pytestmark = pytest.mark.integration


async def _publish(kafka: KafkaSettings, topics: TopicSettings, root: Path, count: int) -> None:
    refs = [
        document_ref(f"d{i}", write_file(root, f"d{i}.txt", invoice_text(f"N-{i}"))) for i in range(count)
    ]
    await publish_refs(kafka, topics.documents_topic, refs)


async def test_an_outage_leaves_documents_waiting_not_dead_lettered(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """Every call fails with 529 for a while: the breaker opens, nothing is dead-lettered, all finish."""
    sim.latency = 0.05
    await _publish(kafka, topics, tmp_path, 30)
    sim.fail_rate(529, 1.0)
    config = consumer_config(
        kafka,
        topics,
        group_id,
        [tmp_path],
        backend="claude",
        # Without the breaker, two failed attempts would dead-letter a document.
        consumer={"max_attempts": 2, "max_in_flight": 8},
        extraction={"breaker_cooldown_seconds": 0.5},
    )
    async with running(config) as service:

        async def breaker_open() -> bool:
            return service.metrics.registry.get_sample_value("docmill_circuit_breaker_state") == 1

        await wait_until(breaker_open, 30, "the breaker to open")
        calls_when_opened = sim.stats.total_requests
        await asyncio.sleep(3)  # the outage goes on: the breaker only lets probes through
        probes = sim.stats.total_requests - calls_when_opened
        assert probes <= 6
        assert await read_all(kafka, topics.dlq_topic) == []

        sim.fail_rate(529, 0.0)  # the API recovers

        async def all_done() -> bool:
            return len(await read_all(kafka, topics.results_topic)) >= 30

        await wait_until(all_done, 60, "every result")
    assert await read_all(kafka, topics.dlq_topic) == []
    assert service.metrics.registry.get_sample_value("docmill_circuit_breaker_state") == 0


async def test_spend_limit_pauses_consumption_raises_a_metric_and_dead_letters_nothing(
    sim: Any,
    kafka: KafkaSettings,
    topics: TopicSettings,
    group_id: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A spend-capped 429 pauses calls, sets docmill_spend_limit_reached, and documents wait."""
    sim.latency = 0.05
    await _publish(kafka, topics, tmp_path, 10)
    sim.spend_limit_reached = True
    config = consumer_config(
        kafka,
        topics,
        group_id,
        [tmp_path],
        backend="claude",
        consumer={"max_attempts": 1},
        extraction={"spend_limit_probe_seconds": 1.0},
    )
    async with running(config) as service:

        async def capped() -> bool:
            return service.metrics.registry.get_sample_value("docmill_spend_limit_reached") == 1

        await wait_until(capped, 30, "the spend-limit gauge")
        first = sim.stats.total_requests
        await asyncio.sleep(2.5)  # an observation window: how many calls reach the API meanwhile
        assert sim.stats.total_requests - first <= 4  # a probe a second, not a stampede
        assert await read_all(kafka, topics.dlq_topic) == []

        sim.spend_limit_reached = False  # an operator raised the limit

        async def all_done() -> bool:
            return len(await read_all(kafka, topics.results_topic)) >= 10

        await wait_until(all_done, 60, "every result")
    assert service.metrics.registry.get_sample_value("docmill_spend_limit_reached") == 0
    assert await read_all(kafka, topics.dlq_topic) == []
    assert "api.spend_limit_reached" in capsys.readouterr().out
