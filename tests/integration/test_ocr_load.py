"""A replica busy with OCR stays alive to its group and its orchestrator, and takes no more
reading work than it can finish within the grace period."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from consumer.extract.local import LocalExtractor
from schemas.settings import KafkaSettings, TopicSettings
from tests.helpers.documents import document_ref, invoice_text, write_file
from tests.helpers.kafka import consumer_config, outcomes, publish_refs, running
from tests.helpers.ocr import ocr_pool
from tests.helpers.scans import render, scanned_pdf

pytestmark = pytest.mark.integration

DOCUMENTS = 16
GRACE_SECONDS = 3.0


async def test_healthz_answers_within_a_second_while_every_ocr_worker_is_busy(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """Sixteen four-page scans on one worker: more OCR than the session timeout lasts.
    /healthz and /readyz answer within a second throughout, the replica keeps its partitions
    (every document has exactly one outcome), and it never holds more records than its pool
    can read within the grace period."""
    pages = [render(invoice_text(f"LOAD-{index}").splitlines()) for index in range(4)]
    refs = [
        document_ref(f"scan-{index}", write_file(tmp_path, f"scan-{index}.pdf", scanned_pdf(pages)))
        for index in range(DOCUMENTS)
    ]
    await publish_refs(kafka, topics.documents_topic, refs)
    pool = ocr_pool(workers=1, timeout_seconds=120, max_pages=4, dpi=300, grace_seconds=GRACE_SECONDS)
    config = consumer_config(
        kafka,
        topics,
        group_id,
        [tmp_path],
        consumer={"session_timeout_seconds": 6, "shutdown_grace_seconds": GRACE_SECONDS, "max_in_flight": 32},
    )
    slowest = 0.0
    busiest = capacity = 0
    checks = 0
    async with running(config, extractor=LocalExtractor(pool)) as service, aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 240
        while service.health.port is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{service.health.port}"
        while sum((await outcomes(kafka, topics)).values()) < DOCUMENTS:
            assert time.monotonic() < deadline, "the scans were not all read within 4 minutes"
            for path in ("/healthz", "/readyz"):
                started = time.monotonic()
                async with http.get(base + path, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    elapsed = time.monotonic() - started
                    if pool.pending:
                        assert response.status == 200, path
                        slowest = max(slowest, elapsed)
                        checks += 1
            async with http.get(base + "/metrics") as response:
                in_flight = _gauge(await response.text(), "docmill_in_flight")
            busiest = max(busiest, in_flight)
            # At most what one worker reads in the grace period, at the speed measured so far
            # (a record admitted just before a slower measure may remain).
            capacity = max(capacity, pool.capacity)
            assert in_flight <= capacity
            await asyncio.sleep(0.2)
    counts = await outcomes(kafka, topics)
    assert counts == {f"scan-{index}": 1 for index in range(DOCUMENTS)}  # no rebalance re-did any
    assert checks > 20
    assert slowest < 1.0
    assert 1 <= busiest < DOCUMENTS / 2  # backpressure: never the whole backlog at once


def _gauge(exposition: str, name: str) -> int:
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError(f"{name} is not in /metrics")
