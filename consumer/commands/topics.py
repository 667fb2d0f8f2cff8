"""`docmill topics ensure`: create docmill's topics when they are missing."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from consumer.commands.options import kafka_errors, load_settings, quiet_library_logs, settings_options
from consumer.ops.topics import TopicCreationError, ensure_topics
from schemas.settings import KafkaSettings, TopicSettings


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
