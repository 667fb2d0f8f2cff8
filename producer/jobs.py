"""Jobs: what a run of the producer published and the offsets its documents got (the jobs topic).

Knowing the exact offsets is what makes a job's progress exact rather than
estimated (``consumer.ops.job_progress``).
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from producer.kafka_io import partitions_of, read_to_end
from schemas.messages import JobRecord
from schemas.settings import KafkaSettings


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
