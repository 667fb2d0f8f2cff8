"""`make bench`: docmill's benchmarks, each comparison measured side by side in one run.

1. overhead   — the full consumer (local backend) vs a bare aiokafka loop, same records
2. quota      — docs/s as a share of an org-wide API quota and the share of 429s, for 1 and
                3 replicas, beside the batch-processing guide's two designs
3. memory     — peak RSS of one replica consuming a 1,000,000-record backlog
4. bursts     — quota saturation against API buckets of 60, 5 and 1 s, start-up and a join
5. cost       — cost and thinking tokens per document on the current models
6. ocr        — the local backend's field accuracy and speed on generated scans and photos

Everything runs against the real local broker and the API simulator on 127.0.0.1.
Prints a table and writes bench-results/bench.json.

    python -m tests.bench.run [--only overhead,quota,bursts,cost,memory,ocr] [--scale 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from schemas.settings import KafkaSettings, TopicSettings
from tests.bench import guide_baselines
from tests.bench.common import (
    DOCMILL,
    consumer_env,
    create,
    fresh_topics,
    invoice_files,
    output_throughput,
    publish_refs,
    rss_kib,
    spawn,
)
from tests.bench.cost import bench_cost, render_cost
from tests.bench.ocr import bench_ocr, render_ocr
from tests.bench.quota import bench_bursts, render_bursts
from tests.bench.sim_process import SimProcess
from tests.helpers.kafka import read_all

RESULTS_DIR = Path("bench-results")


def _wait(process: Any, timeout: float, what: str) -> None:
    code = process.wait(timeout)
    if code != 0:
        raise RuntimeError(f"{what} exited with {code}")


# --- 1. overhead -------------------------------------------------------------------------


async def bench_overhead(
    kafka: KafkaSettings, work: Path, records: int, partitions: int, rounds: int
) -> dict[str, Any]:
    """The three designs read the same input topic, round after round, interleaved: a machine that
    slows down for a while (the broker shares its two cores) slows every design, not just one."""
    files = invoice_files(work / "docs", 1000)
    topics = fresh_topics("overhead")
    await create(kafka, topics, partitions)
    publish_seconds = await publish_refs(kafka, topics.documents_topic, files, records)
    per_round: dict[str, list[float]] = {"docmill": [], "bare": [], "bare_with_work": []}
    result_bytes = 0
    for round_number in range(rounds):
        outputs = TopicSettings(
            documents_topic=topics.documents_topic,
            results_topic=f"{topics.results_topic}.docmill{round_number}",
            dlq_topic=f"{topics.dlq_topic}.docmill{round_number}",
        )
        await create(kafka, outputs, partitions)
        env = consumer_env(
            kafka,
            outputs,
            f"bench-overhead-docmill-{round_number}",
            work / "docs",
            DOCMILL_BACKEND="local",
            DOCMILL_MAX_IN_FLIGHT=os.environ.get("BENCH_IN_FLIGHT", "512"),
            DOCMILL_LOG_LEVEL="warning",
        )
        _wait(spawn([DOCMILL, "consume", "--drain"], env, work / "overhead-docmill.log"), 3600, "docmill")
        docmill = await output_throughput(kafka, [outputs.results_topic, outputs.dlq_topic])
        per_round["docmill"].append(docmill.per_second)
        if not result_bytes:  # docmill's results tell the bare loops how large a result is
            sample = (await read_all(kafka, outputs.results_topic))[:100]
            result_bytes = sum(len(r.value or b"") for r in sample) // max(1, len(sample))
        for variant, extra in (("bare", []), ("bare_with_work", ["--with-work"])):
            out = f"{topics.results_topic}.{variant}{round_number}"
            await create(
                kafka,
                TopicSettings(documents_topic=out, results_topic=out + ".r", dlq_topic=out + ".q"),
                partitions,
            )
            command = [
                sys.executable,
                "-m",
                "tests.bench.bare_loop",
                kafka.bootstrap_servers,
                topics.documents_topic,
                out,
                f"bench-overhead-{variant}-{round_number}",
                str(result_bytes),
                *extra,
            ]
            _wait(spawn(command, dict(os.environ), work / f"overhead-{variant}.log"), 3600, variant)
            per_round[variant].append((await output_throughput(kafka, [out])).per_second)
    docmill_rate, bare_rate, with_work_rate = (
        statistics.median(per_round[name]) for name in ("docmill", "bare", "bare_with_work")
    )
    return {
        "records": records,
        "partitions": partitions,
        "rounds": rounds,
        "publish_refs_per_s": records / publish_seconds,
        "result_bytes": result_bytes,
        "per_round_docs_per_s": per_round,
        "docmill_docs_per_s": docmill_rate,
        "bare_docs_per_s": bare_rate,
        "bare_with_work_docs_per_s": with_work_rate,
        "ratio": docmill_rate / bare_rate,
        "ratio_to_bare_with_work": docmill_rate / with_work_rate,
        # The framework's own cost: what a record costs docmill beyond the same work done bare.
        "framework_us_per_record": 1e6 / docmill_rate - 1e6 / with_work_rate,
    }


# --- 2. quota saturation -------------------------------------------------------------------


async def _docmill_under_quota(
    kafka: KafkaSettings,
    work: Path,
    files: list[Path],
    documents: int,
    replicas: int,
    sim: SimProcess,
    partitions: int,
) -> dict[str, Any]:
    topics = fresh_topics(f"quota{replicas}")
    await create(kafka, topics, partitions)
    await publish_refs(kafka, topics.documents_topic, files, documents)
    sim.reset()
    group = f"bench-quota-{replicas}-{time.time_ns()}"
    env = consumer_env(
        kafka,
        topics,
        group,
        work / "docs",
        DOCMILL_BACKEND="claude",
        ANTHROPIC_API_KEY="sk-ant-bench",
        ANTHROPIC_BASE_URL=sim.base_url,
        DOCMILL_MAX_IN_FLIGHT="64",
        DOCMILL_LOG_LEVEL="warning",
        DOCMILL_RPM=str(sim.rpm),
        DOCMILL_ITPM=str(sim.itpm),
        DOCMILL_OTPM=str(sim.otpm),
    )
    started = time.perf_counter()
    processes = [
        spawn([DOCMILL, "consume", "--drain"], env, work / f"quota-{replicas}-{i}.log")
        for i in range(replicas)
    ]
    for process in processes:
        _wait(process, 3600, "docmill replica")
    wall = time.perf_counter() - started
    stats = sim.stats()
    throughput = await output_throughput(kafka, [topics.results_topic, topics.dlq_topic])
    row = _quota_row(
        f"docmill, {replicas} replica{'s' if replicas > 1 else ''}",
        documents,
        wall,
        throughput.per_second,
        stats,
        sim,
        steady=await _steady_rate(kafka, topics.results_topic, sim),
    )
    # Nothing lost, nothing silently skipped: every document has an outcome.
    outcomes = [
        orjson.loads(r.value)["document_id"]
        for t in (topics.results_topic, topics.dlq_topic)
        for r in await read_all(kafka, t)
    ]
    row["outcomes"], row["unique_documents"] = len(outcomes), len(set(outcomes))
    return row


async def _steady_rate(kafka: KafkaSettings, topic: str, sim: SimProcess) -> float:
    """Docs/s after the API's initial burst allowance (one minute's quota) is spent."""
    stamps = sorted(r.timestamp for r in await read_all(kafka, topic))
    skip = min(len(stamps) - 2, sim.rpm + 50)
    if skip < 0 or len(stamps) - skip < 2:
        return 0.0
    return float((len(stamps) - 1 - skip) / ((stamps[-1] - stamps[skip]) / 1000))


def _quota_row(
    design: str,
    documents: int,
    wall: float,
    rate: float,
    stats: dict[str, Any],
    sim: SimProcess,
    steady: float | None = None,
) -> dict[str, Any]:
    by_status = {int(k): v for k, v in stats["by_status"].items()}
    requests = sum(by_status.values())
    quota_per_s = sim.rpm / 60
    return {
        "design": design,
        "documents": documents,
        "wall_s": wall,
        "docs_per_s": rate,
        "steady_docs_per_s": steady,
        "quota_fraction": rate / quota_per_s,
        "steady_quota_fraction": None if steady is None else steady / quota_per_s,
        "requests": requests,
        "share_429": by_status.get(429, 0) / requests if requests else 0.0,
        "by_status": {str(code): count for code, count in by_status.items()},
    }


async def bench_quota(kafka: KafkaSettings, work: Path, documents: int, baseline_docs: int) -> dict[str, Any]:
    files = invoice_files(work / "docs", 1000)
    rows = []
    with SimProcess(
        rpm=600, itpm=600_000, otpm=120_000, latency=1.0, jitter=0.2, log=work / "sim.log"
    ) as sim:
        rows.append(await _docmill_under_quota(kafka, work, files, documents, 1, sim, partitions=6))
        rows.append(await _docmill_under_quota(kafka, work, files, documents, 3, sim, partitions=6))
        for design, runner, count in (
            ("guide: one at a time", guide_baselines.sequential, max(10, baseline_docs // 5)),
            ("guide: gather + semaphore(5)", guide_baselines.semaphore_of_five, baseline_docs),
        ):
            sim.reset()
            started = time.perf_counter()
            outcomes = await runner(
                files[:count] if count <= len(files) else [files[i % len(files)] for i in range(count)],
                sim.base_url,
            )
            wall = time.perf_counter() - started
            succeeded = sum(1 for o in outcomes if o["status"] == "success")
            row = _quota_row(design, count, wall, succeeded / wall, sim.stats(), sim)
            row["failed"] = count - succeeded
            rows.append(row)
        limits = {"rpm": sim.rpm, "itpm": sim.itpm, "otpm": sim.otpm, "latency_s": 1.0}
    return {"limits": limits, "rows": rows}


# --- 3. memory ------------------------------------------------------------------------------


async def bench_memory(kafka: KafkaSettings, work: Path, records: int, checkpoint: int) -> dict[str, Any]:
    files = invoice_files(work / "docs", 1000)
    topics = fresh_topics("memory")
    await create(kafka, topics, 6)
    await publish_refs(kafka, topics.documents_topic, files, records)
    env = consumer_env(
        kafka,
        topics,
        "bench-memory",
        work / "docs",
        DOCMILL_BACKEND="local",
        DOCMILL_MAX_IN_FLIGHT="512",
        DOCMILL_LOG_LEVEL="warning",
    )
    process = spawn([DOCMILL, "consume", "--drain"], env, work / "memory.log")
    samples: dict[str, int] = {}
    consumer = await _progress_reader(kafka, topics.results_topic)
    try:
        seen = 0
        while process.poll() is None:
            seen += await _count_new(consumer)
            _, peak = rss_kib(process.pid)
            if seen >= checkpoint and "at_checkpoint_peak_kib" not in samples:
                samples["at_checkpoint_peak_kib"] = peak
                samples["at_checkpoint_records"] = seen
            samples["final_peak_kib"] = peak
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
    if process.returncode != 0:
        raise RuntimeError(f"memory replica exited with {process.returncode}")
    first = samples.get("at_checkpoint_peak_kib", 0)
    final = samples.get("final_peak_kib", 0)
    return {
        "records": records,
        "checkpoint_records": samples.get("at_checkpoint_records", 0),
        "peak_rss_mib_at_checkpoint": first / 1024,
        "peak_rss_mib_at_end": final / 1024,
        "growth": (final - first) / first if first else None,
    }


async def _progress_reader(kafka: KafkaSettings, topic: str) -> Any:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, **kafka.client_kwargs(), auto_offset_reset="earliest", group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    return consumer


async def _count_new(consumer: Any) -> int:
    batches = await consumer.getmany(timeout_ms=200, max_records=100_000)
    return sum(len(records) for records in batches.values())


# --- the table -------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    lines = [f"docmill benchmarks — {report['machine']}", ""]
    if "overhead" in report:
        o = report["overhead"]
        lines += [
            f"1. Overhead: {o['records']:,} tiny text documents, {o['partitions']} partitions, local backend",
            "",
            "| design | docs/s |",
            "|---|---|",
            f"| docmill consumer (full path, max_in_flight 512) | {o['docmill_docs_per_s']:,.0f} |",
            f"| bare aiokafka loop (decode, produce {o['result_bytes']} B, commit) | "
            f"{o['bare_docs_per_s']:,.0f} |",
            f"| ratio docmill / bare (target ≥ 0.8) | {o['ratio']:.2f} |",
            f"| bare loop + the same per-document work (read file, identify, find fields) | "
            f"{o['bare_with_work_docs_per_s']:,.0f} |",
            f"| ratio docmill / bare with the same work (framework overhead alone; target ≥ 0.75) | "
            f"{o['ratio_to_bare_with_work']:.2f} |",
            f"| framework's own cost per record (docmill minus the same-work loop; target ≤ 25 µs) | "
            f"{o['framework_us_per_record']:.1f} µs |",
            "",
            f"Medians of {o['rounds']} interleaved rounds; docs/s per round: "
            + "; ".join(
                f"{name} " + ", ".join(f"{rate:,.0f}" for rate in rates)
                for name, rates in o["per_round_docs_per_s"].items()
            ),
            "",
        ]
    if "quota" in report:
        q = report["quota"]
        lim = q["limits"]
        lines += [
            f"2. Quota saturation: simulator enforcing {lim['rpm']} requests/min, {lim['itpm']:,} input "
            f"and {lim['otpm']:,} output tokens/min, ~{lim['latency_s']} s latency",
            "| design | documents | docs/s | × quota | × quota after the burst | 429 share |",
            "|---|---|---|---|---|---|",
        ]
        for row in q["rows"]:
            steady = row["steady_quota_fraction"]
            lines.append(
                f"| {row['design']} | {row['documents']:,} | {row['docs_per_s']:.2f} | "
                f"{row['quota_fraction']:.2f} | {'—' if steady is None else f'{steady:.2f}'} | "
                f"{row['share_429'] * 100:.2f}% |"
            )
        lines.append("")
    if "memory" in report:
        m = report["memory"]
        lines += [
            f"3. Memory: one replica consuming a {m['records']:,}-record backlog (local backend)",
            "| point | peak RSS |",
            "|---|---|",
            f"| after {m['checkpoint_records']:,} records | {m['peak_rss_mib_at_checkpoint']:.0f} MiB |",
            f"| after {m['records']:,} records | {m['peak_rss_mib_at_end']:.0f} MiB |",
            f"| growth (target < 10%) | {(m['growth'] or 0) * 100:.1f}% |",
            "",
        ]
    if "bursts" in report:
        lines += render_bursts(report["bursts"])
    if "cost" in report:
        lines += render_cost(report["cost"])
    if "ocr" in report:
        lines += render_ocr(report["ocr"])
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="overhead,quota,bursts,cost,memory,ocr")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every workload (e.g. 0.1 to try)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the overhead benchmark")
    parser.add_argument("--bootstrap", default=os.environ.get("DOCMILL_TEST_BOOTSTRAP", "127.0.0.1:19092"))
    args = parser.parse_args()
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    wanted = set(args.only.split(","))
    report: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="docmill-bench-") as tmp:
        work = Path(tmp)
        if "overhead" in wanted:
            report["overhead"] = await bench_overhead(kafka, work, int(100_000 * args.scale), 6, args.rounds)
            print(render({"machine": report["machine"], "overhead": report["overhead"]}), flush=True)
        if "quota" in wanted:
            report["quota"] = await bench_quota(kafka, work, int(2000 * args.scale), int(300 * args.scale))
        if "bursts" in wanted:
            report["bursts"] = await bench_bursts(kafka, work, int(2000 * args.scale))
            print("\n".join(render_bursts(report["bursts"])), flush=True)
        if "cost" in wanted:
            report["cost"] = await bench_cost(kafka, work, int(100 * args.scale))
            print("\n".join(render_cost(report["cost"])), flush=True)
        if "ocr" in wanted:
            report["ocr"] = await bench_ocr(max(8, int(240 * args.scale)))
            print("\n".join(render_ocr(report["ocr"])), flush=True)
        if "memory" in wanted:
            report["memory"] = await bench_memory(
                kafka, work, int(1_000_000 * args.scale), int(100_000 * args.scale)
            )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "bench.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print()
    print(render(report))
    print(f"\nwrote {RESULTS_DIR / 'bench.json'}")


if __name__ == "__main__":
    asyncio.run(main())
