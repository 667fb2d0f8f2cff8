"""Kafka for integration tests: publish raw records, read topics, run a replica in-process."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from consumer.extract.base import Extractor
from consumer.replica.service import ConsumerService
from consumer.replica.wiring import ConsumerConfig, build_replica
from producer.kafka_io import partitions_of, read_to_end
from schemas.messages import DocumentRef
from schemas.metrics import Metrics
from schemas.settings import (
    ConsumerSettings,
    ExtractionSettings,
    FetchSettings,
    KafkaSettings,
    TopicSettings,
)
from tests.helpers.documents import document_ref, invoice_text, write_file


async def publish_raw(
    kafka: KafkaSettings,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Publishes (key, value) pairs exactly as given."""
    producer = AIOKafkaProducer(**kafka.client_kwargs(), acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=key, value=value, headers=headers or []) for key, value in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def publish_refs(kafka: KafkaSettings, topic: str, refs: Iterable[DocumentRef]) -> None:
    await publish_raw(kafka, topic, ((r.document_id.encode(), r.to_json()) for r in refs))


async def read_all(kafka: KafkaSettings, topic: str) -> list[Any]:
    """Every record currently on a topic."""
    return [record async for record in read_to_end(kafka, topic)]


async def read_values(kafka: KafkaSettings, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await read_all(kafka, topic)]


async def committed(kafka: KafkaSettings, group_id: str, topic: str) -> dict[int, int | None]:
    """The group's committed offset of every partition of a topic."""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        return {
            p: await consumer.committed(TopicPartition(topic, p)) for p in await partitions_of(kafka, topic)
        }
    finally:
        await consumer.stop()


def consumer_config(
    kafka: KafkaSettings,
    topics: TopicSettings,
    group_id: str,
    roots: list[Path],
    *,
    backend: str = "local",
    consumer: dict[str, Any] | None = None,
    fetch: dict[str, Any] | None = None,
    extraction: dict[str, Any] | None = None,
) -> ConsumerConfig:
    return ConsumerConfig(
        kafka=kafka,
        topics=topics,
        consumer=ConsumerSettings(
            group_id=group_id,
            metrics_port=0,
            metrics_host="127.0.0.1",
            commit_interval_seconds=0.2,
            retry_base_seconds=0.05,
            retry_max_seconds=0.5,
            **(consumer or {}),
        ),
        fetch=FetchSettings(allowed_roots=roots, **(fetch or {})),
        extraction=ExtractionSettings(backend=backend, **(extraction or {})),
    )


async def drain(
    config: ConsumerConfig, timeout: float = 90.0, *, extractor: Extractor | None = None
) -> ConsumerService:
    """Runs one replica until it has drained the topic; returns it for its metrics.

    ``extractor`` replaces the one the settings name (e.g. one with a planted bug).
    """
    service = build_replica(config, Metrics(), extractor=extractor)
    await asyncio.wait_for(service.run(drain=True), timeout)
    return service


@contextlib.asynccontextmanager
async def running(
    config: ConsumerConfig, *, extractor: Extractor | None = None
) -> AsyncIterator[ConsumerService]:
    """A replica running in the background for the block, stopped cleanly after it."""
    service = build_replica(config, Metrics(), extractor=extractor)
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        service.stop()
        await asyncio.wait_for(task, 60)


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Polls an async condition until it holds; fails naming what it waited for."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


async def publish_invoices(kafka: KafkaSettings, topics: TopicSettings, root: Path, count: int) -> list[str]:
    """Writes ``count`` text invoices under ``root`` and publishes a reference to each; returns their ids."""
    ids = [f"doc-{i:04d}" for i in range(count)]
    refs = [document_ref(doc_id, write_file(root, f"{doc_id}.txt", invoice_text(doc_id))) for doc_id in ids]
    await publish_refs(kafka, topics.documents_topic, refs)
    return ids


async def outcomes(kafka: KafkaSettings, topics: TopicSettings) -> collections.Counter[str]:
    """How many results and dead letters each document id has."""
    counts: collections.Counter[str] = collections.Counter()
    for value in await read_values(kafka, topics.results_topic):
        counts[value["document_id"]] += 1
    for value in await read_values(kafka, topics.dlq_topic):
        counts[value["document_id"]] += 1
    return counts
