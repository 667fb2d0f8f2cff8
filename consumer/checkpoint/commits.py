"""Commits each partition's watermark with its metadata, and reads them back on assignment."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from consumer.checkpoint.offsets import PartitionOffsets
from schemas.commit_metadata import decode_done
from schemas.metrics import Metrics

log = structlog.get_logger("docmill.consumer")


class Checkpoint:
    """The group's committed offsets: where each partition resumes and what to skip there."""

    def __init__(self, admin: AIOKafkaAdminClient, group_id: str, metrics: Metrics) -> None:
        self._admin = admin
        self._group_id = group_id
        self._metrics = metrics
        self._last: dict[TopicPartition, tuple[int, str]] = {}

    async def restore(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, PartitionOffsets]:
        """Fresh offset trackers for newly assigned partitions, primed with what is already done."""
        tps = list(tps)
        try:
            committed = await self._admin.list_consumer_group_offsets(self._group_id, partitions=tps)
        except KafkaError as error:
            # Without the metadata nothing is lost: the finished records are redone.
            log.warning("checkpoint.restore_failed", error=str(error))
            committed = {}
        trackers = {}
        for tp in tps:
            mark = committed.get(tp)
            done = decode_done(mark.offset, mark.metadata) if mark is not None and mark.offset >= 0 else set()
            trackers[tp] = PartitionOffsets(already_done=done)
            if done:
                log.info("checkpoint.restored", partition=tp.partition, skipping=len(done))
        return trackers

    async def commit(
        self, consumer: AIOKafkaConsumer, partitions: dict[TopicPartition, PartitionOffsets]
    ) -> None:
        """Commits every partition whose watermark or metadata moved since the last commit."""
        offsets = {}
        for tp, tracker in partitions.items():
            mark = tracker.watermark()
            if mark is None:
                continue
            entry = (mark, tracker.metadata())
            if self._last.get(tp) != entry:
                offsets[tp] = entry
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as error:
            # The group rebalanced under us; the next owner redoes what we did not commit.
            log.warning("commit.failed", error=str(error))
            return
        for tp, entry in offsets.items():
            self._last[tp] = entry
            self._metrics.set_committed_offset(tp.topic, tp.partition, entry[0])

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._last.pop(tp, None)
