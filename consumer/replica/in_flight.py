"""The records a replica is working on: one task each, at most ``limit`` at once.

A record's offset is marked done only when its task returns, that is once
its result or dead letter is acknowledged by Kafka. A task that was
cancelled or abandoned (the replica stopping) leaves its offset unfinished,
so the partition's next owner redoes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from aiokafka import TopicPartition

from consumer.records.letters import Record
from consumer.records.processor import Abandoned
from consumer.replica.partitions import OwnedPartition
from schemas.metrics import Metrics

log = structlog.get_logger("docmill.consumer")


class InFlight:
    """Starts a task per record and tracks the count against the bound."""

    def __init__(
        self,
        limit: int,
        process: Callable[[Record], Coroutine[Any, Any, None]],
        metrics: Metrics,
        on_crash: Callable[[BaseException], None],
        extractor_capacity: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.limit = limit
        self._extractor_capacity = extractor_capacity
        self._process = process
        self._metrics = metrics
        self._on_crash = on_crash
        self._count = 0
        self._slot_freed = asyncio.Event()
        metrics.track_in_flight(lambda: self._count)

    @property
    def count(self) -> int:
        return self._count

    @property
    def room(self) -> int:
        """Records that may start now: within the bound, and within what the extractor can
        finish in time (the OCR pool's), where it says."""
        capacity = self._extractor_capacity()
        limit = self.limit if capacity is None else min(self.limit, capacity)
        return limit - self._count

    async def wait_for_room(self, at_most_seconds: float) -> None:
        """Returns when a slot frees, or after ``at_most_seconds``."""
        self._slot_freed.clear()
        if self.room <= 0:  # no slot freed since the caller looked
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), at_most_seconds)

    def wake(self) -> None:
        """Ends a ``wait_for_room`` early (e.g. the replica is stopping)."""
        self._slot_freed.set()

    def start(self, tp: TopicPartition, owned: OwnedPartition, record: Record) -> None:
        """Starts a record of an owned partition, unless it was started or finished already."""
        offsets = owned.offsets
        offset = record.offset
        if not offsets.accepts(offset):
            log.warning("record.redelivered", partition=tp.partition, offset=offset)
            return  # already started here: a fetch delivered it twice
        offsets.start(offset)
        if offsets.should_skip(offset):
            # A previous owner finished it (commit metadata): do not pay for it twice.
            offsets.finish(offset)
            self._metrics.record_skipped()
            return
        self._count += 1
        task = asyncio.create_task(self._process(record))
        owned.tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            owned.tasks.discard(done)
            self._count -= 1
            self._slot_freed.set()
            if done.cancelled():
                return  # abandoned: stays uncommitted for the next owner
            error = done.exception()
            if error is None:
                offsets.finish(offset)
            elif isinstance(error, Abandoned):
                log.info("record.abandoned", partition=tp.partition, offset=offset)
            else:
                # The record path dead-letters every failure it meets, so this is a bug in
                # that path itself. The offset stays unfinished (it must not be skipped) and
                # the replica is stopped, loudly, rather than hold the partition silently.
                log.error("record.crashed", partition=tp.partition, offset=offset, exc_info=error)
                self._metrics.record_unexpected_error()
                self._on_crash(error)

        task.add_done_callback(finished)


async def finish_within(tasks: set[asyncio.Task[None]], grace_seconds: float) -> None:
    """Lets the tasks finish for up to ``grace_seconds``, then cancels the rest (they stay uncommitted)."""
    if not tasks:
        return
    log.info("consumer.finishing_in_flight", records=len(tasks), grace_seconds=grace_seconds)
    _, unfinished = await asyncio.wait(tasks, timeout=grace_seconds)
    if unfinished:
        log.warning("consumer.abandoning", records=len(unfinished))
        await cancel_all(unfinished)


async def cancel_all(tasks: set[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
