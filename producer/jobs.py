"""Jobs: what a batch run published, where it landed, and how far the group has got with it.

Progress is exact, not estimated: a job knows the offsets its documents got;
an offset is done when it is below the group's committed watermark or listed
in the commit's metadata as finished above it; a done document was
dead-lettered when the dead-letter topic holds a letter for its offset.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from consumer.offsets import decode_done
from producer.reading import partitions_of, read_to_end
from schemas.messages import JobRecord
from schemas.settings import KafkaSettings
from schemas.topics import Header


class UnknownJob(LookupError):
    """No job with this id was recorded."""


class OffsetRanges:
    """Offsets collected per partition, kept as sorted inclusive ranges."""

    def __init__(self, ranges: dict[int, list[tuple[int, int]]] | None = None) -> None:
        self._offsets: dict[int, list[int]] = {}
        for partition, spans in (ranges or {}).items():
            for start, end in spans:
                self._offsets.setdefault(partition, []).extend(range(start, end + 1))

    def add(self, partition: int, offset: int) -> None:
        self._offsets.setdefault(partition, []).append(offset)

    def ranges(self) -> dict[int, list[tuple[int, int]]]:
        result: dict[int, list[tuple[int, int]]] = {}
        for partition, offsets in self._offsets.items():
            spans: list[tuple[int, int]] = []
            for offset in sorted(set(offsets)):
                if spans and offset == spans[-1][1] + 1:
                    spans[-1] = (spans[-1][0], offset)
                else:
                    spans.append((offset, offset))
            result[partition] = spans
        return result


def count_below(spans: list[tuple[int, int]], mark: int) -> int:
    """How many offsets of the ranges are below ``mark``."""
    return sum(max(0, min(end + 1, mark) - start) for start, end in spans)


def contains(spans: list[tuple[int, int]], offset: int) -> bool:
    index = bisect.bisect_right(spans, (offset, float("inf"))) - 1
    return index >= 0 and spans[index][0] <= offset <= spans[index][1]


async def load_job(kafka: KafkaSettings, jobs_topic: str, job_id: str) -> JobRecord | None:
    """The latest record of a job, or None."""
    latest: JobRecord | None = None
    try:
        async for record in read_to_end(kafka, jobs_topic):
            if record.key == job_id.encode() and record.value:
                try:
                    latest = JobRecord.model_validate_json(record.value)
                except ValidationError:
                    continue
    except LookupError:
        return None
    return latest


async def record_job(
    kafka: KafkaSettings,
    *,
    jobs_topic: str,
    job_id: str,
    topic: str,
    offsets: OffsetRanges,
    documents: int,
    started_at: datetime,
) -> JobRecord:
    """Writes (or extends, when the job id was used before) a job's record.

    LookupError when the jobs topic does not exist (rather than a producer
    waiting out its timeout on a topic that will never appear).
    """
    await partitions_of(kafka, jobs_topic)
    previous = await load_job(kafka, jobs_topic, job_id)
    if previous is not None and previous.topic == topic:
        merged = OffsetRanges(previous.offsets)
        for partition, spans in offsets.ranges().items():
            for start, end in spans:
                for offset in range(start, end + 1):
                    merged.add(partition, offset)
        offsets, documents = merged, previous.documents + documents
        started_at = previous.started_at
    job = JobRecord(
        job_id=job_id,
        topic=topic,
        documents=documents,
        offsets=offsets.ranges(),
        started_at=started_at,
        published_at=datetime.now(UTC),
    )
    producer = AIOKafkaProducer(**kafka.client_kwargs(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(jobs_topic, job.to_json(), key=job_id.encode())
    finally:
        await producer.stop()
    return job


@dataclass(frozen=True)
class JobProgress:
    job: JobRecord
    done: int
    dead_lettered: int
    measured_at: datetime

    @property
    def succeeded(self) -> int:
        return self.done - self.dead_lettered

    @property
    def remaining(self) -> int:
        return self.job.documents - self.done

    @property
    def complete(self) -> bool:
        return self.remaining <= 0

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.done if self.done else None

    @property
    def elapsed_seconds(self) -> float:
        return (self.measured_at - self.job.started_at).total_seconds()

    @property
    def eta_seconds(self) -> float | None:
        """Seconds to completion at the job's average pace so far."""
        if self.complete:
            return 0.0
        if not self.done or self.elapsed_seconds <= 0:
            return None
        return self.remaining / (self.done / self.elapsed_seconds)


async def job_progress(kafka: KafkaSettings, job: JobRecord, group_id: str, dlq_topic: str) -> JobProgress:
    """Exact progress of a job for a consumer group."""
    tps = [TopicPartition(job.topic, p) for p in job.offsets]
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id, partitions=tps)
    finally:
        await admin.close()
    done = 0
    for partition, spans in job.offsets.items():
        mark = committed.get(TopicPartition(job.topic, partition))
        if mark is None or mark.offset < 0:
            continue
        done += count_below(spans, mark.offset)
        done += sum(1 for offset in decode_done(mark.offset, mark.metadata) if contains(spans, offset))
    letters = await _dead_lettered_offsets(kafka, dlq_topic, job)
    return JobProgress(job=job, done=done, dead_lettered=len(letters), measured_at=datetime.now(UTC))


async def _dead_lettered_offsets(
    kafka: KafkaSettings, dlq_topic: str, job: JobRecord
) -> set[tuple[int, int]]:
    """Source positions of the job's documents in the dead-letter topic (read by headers only)."""
    wanted = job.job_id.encode()
    found: set[tuple[int, int]] = set()
    try:
        async for record in read_to_end(kafka, dlq_topic):
            headers = dict(record.headers or [])
            if headers.get(Header.JOB_ID) != wanted:
                continue
            if headers.get(Header.SOURCE_TOPIC, b"").decode() != job.topic:
                continue
            partition = int(headers.get(Header.SOURCE_PARTITION, b"-1"))
            offset = int(headers.get(Header.SOURCE_OFFSET, b"-1"))
            if contains(job.offsets.get(partition, []), offset):
                found.add((partition, offset))
    except LookupError:
        return found
    return found
