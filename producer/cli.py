"""`docmill produce` and `docmill topics`."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from producer.identity import new_job_id
from producer.jobs import JobProgress, OffsetRanges, job_progress, load_job, record_job
from producer.publisher import Publisher
from producer.sources import RefDefaults, SourceError, refs_from_manifest, refs_from_sources
from producer.status import GroupStatus, group_status
from producer.topics import TopicCreationError, ensure_topics
from schemas.cli import kafka_errors, load_settings, quiet_library_logs, settings_options
from schemas.messages import DocumentRef
from schemas.settings import ConsumerSettings, KafkaSettings, ProducerSettings, TopicSettings

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
                err.print(
                    f"docmill produce: error: Kafka refused a message: {future.exception()}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
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
                    err.print(
                        f"docmill produce: error: {item}",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
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
        err.print(f"job id: {job}", highlight=False, soft_wrap=True)
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
                err.print(
                    f"docmill produce: warning: job not recorded ({error}); run `docmill topics ensure`",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        return counts

    with kafka_errors(kafka.bootstrap_servers):
        counts = asyncio.run(run())
    click.echo(
        f"published {counts['published']}, skipped {counts['skipped']}, failed {counts['failed']}"
        f" | job {job} | topic {topic}"
    )
    if counts["skipped"] or counts["failed"]:
        sys.exit(1)


@click.group()
def topics() -> None:
    """Manage docmill's Kafka topics."""


@topics.command()
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Partitions of topics created now (the ceiling on useful consumer replicas).",
)
@click.option(
    "--replication-factor",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Replicas of each partition of topics created now.",
)
@settings_options(KafkaSettings, TopicSettings)
def ensure(partitions: int, replication_factor: int, **flags: Any) -> None:
    """Create the documents, results and dead-letter topics if they are missing."""
    quiet_library_logs()
    kafka = load_settings(KafkaSettings, flags)
    names = load_settings(TopicSettings, flags)
    with kafka_errors(kafka.bootstrap_servers):
        try:
            states = asyncio.run(
                ensure_topics(kafka, names, partitions=partitions, replication_factor=replication_factor)
            )
        except TopicCreationError as error:
            raise click.ClickException(str(error)) from None
    table = Table("role", "topic", "partitions", "state")
    for state in states:
        table.add_row(state.role, state.name, str(state.partitions), "created" if state.created else "exists")
    Console().print(table)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _group_table(status: GroupStatus) -> Table:
    table = Table(
        "partition", "log end", "committed", "lag", title=f"group {status.group_id} on {status.topic}"
    )
    for state in status.partitions:
        committed = "-" if state.committed is None else str(state.committed)
        table.add_row(str(state.partition), str(state.end), committed, str(state.lag))
    table.caption = (
        f"state {status.state}, {len(status.members)} member(s): {', '.join(status.members) or 'none'}\n"
        f"lag {status.lag}, throughput {status.throughput:.2f} docs/s over the last minute, "
        f"time to drain {_duration(status.seconds_to_drain)}"
    )
    return table


def _job_view(progress: JobProgress) -> Group:
    job = progress.job
    bar = Progress(TextColumn(f"job {job.job_id}"), BarColumn(), MofNCompleteColumn(), expand=False)
    bar.add_task("job", total=job.documents, completed=progress.done)
    rate = "-" if progress.success_rate is None else f"{progress.success_rate * 100:.1f}%"
    table = Table(
        "documents", "done", "succeeded", "dead-lettered", "remaining", "success rate", "elapsed", "ETA"
    )
    table.add_row(
        str(job.documents),
        str(progress.done),
        str(progress.succeeded),
        str(progress.dead_lettered),
        str(progress.remaining),
        rate,
        _duration(progress.elapsed_seconds),
        "done" if progress.complete else _duration(progress.eta_seconds),
    )
    return Group(bar, table)


@click.command()
@click.option("--job", "job_id", help="Show the exact progress of one job.")
@click.option("--watch", is_flag=True, help="Refresh continuously (Ctrl+C to stop).")
@click.option("--wait", is_flag=True, help="With --job: block until the job is complete.")
@click.option("--fail-on-dlq", is_flag=True, help="With --wait: exit 1 if any document was dead-lettered.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes of --watch and --wait.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="With --wait: give up (exit 2) after this many seconds.",
)
@settings_options(KafkaSettings, TopicSettings, (ConsumerSettings, ("group_id",)))
def status(
    *,
    job_id: str | None,
    watch: bool,
    wait: bool,
    fail_on_dlq: bool,
    interval: float,
    timeout: float | None,
    **flags: Any,
) -> None:
    """Show the group's lag, members, throughput and time to drain, or a job's progress.

    \b
    Examples:
      docmill status
      docmill status --job nightly-2026-11-24 --watch
      docmill status --job nightly-2026-11-24 --wait --fail-on-dlq   # for schedulers
    """
    if (wait or fail_on_dlq) and not job_id:
        raise click.UsageError("--wait and --fail-on-dlq need --job ID")
    quiet_library_logs()
    kafka = load_settings(KafkaSettings, flags)
    names = load_settings(TopicSettings, flags)
    group_id = load_settings(ConsumerSettings, flags).group_id
    console = Console()

    async def view() -> tuple[Any, JobProgress | None]:
        if job_id is None:
            try:
                return _group_table(await group_status(kafka, names, group_id)), None
            except LookupError as error:
                raise click.ClickException(str(error)) from None
        job = await load_job(kafka, names.jobs_topic, job_id)
        if job is None:
            raise click.ClickException(f"unknown job {job_id!r} (no record in {names.jobs_topic})")
        progress = await job_progress(kafka, job, group_id, names.dlq_topic)
        return _job_view(progress), progress

    async def run() -> int:
        renderable, progress = await view()
        if not (watch or wait):
            console.print(renderable)
            return 0
        deadline = None if timeout is None else time.monotonic() + timeout
        with Live(renderable, console=console, auto_refresh=False) as live:
            while True:
                if wait and progress is not None and progress.complete:
                    return 1 if fail_on_dlq and progress.dead_lettered else 0
                if deadline is not None and time.monotonic() > deadline:
                    return 2
                await asyncio.sleep(interval)
                renderable, progress = await view()
                live.update(renderable, refresh=True)

    with kafka_errors(kafka.bootstrap_servers):
        try:
            code = asyncio.run(run())
        except KeyboardInterrupt:
            code = 130
    sys.exit(code)
