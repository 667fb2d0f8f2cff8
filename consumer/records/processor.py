"""One record's whole path: decode, fetch, inspect, extract, then store its result or dead letter.

Every step's failure goes to the fate table (``consumer.fate.table``), which
says what to do: dead-letter the record, retry the step, wait, or stop. A
Kafka failure while storing the outcome retries only the publish, never the
paid extraction. ``process`` returns only once the result or dead letter is
acknowledged by Kafka, so only then may the caller mark the offset done; it
raises ``Abandoned`` when the replica stops first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import structlog

from consumer.extract.base import Extractor
from consumer.fate.errors import UnexpectedError, UnknownExtractionSchema
from consumer.fate.table import Decision, Fate, FateTable, Stage
from consumer.fetch.documents import Document, check_declared_type, inspect_document
from consumer.fetch.fetcher import Fetcher
from consumer.records.emit import Emitter
from consumer.records.intake import decode_document_ref
from consumer.records.letters import Record, dead_letter, source_of
from consumer.records.log_context import bind_record, start_record
from schemas.extraction import load_schema
from schemas.messages import DeadLetter, DocumentRef, ExtractionResult
from schemas.metrics import Metrics

log = structlog.get_logger("docmill.consumer")

# Documents larger than this are inspected in a worker thread so that
# parsing a big PDF or image never stalls the event loop.
_THREAD_INSPECT_BYTES = 256 * 1024

T = TypeVar("T")


class Abandoned(Exception):
    """The replica is stopping before this record's outcome could be stored: leave it uncommitted."""


class _DeadLettered(Exception):
    def __init__(self, decision: Decision) -> None:
        super().__init__(str(decision.error))
        self.decision = decision


class _Reading:
    """What is known of a record so far: its reference once decoded, and the extraction's attempts."""

    __slots__ = ("attempts", "record", "ref", "started")

    def __init__(self, record: Record) -> None:
        self.record = record
        self.ref: DocumentRef | None = None
        self.attempts = 0
        self.started = time.monotonic()


class RecordProcessor:
    """Processes records; shared by every in-flight task of a replica."""

    def __init__(
        self,
        *,
        fetcher: Fetcher,
        extractor: Extractor,
        emitter: Emitter,
        fates: FateTable,
        metrics: Metrics,
        consumer_id: str,
        stopping: asyncio.Event,
    ) -> None:
        self._fetcher = fetcher
        self._extractor = extractor
        self._emitter = emitter
        self._fates = fates
        self._metrics = metrics
        self._consumer_id = consumer_id
        self._stopping = stopping

    async def process(self, record: Record) -> None:
        """Handles one record until its outcome is acknowledged by Kafka.

        Runs as its own task, whose private copy of the context carries the
        record's log fields: bound once, gone with the task, nothing to reset.
        Each step is tried once directly; only a failure enters the retry loop
        (the common path pays for no bookkeeping).
        """
        start_record(topic=record.topic, partition=record.partition, offset=record.offset)
        reading = _Reading(record)
        try:
            try:
                result = await self._extract(reading, 1)
            except Exception as raised:
                result = await self._retrying(
                    Stage.EXTRACT, raised, lambda attempt: self._extract(reading, attempt), reading.started
                )
            try:
                await self._emitter.publish_result(result)
            except Exception as raised:
                await self._retrying(
                    Stage.PUBLISH_RESULT, raised, lambda _: self._emitter.publish_result(result)
                )
        except _DeadLettered as dead:
            await self._dead_letter(reading, dead.decision)
            return
        self._succeeded(reading, result)

    # --- the steps -------------------------------------------------------------------

    async def _extract(self, reading: _Reading, attempt: int) -> ExtractionResult:
        """Attempt number ``attempt`` at the record's result."""
        reading.attempts = attempt
        ref = reading.ref
        if ref is None:
            ref = reading.ref = decode_document_ref(reading.record.value)
            bind_record(document_id=ref.document_id, job_id=ref.job_id)
        schema = load_schema(ref.extraction_schema)
        if schema is None:
            raise UnknownExtractionSchema(f"no extraction schema named {ref.extraction_schema!r}")
        document = await self._load(ref)
        extraction = await self._extractor.extract(document, schema)
        return ExtractionResult(
            document_id=ref.document_id,
            job_id=ref.job_id,
            uri=ref.uri,
            extraction_schema=ref.extraction_schema,
            data=extraction.data,
            backend=self._extractor.name,
            model=extraction.model,
            confidence=extraction.confidence,
            field_confidence=extraction.field_confidence,
            usage=extraction.usage,
            cost_usd=extraction.cost_usd,
            attempts=attempt,
            latency_seconds=time.monotonic() - reading.started,
            source=source_of(reading.record),
        )

    async def _load(self, ref: DocumentRef) -> Document:
        data, served_as = await self._fetcher.fetch_declared(ref.uri)
        if len(data) > _THREAD_INSPECT_BYTES:
            document = await asyncio.to_thread(inspect_document, data)
        else:
            document = inspect_document(data)
        check_declared_type(document, ref.content_type)
        check_declared_type(document, served_as)
        return document

    async def _retrying(
        self, stage: Stage, raised: Exception, step: Callable[[int], Awaitable[T]], since: float | None = None
    ) -> T:
        """After a step's first attempt raised ``raised``: what the fate table says, until it succeeds.

        ``step(attempt)`` makes attempt number ``attempt`` (1-based); the retry budget counts
        from ``since`` (when the first attempt started; default now).
        """
        attempts = self._fates.fresh(since).another()
        while True:
            decision = self._fates.decide(raised, attempts, stage, stopping=self._stopping.is_set())
            if decision.fate is Fate.DEAD_LETTER:
                raise _DeadLettered(decision)
            if decision.fate is Fate.STOP:
                raise Abandoned(str(decision.error))
            attempts = decision.attempts
            self._metrics.record_retry(decision.error.error_class)
            # A letter that cannot be stored holds its partition: an operator must know.
            report = log.error if stage is Stage.PUBLISH_LETTER else log.warning
            report(
                "record.retry",
                stage=stage,
                fate=decision.fate,
                error_class=decision.error.error_class,
                error=str(decision.error),
                attempt=attempts.made,
                delay_seconds=round(decision.delay, 3),
            )
            await self._pause(decision.delay, decision)
            attempts = attempts.another()
            try:
                return await step(attempts.made)
            except Exception as error:
                raised = error

    async def _pause(self, seconds: float, decision: Decision) -> None:
        """Sleeps before the next attempt; a stop request ends the wait (and the record) at once."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise Abandoned(f"stopping while waiting to retry: {decision.error}")

    # --- outcomes --------------------------------------------------------------------

    def _succeeded(self, reading: _Reading, result: ExtractionResult) -> None:
        ref = reading.ref
        end_to_end = (
            (datetime.now(UTC) - ref.submitted_at).total_seconds() if ref and ref.submitted_at else None
        )
        self._metrics.record_success(self._extractor.name, result.latency_seconds, end_to_end)
        if not log.is_enabled_for(logging.INFO):
            return  # the line's fields cost more to gather than the line would be worth
        log.info(
            "record.done",
            fate="succeeded",
            latency_seconds=round(result.latency_seconds, 4),
            attempts=result.attempts,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cost_usd=round(result.cost_usd, 6),
        )

    async def _dead_letter(self, reading: _Reading, decision: Decision) -> None:
        record, error = reading.record, decision.error
        if isinstance(error, UnexpectedError):
            self._metrics.record_unexpected_error()
            log.error("record.unexpected_error", error=str(error))
        # A failure while storing the result still reports the extraction's attempts.
        attempts = max(decision.attempts.made, reading.attempts)
        headers = list(record.headers or ())

        def letter_keeping(limit: int) -> DeadLetter:
            return dead_letter(
                record,
                reading.ref,
                decision,
                attempts=attempts,
                consumer_id=self._consumer_id,
                keep_value_bytes=limit,
            )

        try:
            await self._emitter.publish_dead_letter(letter_keeping, record.key, headers)
        except Exception as raised:
            await self._retrying(
                Stage.PUBLISH_LETTER,
                raised,
                lambda _: self._emitter.publish_dead_letter(letter_keeping, record.key, headers),
            )
        self._metrics.record_dead_letter(error.error_class)
        log.warning(
            "record.done",
            fate="dead_lettered",
            error_class=error.error_class,
            error=str(error),
            attempts=attempts,
        )
