"""The overhead benchmark's yardstick: the least a Kafka-to-Kafka step can do in Python.

Reads the same records as the consumer, decodes them, produces a result of
the same size keyed by document id, and commits; nothing else. Exits when
everything that existed at start is committed.

    python -m tests.bench.bare_loop BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP RESULT_BYTES [--with-work]

``--with-work`` also does each document's own work the way docmill does it
(read the file, identify it, find the invoice fields), so that the gap to
docmill is the framework's overhead alone.
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import unquote, urlsplit

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from consumer.extract.local import find_invoice_fields
from consumer.fetch.documents import inspect_document


def _document_work(uri: str) -> dict[str, object]:
    with open(unquote(urlsplit(uri).path), "rb") as handle:
        document = inspect_document(handle.read())
    return find_invoice_fields(document.text or "")


async def main(
    bootstrap: str, in_topic: str, out_topic: str, group: str, result_bytes: int, with_work: bool
) -> None:
    consumer = AIOKafkaConsumer(
        in_topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, compression_type="zstd", linger_ms=5
    )
    await consumer.start()
    await producer.start()
    try:
        partitions = consumer.partitions_for_topic(in_topic)
        while not partitions:
            await asyncio.sleep(0.1)
            partitions = consumer.partitions_for_topic(in_topic)
        ends = await consumer.end_offsets([TopicPartition(in_topic, p) for p in partitions])
        done: dict[TopicPartition, int] = {}
        while any(done.get(tp, 0) < end for tp, end in ends.items() if end):
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            futures = []
            for tp, records in batches.items():
                for record in records:
                    ref = orjson.loads(record.value or b"{}")
                    data = _document_work(ref["uri"]) if with_work else {}
                    body = orjson.dumps({"document_id": ref["document_id"], "uri": ref["uri"], "data": data})
                    value = body + b" " * max(0, result_bytes - len(body))
                    futures.append(await producer.send(out_topic, value, key=record.key))
                    done[tp] = record.offset + 1
            await asyncio.gather(*futures)
            if batches:
                await consumer.commit({tp: done[tp] for tp in batches})
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    bootstrap, in_topic, out_topic, group, size = sys.argv[1:6]
    asyncio.run(main(bootstrap, in_topic, out_topic, group, int(size), "--with-work" in sys.argv[6:]))
