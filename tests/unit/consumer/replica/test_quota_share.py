"""A replica's share of the API quota is its share of the group's backlog: the shares add up to one."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from consumer.checkpoint.lag import PartitionLag
from consumer.replica.quota_share import share_of


def lag_of(records: dict[int, int]) -> dict[TopicPartition, PartitionLag]:
    """A lag reading: each partition's backlog as log end, with nothing committed."""
    return {
        TopicPartition("documents", partition): PartitionLag(end, 0) for partition, end in records.items()
    }


def tps(*partitions: int) -> list[TopicPartition]:
    return [TopicPartition("documents", partition) for partition in partitions]


def test_share_is_proportional_to_the_lag_of_assigned_partitions() -> None:
    """A replica's share is the lag of its partitions over the total lag."""
    lag = lag_of({0: 30, 1: 10, 2: 60})
    assert share_of(lag, tps(0)) == pytest.approx(0.3)
    assert share_of(lag, tps(0, 2)) == pytest.approx(0.9)
    assert share_of(lag, tps(0, 1, 2)) == pytest.approx(1.0)
    assert share_of(lag, tps(1)) == pytest.approx(0.1)


def test_partitions_without_lag_add_nothing_while_others_lag() -> None:
    """A caught-up or unknown partition contributes no share while the group has a backlog elsewhere."""
    lag = lag_of({0: 0, 1: 50})
    assert share_of(lag, tps(0)) == 0.0
    assert share_of(lag, tps(7)) == 0.0
    assert share_of(lag, tps(0, 1)) == 1.0


def test_share_falls_back_to_partition_count_without_lag() -> None:
    """With no backlog at all, the share is the replica's fraction of the partitions."""
    lag = lag_of({0: 0, 1: 0, 2: 0, 3: 0})
    assert share_of(lag, tps(0)) == pytest.approx(0.25)
    assert share_of(lag, tps(1, 3)) == pytest.approx(0.5)


def test_share_without_any_measurement_is_one() -> None:
    """Before the first measurement (no partitions known), a replica assumes the whole quota."""
    lag = lag_of({})
    assert share_of(lag, tps(0, 1)) == 1.0
    assert share_of(lag, []) == 1.0


@given(
    backlogs=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=24),
    owners=st.data(),
    replicas=st.integers(min_value=1, max_value=6),
)
def test_shares_of_all_replicas_add_up_to_one(
    backlogs: list[int], owners: st.DataObject, replicas: int
) -> None:
    """However the partitions are split among replicas, their shares (by lag or by count) sum to 1."""
    lag = lag_of(dict(enumerate(backlogs)))
    owner_of = owners.draw(st.lists(st.integers(0, replicas - 1), min_size=len(lag), max_size=len(lag)))
    shares = [
        share_of(lag, [tp for tp, owner in zip(lag, owner_of, strict=True) if owner == replica])
        for replica in range(replicas)
    ]
    assert sum(shares) == pytest.approx(1.0)
    assert all(0.0 <= share <= 1.0 for share in shares)
