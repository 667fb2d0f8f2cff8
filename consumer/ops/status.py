"""The state of a consumer group, read from Kafka alone: lag, members, throughput, time to drain."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from consumer.checkpoint.lag import PartitionLag, group_lag
from producer.kafka_io import admin_client, partitions_of, reader
from schemas.settings import KafkaSettings, TopicSettings

THROUGHPUT_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class PartitionState:
    partition: int
    progress: PartitionLag

    @property
    def end(self) -> int:
        return self.progress.end

    @property
    def committed(self) -> int | None:
        return self.progress.committed

    @property
    def lag(self) -> int:
        return self.progress.lag


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
    async with admin_client(kafka) as admin, reader(kafka) as consumer:
        lag = await group_lag(admin, consumer, group_id, tps)
        described = await admin.describe_consumer_groups([group_id])
        recent = await _records_since(consumer, kafka, [topics.results_topic, topics.dlq_topic])
    members, state = [], "unknown"
    for response in described:
        for group in response.to_object()["groups"]:
            if group["group"] == group_id:
                state = group["state"] or "Empty"
                members = [f"{m['client_id']}@{m['client_host'].lstrip('/')}" for m in group["members"]]
    partitions = [PartitionState(tp.partition, lag[tp]) for tp in tps]
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
