"""Builds a record's dead letter: the original value verbatim, what failed, and where it came from."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord

from consumer.fate.table import Decision
from schemas.limits import TRUNCATED_VALUE_BYTES
from schemas.messages import DeadLetter, DocumentRef, SourcePosition
from schemas.topics import Header

# Error texts can quote hostile input; a letter keeps enough to understand, not all of it.
MAX_ERROR_MESSAGE = 2000
# Headers are for filtering, not reading: the message's start is enough there.
_MAX_HEADER_MESSAGE = 1000

Record = ConsumerRecord[bytes, bytes]


def original_value_fields(value: bytes | None, limit: int) -> dict[str, Any]:
    """A record's value kept verbatim (UTF-8 text when it decodes, else base64), with size and hash.

    A value larger than ``limit`` keeps only its first bytes (``original_truncated``).
    """
    if value is None:
        return {"original_value": None}
    fields: dict[str, Any] = {
        "original_size": len(value),
        "original_sha256": hashlib.sha256(value).hexdigest(),
    }
    if len(value) > limit:
        kept = value[:TRUNCATED_VALUE_BYTES]
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


def dead_letter(
    record: Record,
    ref: DocumentRef | None,
    decision: Decision,
    *,
    attempts: int,
    consumer_id: str,
    keep_value_bytes: int,
) -> DeadLetter:
    """The letter for a record whose fate is a dead letter."""
    error = decision.error
    key = _key_text(record.key)
    return DeadLetter(
        document_id=ref.document_id if ref else key,
        job_id=ref.job_id if ref else None,
        original_key=key,
        error_class=error.error_class,
        error_message=str(error)[:MAX_ERROR_MESSAGE],
        error_category=error.category,
        retryable=error.retryable,
        attempts=attempts,
        first_failure_at=decision.attempts.first_failure_at or datetime.now(UTC),
        last_failure_at=datetime.now(UTC),
        consumer_id=consumer_id,
        source=source_of(record),
        **original_value_fields(record.value, keep_value_bytes),
    )


def source_of(record: Record) -> SourcePosition:
    return SourcePosition(
        topic=record.topic, partition=record.partition, offset=record.offset, timestamp_ms=record.timestamp
    )


def dead_letter_headers(
    letter: DeadLetter, original_headers: list[tuple[str, bytes]]
) -> list[tuple[str, bytes]]:
    """The original record's headers, then docmill's facts about the failure (``FAILURE_HEADERS``)."""
    ours = {
        Header.ERROR_CLASS: letter.error_class,
        Header.ERROR_MESSAGE: letter.error_message[:_MAX_HEADER_MESSAGE],
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


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    return key.decode("utf-8", errors="replace")
