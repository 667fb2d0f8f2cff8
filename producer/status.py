"""The state of a consumer group, read from Kafka alone: lag, members, throughput, time to drain."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from producer.reading import partitions_of
from schemas.settings import KafkaSettings, TopicSettings

THROUGHPUT_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class PartitionState:
    partition: int
    end: int
    committed: int | None

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


@dataclass(frozen=True)
class GroupStatus:
    group_id: str
    topic: str
    partitions: list[PartitionState]
    members: list[str]  # client id @ host of each member
    state: str
    outcomes_last_minute: int

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def throughput(self) -> float:
        """Documents finished per second over the last minute (results plus dead letters)."""
        return self.outcomes_last_minute / THROUGHPUT_WINDOW_SECONDS

    @property
    def seconds_to_drain(self) -> float | None:
        if self.lag == 0:
            return 0.0
        return self.lag / self.throughput if self.throughput > 0 else None


async def group_status(kafka: KafkaSettings, topics: TopicSettings, group_id: str) -> GroupStatus:
    topic = topics.documents_topic
    tps = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id, partitions=tps)
        described = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    members, state = [], "unknown"
    for response in described:
        for group in response.to_object()["groups"]:
            if group["group"] == group_id:
                state = group["state"] or "Empty"
                members = [f"{m['client_id']}@{m['client_host'].lstrip('/')}" for m in group["members"]]
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        recent = await _records_since(consumer, kafka, [topics.results_topic, topics.dlq_topic])
    finally:
        await consumer.stop()
    partitions = [
        PartitionState(
            tp.partition,
            ends[tp],
            committed[tp].offset if tp in committed and committed[tp].offset >= 0 else None,
        )
        for tp in tps
    ]
    return GroupStatus(group_id, topic, partitions, members, state, recent)


async def _records_since(consumer: AIOKafkaConsumer, kafka: KafkaSettings, topics: list[str]) -> int:
    """Records written to the topics during the last minute, from their time index."""
    since_ms = int((time.time() - THROUGHPUT_WINDOW_SECONDS) * 1000)
    total = 0
    for topic in topics:
        try:
            tps = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
        except LookupError:
            continue
        ends = await consumer.end_offsets(tps)
        starts = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        for tp in tps:
            found = starts.get(tp)
            total += ends[tp] - found.offset if found is not None else 0
    return total
