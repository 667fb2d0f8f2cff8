"""/readyz: a replica is ready while it owns partitions, is not stopping, and Kafka answers it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# /readyz turns 503 when Kafka has not answered (the share refresh) for this long.
KAFKA_SILENCE_SECONDS = 30.0


class Readiness:
    def __init__(
        self,
        *,
        owns_partitions: Callable[[], bool],
        stopping: asyncio.Event,
        clock: Callable[[], float] = time.monotonic,
        silence_seconds: float = KAFKA_SILENCE_SECONDS,
    ) -> None:
        self._owns_partitions = owns_partitions
        self._stopping = stopping
        self._clock = clock
        self.silence_seconds = silence_seconds
        self._connected = False
        self._heard_at = 0.0

    def connected(self) -> None:
        self._connected = True
        self.heard_from_kafka()

    def disconnected(self) -> None:
        self._connected = False

    def heard_from_kafka(self) -> None:
        self._heard_at = self._clock()

    def ready(self) -> bool:
        return (
            self._connected
            and self._owns_partitions()
            and not self._stopping.is_set()
            and self._clock() - self._heard_at < self.silence_seconds
        )
