"""The consumer replica: owns startup, the poll loop, commits, rebalances and shutdown.

Records run concurrently (up to ``max_in_flight``, many per partition) and
finish in any order; each partition commits its contiguous watermark, and
only after the record's result or dead letter was acknowledged. At the
in-flight bound, partitions are paused but polling continues, so the group
membership stays alive however slow extraction is.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IllegalStateError, KafkaError

from consumer.backends import build_extractor
from consumer.backlog import Backlog
from consumer.breaker import CircuitBreaker
from consumer.checkpoint import Checkpoint
from consumer.emit import Emitter
from consumer.fetch import Fetcher
from consumer.health import HealthServer
from consumer.limiter import RateLimiter
from consumer.offsets import PartitionOffsets
from consumer.pricing import price_for
from consumer.processor import Abandoned, RecordProcessor
from consumer.retry import Backoff
from schemas.metrics import Metrics, Outcome
from schemas.settings import (
    ConsumerSettings,
    ExtractionSettings,
    FetchSettings,
    KafkaSettings,
    TopicSettings,
)

log = structlog.get_logger("docmill.consumer")

# How long one poll waits for records when there is room for more.
_POLL_MS = 100
# When full, how often the loop still polls (keeps max_poll_interval_ms far away).
_FULL_POLL_SECONDS = 1.0
# How often the replica re-measures its share of the backlog (and so of the API quota).
_SHARE_INTERVAL_SECONDS = 2.0
# /readyz turns 503 when Kafka has not answered (the lag refresh above) for this long.
_KAFKA_SILENCE_SECONDS = 30.0


@dataclass(frozen=True)
class ConsumerConfig:
    """Everything a replica needs, gathered from settings."""

    kafka: KafkaSettings
    topics: TopicSettings
    consumer: ConsumerSettings
    fetch: FetchSettings
    extraction: ExtractionSettings


class _Partition:
    """A partition this replica owns: its offsets and the tasks working on it."""

    def __init__(self, offsets: PartitionOffsets) -> None:
        self.offsets = offsets
        self.tasks: set[asyncio.Task[None]] = set()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: ConsumerService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._service.release(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._service.adopt(assigned)


class ConsumerService:
    """One consumer replica. ``run()`` returns after a clean stop (signal, drain or ``stop()``)."""

    def __init__(self, config: ConsumerConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        settings = config.consumer
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._held: set[TopicPartition] = set()  # checkpoint still loading, or being revoked
        self._in_flight = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._checkpoint: Checkpoint | None = None
        self._kafka_ok = False
        self._kafka_seen = 0.0  # monotonic time Kafka last answered a request of ours
        self._backoff = Backoff(
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
            total_seconds=settings.retry_total_seconds,
            max_attempts=settings.max_attempts,
        )
        extraction = config.extraction
        self.limiter = RateLimiter(
            rpm=extraction.rpm, itpm=extraction.itpm, otpm=extraction.otpm, metrics=self.metrics
        )
        self.breaker = CircuitBreaker(
            cooldown_seconds=extraction.breaker_cooldown_seconds, metrics=self.metrics
        )
        self.health = HealthServer(
            self.metrics.registry,
            host=settings.metrics_host,
            port=settings.metrics_port,
            ready=self.ready,
        )

    # --- lifecycle -------------------------------------------------------------

    def stop(self) -> None:
        """Asks the replica to stop taking records, finish in-flight ones and leave."""
        self._stopping.set()
        self._slot_freed.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop cleanly; a second one abandons in-flight work at once."""
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if self._stopping.is_set():
                log.warning("consumer.forced_stop", signal=signal.Signals(signum).name)
                for partition in self._partitions.values():
                    for task in partition.tasks:
                        task.cancel()
                return
            log.info("consumer.stopping", signal=signal.Signals(signum).name)
            self.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)

    async def run(self, *, drain: bool = False) -> None:
        config = self.config
        self._check_price()
        fetcher = Fetcher(config.fetch)
        extractor = build_extractor(config.extraction, self.metrics, self.limiter, self.breaker)
        emitter = Emitter(
            config.kafka,
            results_topic=config.topics.results_topic,
            dlq_topic=config.topics.dlq_topic,
        )
        processor = RecordProcessor(
            fetcher=fetcher,
            extractor=extractor,
            emitter=emitter,
            metrics=self.metrics,
            backoff=self._backoff,
            consumer_id=config.consumer.consumer_id,
            stopping=self._stopping,
        )
        # One owner of every resource: each stop is registered before its start,
        # so a start that fails half-way is still cleaned up, in reverse order.
        async with contextlib.AsyncExitStack() as resources:
            resources.push_async_callback(self.health.stop)
            await self.health.start()
            resources.push_async_callback(extractor.close)
            resources.push_async_callback(fetcher.close)
            resources.push_async_callback(emitter.stop)
            await emitter.start()
            admin = AIOKafkaAdminClient(**config.kafka.client_kwargs())
            resources.push_async_callback(admin.close)
            await admin.start()
            self._checkpoint = Checkpoint(admin, config.consumer.group_id, self.metrics)
            backlog = Backlog(admin, config.consumer.group_id)
            consumer = self._consumer = self._build_consumer()
            resources.push_async_callback(consumer.stop)
            await consumer.start()
            self._kafka_ok = True
            self._kafka_seen = time.monotonic()
            resources.callback(self._mark_kafka_down)
            consumer.subscribe([config.topics.documents_topic], listener=_Rebalance(self))
            log.info(
                "consumer.started",
                group_id=config.consumer.group_id,
                topic=config.topics.documents_topic,
                backend=extractor.name,
                model=config.extraction.model if extractor.name == "claude" else "local",
                max_in_flight=config.consumer.max_in_flight,
                metrics_port=self.health.port,
            )
            try:
                await self._loop(consumer, processor, backlog, drain)
                await self._finish_in_flight(list(self._partitions))
                await self._commit()
            finally:
                # Cancelled or failed: no record task may outlive the replica.
                await self._cancel_in_flight()
        log.info("consumer.stopped")

    def _build_consumer(self) -> AIOKafkaConsumer:
        config = self.config
        return AIOKafkaConsumer(
            **config.kafka.client_kwargs(),
            group_id=config.consumer.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Polling never stops while records are in flight, so the poll
            # interval only guards against a wedged loop.
            max_poll_interval_ms=300_000,
            # A rebalance waits for revoked partitions' in-flight records
            # (up to the grace period) before they move to another replica.
            rebalance_timeout_ms=int((config.consumer.shutdown_grace_seconds + 30) * 1000),
            session_timeout_ms=int(config.consumer.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(min(3.0, config.consumer.session_timeout_seconds / 3) * 1000),
            max_partition_fetch_bytes=1024 * 1024,
        )

    def ready(self) -> bool:
        """Owns partitions, is not stopping, and Kafka answered within the last 30 seconds."""
        return (
            self._kafka_ok
            and bool(self._partitions)
            and not self._stopping.is_set()
            and time.monotonic() - self._kafka_seen < _KAFKA_SILENCE_SECONDS
        )

    def _mark_kafka_down(self) -> None:
        self._kafka_ok = False

    def _check_price(self) -> None:
        """Refuses to start on a model without a price: cost metrics must never be guessed."""
        if self.config.extraction.resolved_backend() == "claude":
            price_for(self.config.extraction.model)

    # --- the loop ------------------------------------------------------------------

    async def _loop(
        self, consumer: AIOKafkaConsumer, processor: RecordProcessor, backlog: Backlog, drain: bool
    ) -> None:
        settings = self.config.consumer
        topic = self.config.topics.documents_topic
        drain_targets = await self._end_offsets(consumer) if drain else None
        last_commit = last_share = time.monotonic()
        while not self._stopping.is_set():
            room = settings.max_in_flight - self._in_flight
            if room <= 0:
                # Re-applied every time: partitions assigned since the last pause come unpaused.
                consumer.pause(*consumer.assignment())
                self._slot_freed.clear()
                if self._in_flight >= settings.max_in_flight:  # no slot freed since `room` was read
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._slot_freed.wait(), _FULL_POLL_SECONDS)
                # Paused partitions return nothing, but the poll keeps us in the group.
                batches = await consumer.getmany(timeout_ms=0)
            else:
                ready = consumer.assignment() - self._held
                if consumer.paused() & ready:
                    consumer.resume(*(consumer.paused() & ready))
                batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=room)
            self._take(consumer, batches, processor)
            now = time.monotonic()
            if now - last_share >= _SHARE_INTERVAL_SECONDS:
                last_share = now
                await self._update_share(consumer, backlog, topic)
            if now - last_commit >= settings.commit_interval_seconds:
                await self._commit()
                last_commit = time.monotonic()
                if drain_targets is not None and await self._drained(backlog, drain_targets):
                    log.info("consumer.drained")
                    return

    def _take(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Any]], processor: RecordProcessor
    ) -> None:
        """Starts every fetched record; none is ever dropped.

        A record of a partition that is not ready here (assigned a moment ago,
        its checkpoint still loading) is sought back to, so it is fetched again
        once the partition is ready, instead of being skipped over.
        """
        for tp, records in batches.items():
            partition = self._partitions.get(tp)
            if partition is None or tp in self._held:
                with contextlib.suppress(IllegalStateError):
                    consumer.seek(tp, records[0].offset)
                continue
            for record in records:
                self._start(tp, partition, record, processor)

    def _start(
        self, tp: TopicPartition, partition: _Partition, record: Any, processor: RecordProcessor
    ) -> None:
        offsets = partition.offsets
        if not offsets.accepts(record.offset):
            log.warning("record.redelivered", partition=tp.partition, offset=record.offset)
            return  # already started here: a fetch delivered it twice
        offsets.start(record.offset)
        if offsets.should_skip(record.offset):
            # A previous owner finished it (commit metadata): do not pay for it twice.
            offsets.finish(record.offset)
            self.metrics.documents.labels(Outcome.SKIPPED).inc()
            return
        self._in_flight += 1
        self.metrics.in_flight.set(self._in_flight)
        task = asyncio.create_task(processor.process(record))
        partition.tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            partition.tasks.discard(done)
            self._in_flight -= 1
            self.metrics.in_flight.set(self._in_flight)
            self._slot_freed.set()
            if done.cancelled():
                return  # abandoned: stays uncommitted for the next owner
            error = done.exception()
            if error is None:
                offsets.finish(record.offset)
            elif isinstance(error, Abandoned):
                log.info("record.abandoned", partition=tp.partition, offset=record.offset)
            else:
                # A bug, not a bad record: the offset stays uncommitted so the
                # record is retried after a restart instead of being skipped.
                log.error("record.crashed", partition=tp.partition, offset=record.offset, exc_info=error)

        task.add_done_callback(finished)

    async def _commit(self) -> None:
        if self._consumer is None or self._checkpoint is None:
            return
        for tp, partition in self._partitions.items():
            if partition.offsets.in_flight == 0 and tp not in self._held:
                # Transaction markers (e.g. from `docmill dlq replay`) take offsets but are
                # never delivered: an idle partition commits the consumer's position, past them.
                with contextlib.suppress(IllegalStateError, TimeoutError):
                    position = await asyncio.wait_for(self._consumer.position(tp), 1.0)
                    partition.offsets.advance_to(position)
        await self._checkpoint.commit(self._consumer, {tp: p.offsets for tp, p in self._partitions.items()})

    async def _update_share(self, consumer: AIOKafkaConsumer, backlog: Backlog, topic: str) -> None:
        """Sizes this replica's part of the API quota by its part of the group's backlog."""
        try:
            # Bounded: an unreachable broker must not stall the poll loop (or a shutdown).
            await asyncio.wait_for(backlog.refresh(consumer, topic), _KAFKA_SILENCE_SECONDS / 3)
        except (KafkaError, TimeoutError) as error:
            log.warning("backlog.refresh_failed", error=str(error) or type(error).__name__)
            return
        self._kafka_seen = time.monotonic()
        for tp in self._partitions:
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(backlog.lag.get(tp, 0))
        share = backlog.share_of(list(self._partitions))
        self.limiter.set_share(share)
        self.metrics.quota_share.set(self.limiter.share)

    # --- drain ----------------------------------------------------------------------

    async def _end_offsets(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """The end of every partition of the topic now: what --drain must get through."""
        topic = self.config.topics.documents_topic
        partitions: set[int] | None = None
        for _ in range(100):
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                break
            await asyncio.sleep(0.1)
        if not partitions:
            raise KafkaError(f"topic {topic} does not exist (run `docmill topics ensure`)")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends

    async def _drained(self, backlog: Backlog, targets: dict[TopicPartition, int]) -> bool:
        """True when the whole group has committed past every target and nothing is in flight."""
        if self._in_flight:
            return False
        committed = await backlog.committed(list(targets))
        return all(end == 0 or committed.get(tp, 0) >= end for tp, end in targets.items())

    # --- rebalance ------------------------------------------------------------------

    async def adopt(self, assigned: set[TopicPartition]) -> None:
        new = [tp for tp in assigned if tp not in self._partitions]
        if new and self._checkpoint is not None and self._consumer is not None:
            # Held (paused) until their checkpoints are read: a record started before
            # would miss the list of offsets a previous owner already finished.
            self._held.update(new)
            self._consumer.pause(*new)
            try:
                for tp, offsets in (await self._checkpoint.restore(new)).items():
                    self._partitions[tp] = _Partition(offsets)
            finally:
                self._held.difference_update(new)
        log.info("partitions.assigned", partitions=sorted(tp.partition for tp in assigned))

    async def release(self, revoked: set[TopicPartition]) -> None:
        """Lets revoked partitions' records finish (within the grace period), commits, forgets them."""
        mine = [tp for tp in revoked if tp in self._partitions]
        # No new records from partitions on their way out (held: the loop must not
        # resume them); the in-flight ones may finish.
        self._held.update(mine)
        if self._consumer is not None:
            with contextlib.suppress(IllegalStateError):
                self._consumer.pause(*mine)
        try:
            await self._finish_in_flight(mine)
            await self._commit()
        finally:
            self._held.difference_update(mine)
        for tp in mine:
            del self._partitions[tp]
            # Another replica reports these now; a stale series here would double the lag.
            for gauge in (self.metrics.consumer_lag, self.metrics.committed_offset):
                with contextlib.suppress(KeyError):
                    gauge.remove(tp.topic, str(tp.partition))
        if self._checkpoint is not None:
            self._checkpoint.forget(mine)
        log.info("partitions.revoked", partitions=sorted(tp.partition for tp in revoked))

    async def _cancel_in_flight(self) -> None:
        tasks = {task for partition in self._partitions.values() for task in partition.tasks}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _finish_in_flight(self, tps: list[TopicPartition]) -> None:
        tasks = {task for tp in tps if tp in self._partitions for task in self._partitions[tp].tasks}
        if not tasks:
            return
        grace = self.config.consumer.shutdown_grace_seconds
        log.info("consumer.finishing_in_flight", records=len(tasks), grace_seconds=grace)
        _, unfinished = await asyncio.wait(tasks, timeout=grace)
        if unfinished:
            log.warning("consumer.abandoning", records=len(unfinished))
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
