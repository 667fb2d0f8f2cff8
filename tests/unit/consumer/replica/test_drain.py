"""`--drain` ends when the group committed past every partition's end and nothing is in flight."""

from __future__ import annotations

from aiokafka import TopicPartition

from consumer.replica.drain import DrainTarget

P0, P1 = TopicPartition("documents", 0), TopicPartition("documents", 1)


def test_drained_once_every_partition_is_committed_to_its_end() -> None:
    """Committed offsets at (or past) each end, nothing in flight: drained."""
    target = DrainTarget({P0: 10, P1: 4})
    assert not target.reached({P0: 10, P1: 3}, in_flight=0)
    assert target.reached({P0: 10, P1: 4}, in_flight=0)
    assert target.reached({P0: 12, P1: 4}, in_flight=0)


def test_not_drained_while_records_are_in_flight_here() -> None:
    """Even with every offset committed, a record still in flight here keeps the replica running."""
    assert not DrainTarget({P0: 1}).reached({P0: 1}, in_flight=1)


def test_empty_partitions_need_no_commit() -> None:
    """A partition that was empty at start is drained without any commit of the group."""
    target = DrainTarget({P0: 0, P1: 5})
    assert target.reached({P0: None, P1: 5}, in_flight=0)
    assert not target.reached({P0: None, P1: None}, in_flight=0)
    assert target.partitions == [P0, P1]
