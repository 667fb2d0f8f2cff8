"""`docmill produce` and `docmill topics ensure` against the real broker."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import orjson
import pytest

from producer.kafka_io import partitions_of
from schemas.settings import KafkaSettings, TopicSettings
from tests.helpers.cli import DOCMILL, run_docmill
from tests.helpers.kafka import read_all

pytestmark = pytest.mark.integration


def _run(kafka: KafkaSettings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_docmill({"DOCMILL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}, *args, stdin=stdin)


def _tree(root: Path) -> list[Path]:
    files = [root / "a.pdf", root / "sub" / "b.txt", root / "sub" / "deeper" / "c.png"]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (root / ".hidden").write_bytes(b"x")
    return files


async def test_produce_publishes_folders_globs_stdin_and_manifests(
    kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path
) -> None:
    """Every named document becomes one DocumentRef keyed by its stable id, all in one job."""
    files = _tree(tmp_path / "docs")
    extra = tmp_path / "extra.txt"
    extra.write_text("x")
    manifest = tmp_path / "batch.jsonl"
    manifest.write_text(
        '{"uri": "https://files.example.com/inv-9.pdf", "document_id": "inv-9", '
        '"attributes": {"tenant": "acme"}}\n'
        '{"uri": "extra.txt", "schema": "invoice"}\n'
    )
    glob = str(tmp_path / "docs" / "**" / "*.txt")

    run = _run(
        kafka,
        "produce",
        str(tmp_path / "docs"),
        glob,
        "-",
        "--manifest",
        str(manifest),
        "--job-id",
        "job-cli-1",
        "--documents-topic",
        topics.documents_topic,
        stdin=f"{extra}\n",
    )

    assert run.returncode == 0, run.stderr
    assert "published 7, skipped 0, failed 0" in run.stdout
    assert "job-cli-1" in run.stdout
    records = await read_all(kafka, topics.documents_topic)
    values = [orjson.loads(r.value) for r in records]
    assert {v["job_id"] for v in values} == {"job-cli-1"}
    assert all(r.key.decode() == v["document_id"] for r, v in zip(records, values, strict=True))
    uris = [v["uri"] for v in values]
    assert sorted(uris) == sorted(
        [f.as_uri() for f in files]
        + [(tmp_path / "docs" / "sub" / "b.txt").as_uri()]
        + [extra.as_uri()] * 2
        + ["https://files.example.com/inv-9.pdf"]
    )
    by_id = {v["document_id"]: v for v in values}
    assert by_id["inv-9"]["attributes"] == {"tenant": "acme"}
    # The same document named twice (glob and folder; stdin and manifest) keeps one identity.
    assert len({v["document_id"] for v in values if v["uri"] == extra.as_uri()}) == 1


async def test_produce_names_each_bad_source_and_exits_non_zero(
    kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path
) -> None:
    """A missing path and a bad manifest row each get one line; the good ones are still published."""
    good = tmp_path / "good.txt"
    good.write_text("x")
    manifest = tmp_path / "m.csv"
    manifest.write_text("uri,document_id\n,no-uri\ngood.txt,g-1\n")

    run = _run(
        kafka,
        "produce",
        str(good),
        str(tmp_path / "missing.pdf"),
        "--manifest",
        str(manifest),
        "--documents-topic",
        topics.documents_topic,
    )

    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert any("missing.pdf: no such file or directory" in line for line in errors)
    assert any("m.csv:2: row has no uri" in line for line in errors)
    assert "Traceback" not in run.stderr
    assert "published 2, skipped 2" in run.stdout
    assert len(await read_all(kafka, topics.documents_topic)) == 2


def test_produce_to_an_unreachable_broker_is_a_one_line_error(tmp_path: Path) -> None:
    """No broker listening: a single error line naming the address, exit 1."""
    (tmp_path / "a.txt").write_text("x")
    run = subprocess.run(
        [DOCMILL, "produce", str(tmp_path / "a.txt"), "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("docmill produce: error: cannot reach Kafka at 127.0.0.1:1")
    )
    assert "Traceback" not in run.stderr


async def test_topics_ensure_creates_missing_topics_and_reports_existing(
    kafka: KafkaSettings,
) -> None:
    """The first run creates the four topics (jobs with 1 partition); the second reports them."""
    suffix = uuid.uuid4().hex[:8]
    flags = [
        "--documents-topic",
        f"t.{suffix}.d",
        "--results-topic",
        f"t.{suffix}.r",
        "--dlq-topic",
        f"t.{suffix}.q",
        "--jobs-topic",
        f"t.{suffix}.j",
    ]

    first = _run(kafka, "topics", "ensure", "--partitions", "4", *flags)
    second = _run(kafka, "topics", "ensure", "--partitions", "4", *flags)

    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == 4
    assert second.returncode == 0
    assert second.stdout.count("exists") == 4
    assert await partitions_of(kafka, f"t.{suffix}.d") == [0, 1, 2, 3]
    assert await partitions_of(kafka, f"t.{suffix}.j") == [0]
