"""The one backoff policy: exponential, with full jitter, honouring the server's retry-after."""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2**30 seconds is past any cap; the exponent is clamped so that no attempt count overflows.
_MAX_EXPONENT = 30


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts, bounded per attempt, in number and in total."""

    base_seconds: float = 1.0
    max_seconds: float = 60.0
    total_seconds: float = 900.0
    max_attempts: int = 6

    def ceiling(self, attempt: int) -> float:
        """The longest delay after failed attempt number ``attempt`` (1-based): doubling, capped."""
        exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
        return min(self.max_seconds, self.base_seconds * float(2**exponent))

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Full jitter spreads retries of many records (and replicas) over the
        window instead of synchronising them into a thundering herd; a
        server-given retry-after is a floor, never shortened.
        """
        jittered = (rng or random).uniform(0, self.ceiling(attempt))
        return max(jittered, retry_after) if retry_after is not None else jittered

    def gives_up(self, attempt: int, elapsed: float, next_delay: float) -> bool:
        """Whether a record that failed ``attempt`` times should stop retrying."""
        return attempt >= self.max_attempts or elapsed + next_delay > self.total_seconds
