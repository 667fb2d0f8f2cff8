"""`docmill dlq inspect` and `docmill dlq replay` against the real broker."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from producer.kafka_io import admin_client
from schemas.settings import KafkaSettings, TopicSettings
from schemas.topics import Header
from tests.helpers.cli import run_docmill, topic_env
from tests.helpers.documents import document_ref, invoice_text, write_file
from tests.helpers.kafka import consumer_config, drain, publish_raw, read_all, read_values

pytestmark = pytest.mark.integration


def _docmill(kafka: KafkaSettings, topics: TopicSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_docmill(topic_env(kafka, topics), *args)


async def _dead_letters(kafka: KafkaSettings, topics: TopicSettings, group_id: str, root: Path) -> None:
    """Two documents whose files are missing, one bad message: three letters, two classes."""
    values = [
        (
            b"missing-1",
            orjson.dumps({"document_id": "missing-1", "uri": (root / "m1.txt").as_uri(), "job_id": "job-a"}),
        ),
        (
            b"missing-2",
            orjson.dumps({"document_id": "missing-2", "uri": (root / "m2.txt").as_uri(), "job_id": "job-b"}),
        ),
        (b"garbage", b"\xffnot json"),
    ]
    await publish_raw(kafka, topics.documents_topic, values, headers=[("docmill.job.id", b"job-a")])
    await drain(consumer_config(kafka, topics, group_id, [root]))


async def test_inspect_counts_filters_and_exports_without_committing(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """Counts by class, filters by class/document/time, JSONL export; the topic stays unconsumed."""
    await _dead_letters(kafka, topics, group_id, tmp_path)

    table = _docmill(kafka, topics, "dlq", "inspect")
    assert table.returncode == 0, table.stderr
    assert "3 dead letters" in table.stdout
    assert "DocumentNotFound" in table.stdout
    assert "InvalidMessage" in table.stdout

    exported = _docmill(
        kafka, topics, "dlq", "inspect", "--error-class", "DocumentNotFound", "--output", "jsonl"
    )
    letters = [orjson.loads(line) for line in exported.stdout.splitlines()]
    assert sorted(letter["document_id"] for letter in letters) == ["missing-1", "missing-2"]
    one = _docmill(kafka, topics, "dlq", "inspect", "--document-id", "missing-2", "--output", "jsonl")
    assert [orjson.loads(line)["job_id"] for line in one.stdout.splitlines()] == ["job-b"]
    future = _docmill(kafka, topics, "dlq", "inspect", "--since", "2099-01-01T00:00:00Z", "--output", "jsonl")
    assert future.stdout == ""
    recent = _docmill(kafka, topics, "dlq", "inspect", "--since", "1h", "--output", "jsonl")
    assert len(recent.stdout.splitlines()) == 3
    bad = _docmill(kafka, topics, "dlq", "inspect", "--since", "yesterday-ish")
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1


async def test_replay_republishes_once_resumes_and_refuses_poison(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """After the cause is fixed, replay re-publishes original bytes exactly once; loops are refused."""
    await _dead_letters(kafka, topics, group_id, tmp_path)
    originals = {r.key: r for r in await read_all(kafka, topics.documents_topic)}

    dry = _docmill(kafka, topics, "dlq", "replay", "--error-class", "DocumentNotFound", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would replay 2, skipped by filter 1, refused 0" in dry.stdout
    assert len(await read_all(kafka, topics.documents_topic)) == 3  # nothing published

    write_file(tmp_path, "m1.txt", invoice_text("M-1"))  # the operator fixes the cause
    write_file(tmp_path, "m2.txt", invoice_text("M-2"))
    first = _docmill(kafka, topics, "dlq", "replay", "--error-class", "DocumentNotFound")
    assert first.returncode == 0, first.stderr
    assert "replayed 2, skipped by filter 1, refused 0" in first.stdout
    again = _docmill(kafka, topics, "dlq", "replay", "--error-class", "DocumentNotFound")
    assert "replayed 0" in again.stdout  # resumed after the end: nothing published twice

    replayed = [
        r
        for r in await read_all(kafka, topics.documents_topic)
        if r.offset >= 1 and dict(r.headers).get(Header.REPLAY_COUNT) == b"1"
    ]
    assert sorted(r.key for r in replayed) == [b"missing-1", b"missing-2"]
    for record in replayed:
        assert record.value == originals[record.key].value  # the original bytes, verbatim
        assert dict(record.headers)["docmill.job.id"] == b"job-a"  # original headers kept
    await drain(consumer_config(kafka, topics, group_id, [tmp_path]))
    results = {r["document_id"] for r in await read_values(kafka, topics.results_topic)}
    assert results == {"missing-1", "missing-2"}

    # A document that keeps failing is refused once it was replayed --max-replays times.
    poison = _docmill(
        kafka,
        topics,
        "dlq",
        "replay",
        "--error-class",
        "InvalidMessage",
        "--max-replays",
        "1",
        "--replay-group",
        "poison-1",
    )
    assert "replayed 1" in poison.stdout
    await drain(consumer_config(kafka, topics, group_id, [tmp_path]))
    # Its second failure is a new letter; the same replay, resumed, reaches it and refuses it.
    refused = _docmill(
        kafka,
        topics,
        "dlq",
        "replay",
        "--error-class",
        "InvalidMessage",
        "--max-replays",
        "1",
        "--replay-group",
        "poison-1",
    )
    assert "replayed 0, skipped by filter 0, refused 1" in refused.stdout
    assert "replayed 1 times already" in refused.stderr


async def test_replay_rate_limits_letters_per_second(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """--rate 20 spreads 40 letters over about two seconds; without it they go at once."""
    values = [(f"k{i}".encode(), b"not json %d" % i) for i in range(40)]
    await publish_raw(kafka, topics.documents_topic, values)
    await drain(consumer_config(kafka, topics, group_id, [tmp_path]))

    started = time.perf_counter()
    fast = _docmill(
        kafka, topics, "dlq", "replay", "--to-topic", topics.results_topic, "--replay-group", "fast"
    )
    fast_seconds = time.perf_counter() - started
    started = time.perf_counter()
    slow = _docmill(
        kafka,
        topics,
        "dlq",
        "replay",
        "--to-topic",
        topics.results_topic,
        "--replay-group",
        "slow",
        "--rate",
        "20",
    )
    slow_seconds = time.perf_counter() - started

    assert "replayed 40" in fast.stdout
    assert "replayed 40" in slow.stdout
    print(f"\nreplay of 40 letters: {fast_seconds:.2f} s unlimited, {slow_seconds:.2f} s at --rate 20")
    assert slow_seconds >= 1.9
    assert len(await read_all(kafka, topics.results_topic)) == 80


async def test_replay_kafka_refuses_is_counted_as_failed_and_resumes_after_the_fix(
    kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """Letters the target topic refuses (too large for it) fail the replay with exit 1, publish nothing
    of their batch, and the same replay run after the fix resumes there and replays them once."""
    padding = {"note": "x" * 4000}  # references larger than the target topic takes
    values = [
        (
            f"big-{i}".encode(),
            document_ref(f"big-{i}", tmp_path / f"gone-{i}.txt", attributes=padding).to_json(),
        )
        for i in range(2)
    ]
    await publish_raw(kafka, topics.documents_topic, values)
    await drain(consumer_config(kafka, topics, group_id, [tmp_path]))
    target = f"{topics.documents_topic}.small"
    async with admin_client(kafka) as admin:
        # Room for small records (and transaction markers), not for these references.
        await admin.create_topics(
            [
                NewTopic(
                    target,
                    num_partitions=1,
                    replication_factor=1,
                    topic_configs={"max.message.bytes": "2048"},
                )
            ]
        )
    replay = ("dlq", "replay", "--error-class", "DocumentNotFound", "--to-topic", target)

    refused = _docmill(kafka, topics, *replay)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "replayed 0, skipped by filter 0, refused 0, failed 2" in refused.stdout
    assert refused.stderr.count("Kafka refused the replay") == 2
    assert "Traceback" not in refused.stderr
    assert await _committed_records(kafka, target) == 0  # the aborted batch published nothing

    async with admin_client(kafka) as admin:  # the operator fixes the cause
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, target, {"max.message.bytes": "1048576"})]
        )
    fixed = _docmill(kafka, topics, *replay)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "replayed 2, skipped by filter 0, refused 0 |" in fixed.stdout
    assert await _committed_records(kafka, target) == 2


async def _committed_records(kafka: KafkaSettings, topic: str) -> int:
    """Records of committed transactions on a topic (what read_committed consumers see)."""
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(), group_id=None, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        count = 0
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=500)
            count += sum(len(records) for records in batches.values())
        return count
    finally:
        await consumer.stop()
