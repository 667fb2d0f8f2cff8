"""Dead letters: the original value kept verbatim, the failure's facts in headers a replay drops."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from consumer.fate.errors import DocumentNotFound
from consumer.fate.table import Attempts, Decision, Fate
from consumer.ops.dlq import original_bytes, replay_headers
from consumer.records.letters import Record, dead_letter, dead_letter_headers, original_value_fields
from schemas.limits import TRUNCATED_VALUE_BYTES
from schemas.topics import FAILURE_HEADERS, Header


def record(value: bytes | None, headers: tuple[tuple[str, bytes], ...] = ()) -> Record:
    return ConsumerRecord(
        topic="documents",
        partition=2,
        offset=41,
        timestamp=1_700_000_000_000,
        timestamp_type=0,
        key=b"doc-1",
        value=value,
        checksum=None,
        serialized_key_size=5,
        serialized_value_size=len(value or b""),
        headers=headers,
    )


def decision() -> Decision:
    failed_at = datetime(2026, 12, 1, tzinfo=UTC)
    return Decision(Fate.DEAD_LETTER, DocumentNotFound("gone"), Attempts(made=1, first_failure_at=failed_at))


def test_text_values_are_kept_as_text_and_binary_ones_as_base64() -> None:
    """UTF-8 values stay readable; anything else is base64; both carry their size and SHA-256."""
    text = original_value_fields(b'{"uri": "x"}', limit=1024)
    assert text["original_value"] == '{"uri": "x"}'
    assert text["original_encoding"] == "utf-8"
    binary = original_value_fields(b"\xff\x00\xfe", limit=1024)
    assert base64.standard_b64decode(binary["original_value"]) == b"\xff\x00\xfe"
    assert binary["original_encoding"] == "base64"
    assert binary["original_sha256"] == hashlib.sha256(b"\xff\x00\xfe").hexdigest()
    assert binary["original_size"] == 3


def test_values_over_the_limit_keep_their_beginning_size_and_hash() -> None:
    """A value too large to keep verbatim keeps its first bytes and says it was truncated."""
    value = b"x" * (TRUNCATED_VALUE_BYTES * 2)
    kept = original_value_fields(value, limit=1024)
    assert kept["original_truncated"] is True
    assert base64.standard_b64decode(kept["original_value"]) == value[:TRUNCATED_VALUE_BYTES]
    assert kept["original_size"] == len(value)
    assert kept["original_sha256"] == hashlib.sha256(value).hexdigest()


def test_a_letter_round_trips_to_the_original_bytes() -> None:
    """What a replay publishes is exactly the value that was consumed."""
    for value in (b'{"document_id": "d"}', b"\x80\x81 not utf-8"):
        letter = dead_letter(
            record(value), None, decision(), attempts=1, consumer_id="c", keep_value_bytes=1024
        )
        assert original_bytes(letter) == value
        assert letter.document_id == "doc-1"  # the key, when the value was not a reference
        assert letter.source.offset == 41


def test_the_failure_headers_are_exactly_the_ones_a_replay_drops() -> None:
    """Every header docmill adds about a failure is in FAILURE_HEADERS, so none leaks into a replay."""
    original = (("trace-id", b"abc"), (Header.JOB_ID, b"job-1"))
    letter = dead_letter(
        record(b"{}", original), None, decision(), attempts=1, consumer_id="c", keep_value_bytes=1
    )
    headers = dead_letter_headers(letter, list(original))
    added = {name for name, _ in headers} - {name for name, _ in original}
    assert added == set(FAILURE_HEADERS)
    assert dict(headers)[Header.ERROR_CLASS] == b"DocumentNotFound"
    assert replay_headers(headers) == [*original, (Header.REPLAY_COUNT, b"1")]


def test_the_job_header_is_added_only_when_the_producer_set_none() -> None:
    """A letter of a job carries docmill.job.id; a producer's own job header is kept as it was."""
    ref_letter = dead_letter(record(b"{}"), None, decision(), attempts=1, consumer_id="c", keep_value_bytes=1)
    with_job = ref_letter.model_copy(update={"job_id": "job-7"})
    assert dict(dead_letter_headers(with_job, []))[Header.JOB_ID] == b"job-7"
    kept = dead_letter_headers(with_job, [(Header.JOB_ID, b"producer-job")])
    assert [value for name, value in kept if name == Header.JOB_ID] == [b"producer-job"]
