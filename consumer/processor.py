"""One record's whole path: decode, fetch, inspect, extract, then publish its result or dead letter.

A record's fate is decided here, in one place, by the class of its error:
permanent errors are dead-lettered at once, transient ones are retried with
backoff until the attempt or time budget runs out. ``process`` returns only
once the result or dead letter is acknowledged by Kafka; only then may the
caller mark the offset done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka.errors import KafkaConnectionError, KafkaError

from consumer.backends.base import Extraction, Extractor
from consumer.document import Document, check_declared_type, inspect_document
from consumer.emit import MAX_VERBATIM_BYTES, Emitter, original_value_fields
from consumer.errors import ProcessingError, PublishRejected, TransientError, UnknownExtractionSchema
from consumer.fetch import Fetcher
from consumer.intake import decode_document_ref
from consumer.retry import Backoff
from schemas.extraction import load_schema
from schemas.messages import DeadLetter, DocumentRef, ExtractionResult, SourcePosition
from schemas.metrics import Metrics

log = structlog.get_logger("docmill.consumer")

# Documents larger than this are inspected in a worker thread so that
# parsing a big PDF or image never stalls the event loop.
_THREAD_INSPECT_BYTES = 256 * 1024


# Error texts can quote hostile input; a letter keeps enough to understand, not all of it.
_MAX_ERROR_MESSAGE = 2000


class Abandoned(Exception):
    """The replica is stopping before this record's outcome could be published."""


@dataclass
class _Failure:
    error: ProcessingError
    attempts: int
    first_failure_at: datetime


class RecordProcessor:
    """Processes records; shared by every in-flight task of a replica."""

    def __init__(
        self,
        *,
        fetcher: Fetcher,
        extractor: Extractor,
        emitter: Emitter,
        metrics: Metrics,
        backoff: Backoff,
        consumer_id: str,
        stopping: asyncio.Event,
    ) -> None:
        self._fetcher = fetcher
        self._extractor = extractor
        self._emitter = emitter
        self._metrics = metrics
        self._backoff = backoff
        self._consumer_id = consumer_id
        self._stopping = stopping

    async def process(self, record: Any) -> None:
        """Handles one ConsumerRecord until its outcome is acknowledged by Kafka.

        Runs as its own task, whose private copy of the context carries the
        record's log fields: bound once, gone with the task, nothing to reset.
        """
        started = time.monotonic()
        source = SourcePosition(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
        )
        structlog.contextvars.bind_contextvars(
            topic=record.topic, partition=record.partition, offset=record.offset
        )
        ref: DocumentRef | None = None
        try:
            ref = decode_document_ref(record.value)
            structlog.contextvars.bind_contextvars(document_id=ref.document_id, job_id=ref.job_id)
            extraction, attempts = await self._extract_with_retries(ref)
            await self._publish_result(ref, extraction, attempts, source, started)
        except _FailedRecord as failed:
            await self._publish_dead_letter(record, ref, failed.failure, source)
        except ProcessingError as error:  # raised before any attempt (bad message, schema)
            failure = _Failure(error, attempts=1, first_failure_at=datetime.now(UTC))
            await self._publish_dead_letter(record, ref, failure, source)

    async def _extract_with_retries(self, ref: DocumentRef) -> tuple[Extraction, int]:
        schema = load_schema(ref.extraction_schema)
        if schema is None:
            raise UnknownExtractionSchema(f"no extraction schema named {ref.extraction_schema!r}")
        first_failure_at: datetime | None = None
        retry_started = time.monotonic()
        attempt = 0  # every attempt, reported in the result or letter
        spent = 0  # attempts that count against the retry budget
        while True:
            attempt += 1
            try:
                document = await self._load(ref)
                return await self._extractor.extract(document, schema), attempt
            except TransientError as error:
                first_failure_at = first_failure_at or datetime.now(UTC)
                if self._stopping.is_set():
                    raise Abandoned(str(error)) from None
                self._metrics.retries.labels(error.error_class).inc()
                if error.consumes_budget:
                    spent += 1
                    delay = self._backoff.delay(spent, error.retry_after)
                    if self._backoff.gives_up(spent, time.monotonic() - retry_started, delay):
                        raise _FailedRecord(_Failure(error, attempt, first_failure_at)) from None
                else:
                    # "Wait", not "failed": the limiter or the breaker also holds the
                    # next attempt; the budget restarts once the API is back.
                    spent, retry_started = 0, time.monotonic()
                    delay = self._backoff.delay(min(attempt, 8), error.retry_after)
                log.warning(
                    "record.retry",
                    error_class=error.error_class,
                    error=str(error),
                    attempt=attempt,
                    delay_seconds=round(delay, 3),
                )
                await asyncio.sleep(delay)
            except ProcessingError as error:
                raise _FailedRecord(_Failure(error, attempt, first_failure_at or datetime.now(UTC))) from None

    async def _load(self, ref: DocumentRef) -> Document:
        data, served_as = await self._fetcher.fetch_declared(ref.uri)
        if len(data) > _THREAD_INSPECT_BYTES:
            document = await asyncio.to_thread(inspect_document, data)
        else:
            document = inspect_document(data)
        check_declared_type(document, ref.content_type)
        check_declared_type(document, served_as)
        return document

    async def _publish_result(
        self,
        ref: DocumentRef,
        extraction: Extraction,
        attempts: int,
        source: SourcePosition,
        started: float,
    ) -> None:
        cost = extraction.cost_usd
        latency = time.monotonic() - started
        result = ExtractionResult(
            document_id=ref.document_id,
            job_id=ref.job_id,
            uri=ref.uri,
            extraction_schema=ref.extraction_schema,
            data=extraction.data,
            backend=self._extractor.name,
            model=extraction.model,
            confidence=extraction.confidence,
            usage=extraction.usage,
            cost_usd=cost,
            attempts=attempts,
            latency_seconds=latency,
            source=source,
        )
        await self._acknowledged(lambda: self._emitter.publish_result(result))
        end_to_end = (datetime.now(UTC) - ref.submitted_at).total_seconds() if ref.submitted_at else None
        self._metrics.record_success(self._extractor.name, latency, end_to_end)
        log.info(
            "record.done",
            fate="succeeded",
            latency_seconds=round(latency, 4),
            attempts=attempts,
            input_tokens=extraction.usage.input_tokens,
            output_tokens=extraction.usage.output_tokens,
            cost_usd=round(cost, 6),
        )

    async def _publish_dead_letter(
        self, record: Any, ref: DocumentRef | None, failure: _Failure, source: SourcePosition
    ) -> None:
        error = failure.error

        def letter_keeping(limit: int) -> DeadLetter:
            return DeadLetter(
                document_id=ref.document_id if ref else _key_text(record.key),
                job_id=ref.job_id if ref else None,
                original_key=_key_text(record.key),
                error_class=error.error_class,
                error_message=str(error)[:_MAX_ERROR_MESSAGE],
                retryable=error.retryable,
                attempts=failure.attempts,
                first_failure_at=failure.first_failure_at,
                last_failure_at=datetime.now(UTC),
                consumer_id=self._consumer_id,
                source=source,
                **original_value_fields(record.value, limit),
            )

        headers = list(record.headers or [])
        letter = letter_keeping(MAX_VERBATIM_BYTES)
        try:
            await self._acknowledged(lambda: self._emitter.publish_dead_letter(letter, record.key, headers))
        except PublishRejected:
            # The cluster takes smaller messages than the letter: keep the value's
            # beginning, size and hash rather than lose the whole letter.
            letter = letter_keeping(0)
            await self._acknowledged(lambda: self._emitter.publish_dead_letter(letter, record.key, headers))
        self._metrics.record_dead_letter(error.error_class)
        log.warning(
            "record.done",
            fate="dead_lettered",
            error_class=error.error_class,
            error=str(error),
            attempts=failure.attempts,
        )

    async def _acknowledged(self, publish: Callable[[], Awaitable[None]]) -> None:
        """Publishes, retrying Kafka failures until acknowledged or the replica stops.

        The offset must not be marked done before Kafka holds the outcome, so a
        broker outage stalls the record (and, through backpressure, the replica)
        rather than losing it.
        """
        attempt = 0
        while True:
            try:
                await publish()
                return
            except KafkaError as error:
                if not error.retriable and not isinstance(error, KafkaConnectionError):
                    raise PublishRejected(f"Kafka refused it: {type(error).__name__}: {error}") from None
                attempt += 1
                if self._stopping.is_set():
                    raise Abandoned(f"publishing failed while stopping: {error}") from None
                self._metrics.retries.labels(f"kafka_{type(error).__name__}").inc()
                log.warning("publish.retry", error=str(error), attempt=attempt)
                await asyncio.sleep(min(30.0, 0.5 * 2 ** min(attempt, 6)))


class _FailedRecord(Exception):
    def __init__(self, failure: _Failure) -> None:
        super().__init__(str(failure.error))
        self.failure = failure


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    return key.decode("utf-8", errors="replace")
