"""This replica's share of the group's backlog, and so of the API quota.

The share is how N replicas divide one API quota without a coordination
service: each runs its limiter at ``quota × share``, and the shares of all
replicas add up to one because they are shares of the same backlog, read
from the same offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from consumer.checkpoint.lag import PartitionLag, group_lag
from consumer.replica.partitions import Partitions
from consumer.replica.readiness import KAFKA_SILENCE_SECONDS, Readiness
from consumer.throttle.pools import PoolLimiters
from schemas.metrics import Metrics

log = structlog.get_logger("docmill.consumer")

# Bounded: an unreachable broker must not stall the poll loop (or a shutdown).
_REFRESH_TIMEOUT_SECONDS = KAFKA_SILENCE_SECONDS / 3


def share_of(lag: Mapping[TopicPartition, PartitionLag], assigned: Collection[TopicPartition]) -> float:
    """The assigned partitions' part of the backlog; by partition count when there is none."""
    total = sum(entry.lag for entry in lag.values())
    if total > 0:
        return sum(lag[tp].lag for tp in assigned if tp in lag) / total
    return len(assigned) / len(lag) if lag else 1.0


class QuotaShare:
    """Re-reads the group's lag and sizes the limiter by this replica's part of it."""

    def __init__(
        self,
        *,
        admin: AIOKafkaAdminClient,
        consumer: AIOKafkaConsumer,
        group_id: str,
        topic: str,
        partitions: Partitions,
        limiter: PoolLimiters,
        metrics: Metrics,
        readiness: Readiness,
    ) -> None:
        self._admin = admin
        self._consumer = consumer
        self._group_id = group_id
        self._topic = topic
        self._partitions = partitions
        self._limiter = limiter
        self._metrics = metrics
        self._readiness = readiness

    async def refresh(self) -> None:
        try:
            lag = await asyncio.wait_for(self.read_lag(), _REFRESH_TIMEOUT_SECONDS)
        except (KafkaError, TimeoutError) as error:
            log.warning("backlog.refresh_failed", error=str(error) or type(error).__name__)
            return
        self._readiness.heard_from_kafka()
        owned = list(self._partitions)
        for tp in owned:
            entry = lag.get(tp)
            self._metrics.set_partition_lag(tp.topic, tp.partition, entry.lag if entry else 0)
        self._limiter.set_share(share_of(lag, owned))
        self._metrics.set_quota_share(self._limiter.main.share)

    async def read_lag(self) -> dict[TopicPartition, PartitionLag]:
        """The lag of every partition of the documents topic."""
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        return await group_lag(self._admin, self._consumer, self._group_id, tps)
