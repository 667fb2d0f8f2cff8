"""Publishes results and dead letters, and returns once Kafka has acknowledged them."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from consumer.fate.errors import PublishRejected
from consumer.fate.table import classify
from consumer.records.letters import dead_letter_headers
from schemas.limits import MAX_VERBATIM_BYTES, PRODUCER_MAX_REQUEST_BYTES
from schemas.messages import DeadLetter, ExtractionResult
from schemas.settings import KafkaSettings
from schemas.topics import Header


class Emitter:
    """The consumer's producer for the results and dead-letter topics."""

    def __init__(self, kafka: KafkaSettings, *, results_topic: str, dlq_topic: str) -> None:
        self.results_topic = results_topic
        self.dlq_topic = dlq_topic
        self._producer = AIOKafkaProducer(
            **kafka.client_kwargs(),
            acks="all",
            enable_idempotence=True,
            compression_type="zstd",
            linger_ms=5,
            # Results are small and many records finish together: large batches
            # keep the per-partition request pipeline from becoming the bottleneck.
            max_batch_size=512 * 1024,
            # Large enough for a dead letter that preserves a big original value verbatim.
            max_request_size=PRODUCER_MAX_REQUEST_BYTES,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish_result(self, result: ExtractionResult) -> None:
        headers = [(Header.JOB_ID, result.job_id.encode())] if result.job_id else []
        future = await self._producer.send(
            self.results_topic, value=result.to_json(), key=result.document_id.encode(), headers=headers
        )
        await future

    async def publish_dead_letter(
        self,
        letter_keeping: Callable[[int], DeadLetter],
        key: bytes | None,
        original_headers: list[tuple[str, bytes]],
    ) -> DeadLetter:
        """Publishes the letter that keeps the original value verbatim, or, should the cluster
        refuse that for good, the one that keeps only its beginning, size and hash.

        ``letter_keeping(limit)`` builds the letter keeping values up to ``limit`` bytes.
        Returns the letter that was stored.
        """
        letter = letter_keeping(MAX_VERBATIM_BYTES)
        try:
            await self._send_letter(letter, key, original_headers)
        except KafkaError as error:
            if not isinstance(classify(error), PublishRejected):
                raise
            letter = letter_keeping(0)
            await self._send_letter(letter, key, original_headers)
        return letter

    async def _send_letter(
        self, letter: DeadLetter, key: bytes | None, original_headers: list[tuple[str, bytes]]
    ) -> None:
        future = await self._producer.send(
            self.dlq_topic,
            value=letter.to_json(),
            key=key,
            headers=dead_letter_headers(letter, original_headers),
        )
        await future
