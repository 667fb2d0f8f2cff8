"""`docmill consume`: run one consumer replica."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import click

from consumer.commands.options import kafka_errors, load_settings, settings_options
from consumer.replica.logs import configure_logging
from consumer.replica.service import ReplicaCrashed
from consumer.replica.wiring import ConsumerConfig, StartupRefused, build_replica
from schemas.settings import (
    ConsumerSettings,
    ExtractionSettings,
    FetchSettings,
    KafkaSettings,
    TopicSettings,
)


@click.command()
@click.option(
    "--drain",
    is_flag=True,
    help="Exit 0 once the group has processed everything that existed at start.",
)
@settings_options(KafkaSettings, TopicSettings, ConsumerSettings, FetchSettings, ExtractionSettings)
def consume(drain: bool, **flags: Any) -> None:
    """Join the consumer group and extract every document referenced on the documents topic.

    SIGTERM or Ctrl+C stops taking records, lets in-flight ones finish
    (within the grace period), commits and exits 0; a second signal abandons
    in-flight records at once (they stay uncommitted and are redone later).

    \b
    Examples:
      docmill consume --allowed-roots /data/invoices
      docmill consume --drain --backend local --max-in-flight 64
    """
    config = ConsumerConfig(
        kafka=load_settings(KafkaSettings, flags),
        topics=load_settings(TopicSettings, flags),
        consumer=load_settings(ConsumerSettings, flags),
        fetch=load_settings(FetchSettings, flags),
        extraction=load_settings(ExtractionSettings, flags),
    )
    configure_logging(config.consumer.log_format, config.consumer.log_level)

    _tune_garbage_collection()

    async def main() -> None:
        service = build_replica(config)
        service.install_signal_handlers()
        await service.run(drain=drain)

    with kafka_errors(config.kafka.bootstrap_servers):
        try:
            asyncio.run(main())
        except StartupRefused as error:
            raise click.ClickException(str(error)) from None
        except ReplicaCrashed as error:
            raise click.ClickException(f"stopped: {error}") from None
        except OSError as error:
            raise click.ClickException(f"cannot start: {error}") from None


def _tune_garbage_collection() -> None:
    """Takes start-up's objects (modules, schemas, the SDK when it is loaded) out of the cyclic
    collector's reach.

    They live as long as the process, yet every full collection walks them all again; frozen,
    a full collection walks only what records left behind. The thresholds stay the defaults:
    raising them saved little CPU and cost tens of MB of peak memory on a long backlog.
    """
    gc.freeze()
