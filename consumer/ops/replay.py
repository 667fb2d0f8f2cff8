"""Replays dead letters once their cause is fixed: exactly once, resumable, and never for ever.

Replay re-publishes each letter's original bytes, with the original headers
and a replay count, inside a Kafka transaction that also commits the replay
group's offset: an interrupted replay resumes where it stopped and never
publishes a letter twice. A letter replayed ``max_replays`` times already is
refused, so a poison document cannot loop for ever. A letter Kafka will not
take (e.g. larger than the target topic accepts) aborts its batch's
transaction and stops the replay: it is counted as failed, nothing of that
batch is published, and a run after the fix resumes at that batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from consumer.ops.dlq import (
    LetterFilter,
    Record,
    decode_letter,
    letters,
    original_bytes,
    replay_count,
    replay_headers,
)
from producer.kafka_io import partitions_of
from schemas.messages import DeadLetter
from schemas.settings import KafkaSettings

# Letters per transaction: each batch and the group's offset past it commit together.
_BATCH = 500


class Action(StrEnum):
    REPLAY = "replay"
    SKIP = "skip"  # does not match the filter
    REFUSE = "refuse"  # unreadable, replayed too often, or its value was not kept whole
    FAIL = "fail"  # Kafka would not take it


@dataclass(frozen=True, slots=True)
class Verdict:
    """What becomes of one dead-letter record, and why (for refusals and failures)."""

    action: Action
    letter: DeadLetter | None
    reason: str = ""


OnLetter = Callable[[Verdict], None]


@dataclass
class ReplaySummary:
    group_id: str
    replayed: int = 0
    skipped: int = 0
    refused: int = 0
    failed: int = 0
    refusals: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def count(self, verdict: Verdict) -> None:
        if verdict.action is Action.REPLAY:
            self.replayed += 1
        elif verdict.action is Action.SKIP:
            self.skipped += 1
        elif verdict.action is Action.REFUSE:
            self.refused += 1
            self.refusals.append(verdict.reason)
        else:
            self.failed += 1
            self.failures.append(verdict.reason)


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


def _where(record: Record) -> str:
    return f"{record.topic}/{record.partition}@{record.offset}"


def judge(record: Record, plan: ReplayPlan) -> Verdict:
    """Whether one dead-letter record is replayed, skipped or refused."""
    letter = decode_letter(record.value)
    where = _where(record)
    if letter is None:
        return Verdict(Action.REFUSE, None, f"{where}: not a readable dead letter")
    if not plan.selection.matches(letter):
        return Verdict(Action.SKIP, letter)
    count = replay_count(record.headers or ())
    if count >= plan.max_replays:
        return Verdict(
            Action.REFUSE,
            letter,
            f"{where} (document {letter.document_id}): replayed {count} times already "
            f"(--max-replays {plan.max_replays}); last error {letter.error_class}",
        )
    if letter.original_truncated:
        return Verdict(Action.REFUSE, letter, f"{where}: only the beginning of the original value was kept")
    if original_bytes(letter) is None:
        return Verdict(Action.REFUSE, letter, f"{where}: the original record had no value")
    return Verdict(Action.REPLAY, letter)


async def replay(
    kafka: KafkaSettings, dlq_topic: str, plan: ReplayPlan, on_letter: OnLetter | None = None
) -> ReplaySummary:
    """Replays the matching letters that exist now; safe to interrupt and run again.

    Stops at the first batch Kafka refuses (``summary.failed`` > 0).
    """
    summary = ReplaySummary(group_id=plan.consumer_group())

    def report(verdict: Verdict) -> None:
        summary.count(verdict)
        if on_letter is not None:
            on_letter(verdict)

    if plan.dry_run:
        async for record, _ in letters(kafka, dlq_topic):
            report(judge(record, plan))
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
    try:
        await consumer.start()
        await producer.start()
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
                verdicts = await _replay_batch(producer, records, plan, summary.group_id, pacer)
                for verdict in verdicts:
                    report(verdict)
                if any(verdict.action is Action.FAIL for verdict in verdicts):
                    break
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


class _Refused(Exception):
    """Kafka refused some of a batch's letters: the batch's transaction must abort."""

    def __init__(self, causes: dict[int, BaseException]) -> None:
        super().__init__(f"{len(causes)} letter(s) refused")
        self.causes = causes


async def _replay_batch(
    producer: AIOKafkaProducer, records: list[Record], plan: ReplayPlan, group_id: str, pacer: _Pacer
) -> list[Verdict]:
    """Publishes a batch and commits its offsets in one transaction: all of it, or none.

    Every publish is awaited before the commit: aiokafka commits a transaction even when
    one of its sends failed, which would skip that letter for good. When Kafka refuses a
    letter, the transaction is aborted instead: that letter's verdict is FAIL and no other
    letter of the batch counts as replayed.
    """
    offsets: dict[TopicPartition, int] = {}
    verdicts: list[Verdict] = []
    sent: list[tuple[int, asyncio.Future[object]]] = []
    current = 0  # the record being judged and sent, should send() itself refuse it
    try:
        async with producer.transaction():
            for current, record in enumerate(records):
                verdict = judge(record, plan)
                if verdict.action is Action.REPLAY and verdict.letter is not None:
                    await pacer.wait()
                    future = await producer.send(
                        plan.to_topic or verdict.letter.source.topic,
                        value=original_bytes(verdict.letter),
                        key=record.key,
                        headers=replay_headers(record.headers or ()),
                    )
                    sent.append((current, future))
                verdicts.append(verdict)
                offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
            acknowledged = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
            refused = {
                index: outcome
                for (index, _), outcome in zip(sent, acknowledged, strict=True)
                if isinstance(outcome, BaseException)
            }
            if refused:
                raise _Refused(refused)
            await producer.send_offsets_to_transaction(offsets, group_id)
    except _Refused as refusal:
        return _failed(records, refusal.causes)
    except KafkaError as error:
        return _failed(records, {current: error})
    return verdicts


def _failed(records: list[Record], causes: dict[int, BaseException]) -> list[Verdict]:
    return [
        Verdict(
            Action.FAIL,
            decode_letter(records[index].value),
            f"{_where(records[index])}: Kafka refused the replay: {type(cause).__name__}: {cause}",
        )
        for index, cause in sorted(causes.items())
    ]
