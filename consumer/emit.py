"""Publishes results and dead letters, and says when Kafka has acknowledged them."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.messages import DeadLetter, ExtractionResult
from schemas.settings import KafkaSettings
from schemas.topics import Header

# Values up to this size travel verbatim in their dead letter (base64 grows them by a
# third; the dead-letter topic is created to accept 32 MB messages).
MAX_VERBATIM_BYTES = 16 * 1024 * 1024
# What is kept of a larger value, or of any value when the cluster refuses the letter.
TRUNCATED_BYTES = 64 * 1024


def original_value_fields(value: bytes | None, limit: int = MAX_VERBATIM_BYTES) -> dict[str, Any]:
    """A record's value kept verbatim (UTF-8 text when it decodes, else base64), with size and hash."""
    if value is None:
        return {"original_value": None}
    fields: dict[str, Any] = {
        "original_size": len(value),
        "original_sha256": hashlib.sha256(value).hexdigest(),
    }
    if len(value) > limit:
        kept = value[:TRUNCATED_BYTES]
        return {
            **fields,
            "original_value": base64.standard_b64encode(kept).decode("ascii"),
            "original_encoding": "base64",
            "original_truncated": True,
        }
    try:
        return {**fields, "original_value": value.decode("utf-8"), "original_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {
            **fields,
            "original_value": base64.standard_b64encode(value).decode("ascii"),
            "original_encoding": "base64",
        }


def dead_letter_headers(
    letter: DeadLetter, original_headers: list[tuple[str, bytes]]
) -> list[tuple[str, bytes]]:
    """The original record's headers, then docmill's facts about the failure."""
    ours = {
        Header.ERROR_CLASS: letter.error_class,
        Header.ERROR_MESSAGE: letter.error_message[:1000],
        Header.RETRYABLE: str(letter.retryable).lower(),
        Header.ATTEMPTS: str(letter.attempts),
        Header.SOURCE_TOPIC: letter.source.topic,
        Header.SOURCE_PARTITION: str(letter.source.partition),
        Header.SOURCE_OFFSET: str(letter.source.offset),
        Header.SOURCE_TIMESTAMP: str(letter.source.timestamp_ms or ""),
        Header.CONSUMER_ID: letter.consumer_id,
    }
    # The original headers are kept verbatim (a replay re-publishes them); the job
    # header is added only when the producer did not set one.
    if letter.job_id and all(name != Header.JOB_ID for name, _ in original_headers):
        ours[Header.JOB_ID] = letter.job_id
    kept = [(name, value) for name, value in original_headers if name not in ours]
    return kept + [(name, value.encode()) for name, value in ours.items()]


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
            max_request_size=34 * 1024 * 1024,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish_result(self, result: ExtractionResult) -> None:
        headers = [(Header.JOB_ID, result.job_id.encode())] if result.job_id else []
        await self._producer.send_and_wait(
            self.results_topic,
            value=result.to_json(),
            key=result.document_id.encode(),
            headers=headers,
        )

    async def publish_dead_letter(
        self, letter: DeadLetter, key: bytes | None, original_headers: list[tuple[str, bytes]]
    ) -> None:
        await self._producer.send_and_wait(
            self.dlq_topic,
            value=letter.to_json(),
            key=key,
            headers=dead_letter_headers(letter, original_headers),
        )
