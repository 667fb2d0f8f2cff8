"""Replicas as real processes: SIGKILL loses nothing, SIGTERM drains cleanly, secrets stay secret."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import KafkaSettings, TopicSettings
from tests.anthropic_sim import AnthropicSimulator
from tests.cli import DOCMILL
from tests.documents import invoice_text
from tests.integration.test_pipeline import _ref, _write
from tests.kafka_tools import committed, publish_refs, read_all, read_values, wait_until

pytestmark = pytest.mark.integration

API_KEY = "sk-ant-api03-NEVER-LOG-ME-0123456789abcdef"


def _start_consumer(
    kafka: KafkaSettings,
    topics: TopicSettings,
    group_id: str,
    root: Path,
    sim: Any,
    log: Path,
    *extra: str,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": sim.base_url,
        "DOCMILL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "DOCMILL_DOCUMENTS_TOPIC": topics.documents_topic,
        "DOCMILL_RESULTS_TOPIC": topics.results_topic,
        "DOCMILL_DLQ_TOPIC": topics.dlq_topic,
        "DOCMILL_GROUP_ID": group_id,
        "DOCMILL_ALLOWED_ROOTS": str(root),
        "DOCMILL_METRICS_PORT": "0",
        "DOCMILL_METRICS_HOST": "127.0.0.1",
        "DOCMILL_SESSION_TIMEOUT_SECONDS": "6",
        "DOCMILL_COMMIT_INTERVAL_SECONDS": "0.2",
    }
    with log.open("ab") as sink:
        return subprocess.Popen([DOCMILL, "consume", *extra], env=env, stdout=sink, stderr=sink)


async def _publish_invoices(kafka: KafkaSettings, topics: TopicSettings, root: Path, count: int) -> list[str]:
    ids = [f"doc-{i:04d}" for i in range(count)]
    refs = [_ref(doc_id, _write(root, f"{doc_id}.txt", invoice_text(doc_id))) for doc_id in ids]
    await publish_refs(kafka, topics.documents_topic, refs)
    return ids


async def _outcomes(kafka: KafkaSettings, topics: TopicSettings) -> collections.Counter[str]:
    """How many results and dead letters each document id has."""
    counts: collections.Counter[str] = collections.Counter()
    for value in await read_values(kafka, topics.results_topic):
        counts[value["document_id"]] += 1
    for value in await read_values(kafka, topics.dlq_topic):
        counts[value["document_id"]] += 1
    return counts


async def test_sigkill_mid_run_then_restart_loses_nothing(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """A replica killed with SIGKILL and restarted leaves every document with an outcome."""
    ids = await _publish_invoices(kafka, topics, tmp_path, 240)
    log = tmp_path / "consumer.log"
    with AnthropicSimulator(latency=0.15) as sim:
        victim = _start_consumer(kafka, topics, group_id, tmp_path, sim, log, "--max-in-flight", "16")
        try:

            async def some_done() -> bool:
                return len(await read_all(kafka, topics.results_topic)) >= 60

            await wait_until(some_done, 60, "60 results before the kill")
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
        assert len(await read_all(kafka, topics.results_topic)) < len(ids), "killed too late to test"

        survivor = _start_consumer(kafka, topics, group_id, tmp_path, sim, log, "--drain")
        assert survivor.wait(120) == 0

    counts = await _outcomes(kafka, topics)
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
    ids = await _publish_invoices(kafka, topics, tmp_path, 60)
    log = tmp_path / "consumer.log"
    with AnthropicSimulator(latency=1.0) as sim:
        process = _start_consumer(kafka, topics, group_id, tmp_path, sim, log, "--max-in-flight", "8")
        try:
            sim.wait_for(lambda stats: stats.in_flight >= 8, timeout=60)
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
        finally:
            if process.poll() is None:
                process.kill()
        requests_answered = sim.stats.total_requests

    outcomes = await _outcomes(kafka, topics)
    # Every call that was in flight at SIGTERM finished and was published.
    assert sum(outcomes.values()) >= 8
    assert sum(outcomes.values()) == requests_answered
    # The commit covers exactly the finished prefix of each partition: nothing skipped.
    records = await read_all(kafka, topics.documents_topic)
    done = set(outcomes)
    offsets = await committed(kafka, group_id, topics.documents_topic)
    for record in records:
        mark = offsets.get(record.partition) or 0
        if record.offset < mark:
            assert record.key.decode() in done, f"offset {record.offset} committed without an outcome"
    assert len(done) < len(ids)  # it really stopped early
    text = log.read_text()
    assert '"consumer.stopped"' in text
    assert API_KEY not in text
