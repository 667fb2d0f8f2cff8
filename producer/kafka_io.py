"""Kafka clients made from docmill's settings, and reading a topic whole.

Shared by the producer (which reads the jobs topic to extend a job) and the
operator tools: an admin session, a reader that belongs to no group and
commits nothing, and a read of everything a topic holds when it starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from schemas.settings import KafkaSettings


@contextlib.asynccontextmanager
async def admin_client(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed after the block (also when starting it failed)."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def reader(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer in no group that never commits: for looking at topics, not consuming work."""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=None, enable_auto_commit=False)
    try:
        await consumer.start()
        yield consumer
    finally:
        await consumer.stop()


async def partitions_of(kafka: KafkaSettings, topic: str) -> list[int]:
    """The partition numbers of a topic; LookupError when it does not exist."""
    async with admin_client(kafka) as admin:
        described = await admin.describe_topics([topic])
    for entry in described:
        if entry["topic"] == topic and entry["error_code"] == 0 and entry["partitions"]:
            return sorted(p["partition"] for p in entry["partitions"])
    raise LookupError(f"topic {topic} does not exist")


async def read_to_end(kafka: KafkaSettings, topic: str) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Yields every record of ``topic`` that exists when the call starts."""
    async with reader(kafka) as consumer:
        tps = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield record
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
