"""Builds a replica from its settings: the one place where its parts are made and connected."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from consumer.checkpoint.commits import Checkpoint
from consumer.extract.base import Extractor
from consumer.fate.backoff import Backoff
from consumer.fate.table import FateTable
from consumer.fetch.fetcher import Fetcher
from consumer.records.emit import Emitter
from consumer.records.processor import RecordProcessor
from consumer.replica.committer import Committer
from consumer.replica.health import HealthServer
from consumer.replica.in_flight import InFlight
from consumer.replica.partitions import Partitions
from consumer.replica.poll_loop import SHARE_INTERVAL_SECONDS, PollLoop
from consumer.replica.quota_share import QuotaShare
from consumer.replica.readiness import Readiness
from consumer.replica.rebalance import Rebalancer
from consumer.replica.service import ConsumerService
from consumer.replica.timing import Every
from consumer.throttle.breaker import CircuitBreaker
from consumer.throttle.limiter import RateLimiter
from consumer.throttle.pools import PoolLimiters
from schemas.extraction import available_schemas, load_schema
from schemas.messages import Backend
from schemas.metrics import Metrics
from schemas.models import model_facts, startup_problem
from schemas.settings import ConsumerSettings, ExtractionSettings, FetchSettings, KafkaSettings, TopicSettings

log = structlog.get_logger("docmill.consumer")


class StartupRefused(Exception):
    """The settings name something a replica must not run with (a retired model, an effort the
    model does not take, a schema the API cannot express): one line says what and why."""


@dataclass(frozen=True)
class ConsumerConfig:
    """Everything a replica needs, gathered from settings."""

    kafka: KafkaSettings
    topics: TopicSettings
    consumer: ConsumerSettings
    fetch: FetchSettings
    extraction: ExtractionSettings


def kafka_consumer(config: ConsumerConfig) -> AIOKafkaConsumer:
    """The replica's group consumer (not started)."""
    settings = config.consumer
    return AIOKafkaConsumer(
        **config.kafka.client_kwargs(),
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Polling never stops while records are in flight, so the poll
        # interval only guards against a wedged loop.
        max_poll_interval_ms=300_000,
        # A rebalance waits for revoked partitions' in-flight records
        # (up to the grace period) before they move to another replica.
        rebalance_timeout_ms=int((settings.shutdown_grace_seconds + 30) * 1000),
        session_timeout_ms=int(settings.session_timeout_seconds * 1000),
        heartbeat_interval_ms=int(min(3.0, settings.session_timeout_seconds / 3) * 1000),
        max_partition_fetch_bytes=1024 * 1024,
    )


def check_claude_settings(settings: ExtractionSettings) -> None:
    """Refuses, before anything starts, what the API would refuse on every call."""
    from consumer.extract.output_schema import SchemaNotExpressible, api_schema
    from consumer.extract.request import EffortNotSupported, thinking_choice

    for role, model in (
        ("model", settings.model),
        ("refusal fallback model", settings.refusal_fallback_model),
    ):
        if model is None:
            continue
        error, warning = startup_problem(model)
        if error:
            raise StartupRefused(f"{role}: {error}")
        if warning:
            log.warning("model.not_current", role=role, detail=warning)
        try:
            thinking_choice(model_facts(model), settings.effort)
        except EffortNotSupported as refused:
            raise StartupRefused(f"{role}: {refused}") from None
    for name in available_schemas():
        schema = load_schema(name)
        assert schema is not None
        try:
            api_schema(schema.json_schema, name)
        except SchemaNotExpressible as refused:
            raise StartupRefused(f"extraction schema {refused}") from None


def extractor_for(
    settings: ExtractionSettings,
    metrics: Metrics,
    limiters: PoolLimiters,
    breaker: CircuitBreaker,
    grace_seconds: float,
) -> Extractor:
    """The extractor the settings ask for; the SDK is imported only when it is Claude."""
    if Backend(settings.resolved_backend()) is Backend.CLAUDE:
        check_claude_settings(settings)
        from consumer.extract.claude import ClaudeExtractor

        return ClaudeExtractor(settings, metrics, limiters, breaker)
    from consumer.extract.local import LocalExtractor
    from consumer.extract.ocr.pool import OcrPool, TessdataMissing, find_tessdata

    try:
        tessdata = find_tessdata(settings.ocr_tessdata)
    except TessdataMissing as missing:
        raise StartupRefused(str(missing)) from None
    return LocalExtractor(
        OcrPool(
            workers=settings.ocr_workers,
            timeout_seconds=settings.ocr_timeout_seconds,
            max_pages=settings.ocr_max_pages,
            dpi=settings.ocr_dpi,
            tessdata=tessdata,
            grace_seconds=grace_seconds,
            metrics=metrics,
        )
    )


def pool_limiters(extraction: ExtractionSettings, metrics: Metrics) -> PoolLimiters:
    """The configured limits belong to the main model's pool; other pools learn theirs."""
    main = RateLimiter(rpm=extraction.rpm, itpm=extraction.itpm, otpm=extraction.otpm, metrics=metrics)
    try:
        pool = model_facts(extraction.model).rate_limit_pool
    except LookupError:
        pool = extraction.model  # a local replica never calls; a Claude one is refused before
    return PoolLimiters(pool, main, RateLimiter)


def build_replica(
    config: ConsumerConfig, metrics: Metrics | None = None, *, extractor: Extractor | None = None
) -> ConsumerService:
    """A replica ready to ``run()``; ``extractor`` replaces the one the settings name."""
    metrics = metrics or Metrics()
    settings, extraction = config.consumer, config.extraction
    stopping = asyncio.Event()

    limiters = pool_limiters(extraction, metrics)
    breaker = CircuitBreaker(cooldown_seconds=extraction.breaker_cooldown_seconds, metrics=metrics)
    backoff = Backoff(
        base_seconds=settings.retry_base_seconds,
        max_seconds=settings.retry_max_seconds,
        total_seconds=settings.retry_total_seconds,
        max_attempts=settings.max_attempts,
    )
    fates = FateTable(backoff, outage_suspected=lambda: breaker.outage_suspected)
    extractor = extractor or extractor_for(
        extraction, metrics, limiters, breaker, grace_seconds=settings.shutdown_grace_seconds
    )
    fetcher = Fetcher(config.fetch)
    emitter = Emitter(
        config.kafka, results_topic=config.topics.results_topic, dlq_topic=config.topics.dlq_topic
    )
    processor = RecordProcessor(
        fetcher=fetcher,
        extractor=extractor,
        emitter=emitter,
        fates=fates,
        metrics=metrics,
        consumer_id=settings.consumer_id,
        stopping=stopping,
    )

    admin = AIOKafkaAdminClient(**config.kafka.client_kwargs())
    consumer = kafka_consumer(config)
    partitions = Partitions()
    readiness = Readiness(owns_partitions=lambda: len(partitions) > 0, stopping=stopping)
    checkpoint = Checkpoint(admin, settings.group_id, metrics)
    committer = Committer(consumer, checkpoint, partitions)
    in_flight = InFlight(
        settings.max_in_flight,
        processor.process,
        metrics,
        on_crash=lambda error: service.crashed(error),  # noqa: PLW0108 - service is made below
        extractor_capacity=lambda: extractor.capacity,
    )
    quota_share = QuotaShare(
        admin=admin,
        consumer=consumer,
        group_id=settings.group_id,
        topic=config.topics.documents_topic,
        partitions=partitions,
        limiter=limiters,
        metrics=metrics,
        readiness=readiness,
    )
    service = ConsumerService(
        topic=config.topics.documents_topic,
        grace_seconds=settings.shutdown_grace_seconds,
        metrics=metrics,
        stopping=stopping,
        health=HealthServer(
            metrics.registry, host=settings.metrics_host, port=settings.metrics_port, ready=readiness.ready
        ),
        readiness=readiness,
        fetcher=fetcher,
        extractor=extractor,
        emitter=emitter,
        admin=admin,
        consumer=consumer,
        partitions=partitions,
        in_flight=in_flight,
        committer=committer,
        rebalancer=Rebalancer(
            consumer=consumer,
            partitions=partitions,
            checkpoint=checkpoint,
            committer=committer,
            metrics=metrics,
            grace_seconds=settings.shutdown_grace_seconds,
        ),
        poll_loop=PollLoop(
            consumer=consumer,
            admin=admin,
            group_id=settings.group_id,
            partitions=partitions,
            in_flight=in_flight,
            committer=committer,
            quota_share=quota_share,
            commits=Every(settings.commit_interval_seconds),
            shares=Every(SHARE_INTERVAL_SECONDS),
            stopping=stopping,
        ),
        started_fields={
            "group_id": settings.group_id,
            "topic": config.topics.documents_topic,
            "backend": extractor.name,
            "model": extraction.model if extractor.name == Backend.CLAUDE else "local",
            "max_in_flight": settings.max_in_flight,
        },
    )
    return service
