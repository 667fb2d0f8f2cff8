"""In-flight records: a task per record, offsets marked done only when the task returns."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from consumer.checkpoint.offsets import PartitionOffsets
from consumer.records.letters import Record
from consumer.records.processor import Abandoned
from consumer.replica.in_flight import InFlight, finish_within
from consumer.replica.partitions import OwnedPartition
from schemas.metrics import Metrics

TP = TopicPartition("documents", 0)


def record(offset: int) -> Record:
    return ConsumerRecord(
        topic=TP.topic,
        partition=TP.partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=b"{}",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=2,
        headers=(),
    )


class Work:
    """Record tasks that end as the test says: return, be abandoned, or crash."""

    def __init__(self) -> None:
        self.outcomes: dict[int, asyncio.Future[BaseException | None]] = {}

    async def process(self, item: Record) -> None:
        outcome = self.outcomes.setdefault(item.offset, asyncio.get_running_loop().create_future())
        error = await outcome
        if error is not None:
            raise error

    def end(self, offset: int, error: BaseException | None = None) -> None:
        self.outcomes.setdefault(offset, asyncio.get_running_loop().create_future()).set_result(error)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def sample(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


async def test_offsets_are_done_only_when_their_task_returns() -> None:
    """Out of order: the watermark moves past a record only once it and all before it are done."""
    work, metrics = Work(), Metrics()
    crashes: list[BaseException] = []
    in_flight = InFlight(4, work.process, metrics, on_crash=crashes.append)
    owned = OwnedPartition(PartitionOffsets())
    for offset in (0, 1, 2):
        in_flight.start(TP, owned, record(offset))
    assert in_flight.count == 3
    assert in_flight.room == 1
    assert sample(metrics, "docmill_in_flight") == 3
    work.end(1)
    work.end(2)
    await settle()
    assert owned.offsets.watermark() == 0  # 0 still running
    work.end(0)
    await settle()
    assert owned.offsets.watermark() == 3
    assert in_flight.count == 0
    assert not owned.tasks
    assert crashes == []


async def test_abandoned_and_cancelled_records_stay_unfinished() -> None:
    """A record abandoned (replica stopping) or cancelled keeps the watermark below it."""
    work = Work()
    in_flight = InFlight(4, work.process, Metrics(), on_crash=lambda _: None)
    owned = OwnedPartition(PartitionOffsets())
    in_flight.start(TP, owned, record(0))
    in_flight.start(TP, owned, record(1))
    work.end(0, Abandoned("stopping"))
    await settle()
    for task in set(owned.tasks):
        task.cancel()
    await settle()
    assert owned.offsets.watermark() == 0
    assert in_flight.count == 0


async def test_a_crashed_task_stops_the_replica_loudly_and_keeps_its_offset() -> None:
    """A task failing outside the fate table is counted, reported to the replica, and not marked done."""
    work, metrics = Work(), Metrics()
    crashes: list[BaseException] = []
    in_flight = InFlight(4, work.process, metrics, on_crash=crashes.append)
    owned = OwnedPartition(PartitionOffsets())
    in_flight.start(TP, owned, record(0))
    bug = RuntimeError("a bug in the outcome path")
    work.end(0, bug)
    await settle()
    assert crashes == [bug]
    assert owned.offsets.watermark() == 0
    assert sample(metrics, "docmill_unexpected_errors_total") == 1


async def test_records_a_previous_owner_finished_are_skipped_without_a_task() -> None:
    """Offsets listed in the checkpoint's metadata are skipped and counted, never processed twice."""
    work, metrics = Work(), Metrics()
    in_flight = InFlight(4, work.process, metrics, on_crash=lambda _: None)
    owned = OwnedPartition(PartitionOffsets(already_done={1}))
    in_flight.start(TP, owned, record(0))
    in_flight.start(TP, owned, record(1))
    assert in_flight.count == 1
    assert metrics.registry.get_sample_value("docmill_documents_total", {"outcome": "skipped"}) == 1
    work.end(0)
    await settle()
    assert owned.offsets.watermark() == 2


async def test_a_record_delivered_twice_is_started_once() -> None:
    """A fetch that hands out an offset already started here does not start it again."""
    work = Work()
    in_flight = InFlight(4, work.process, Metrics(), on_crash=lambda _: None)
    owned = OwnedPartition(PartitionOffsets())
    in_flight.start(TP, owned, record(0))
    in_flight.start(TP, owned, record(0))
    assert in_flight.count == 1
    work.end(0)
    await settle()


async def test_waiting_for_room_returns_when_a_slot_frees() -> None:
    """At the bound, wait_for_room returns as soon as a record finishes, not after its timeout."""
    work = Work()
    in_flight = InFlight(1, work.process, Metrics(), on_crash=lambda _: None)
    owned = OwnedPartition(PartitionOffsets())
    in_flight.start(TP, owned, record(0))
    waiter = asyncio.create_task(in_flight.wait_for_room(60))
    await settle()
    assert not waiter.done()
    work.end(0)
    await asyncio.wait_for(waiter, 5)
    assert in_flight.room == 1


async def test_finishing_within_a_grace_period_cancels_what_is_left() -> None:
    """Tasks that outlive the grace period are cancelled; finished ones are left alone."""
    work = Work()
    in_flight = InFlight(4, work.process, Metrics(), on_crash=lambda _: None)
    owned = OwnedPartition(PartitionOffsets())
    in_flight.start(TP, owned, record(0))
    in_flight.start(TP, owned, record(1))
    work.end(0)
    await finish_within(set(owned.tasks), 0.05)
    await settle()
    assert owned.offsets.watermark() == 1
    assert in_flight.count == 0
