"""Three replicas in one group under a shared API quota: one killed, one added, nothing lost."""

from __future__ import annotations

import collections
import signal
from pathlib import Path

import pytest

from schemas.settings import KafkaSettings, TopicSettings
from tests.anthropic_sim import AnthropicSimulator
from tests.helpers.cli import start_consumer
from tests.helpers.kafka import outcomes, publish_invoices, read_all, wait_until

pytestmark = pytest.mark.integration


# 2 in flight keeps every replica at its bound, so rebalances land while partitions are paused.
@pytest.mark.parametrize("in_flight", [16, 2])
async def test_group_survives_a_kill_and_a_join_without_losing_or_skipping(
    in_flight: int, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """3 replicas share a rate-limited API; SIGKILL one and add one mid-run; every document ends once."""
    ids = await publish_invoices(kafka, topics, tmp_path, 300)
    log = tmp_path / "replicas.log"
    # 1,200 requests/min shared by the whole group, answered in ~0.2 s.
    with AnthropicSimulator(rpm=1200, latency=0.2) as sim:
        limits = ("--rpm", "1200", "--max-in-flight", str(in_flight))
        replicas = [start_consumer(kafka, topics, group_id, tmp_path, sim, log, *limits) for _ in range(3)]
        try:

            async def progressed(count: int) -> bool:
                return len(await read_all(kafka, topics.results_topic)) >= count

            await wait_until(lambda: progressed(60), 90, "60 results from the group")
            replicas[0].send_signal(signal.SIGKILL)
            replicas[0].wait(10)
            joiner = start_consumer(kafka, topics, group_id, tmp_path, sim, log, *limits, "--drain")
            assert joiner.wait(180) == 0
            for replica in replicas[1:]:
                replica.send_signal(signal.SIGTERM)
                assert replica.wait(60) == 0
        finally:
            for replica in replicas:
                if replica.poll() is None:
                    replica.kill()
        rate_limited = sim.stats.status(429)
        total = sim.stats.total_requests

    counts = await outcomes(kafka, topics)
    missing = set(ids) - set(counts)
    twice = collections.Counter({doc: n - 1 for doc, n in counts.items() if n > 1})
    print(
        f"\n3-replica group: {len(ids)} documents, {len(missing)} missing, "
        f"{sum(twice.values())} processed twice, {rate_limited} of {total} API calls answered 429"
    )
    assert not missing
    assert set(counts) == set(ids)
    # The replicas shared the quota instead of fighting over it.
    assert rate_limited <= max(3, total // 100)
