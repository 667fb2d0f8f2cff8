"""Measures the group's backlog from Kafka itself, and this replica's share of it.

The share is how N replicas divide one API quota without a coordination
service: each runs its limiter at ``quota × share``, and the shares of all
replicas add up to one because they are shares of the same backlog, read
from the same offsets.
"""

from __future__ import annotations

from collections.abc import Collection

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


class Backlog:
    """Records left per partition of the documents topic: log end minus the group's commit."""

    def __init__(self, admin: AIOKafkaAdminClient, group_id: str) -> None:
        self._admin = admin
        self._group_id = group_id
        self.lag: dict[TopicPartition, int] = {}

    async def committed(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offset per partition (0 where it has none yet)."""
        marks = await self._admin.list_consumer_group_offsets(self._group_id, partitions=tps)
        return {tp: max(0, marks[tp].offset) if tp in marks else 0 for tp in tps}

    async def refresh(self, consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return {}
        ends = await consumer.end_offsets(tps)
        committed = await self.committed(tps)
        self.lag = {tp: max(0, ends[tp] - committed[tp]) for tp in tps}
        return self.lag

    def share_of(self, assigned: Collection[TopicPartition]) -> float:
        """This replica's part of the backlog; by partition count when there is none."""
        total = sum(self.lag.values())
        if total > 0:
            return sum(self.lag.get(tp, 0) for tp in assigned) / total
        partitions = len(self.lag)
        return len(assigned) / partitions if partitions else 1.0
