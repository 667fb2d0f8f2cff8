"""`docmill produce`: publish one document reference per file, folder, glob, URI or manifest row."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from consumer.commands.options import kafka_errors, load_settings, quiet_library_logs, say, settings_options
from producer.identity import new_job_id
from producer.jobs import OffsetRanges, record_job
from producer.publisher import Publisher
from producer.sources import RefDefaults, SourceError, refs_from_manifest, refs_from_sources
from schemas.messages import DocumentRef
from schemas.settings import KafkaSettings, ProducerSettings, TopicSettings

# Futures awaiting acknowledgement are bounded so that memory stays flat
# however many documents a run publishes.
_MAX_PENDING = 10_000


def _stdin_sources() -> Iterator[str]:
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def _all_refs(
    sources: tuple[str, ...], manifest: Path | None, defaults: RefDefaults
) -> Iterator[DocumentRef | SourceError]:
    named: Iterable[str] = (
        s for source in sources for s in (_stdin_sources() if source == "-" else [source])
    )
    yield from refs_from_sources(named, defaults)
    if manifest is not None:
        yield from refs_from_manifest(manifest, defaults)


async def _publish_all(
    refs: Iterator[DocumentRef | SourceError],
    *,
    kafka: KafkaSettings,
    topic: str,
    producer_settings: ProducerSettings,
    err: Console,
    offsets: OffsetRanges,
) -> dict[str, int]:
    counts = {"published": 0, "skipped": 0, "failed": 0}
    pending: set[asyncio.Future[Any]] = set()

    def settle(done: Iterable[asyncio.Future[Any]]) -> None:
        for future in done:
            if future.exception() is not None:
                counts["failed"] += 1
                say(err, f"docmill produce: error: Kafka refused a message: {future.exception()}")
            else:
                counts["published"] += 1
                metadata = future.result()
                offsets.add(metadata.partition, metadata.offset)

    progress = Progress(
        SpinnerColumn(),
        TextColumn("publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    async with Publisher(kafka, topic=topic, producer=producer_settings) as publisher:
        with progress:
            task = progress.add_task("publish", total=None, rate="")
            for item in refs:
                if isinstance(item, SourceError):
                    counts["skipped"] += 1
                    say(err, f"docmill produce: error: {item}")
                    continue
                pending.add(await publisher.enqueue(item))
                if len(pending) >= _MAX_PENDING:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    settle(done)
                progress.update(task, advance=1)
            if pending:
                done, _ = await asyncio.wait(pending)
                settle(done)
    return counts


@click.command()
@click.argument("sources", nargs=-1)
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="JSONL or CSV file with one document per row (uri, document_id, schema, attributes).",
)
@click.option("--job-id", help="Job id carried by every message (generated if absent).")
@click.option(
    "--schema",
    "extraction_schema",
    default="invoice",
    show_default=True,
    help="Extraction schema for documents that do not name one.",
)
@settings_options(KafkaSettings, (TopicSettings, ("documents_topic", "jobs_topic")), ProducerSettings)
def produce(
    sources: tuple[str, ...],
    manifest: Path | None,
    job_id: str | None,
    extraction_schema: str,
    **flags: Any,
) -> None:
    """Publish one document reference per document.

    A SOURCE is a file, a folder (walked recursively), a glob or a URI;
    "-" reads one source per line from standard input.

    \b
    Examples:
      docmill produce invoices/
      docmill produce 'scans/**/*.pdf' https://files.example.com/inv-7.pdf
      find /data -name '*.pdf' | docmill produce -
      docmill produce --manifest batch.jsonl --job-id nightly-2026-11-24
    """
    if not sources and manifest is None:
        raise click.UsageError("name at least one SOURCE, '-' for standard input, or --manifest FILE")
    quiet_library_logs()
    kafka = load_settings(KafkaSettings, flags)
    topic_names = load_settings(TopicSettings, flags)
    topic = topic_names.documents_topic
    producer_settings = load_settings(ProducerSettings, flags)
    job = job_id or new_job_id()
    defaults = RefDefaults(job_id=job, submitted_at=datetime.now(UTC), extraction_schema=extraction_schema)
    err = Console(stderr=True)
    if job_id is None:
        say(err, f"job id: {job}")
    started_at = datetime.now(UTC)
    offsets = OffsetRanges()

    async def run() -> dict[str, int]:
        refs = _all_refs(sources, manifest, defaults)
        counts = await _publish_all(
            refs, kafka=kafka, topic=topic, producer_settings=producer_settings, err=err, offsets=offsets
        )
        if counts["published"]:
            # The job's record makes `docmill status --job` exact.
            try:
                await record_job(
                    kafka,
                    jobs_topic=topic_names.jobs_topic,
                    job_id=job,
                    topic=topic,
                    offsets=offsets,
                    documents=counts["published"],
                    started_at=started_at,
                )
            except LookupError as error:
                say(err, f"docmill produce: warning: job not recorded ({error}); run `docmill topics ensure`")
        return counts

    with kafka_errors(kafka.bootstrap_servers):
        counts = asyncio.run(run())
    click.echo(
        f"published {counts['published']}, skipped {counts['skipped']}, failed {counts['failed']}"
        f" | job {job} | topic {topic}"
    )
    if counts["skipped"] or counts["failed"]:
        sys.exit(1)
