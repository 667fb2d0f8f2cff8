"""Partition bookkeeping: adopt, hold, release, which partitions take records, which are idle."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from consumer.checkpoint.offsets import PartitionOffsets
from consumer.replica.partitions import Partitions

P0, P1, P2 = (TopicPartition("documents", n) for n in range(3))


def owning(*tps: TopicPartition) -> Partitions:
    partitions = Partitions()
    for tp in tps:
        partitions.adopt(tp, PartitionOffsets())
    return partitions


def test_adopted_partitions_take_records_and_released_ones_do_not() -> None:
    """An adopted partition is owned and takes records; once released it is neither."""
    partitions = owning(P0, P1)
    assert partitions.owned(P0) is not None
    assert set(partitions) == {P0, P1}
    partitions.release(P0)
    assert partitions.owned(P0) is None
    assert P0 not in partitions
    assert len(partitions) == 1


def test_held_partitions_take_no_records_and_are_not_resumed() -> None:
    """While held (checkpoint loading, or being revoked) a partition takes no records and stays paused."""
    partitions = owning(P0, P1)
    with partitions.held([P0]):
        assert partitions.owned(P0) is None
        assert partitions.taking_records({P0, P1, P2}) == {P1, P2}
        assert P0 not in partitions.idle()
    assert partitions.owned(P0) is not None
    assert partitions.taking_records({P0, P1}) == {P0, P1}


def test_holds_are_lifted_even_when_the_block_fails() -> None:
    """A failure inside a hold (e.g. the checkpoint cannot be read) does not leave the partition held."""
    partitions = owning(P0)
    try:
        with partitions.held([P0]):
            raise RuntimeError("checkpoint unreadable")
    except RuntimeError:
        pass
    assert partitions.owned(P0) is not None


def test_only_partitions_without_records_in_flight_are_idle() -> None:
    """An idle partition may commit its position; one with a record in flight may not."""
    partitions = owning(P0, P1)
    busy = partitions.owned(P1)
    assert busy is not None
    busy.offsets.start(7)
    assert partitions.idle() == [P0]
    busy.offsets.finish(7)
    assert set(partitions.idle()) == {P0, P1}


def test_new_names_only_partitions_not_owned_yet() -> None:
    """A repeated assignment does not reset partitions already owned."""
    partitions = owning(P0)
    assert partitions.new([P0, P1, P2]) == [P1, P2]


async def test_tasks_are_found_by_partition() -> None:
    """The record tasks of chosen partitions, or of all of them, for finishing or cancelling."""
    partitions = owning(P0, P1)
    first, second = partitions.owned(P0), partitions.owned(P1)
    assert first is not None
    assert second is not None
    never = asyncio.get_running_loop().create_future()
    one, two = asyncio.ensure_future(never), asyncio.ensure_future(asyncio.sleep(3600))
    first.tasks.add(one)
    second.tasks.add(two)
    try:
        assert partitions.tasks([P0]) == {one}
        assert partitions.tasks() == {one, two}
        assert partitions.tasks([P2]) == set()
    finally:
        one.cancel()
        two.cancel()
