"""The partitions a replica owns: each one's offsets and record tasks, and which may take records.

A partition is *held* while its checkpoint loads (a record started before
would miss the offsets a previous owner already finished) and while it is
being revoked (its in-flight records may finish, new ones must not start).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable, Iterator

from aiokafka import TopicPartition

from consumer.checkpoint.offsets import PartitionOffsets


class OwnedPartition:
    """A partition this replica owns: its offsets and the tasks working on its records."""

    __slots__ = ("offsets", "tasks")

    def __init__(self, offsets: PartitionOffsets) -> None:
        self.offsets = offsets
        self.tasks: set[asyncio.Task[None]] = set()


class Partitions:
    """Bookkeeping only: no Kafka calls, so it is tested without a broker."""

    def __init__(self) -> None:
        self._owned: dict[TopicPartition, OwnedPartition] = {}
        self._held: set[TopicPartition] = set()

    def __len__(self) -> int:
        return len(self._owned)

    def __iter__(self) -> Iterator[TopicPartition]:
        return iter(list(self._owned))

    def __contains__(self, tp: object) -> bool:
        return tp in self._owned

    def owned(self, tp: TopicPartition) -> OwnedPartition | None:
        """The partition, when it is owned and may take records now; None otherwise."""
        if tp in self._held:
            return None
        return self._owned.get(tp)

    def offsets(self) -> dict[TopicPartition, PartitionOffsets]:
        return {tp: owned.offsets for tp, owned in self._owned.items()}

    def taking_records(self, assignment: Collection[TopicPartition]) -> set[TopicPartition]:
        """Which of the consumer's assigned partitions may be resumed (none of the held ones)."""
        return set(assignment) - self._held

    def idle(self) -> list[TopicPartition]:
        """Owned, not held, and nothing in flight: their position may become the watermark."""
        return [
            tp for tp, owned in self._owned.items() if owned.offsets.in_flight == 0 and tp not in self._held
        ]

    def new(self, tps: Iterable[TopicPartition]) -> list[TopicPartition]:
        return [tp for tp in tps if tp not in self._owned]

    @contextlib.contextmanager
    def held(self, tps: Collection[TopicPartition]) -> Iterator[None]:
        """Takes no new records from these partitions for the block."""
        self._held.update(tps)
        try:
            yield
        finally:
            self._held.difference_update(tps)

    def adopt(self, tp: TopicPartition, offsets: PartitionOffsets) -> None:
        self._owned[tp] = OwnedPartition(offsets)

    def release(self, tp: TopicPartition) -> None:
        self._owned.pop(tp, None)

    def tasks(self, tps: Iterable[TopicPartition] | None = None) -> set[asyncio.Task[None]]:
        """The record tasks of these partitions (all owned ones by default)."""
        chosen = self._owned if tps is None else {tp: self._owned[tp] for tp in tps if tp in self._owned}
        return {task for owned in chosen.values() for task in owned.tasks}
