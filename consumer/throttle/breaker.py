"""A circuit breaker: when most recent API calls fail transiently, stop calling and probe.

During an outage (a storm of 529s, a dead network) calling on would only
burn attempts and flood the dead-letter topic. Open, the breaker holds every
new call; after a cool-down it lets a single probe through; the probe's
success closes it, its failure doubles the cool-down (up to a cap). Records
wait in memory (and, through backpressure, in Kafka) until the API is back.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from consumer.fate.backoff import Backoff
from schemas.metrics import BreakerState, Metrics

__all__ = ["BreakerState", "CircuitBreaker"]


class CircuitBreaker:
    """Opens when ``failure_ratio`` of the last ``window`` calls (at least ``min_calls``) failed."""

    def __init__(
        self,
        *,
        window: int = 20,
        min_calls: int = 10,
        failure_ratio: float = 0.5,
        cooldown_seconds: float = 5.0,
        max_cooldown_seconds: float = 300.0,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self._outcomes: deque[bool] = deque(maxlen=window)  # True = transient failure
        self._min_calls = min_calls
        self._failure_ratio = failure_ratio
        # The cool-down doubles with every failed probe: the one backoff policy, without jitter
        # (a single probe per replica cannot stampede).
        self._cooldowns = Backoff(base_seconds=cooldown_seconds, max_seconds=max_cooldown_seconds)
        self._failed_probes = 0
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._reopen_at = 0.0
        self._probe_in_flight = False
        self.state = BreakerState.CLOSED

    @property
    def is_open(self) -> bool:
        return self.state is not BreakerState.CLOSED

    @property
    def outage_suspected(self) -> bool:
        """Open, or most recent calls failed: a failure now says more about the API than the document.

        Unlike opening, this needs no minimum of calls, so the very first
        failures of an outage already spare the documents' retry budgets.
        """
        calls = len(self._outcomes)
        return self.is_open or (calls > 0 and sum(self._outcomes) / calls >= self._failure_ratio)

    async def admit(self) -> bool:
        """Returns when a call may start: at once when closed, else as the next probe.

        True when this call is the probe: its caller must end with ``probe_done``
        (after recording the outcome) so that a probe that never reports (a
        cancelled call, say) cannot hold the breaker half-open for ever.
        """
        while self.state is not BreakerState.CLOSED:
            now = self._clock()
            if not self._probe_in_flight and now >= self._reopen_at:
                self._probe_in_flight = True
                self._set_state(BreakerState.HALF_OPEN)
                return True
            wait = self._reopen_at - now if not self._probe_in_flight else 0.5
            await self._sleep(max(0.05, min(wait, 1.0)))  # type: ignore[misc]
        return False

    def probe_done(self) -> None:
        """Frees the probe slot if the probe ended without recording an outcome."""
        if self._probe_in_flight:
            self._probe_in_flight = False
            self._reopen_at = self._clock()

    def record_success(self) -> None:
        self._outcomes.append(False)
        if self.state is not BreakerState.CLOSED:
            self._probe_in_flight = False
            self._failed_probes = 0
            self._outcomes.clear()
            self._set_state(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """A transient failure (5xx, 529, timeout, connection error)."""
        self._outcomes.append(True)
        if self.state is BreakerState.HALF_OPEN and self._probe_in_flight:
            self._probe_in_flight = False
            self._failed_probes += 1
            self._open()
        elif self.state is BreakerState.CLOSED and self._tripped():
            self._open()

    def record_neutral(self) -> None:
        """A call that says nothing about the API's health (e.g. a 400): frees a probe slot."""
        if self._probe_in_flight:
            self._probe_in_flight = False
            self._reopen_at = self._clock()

    def _tripped(self) -> bool:
        calls = len(self._outcomes)
        return calls >= self._min_calls and sum(self._outcomes) / calls >= self._failure_ratio

    def _open(self) -> None:
        self._reopen_at = self._clock() + self._cooldowns.ceiling(self._failed_probes + 1)
        self._set_state(BreakerState.OPEN)

    def _set_state(self, state: BreakerState) -> None:
        self.state = state
        if self._metrics is not None:
            self._metrics.set_breaker_state(state)
