"""What a replica does when the group gives it partitions or takes them away."""

from __future__ import annotations

import contextlib

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError

from consumer.checkpoint.commits import Checkpoint
from consumer.replica.committer import Committer
from consumer.replica.in_flight import finish_within
from consumer.replica.partitions import Partitions
from schemas.metrics import Metrics

log = structlog.get_logger("docmill.consumer")


class Rebalancer(ConsumerRebalanceListener):
    """Adopts assigned partitions (after reading their checkpoint) and releases revoked ones."""

    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        partitions: Partitions,
        checkpoint: Checkpoint,
        committer: Committer,
        metrics: Metrics,
        grace_seconds: float,
    ) -> None:
        self._consumer = consumer
        self._partitions = partitions
        self._checkpoint = checkpoint
        self._committer = committer
        self._metrics = metrics
        self._grace_seconds = grace_seconds

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        new = self._partitions.new(assigned)
        if new:
            # Held (paused) until their checkpoints are read: a record started before
            # would miss the list of offsets a previous owner already finished.
            with self._partitions.held(new):
                self._consumer.pause(*new)
                for tp, offsets in (await self._checkpoint.restore(new)).items():
                    self._partitions.adopt(tp, offsets)
        log.info("partitions.assigned", partitions=sorted(tp.partition for tp in assigned))

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Lets revoked partitions' records finish (within the grace period), commits, forgets them."""
        mine = [tp for tp in revoked if tp in self._partitions]
        # No new records from partitions on their way out (held: the loop must not
        # resume them); the in-flight ones may finish.
        with self._partitions.held(mine):
            with contextlib.suppress(IllegalStateError):
                self._consumer.pause(*mine)
            await finish_within(self._partitions.tasks(mine), self._grace_seconds)
            await self._committer.commit()
        for tp in mine:
            self._partitions.release(tp)
            self._metrics.forget_partition(tp.topic, tp.partition)
        self._checkpoint.forget(mine)
        log.info("partitions.revoked", partitions=sorted(tp.partition for tp in revoked))
