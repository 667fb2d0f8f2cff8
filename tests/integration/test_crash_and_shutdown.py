"""Replicas as real processes: SIGKILL loses nothing, SIGTERM drains cleanly, secrets stay secret."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from schemas.settings import KafkaSettings, TopicSettings
from tests.anthropic_sim import AnthropicSimulator
from tests.helpers.cli import API_KEY, start_consumer
from tests.helpers.kafka import committed, outcomes, publish_invoices, read_all, wait_until

pytestmark = pytest.mark.integration


async def test_sigkill_mid_run_then_restart_loses_nothing(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """A replica killed with SIGKILL and restarted leaves every document with an outcome."""
    ids = await publish_invoices(kafka, topics, tmp_path, 240)
    log = tmp_path / "consumer.log"
    with AnthropicSimulator(latency=0.15) as sim:
        victim = start_consumer(kafka, topics, group_id, tmp_path, sim, log, "--max-in-flight", "16")
        try:

            async def some_done() -> bool:
                return len(await read_all(kafka, topics.results_topic)) >= 60

            await wait_until(some_done, 60, "60 results before the kill")
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
        assert len(await read_all(kafka, topics.results_topic)) < len(ids), "killed too late to test"

        survivor = start_consumer(kafka, topics, group_id, tmp_path, sim, log, "--drain")
        assert survivor.wait(120) == 0

    counts = await outcomes(kafka, topics)
    missing = set(ids) - set(counts)
    duplicates = {doc_id: n - 1 for doc_id, n in counts.items() if n > 1}
    print(
        f"\nSIGKILL test: {len(ids)} documents, {len(missing)} missing, "
        f"{sum(duplicates.values())} processed twice"
    )
    assert not missing
    assert set(counts) == set(ids)
    assert API_KEY not in log.read_text()


async def test_sigterm_finishes_in_flight_records_commits_and_exits_zero(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """SIGTERM stops intake, lets in-flight calls finish, commits them, and exits 0."""
    ids = await publish_invoices(kafka, topics, tmp_path, 60)
    log = tmp_path / "consumer.log"
    with AnthropicSimulator(latency=1.0) as sim:
        process = start_consumer(kafka, topics, group_id, tmp_path, sim, log, "--max-in-flight", "8")
        try:
            sim.wait_for(lambda stats: stats.in_flight >= 8, timeout=60)
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
        finally:
            if process.poll() is None:
                process.kill()
        requests_answered = sim.stats.total_requests

    finished = await outcomes(kafka, topics)
    # Every call that was in flight at SIGTERM finished and was published.
    assert sum(finished.values()) >= 8
    assert sum(finished.values()) == requests_answered
    # The commit covers exactly the finished prefix of each partition: nothing skipped.
    records = await read_all(kafka, topics.documents_topic)
    done = set(finished)
    offsets = await committed(kafka, group_id, topics.documents_topic)
    for record in records:
        mark = offsets.get(record.partition) or 0
        if record.offset < mark:
            assert record.key.decode() in done, f"offset {record.offset} committed without an outcome"
    assert len(done) < len(ids)  # it really stopped early
    text = log.read_text()
    assert '"consumer.stopped"' in text
    assert API_KEY not in text
