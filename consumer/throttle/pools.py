"""One rate limiter per rate-limit pool: models in different pools are metered apart.

The API meters each pool (e.g. Haiku 5.5, Sonnet 5.5, "Sonnet 4.x combined")
on its own, so a workload that uses two models — a refusal fallback now,
routing later — must not let one model's calls wait on the other's limits.
The configured limits (DOCMILL_RPM, …) are the main model's pool's; every
other pool starts from nothing and learns its limits from the API's headers.
"""

from __future__ import annotations

from collections.abc import Callable

from consumer.throttle.limiter import RateLimiter


class PoolLimiters:
    """The limiters of a replica, by pool; created on first use, all at the replica's share."""

    def __init__(self, main_pool: str, main: RateLimiter, make: Callable[[], RateLimiter]) -> None:
        self.main_pool = main_pool
        self._limiters = {main_pool: main}
        self._make = make
        self._share = 1.0

    @property
    def main(self) -> RateLimiter:
        return self._limiters[self.main_pool]

    def for_pool(self, pool: str) -> RateLimiter:
        limiter = self._limiters.get(pool)
        if limiter is None:
            limiter = self._limiters[pool] = self._make()
            limiter.set_share(self._share)
        return limiter

    def set_share(self, share: float) -> None:
        """This replica's part of the group's work applies to every pool alike."""
        self._share = share
        for limiter in self._limiters.values():
            limiter.set_share(share)
