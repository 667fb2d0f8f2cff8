"""Shared pieces of the benchmarks: a fast bulk publisher, result timing, process memory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from consumer.ops.topics import ensure_topics
from schemas.messages import DocumentRef
from schemas.settings import KafkaSettings, TopicSettings
from tests.helpers.documents import invoice_text
from tests.helpers.kafka import read_all

DOCMILL = str(Path(sys.executable).parent / "docmill")


def fresh_topics(prefix: str) -> TopicSettings:
    suffix = uuid.uuid4().hex[:8]
    return TopicSettings(
        documents_topic=f"bench.{prefix}.{suffix}.documents",
        results_topic=f"bench.{prefix}.{suffix}.results",
        dlq_topic=f"bench.{prefix}.{suffix}.dlq",
    )


async def create(kafka: KafkaSettings, topics: TopicSettings, partitions: int) -> None:
    await ensure_topics(kafka, topics, partitions=partitions, replication_factor=1)


def invoice_files(root: Path, count: int) -> list[Path]:
    """``count`` distinct small text invoices under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = root / f"inv-{index:05d}.txt"
        if not path.exists():
            path.write_text(invoice_text(f"B-{index:05d}", total=f"{100 + index}.50"))
        paths.append(path)
    return paths


async def publish_refs(kafka: KafkaSettings, topic: str, files: list[Path], count: int) -> float:
    """Publishes ``count`` references cycling over ``files``; returns the seconds it took."""
    producer = AIOKafkaProducer(
        **kafka.client_kwargs(),
        acks="all",
        linger_ms=50,
        max_batch_size=512 * 1024,
        compression_type="lz4",
    )
    await producer.start()
    started = time.perf_counter()
    try:
        uris = [f.as_uri() for f in files]
        pending = []
        for index in range(count):
            ref = DocumentRef(document_id=f"d{index:07d}", uri=uris[index % len(uris)], job_id="bench")
            pending.append(await producer.send(topic, ref.to_json(), key=ref.document_id.encode()))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


@dataclass(frozen=True)
class Throughput:
    records: int
    seconds: float  # from the first to the last output record's broker timestamp

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("inf")


async def output_throughput(kafka: KafkaSettings, topics: list[str]) -> Throughput:
    """Throughput measured on the output topics' timestamps: the same ruler for every design."""
    stamps: list[int] = []
    for topic in topics:
        stamps += [record.timestamp for record in await read_all(kafka, topic)]
    stamps.sort()
    if len(stamps) < 2:
        return Throughput(len(stamps), 0.0)
    return Throughput(len(stamps), (stamps[-1] - stamps[0]) / 1000)


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def consumer_env(
    kafka: KafkaSettings, topics: TopicSettings, group: str, root: Path, **extra: str
) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCMILL_")},
        "DOCMILL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "DOCMILL_DOCUMENTS_TOPIC": topics.documents_topic,
        "DOCMILL_RESULTS_TOPIC": topics.results_topic,
        "DOCMILL_DLQ_TOPIC": topics.dlq_topic,
        "DOCMILL_GROUP_ID": group,
        "DOCMILL_ALLOWED_ROOTS": str(root),
        "DOCMILL_METRICS_PORT": "0",
        "DOCMILL_METRICS_HOST": "127.0.0.1",
        "DOCMILL_SESSION_TIMEOUT_SECONDS": "6",
        **extra,
    }


def spawn(args: list[str], env: dict[str, str], log: Path, *, niceness: int = 0) -> subprocess.Popen[bytes]:
    """Starts a process; ``niceness`` lowers its scheduling priority (see quota.py for why)."""
    command = ["nice", "-n", str(niceness), *args] if niceness else args
    with log.open("ab") as sink:
        return subprocess.Popen(command, env=env, stdout=sink, stderr=sink)


def chunks(seq: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
