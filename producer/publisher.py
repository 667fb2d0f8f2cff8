"""The async API upstream services use to publish document references.

    async with Publisher(kafka_settings, topic="docmill.documents") as publisher:
        await publisher.publish(DocumentRef(document_id="inv-1", uri="file:///data/inv-1.pdf"))

The producer is idempotent with ``acks=all``: a reference acknowledged by
``publish`` is on every in-sync replica, and client retries never duplicate it.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from schemas.messages import DocumentRef
from schemas.metrics import PublisherMetrics, PublishOutcome
from schemas.settings import KafkaSettings, ProducerSettings
from schemas.topics import DOCUMENTS_TOPIC, Header


class Publisher:
    """Publishes DocumentRefs keyed by document id."""

    def __init__(
        self,
        kafka: KafkaSettings | None = None,
        *,
        topic: str = DOCUMENTS_TOPIC,
        producer: ProducerSettings | None = None,
        metrics: PublisherMetrics | None = None,
    ) -> None:
        producer_settings = producer or ProducerSettings()
        compression = producer_settings.compression
        self.topic = topic
        self.metrics = metrics or PublisherMetrics()
        self._producer = AIOKafkaProducer(
            **(kafka or KafkaSettings()).client_kwargs(),
            acks="all",
            enable_idempotence=True,
            compression_type=None if compression == "none" else compression,
            linger_ms=producer_settings.linger_ms,
            max_batch_size=256 * 1024,
        )

    async def __aenter__(self) -> Self:
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # release the half-opened client before failing
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def enqueue(self, ref: DocumentRef) -> asyncio.Future[RecordMetadata]:
        """Hands a reference to the batching producer; the future resolves on acknowledgement.

        Use this to publish many references quickly; ``publish`` waits for each one.
        """
        headers: list[tuple[str, bytes]] = [(Header.SCHEMA_VERSION, str(ref.schema_version).encode())]
        if ref.job_id:
            headers.append((Header.JOB_ID, ref.job_id.encode()))
        future: asyncio.Future[RecordMetadata] = await self._producer.send(
            self.topic, value=ref.to_json(), key=ref.document_id.encode(), headers=headers
        )
        future.add_done_callback(self._count)
        return future

    def _count(self, future: asyncio.Future[RecordMetadata]) -> None:
        failed = future.cancelled() or future.exception() is not None
        outcome = PublishOutcome.FAILED if failed else PublishOutcome.PUBLISHED
        self.metrics.record_publish(self.topic, outcome)

    async def publish(self, ref: DocumentRef) -> RecordMetadata:
        """Publishes one reference and returns once Kafka has acknowledged it."""
        return await (await self.enqueue(ref))

    async def flush(self) -> None:
        await self._producer.flush()

    @property
    def client(self) -> Any:
        """The underlying aiokafka producer, for callers that need its metadata."""
        return self._producer
