"""A running replica serves /healthz, /readyz and /metrics that reflect its work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiokafka.errors import KafkaConnectionError

from consumer.replica.quota_share import QuotaShare
from schemas.settings import KafkaSettings, TopicSettings
from tests.helpers.documents import document_ref, invoice_text, write_file
from tests.helpers.kafka import consumer_config, publish_raw, publish_refs, read_all, running, wait_until

pytestmark = pytest.mark.integration


async def test_metrics_and_health_endpoints_reflect_processing(
    kafka: KafkaSettings,
    topics: TopicSettings,
    group_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/metrics counts outcomes and dead letters; /readyz is 200 while assigned and Kafka answers."""
    refs = [
        document_ref(f"d{i}", write_file(tmp_path, f"d{i}.txt", invoice_text(f"N-{i}"))) for i in range(5)
    ]
    await publish_refs(kafka, topics.documents_topic, refs)
    await publish_raw(kafka, topics.documents_topic, [(b"bad", b"{not json")])
    async with running(consumer_config(kafka, topics, group_id, [tmp_path])) as service:

        async def all_published() -> bool:
            outcomes = len(await read_all(kafka, topics.results_topic))
            return (
                outcomes + len(await read_all(kafka, topics.dlq_topic)) >= 6
                and service.health.port is not None
            )

        await wait_until(all_published, 60, "six outcomes")
        base = f"http://127.0.0.1:{service.health.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
            async with http.get(f"{base}/metrics") as response:
                body = await response.text()

            # Kafka stops answering the replica's lag refresh, and has been silent longer than
            # the replica tolerates: still alive, no longer ready.
            async def unreachable(*_: object) -> None:
                raise KafkaConnectionError("broker unreachable")

            monkeypatch.setattr(QuotaShare, "read_lag", unreachable)
            service.readiness.silence_seconds = 0.5
            async with asyncio.timeout(10):  # a refresh already under way may still land once
                while True:
                    async with http.get(f"{base}/readyz") as response:
                        if response.status == 503:
                            break
                    await asyncio.sleep(0.1)
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
        assert 'docmill_documents_total{outcome="succeeded"} 5.0' in body
        assert 'docmill_documents_total{outcome="dead_lettered"} 1.0' in body
        assert 'docmill_dead_letters_total{error_class="InvalidMessage"} 1.0' in body
        assert "docmill_extraction_seconds_bucket" in body
        assert "document_id" not in body  # labels stay low-cardinality
