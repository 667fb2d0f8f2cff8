"""Money to the cent, and exact job progress from `docmill status`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import KafkaSettings, TopicSettings
from tests.helpers.cli import run_docmill, topic_env
from tests.helpers.documents import image_bytes, invoice_text, pdf_bytes, write_file
from tests.helpers.kafka import consumer_config, drain

pytestmark = pytest.mark.integration


def _docmill(kafka: KafkaSettings, topics: TopicSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_docmill(topic_env(kafka, topics), *args)


def _workload(root: Path) -> None:
    for index in range(12):
        write_file(root, f"t{index}.txt", invoice_text(f"T-{index}", total=f"{index}.50"))
    for index in range(4):
        write_file(root, f"p{index}.pdf", pdf_bytes(invoice_text(f"P-{index}"), pages=1 + index))
    for index in range(4):
        write_file(root, f"i{index}.png", image_bytes("PNG", size=(400 + 200 * index, 300)))


async def test_cost_metric_equals_the_simulators_own_bill(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """docmill_cost_usd_total matches the bill the simulator computes from its own usage, within 0.1%."""
    _workload(tmp_path)
    run = _docmill(kafka, topics, "produce", str(tmp_path), "--job-id", "job-cost")
    assert run.returncode == 0, run.stderr
    # Every third reply is invalid at first, so corrective second calls are billed too.
    calls = {"n": 0}
    default = sim.responder

    def sometimes_invalid(body: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        return {"invoice_number": 1} if calls["n"] % 3 == 0 else default(body)

    sim.responder = sometimes_invalid

    service = await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="claude"))

    registry = service.metrics.registry
    metric = sum(
        sample.value
        for family in registry.collect()
        if family.name == "docmill_cost_usd"
        for sample in family.samples
        if sample.name == "docmill_cost_usd_total"
    )
    bill = sim.bill_usd()  # the simulator's own per-request bill, from its own price list
    print(f"\ncost metric ${metric:.6f}, simulator bill ${bill:.6f}")
    assert bill > 0
    assert abs(metric - bill) <= 0.001 * bill
    tokens = registry.get_sample_value("docmill_tokens_total", {"model": "claude-haiku-5-5", "type": "input"})
    assert tokens == sum(u.input_tokens for u in sim.stats.usage.values())


async def test_status_reports_exact_job_progress_and_wait_exits_by_outcome(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """A job's done/dead-lettered counts are exact; --wait --fail-on-dlq exits 1 when any failed."""
    for index in range(9):
        write_file(tmp_path, f"t{index}.txt", invoice_text(f"T-{index}"))
    write_file(tmp_path, "empty.txt", b"")  # one dead letter
    produced = _docmill(kafka, topics, "produce", str(tmp_path), "--job-id", "job-status")
    assert produced.returncode == 0, produced.stderr
    other = _docmill(kafka, topics, "produce", str(tmp_path / "t0.txt"), "--job-id", "job-other")
    assert other.returncode == 0

    before = _docmill(kafka, topics, "status", "--job", "job-status", "--group-id", group_id)
    assert before.returncode == 0, before.stderr
    assert "0/10" in before.stdout

    await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="claude"))

    after = _docmill(kafka, topics, "status", "--job", "job-status", "--group-id", group_id)
    assert "10/10" in after.stdout
    row = next(line for line in after.stdout.splitlines() if line.count("│") > 5)
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells[:5] == ["10", "10", "9", "1", "0"]  # documents, done, succeeded, dead-lettered, remaining
    waited = _docmill(
        kafka,
        topics,
        "status",
        "--job",
        "job-status",
        "--group-id",
        group_id,
        "--wait",
        "--fail-on-dlq",
        "--interval",
        "0.2",
    )
    assert waited.returncode == 1
    clean = _docmill(
        kafka,
        topics,
        "status",
        "--job",
        "job-other",
        "--group-id",
        group_id,
        "--wait",
        "--fail-on-dlq",
        "--interval",
        "0.2",
    )
    assert clean.returncode == 0
    unknown = _docmill(kafka, topics, "status", "--job", "no-such-job", "--group-id", group_id)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        f"docmill status: error: unknown job 'no-such-job' (no record in {topics.jobs_topic})"
    )
    group = _docmill(kafka, topics, "status", "--group-id", group_id)
    assert group.returncode == 0, group.stderr
    assert "time to drain" in group.stdout
    assert "lag 0" in group.stdout
