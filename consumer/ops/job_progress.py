"""A job's exact progress for a consumer group, read from Kafka alone.

A job knows the offsets its documents got; an offset is done when it is
below the group's committed watermark or listed in the commit's metadata as
finished above it; a done document was dead-lettered when the dead-letter
topic holds a letter for its offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import TopicPartition

from producer.jobs import contains, count_below
from producer.kafka_io import admin_client, read_to_end
from schemas.commit_metadata import decode_done
from schemas.messages import JobRecord
from schemas.settings import KafkaSettings
from schemas.topics import Header


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
    async with admin_client(kafka) as admin:
        committed = await admin.list_consumer_group_offsets(group_id, partitions=tps)
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
