"""Reads a topic from its beginning to its current end, without a group and without committing.

Used by the operator tools (demo report, dead-letter inspection) that look at
what a topic holds rather than consume it as work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.settings import KafkaSettings


async def partitions_of(kafka: KafkaSettings, topic: str) -> list[int]:
    """The partition numbers of a topic; LookupError when it does not exist."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry["topic"] == topic and entry["error_code"] == 0 and entry["partitions"]:
            return sorted(p["partition"] for p in entry["partitions"])
    raise LookupError(f"topic {topic} does not exist")


async def read_to_end(kafka: KafkaSettings, topic: str) -> AsyncIterator[Any]:
    """Yields every ConsumerRecord of ``topic`` that exists when the call starts."""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = await partitions_of(kafka, topic)
        tps = [TopicPartition(topic, p) for p in partitions]
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
    finally:
        await consumer.stop()
