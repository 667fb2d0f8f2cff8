"""Cost and thinking per document on the current models: docmill's cheapest thinking setting
against the model's default (thinking at its default effort), through the simulator, which bills
thinking as output like the API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from schemas.models import model_facts
from schemas.settings import KafkaSettings
from tests.bench.common import DOCMILL, consumer_env, create, fresh_topics, invoice_files, publish_refs, spawn
from tests.bench.sim_process import SimProcess
from tests.helpers.kafka import read_all

MODELS = ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5")


async def _run(
    kafka: KafkaSettings,
    work: Path,
    files: list[Path],
    documents: int,
    sim: SimProcess,
    model: str,
    effort: str | None,
) -> dict[str, Any]:
    topics = fresh_topics("cost")
    await create(kafka, topics, 3)
    await publish_refs(kafka, topics.documents_topic, files, documents)
    sim.reset()
    extra = {"DOCMILL_EFFORT": effort} if effort else {}
    env = consumer_env(
        kafka,
        topics,
        f"bench-cost-{time.time_ns()}",
        work / "docs",
        DOCMILL_BACKEND="claude",
        DOCMILL_MODEL=model,
        DOCMILL_MAX_OUTPUT_TOKENS="8192",
        ANTHROPIC_API_KEY="sk-ant-bench",
        ANTHROPIC_BASE_URL=sim.base_url,
        DOCMILL_LOG_LEVEL="warning",
        **extra,
    )
    log = work / "cost.log"
    code = await asyncio.to_thread(spawn([DOCMILL, "consume", "--drain"], env, log).wait, 3600)
    if code != 0:
        raise RuntimeError(f"docmill exited with {code}; see {log}")
    results = [orjson.loads(r.value) for r in await read_all(kafka, topics.results_topic)]
    usage = sim.stats()["usage"].get(model, {})
    return {
        "model": model,
        "setting": f"effort {effort} (the model's default)" if effort else "cheapest (docmill's default)",
        "documents": len(results),
        "usd_per_document": sum(r["cost_usd"] for r in results) / max(1, len(results)),
        "bill_usd_per_document": usage.get("billed_usd", 0.0) / max(1, len(results)),
        "thinking_tokens_per_document": sum(r["usage"]["thinking_tokens"] for r in results)
        / max(1, len(results)),
        "output_tokens_per_document": sum(r["usage"]["output_tokens"] for r in results)
        / max(1, len(results)),
    }


async def bench_cost(kafka: KafkaSettings, work: Path, documents: int) -> dict[str, Any]:
    files = invoice_files(work / "docs", 1000)
    rows = []
    with SimProcess(rpm=0, itpm=0, otpm=0, latency=0.05, jitter=0.0, log=work / "sim-cost.log") as sim:
        for model in MODELS:
            for effort in (None, model_facts(model).thinking.default_effort):
                rows.append(await _run(kafka, work, files, documents, sim, model, effort))
    return {"rows": rows}


def render_cost(report: dict[str, Any]) -> list[str]:
    lines = [
        "5. Cost per document on the current models (simulated API; its bill prices thinking as output)",
        "| model | thinking | documents | $ / document (docmill) | $ / document (bill) "
        "| thinking tokens / doc | output tokens / doc |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['model']} | {row['setting']} | {row['documents']} | {row['usd_per_document']:.6f} | "
            f"{row['bill_usd_per_document']:.6f} | {row['thinking_tokens_per_document']:.0f} | "
            f"{row['output_tokens_per_document']:.0f} |"
        )
    return [*lines, ""]
