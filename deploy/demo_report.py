"""Prints what the demo extracted: one row per result of a job, and its dead letters."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from producer.kafka_io import read_to_end
from schemas.settings import KafkaSettings, TopicSettings


async def read_topic(kafka: KafkaSettings, topic: str) -> list[dict[str, Any]]:
    """Every record value of a topic, decoded."""
    return [orjson.loads(record.value) async for record in read_to_end(kafka, topic) if record.value]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--started", type=float, required=True, help="epoch seconds the consume run began")
    parser.add_argument("--finished", type=float, required=True, help="epoch seconds it ended")
    args = parser.parse_args()
    seconds = args.finished - args.started
    kafka, topics = KafkaSettings(), TopicSettings()
    results = [r for r in await read_topic(kafka, topics.results_topic) if r.get("job_id") == args.job_id]
    letters = [d for d in await read_topic(kafka, topics.dlq_topic) if d.get("job_id") == args.job_id]

    table = Table(title=f"docmill demo — job {args.job_id}")
    for column in (
        "document",
        "invoice_number",
        "vendor_name",
        "invoice_date",
        "total",
        "backend",
        "confidence",
    ):
        table.add_column(column)
    for result in sorted(results, key=lambda r: r["uri"]):
        data = result["data"]
        table.add_row(
            result["uri"].rsplit("/", 1)[-1],
            str(data.get("invoice_number", "")),
            str(data.get("vendor_name", "")),
            str(data.get("invoice_date", "")),
            f"{data.get('total_amount', '')} {data.get('currency', '')}",
            result["model"],
            "" if result.get("confidence") is None else f"{result['confidence']:.2f}",
        )
    console = Console(width=160)
    console.print(table)
    for letter in letters:
        uri = orjson.loads(letter["original_value"]).get("uri", "") if letter.get("original_value") else ""
        console.print(
            f"dead letter: {uri.rsplit('/', 1)[-1]} → {letter['error_class']}: {letter['error_message']}",
            highlight=False,
            markup=False,
        )
    done = len(results) + len(letters)
    cost = sum(r.get("cost_usd", 0.0) for r in results)
    console.print(
        f"{len(results)} extracted, {len(letters)} in the dead-letter topic; "
        f"{done} documents in {seconds:.2f} s = {done / seconds:.1f} documents/s "
        f"(including start-up and group join); cost ${cost:.4f}",
        highlight=False,
    )


if __name__ == "__main__":
    asyncio.run(main())
