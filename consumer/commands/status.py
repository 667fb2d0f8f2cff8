"""`docmill status`: the group's lag, members, throughput and time to drain, or a job's progress."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from consumer.commands.options import kafka_errors, load_settings, quiet_library_logs, settings_options
from consumer.ops.job_progress import JobProgress, job_progress
from consumer.ops.status import GroupStatus, group_status
from producer.jobs import load_job
from schemas.settings import ConsumerSettings, KafkaSettings, TopicSettings


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
