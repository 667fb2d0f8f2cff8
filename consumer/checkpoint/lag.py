"""How far a consumer group is behind: log end minus committed offset, per partition.

One reading, used by the replica (its share of the backlog, and of the API
quota) and by `docmill status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True, slots=True)
class PartitionLag:
    end: int  # log end offset
    committed: int | None  # the group's committed offset; None when it has none yet

    @property
    def lag(self) -> int:
        return max(0, self.end - (self.committed or 0))


async def committed_offsets(
    admin: AIOKafkaAdminClient, group_id: str, tps: Sequence[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """The group's committed offset per partition (None where it has none yet)."""
    marks = await admin.list_consumer_group_offsets(group_id, partitions=list(tps))
    return {tp: marks[tp].offset if tp in marks and marks[tp].offset >= 0 else None for tp in tps}


async def group_lag(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group_id: str, tps: Sequence[TopicPartition]
) -> dict[TopicPartition, PartitionLag]:
    """Each partition's log end and the group's committed offset."""
    if not tps:
        return {}
    ends = await consumer.end_offsets(list(tps))
    committed = await committed_offsets(admin, group_id, tps)
    return {tp: PartitionLag(ends[tp], committed[tp]) for tp in tps}
