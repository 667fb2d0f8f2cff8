"""How API failures end: transient ones are retried, permanent ones are dead-lettered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.settings import KafkaSettings, TopicSettings
from tests.anthropic_sim import ApiError
from tests.helpers.documents import document_ref, invoice_text, write_file
from tests.helpers.kafka import consumer_config, drain, publish_refs, read_values

pytestmark = pytest.mark.integration


async def _one_document(
    kafka: KafkaSettings, topics: TopicSettings, root: Path, document_id: str = "doc-1"
) -> None:
    path = write_file(root, f"{document_id}.txt", invoice_text("INV-1"))
    await publish_refs(kafka, topics.documents_topic, [document_ref(document_id, path)])


@pytest.mark.parametrize("status", [429, 500, 529, 504])
async def test_transient_statuses_are_retried_until_success(
    status: int,
    sim: Any,
    kafka: KafkaSettings,
    topics: TopicSettings,
    group_id: str,
    tmp_path: Path,
) -> None:
    """Two transient failures in a row, then success: one result that counts three attempts."""
    await _one_document(kafka, topics, tmp_path)
    sim.inject(status, count=2, retry_after=0.1 if status == 429 else None)

    service = await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="claude"))

    results = await read_values(kafka, topics.results_topic)
    assert [r["attempts"] for r in results] == [3]
    assert await read_values(kafka, topics.dlq_topic) == []
    assert sim.stats.status(status) == 2
    retries = service.metrics.registry.get_sample_value(
        "docmill_retries_total", {"reason": "RateLimited" if status == 429 else "ApiUnavailable"}
    )
    assert retries == 2


async def test_a_document_that_always_fails_while_others_succeed_is_dead_lettered_as_retryable(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """A poison document (500 on every attempt, the API otherwise healthy) ends after its budget."""
    refs = [
        document_ref(f"ok-{i}", write_file(tmp_path, f"ok-{i}.txt", invoice_text(f"OK-{i}")))
        for i in range(15)
    ]
    refs.append(document_ref("poison", write_file(tmp_path, "poison.txt", invoice_text("POISON"))))
    await publish_refs(kafka, topics.documents_topic, refs)
    healthy = sim.responder

    def poisoned(body: dict[str, Any]) -> dict[str, Any]:
        if "POISON" in str(body["messages"]):
            raise ApiError(500, "internal error on this document")
        reply: dict[str, Any] = healthy(body)
        return reply

    sim.responder = poisoned

    await drain(
        consumer_config(
            kafka,
            topics,
            group_id,
            [tmp_path],
            backend="claude",
            consumer={"max_attempts": 3, "max_in_flight": 1},
        )
    )

    letters = await read_values(kafka, topics.dlq_topic)
    assert [(d["document_id"], d["error_class"], d["retryable"]) for d in letters] == [
        ("poison", "ApiUnavailable", True)
    ]
    assert letters[0]["attempts"] >= 3
    assert len(await read_values(kafka, topics.results_topic)) == 15


async def test_api_400_is_dead_lettered_at_once(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """A request the API rejects as invalid is not retried."""
    await _one_document(kafka, topics, tmp_path)
    sim.inject(400, count=1)

    await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="claude"))

    letters = await read_values(kafka, topics.dlq_topic)
    assert [(d["error_class"], d["retryable"], d["attempts"]) for d in letters] == [
        ("ApiRequestRejected", False, 1)
    ]
    assert sim.stats.total_requests == 1


async def test_reply_failing_the_schema_is_asked_again_once_then_dead_lettered(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """Invalid structured output gets one corrective retry, then OutputValidationFailed."""
    await _one_document(kafka, topics, tmp_path)
    sim.responder = lambda body: {"invoice_number": 12345}

    await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="claude"))

    letters = await read_values(kafka, topics.dlq_topic)
    assert [d["error_class"] for d in letters] == ["OutputValidationFailed"]
    assert "invoice_number" in letters[0]["error_message"]
    assert sim.stats.total_requests == 2
    assert await read_values(kafka, topics.results_topic) == []


async def test_reply_corrected_on_the_second_ask_is_accepted(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """When the corrective retry returns valid data, the document succeeds."""
    await _one_document(kafka, topics, tmp_path)
    calls: list[int] = []

    def flaky(body: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            return {"invoice_number": "X"}
        return {
            "invoice_number": "X",
            "vendor_name": "V",
            "invoice_date": "2026-01-01",
            "currency": "EUR",
            "total_amount": 5,
        }

    sim.responder = flaky
    await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="claude"))

    results = await read_values(kafka, topics.results_topic)
    assert [r["data"]["total_amount"] for r in results] == [5]
    assert results[0]["usage"]["input_tokens"] > 0
