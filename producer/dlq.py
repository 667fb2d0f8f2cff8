"""The dead-letter topic as a tool: inspect letters, and replay them once their cause is fixed.

Replay re-publishes each letter's original bytes, with the original headers
and a replay count, inside a Kafka transaction that also commits the replay
group's offset: an interrupted replay resumes where it stopped and never
publishes a letter twice. A letter replayed ``max_replays`` times already is
refused, so a poison document cannot loop for ever.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from producer.reading import partitions_of, read_to_end
from schemas.messages import DeadLetter
from schemas.settings import KafkaSettings
from schemas.topics import Header

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Headers docmill adds about a failure: dropped on replay, the original ones are kept.
_FAILURE_HEADERS = frozenset(
    {
        Header.ERROR_CLASS,
        Header.ERROR_MESSAGE,
        Header.RETRYABLE,
        Header.ATTEMPTS,
        Header.SOURCE_TOPIC,
        Header.SOURCE_PARTITION,
        Header.SOURCE_OFFSET,
        Header.SOURCE_TIMESTAMP,
        Header.CONSUMER_ID,
        Header.REPLAY_COUNT,
    }
)
_BATCH = 500


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An RFC 3339 timestamp, or a time ago like ``2h``, ``30m``, ``7d``."""
    match = _RELATIVE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an RFC 3339 time or a duration like 2h: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LetterFilter:
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    document_id: str | None = None
    job_id: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.error_class is None or letter.error_class == self.error_class)
            and (self.since is None or letter.last_failure_at >= self.since)
            and (self.until is None or letter.last_failure_at <= self.until)
            and (self.document_id is None or letter.document_id == self.document_id)
            and (self.job_id is None or letter.job_id == self.job_id)
        )

    def fingerprint(self) -> str:
        """Stable across runs of the same replay, so its consumer group resumes it."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:12]


def decode_letter(value: bytes | None) -> DeadLetter | None:
    if not value:
        return None
    try:
        return DeadLetter.model_validate_json(value)
    except ValidationError:
        return None


def original_bytes(letter: DeadLetter) -> bytes | None:
    """The failed record's value exactly as it was consumed."""
    if letter.original_value is None:
        return None
    if letter.original_encoding == "base64":
        return base64.standard_b64decode(letter.original_value)
    return letter.original_value.encode("utf-8")


def replay_count(headers: list[tuple[str, bytes]]) -> int:
    for name, value in headers:
        if name == Header.REPLAY_COUNT:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def replay_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The original message's headers, with the replay count incremented."""
    kept = [(name, value) for name, value in headers if name not in _FAILURE_HEADERS]
    return [*kept, (Header.REPLAY_COUNT, str(replay_count(headers) + 1).encode())]


# --- inspect ------------------------------------------------------------------------------


@dataclass
class Inspection:
    matched: int = 0
    unreadable: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    by_hour: Counter[str] = field(default_factory=Counter)
    recent: list[DeadLetter] = field(default_factory=list)


async def letters(kafka: KafkaSettings, dlq_topic: str) -> AsyncIterator[tuple[Any, DeadLetter | None]]:
    """Every record of the dead-letter topic and its decoded letter (None when unreadable)."""
    async for record in read_to_end(kafka, dlq_topic):
        yield record, decode_letter(record.value)


async def inspect(kafka: KafkaSettings, dlq_topic: str, selection: LetterFilter, limit: int) -> Inspection:
    """Counts and the most recent letters matching the filter; reads without committing."""
    result = Inspection()
    async for _, letter in letters(kafka, dlq_topic):
        if letter is None:
            result.unreadable += 1
            continue
        if not selection.matches(letter):
            continue
        result.matched += 1
        result.by_class[letter.error_class] += 1
        result.by_hour[letter.last_failure_at.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")] += 1
        result.recent.append(letter)
        if len(result.recent) > limit:
            result.recent.sort(key=lambda item: item.last_failure_at, reverse=True)
            del result.recent[limit:]
    result.recent.sort(key=lambda item: item.last_failure_at, reverse=True)
    return result


# --- replay -------------------------------------------------------------------------------


@dataclass
class ReplaySummary:
    group_id: str
    replayed: int = 0
    skipped: int = 0  # not matching the filter
    refused: int = 0  # replayed max_replays times already, or unreadable
    failed: int = 0
    refusals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReplayPlan:
    selection: LetterFilter
    to_topic: str | None = None
    rate: float | None = None  # letters per second
    max_replays: int = 3
    dry_run: bool = False
    group_id: str | None = None

    def consumer_group(self) -> str:
        if self.group_id:
            return self.group_id
        return f"docmill-dlq-replay-{self.selection.fingerprint()}-{self.to_topic or 'origin'}"


class _Pacer:
    """Spaces publishes to at most ``rate`` per second."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(self._next, now) + self._interval


def _decide(record: Any, plan: ReplayPlan) -> tuple[str, DeadLetter | None, str]:
    """("replay" | "skip" | "refuse", letter, reason) for one dead-letter record."""
    letter = decode_letter(record.value)
    where = f"{record.topic}/{record.partition}@{record.offset}"
    if letter is None:
        return "refuse", None, f"{where}: not a readable dead letter"
    if not plan.selection.matches(letter):
        return "skip", letter, ""
    count = replay_count(list(record.headers or []))
    if count >= plan.max_replays:
        return (
            "refuse",
            letter,
            (
                f"{where} (document {letter.document_id}): replayed {count} times already "
                f"(--max-replays {plan.max_replays}); last error {letter.error_class}"
            ),
        )
    if letter.original_truncated:
        return "refuse", letter, f"{where}: only the beginning of the original value was kept"
    if original_bytes(letter) is None:
        return "refuse", letter, f"{where}: the original record had no value"
    return "replay", letter, ""


async def replay(
    kafka: KafkaSettings,
    dlq_topic: str,
    plan: ReplayPlan,
    on_letter: Callable[[str, DeadLetter | None, str], None] | None = None,
) -> ReplaySummary:
    """Replays the matching letters that exist now; safe to interrupt and run again."""
    summary = ReplaySummary(group_id=plan.consumer_group())
    if plan.dry_run:
        async for record, _ in letters(kafka, dlq_topic):
            _count(summary, *_decide(record, plan), on_letter)
        return summary
    tps = [TopicPartition(dlq_topic, p) for p in await partitions_of(kafka, dlq_topic)]
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(),
        group_id=summary.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(
        **kafka.client_kwargs(),
        transactional_id=f"{summary.group_id}-publisher",
        enable_idempotence=True,
        acks="all",
    )
    await consumer.start()
    await producer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        pacer = _Pacer(plan.rate)
        while await _behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=500, max_records=_BATCH)
            records = [
                r
                for tp_records in batches.values()
                for r in tp_records
                if r.offset < ends[TopicPartition(r.topic, r.partition)]
            ]
            if records:
                await _replay_batch(
                    producer, records=records, plan=plan, summary=summary, pacer=pacer, on_letter=on_letter
                )
    finally:
        await producer.stop()
        await consumer.stop()
    return summary


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether any partition has letters left that existed when the replay started."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def _replay_batch(
    producer: AIOKafkaProducer,
    *,
    records: list[Any],
    plan: ReplayPlan,
    summary: ReplaySummary,
    pacer: _Pacer,
    on_letter: Callable[[str, DeadLetter | None, str], None] | None,
) -> None:
    """Publishes a batch and commits its offsets in one transaction: all of it, or none."""
    offsets: dict[TopicPartition, int] = {}
    outcomes: list[tuple[str, DeadLetter | None, str]] = []
    async with producer.transaction():
        for record in records:
            decision, letter, reason = _decide(record, plan)
            if decision == "replay" and letter is not None:
                await pacer.wait()
                await producer.send(
                    plan.to_topic or letter.source.topic,
                    value=original_bytes(letter),
                    key=record.key,
                    headers=replay_headers(list(record.headers or [])),
                )
            outcomes.append((decision, letter, reason))
            offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
        await producer.send_offsets_to_transaction(offsets, summary.group_id)
    for outcome in outcomes:
        _count(summary, *outcome, on_letter)


def _count(
    summary: ReplaySummary,
    decision: str,
    letter: DeadLetter | None,
    reason: str,
    on_letter: Callable[[str, DeadLetter | None, str], None] | None,
) -> None:
    if decision == "replay":
        summary.replayed += 1
    elif decision == "skip":
        summary.skipped += 1
    else:
        summary.refused += 1
        summary.refusals.append(reason)
    if on_letter is not None:
        on_letter(decision, letter, reason)
