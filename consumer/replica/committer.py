"""Commits every owned partition's watermark (with its finished-offsets metadata)."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError

from consumer.checkpoint.commits import Checkpoint
from consumer.replica.partitions import Partitions

# An idle partition's position is asked for within this long, or left for the next commit.
_POSITION_TIMEOUT_SECONDS = 1.0


class Committer:
    def __init__(self, consumer: AIOKafkaConsumer, checkpoint: Checkpoint, partitions: Partitions) -> None:
        self._consumer = consumer
        self._checkpoint = checkpoint
        self._partitions = partitions

    async def commit(self) -> None:
        offsets = self._partitions.offsets()
        for tp in self._partitions.idle():
            # Transaction markers (e.g. from `docmill dlq replay`) take offsets but are never
            # delivered: an idle partition commits the consumer's position, past them.
            with contextlib.suppress(IllegalStateError, TimeoutError):
                position = await asyncio.wait_for(self._consumer.position(tp), _POSITION_TIMEOUT_SECONDS)
                offsets[tp].advance_to(position)
        await self._checkpoint.commit(self._consumer, offsets)
