"""The poll loop: fetch records while there is room, start each one, and run the periodic duties.

At the in-flight bound the partitions are paused but polling continues, so
the group membership stays alive however slow extraction is, and memory
stays flat whatever the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IllegalStateError

from consumer.checkpoint.lag import committed_offsets
from consumer.records.letters import Record
from consumer.replica.committer import Committer
from consumer.replica.drain import DrainTarget
from consumer.replica.in_flight import InFlight
from consumer.replica.partitions import Partitions
from consumer.replica.quota_share import QuotaShare
from consumer.replica.timing import Every

log = structlog.get_logger("docmill.consumer")

# How long one poll waits for records when there is room for more.
_POLL_MS = 100
# When full, how often the loop still polls (keeps max_poll_interval_ms far away).
_FULL_POLL_SECONDS = 1.0
# How often the replica re-measures its share of the backlog (and so of the API quota).
SHARE_INTERVAL_SECONDS = 2.0


class PollLoop:
    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        admin: AIOKafkaAdminClient,
        group_id: str,
        partitions: Partitions,
        in_flight: InFlight,
        committer: Committer,
        quota_share: QuotaShare,
        commits: Every,
        shares: Every,
        stopping: asyncio.Event,
    ) -> None:
        self._consumer = consumer
        self._admin = admin
        self._group_id = group_id
        self._partitions = partitions
        self._in_flight = in_flight
        self._committer = committer
        self._quota_share = quota_share
        self._commits = commits
        self._shares = shares
        self._stopping = stopping

    async def run(self, drain: DrainTarget | None = None) -> None:
        """Polls until stopped or, with ``drain``, until the group got through it."""
        while not self._stopping.is_set():
            self._take(await self._poll())
            if self._shares.due():
                self._shares.ran()
                await self._quota_share.refresh()
            if self._commits.due():
                await self._committer.commit()
                self._commits.ran()
                if drain is not None and await self._drained(drain):
                    log.info("consumer.drained")
                    return

    async def _poll(self) -> dict[TopicPartition, list[Record]]:
        consumer = self._consumer
        room = self._in_flight.room
        if room <= 0:
            # Re-applied every time: partitions assigned since the last pause come unpaused.
            consumer.pause(*consumer.assignment())
            await self._in_flight.wait_for_room(_FULL_POLL_SECONDS)
            # Paused partitions return nothing, but the poll keeps us in the group.
            return await consumer.getmany(timeout_ms=0)
        paused = consumer.paused() & self._partitions.taking_records(consumer.assignment())
        if paused:
            consumer.resume(*paused)
        return await consumer.getmany(timeout_ms=_POLL_MS, max_records=room)

    def _take(self, batches: dict[TopicPartition, list[Record]]) -> None:
        """Starts every fetched record; none is ever dropped.

        A record of a partition that is not ready here (assigned a moment ago,
        its checkpoint still loading) is sought back to, so it is fetched again
        once the partition is ready, instead of being skipped over.
        """
        for tp, records in batches.items():
            owned = self._partitions.owned(tp)
            if owned is None:
                with contextlib.suppress(IllegalStateError):
                    self._consumer.seek(tp, records[0].offset)
                continue
            for record in records:
                self._in_flight.start(tp, owned, record)

    async def _drained(self, drain: DrainTarget) -> bool:
        if self._in_flight.count:
            return False
        committed = await committed_offsets(self._admin, self._group_id, drain.partitions)
        return drain.reached(committed, self._in_flight.count)
