"""`--drain`: when the whole group has processed everything that existed at start."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

# How long a replica waits for the documents topic's metadata before calling it missing.
_METADATA_WAIT_SECONDS = 10.0


class DrainTarget:
    """The end of every partition when the replica started: what the group must get through."""

    def __init__(self, ends: Mapping[TopicPartition, int]) -> None:
        self.ends = dict(ends)

    @property
    def partitions(self) -> list[TopicPartition]:
        return list(self.ends)

    def reached(self, committed: Mapping[TopicPartition, int | None], in_flight: int) -> bool:
        """True when nothing is in flight here and the group committed past every end."""
        if in_flight:
            return False
        return all(end == 0 or (committed.get(tp) or 0) >= end for tp, end in self.ends.items())


async def drain_target(consumer: AIOKafkaConsumer, topic: str) -> DrainTarget:
    """The current end of every partition of ``topic``."""
    deadline = asyncio.get_running_loop().time() + _METADATA_WAIT_SECONDS
    while not (partitions := consumer.partitions_for_topic(topic)):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    if not partitions:
        raise KafkaError(f"topic {topic} does not exist (run `docmill topics ensure`)")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    return DrainTarget(await consumer.end_offsets(tps))
