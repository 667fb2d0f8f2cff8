"""`docmill dlq inspect` and `docmill dlq replay`."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from consumer.commands.options import kafka_errors, load_settings, quiet_library_logs, say, settings_options
from consumer.ops.dlq import LetterFilter, inspect, parse_when
from consumer.ops.replay import Action, ReplayPlan, Verdict, replay
from schemas.settings import KafkaSettings, TopicSettings


class _When(click.ParamType):  # type: ignore[type-arg]
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _filters(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--error-class", help="Only letters of this error class."),
            click.option(
                "--since", type=_When(), help="Only letters that failed since (RFC 3339 or 2h, 30m, 7d)."
            ),
            click.option(
                "--until", type=_When(), help="Only letters that failed until (RFC 3339 or 2h, ...)."
            ),
            click.option("--document-id", help="Only letters of this document."),
            click.option("--job-id", help="Only letters of this job."),
        ]
    ):
        function = option(function)
    return function


def _selection(flags: dict[str, Any]) -> LetterFilter:
    return LetterFilter(
        error_class=flags.pop("error_class"),
        since=flags.pop("since"),
        until=flags.pop("until"),
        document_id=flags.pop("document_id"),
        job_id=flags.pop("job_id"),
    )


@click.group()
def dlq() -> None:
    """Inspect and replay the dead-letter topic."""


@dlq.command("inspect")
@_filters
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many of the most recent letters to show.",
)
@click.option(
    "--output",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help="jsonl prints every matching letter, one JSON object per line, for other tools.",
)
@settings_options(KafkaSettings, (TopicSettings, ("dlq_topic",)))
def inspect_command(limit: int, output: str, **flags: Any) -> None:
    """Show dead letters by error class and by hour, and the most recent ones (commits nothing).

    \b
    Examples:
      docmill dlq inspect --since 2h
      docmill dlq inspect --error-class ApiAuthenticationFailed --limit 5
      docmill dlq inspect --job-id nightly-2026-11-24 --output jsonl > letters.jsonl
    """
    quiet_library_logs()
    selection = _selection(flags)
    kafka = load_settings(KafkaSettings, flags)
    topic = load_settings(TopicSettings, flags).dlq_topic
    with kafka_errors(kafka.bootstrap_servers):
        try:
            found = asyncio.run(inspect(kafka, topic, selection, sys.maxsize if output == "jsonl" else limit))
        except LookupError as error:
            raise click.ClickException(str(error)) from None
    if output == "jsonl":
        for letter in found.recent:
            click.echo(letter.to_json().decode())
        return
    console = Console()
    classes = Table("error class", "letters", title=f"{found.matched} dead letters in {topic}")
    for error_class, count in found.by_class.most_common():
        classes.add_row(error_class, str(count))
    hours = Table("hour (UTC)", "letters")
    for hour, count in sorted(found.by_hour.items()):
        hours.add_row(hour, str(count))
    recent = Table(
        "failed at",
        "document",
        "job",
        "error class",
        "attempts",
        "message",
        title=f"{min(limit, found.matched)} most recent",
    )
    for letter in found.recent[:limit]:
        recent.add_row(
            letter.last_failure_at.strftime("%Y-%m-%d %H:%M:%S"),
            letter.document_id or "-",
            letter.job_id or "-",
            letter.error_class,
            str(letter.attempts),
            letter.error_message[:80],
        )
    console.print(classes, hours, recent)
    if found.unreadable:
        console.print(f"{found.unreadable} record(s) in {topic} are not readable dead letters")


@dlq.command("replay")
@_filters
@click.option("--to-topic", help="Publish here instead of each letter's original topic.")
@click.option("--dry-run", is_flag=True, help="Print what would be replayed; publish and commit nothing.")
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), help="At most this many letters per second."
)
@click.option(
    "--max-replays",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Refuse letters already replayed this many times (a poison document cannot loop).",
)
@click.option(
    "--replay-group", help="Consumer group that remembers progress (default: derived from the filters)."
)
@settings_options(KafkaSettings, (TopicSettings, ("dlq_topic",)))
def replay_command(
    *,
    to_topic: str | None,
    dry_run: bool,
    rate: float | None,
    max_replays: int,
    replay_group: str | None,
    **flags: Any,
) -> None:
    """Re-publish the original bytes of matching letters, exactly once, and say what happened.

    Progress is committed as it goes (in the same transaction as each batch of
    publishes): an interrupted replay run again resumes where it stopped.

    \b
    Examples:
      docmill dlq replay --error-class ApiAuthenticationFailed --dry-run
      docmill dlq replay --job-id nightly-2026-11-24 --rate 50
    """
    quiet_library_logs()
    plan = ReplayPlan(
        selection=_selection(flags),
        to_topic=to_topic,
        rate=rate,
        max_replays=max_replays,
        dry_run=dry_run,
        group_id=replay_group,
    )
    kafka = load_settings(KafkaSettings, flags)
    topic = load_settings(TopicSettings, flags).dlq_topic
    err = Console(stderr=True)

    def report(verdict: Verdict) -> None:
        letter = verdict.letter
        if verdict.action is Action.REFUSE:
            say(err, f"docmill dlq replay: refused: {verdict.reason}")
        elif verdict.action is Action.FAIL:
            say(err, f"docmill dlq replay: error: {verdict.reason}")
        elif verdict.action is Action.REPLAY and dry_run and letter is not None:
            click.echo(
                f"would replay {letter.document_id} ({letter.error_class}) to "
                f"{to_topic or letter.source.topic}"
            )

    with kafka_errors(kafka.bootstrap_servers):
        try:
            summary = asyncio.run(replay(kafka, topic, plan, report))
        except LookupError as error:
            raise click.ClickException(str(error)) from None
    verb = "would replay" if dry_run else "replayed"
    failed = (
        f", failed {summary.failed} (stopped: fix the cause and run again to resume)"
        if summary.failed
        else ""
    )
    click.echo(
        f"{verb} {summary.replayed}, skipped by filter {summary.skipped}, refused {summary.refused}{failed}"
        f"{'' if dry_run else f' | replay group {summary.group_id}'}"
    )
    if summary.failed:
        sys.exit(1)
