"""Fixtures shared by every test: the session's Kafka broker and unique topics per test."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator

import pytest

from consumer.extract.ocr.pool import OcrPool
from consumer.ops.topics import ensure_topics
from schemas.settings import KafkaSettings, TopicSettings
from tests.anthropic_sim import AnthropicSimulator
from tests.helpers.ocr import ocr_pool as make_ocr_pool

BOOTSTRAP = os.environ.get("DOCMILL_TEST_BOOTSTRAP", "127.0.0.1:19092")


@pytest.fixture(scope="session")
def kafka() -> KafkaSettings:
    """Settings for the local test broker; fails loudly when it is not running."""
    host, port = BOOTSTRAP.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        pytest.fail(f"no Kafka broker on {BOOTSTRAP}: run the suite with `make test`")
    return KafkaSettings(bootstrap_servers=BOOTSTRAP)


@pytest.fixture
async def topics(kafka: KafkaSettings) -> TopicSettings:
    """Fresh topics (3 partitions each; the jobs topic 1) that no other test uses."""
    suffix = uuid.uuid4().hex[:10]
    names = TopicSettings(
        documents_topic=f"test.{suffix}.documents",
        results_topic=f"test.{suffix}.results",
        dlq_topic=f"test.{suffix}.dlq",
        jobs_topic=f"test.{suffix}.jobs",
    )
    await ensure_topics(kafka, names, partitions=3, replication_factor=1)
    return names


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[AnthropicSimulator]:
    """A Messages API simulator on 127.0.0.1 that the SDK in this process talks to."""
    with AnthropicSimulator() as simulator:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", simulator.base_url)
        yield simulator


@pytest.fixture
def group_id() -> str:
    return f"test-group-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def ocr_pool() -> Iterator[OcrPool]:
    """The local backend's OCR workers (real Tesseract), shared by the tests that read scans."""
    pool = make_ocr_pool()
    yield pool
    asyncio.run(pool.close())
