"""The consumer replica's lifecycle: start its parts, run the poll loop, drain, stop.

Records run concurrently (up to ``max_in_flight``, many per partition) and
finish in any order; each partition commits its contiguous watermark, and
only after the record's result or dead letter was acknowledged. The parts
are built and wired in ``consumer.replica.wiring``; this module only owns
their order of start and stop, and the signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Protocol

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from consumer.extract.base import Extractor
from consumer.fetch.fetcher import Fetcher
from consumer.records.emit import Emitter
from consumer.replica.committer import Committer
from consumer.replica.drain import drain_target
from consumer.replica.health import HealthServer
from consumer.replica.in_flight import InFlight, cancel_all, finish_within
from consumer.replica.partitions import Partitions
from consumer.replica.poll_loop import PollLoop
from consumer.replica.readiness import Readiness
from consumer.replica.rebalance import Rebalancer
from schemas.metrics import Metrics

log = structlog.get_logger("docmill.consumer")


class ReplicaCrashed(RuntimeError):
    """A record's task failed outside the fate table: the replica stopped, the record stays unfinished."""


class _Closable(Protocol):
    async def close(self) -> None: ...


class ConsumerService:
    """One consumer replica. ``run()`` returns after a clean stop (signal, drain or ``stop()``)."""

    def __init__(
        self,
        *,
        topic: str,
        grace_seconds: float,
        metrics: Metrics,
        stopping: asyncio.Event,
        health: HealthServer,
        readiness: Readiness,
        fetcher: Fetcher,
        extractor: Extractor,
        emitter: Emitter,
        admin: AIOKafkaAdminClient,
        consumer: AIOKafkaConsumer,
        partitions: Partitions,
        in_flight: InFlight,
        committer: Committer,
        rebalancer: Rebalancer,
        poll_loop: PollLoop,
        started_fields: dict[str, object],
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.readiness = readiness
        self._topic = topic
        self._grace_seconds = grace_seconds
        self._stopping = stopping
        self._fetcher = fetcher
        self._extractor = extractor
        self._emitter = emitter
        self._admin = admin
        self._consumer = consumer
        self._partitions = partitions
        self._in_flight = in_flight
        self._committer = committer
        self._rebalancer = rebalancer
        self._poll_loop = poll_loop
        self._started_fields = started_fields
        self._crash: BaseException | None = None

    def stop(self) -> None:
        """Asks the replica to stop taking records, finish in-flight ones and leave."""
        self._stopping.set()
        self._in_flight.wake()

    def crashed(self, error: BaseException) -> None:
        """A record's task failed outside the fate table: stop, and make ``run`` fail."""
        self._crash = self._crash or error
        self.stop()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop cleanly; a second one abandons in-flight work at once."""
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if self._stopping.is_set():
                log.warning("consumer.forced_stop", signal=signal.Signals(signum).name)
                for task in self._partitions.tasks():
                    task.cancel()
                return
            log.info("consumer.stopping", signal=signal.Signals(signum).name)
            self.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)

    async def run(self, *, drain: bool = False) -> None:
        # One owner of every resource: each stop is registered before its start,
        # so a start that fails half-way is still cleaned up, in reverse order.
        async with contextlib.AsyncExitStack() as resources:
            resources.push_async_callback(self.health.stop)
            await self.health.start()
            closables: tuple[_Closable, ...] = (self._extractor, self._fetcher, self._admin)
            for closable in closables:
                resources.push_async_callback(closable.close)
            resources.push_async_callback(self._emitter.stop)
            await self._emitter.start()
            await self._admin.start()
            resources.push_async_callback(self._consumer.stop)
            await self._consumer.start()
            self.readiness.connected()
            resources.callback(self.readiness.disconnected)
            self._consumer.subscribe([self._topic], listener=self._rebalancer)
            log.info("consumer.started", metrics_port=self.health.port, **self._started_fields)
            try:
                target = await drain_target(self._consumer, self._topic) if drain else None
                await self._poll_loop.run(target)
                await finish_within(self._partitions.tasks(), self._grace_seconds)
                await self._committer.commit()
            finally:
                # Cancelled or failed: no record task may outlive the replica.
                await cancel_all(self._partitions.tasks())
        if self._crash is not None:
            raise ReplicaCrashed(f"a record's task failed unexpectedly: {self._crash!r}") from self._crash
        log.info("consumer.stopped")
