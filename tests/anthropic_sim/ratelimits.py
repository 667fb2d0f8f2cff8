"""The org-wide token buckets, their anthropic-ratelimit-* headers, and the 429 they cause."""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from typing import Final

from tests.anthropic_sim.errors import ApiError

# Buckets are not locked themselves: the simulator mutates them under its lock.

# Reported as limit/remaining for a bucket configured as 0 (= unlimited): the real API always
# sends the headers, and a huge value tells a header-driven client not to throttle.
UNLIMITED_HEADER_VALUE: Final = 1_000_000_000


class Bucket:
    """A token bucket refilled at ``limit/60`` per second, holding ``burst_seconds`` of refill.

    ``limit == 0`` means unlimited. The level may go negative (output tokens are debited
    after the fact), in which case requests wait until it has refilled.
    """

    __slots__ = ("burst_seconds", "level", "limit", "updated")

    def __init__(self, limit: int, now: float, burst_seconds: float = 60.0) -> None:
        self.limit = max(0, limit)
        # The real API may hold far less than a minute's worth ("60 RPM may be enforced as
        # 1 request per second"): the bucket holds ``burst_seconds`` of refill.
        self.burst_seconds = burst_seconds
        self.level = self.capacity
        self.updated = now

    @property
    def capacity(self) -> float:
        return self.limit * self.burst_seconds / 60

    @property
    def unlimited(self) -> bool:
        return self.limit == 0

    def refill(self, now: float) -> None:
        if not self.unlimited:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.limit / 60)
        self.updated = now

    def wait_seconds(self, need: float) -> float:
        """Seconds until ``need`` fits; 0 if it fits now.

        A need larger than the whole bucket is admitted once the bucket is full (then
        driven negative): otherwise such a request could never succeed, and retrying
        clients would spin forever.
        """
        if self.unlimited:
            return 0.0
        need = min(need, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) * 60 / self.limit

    def take(self, amount: float) -> None:
        if not self.unlimited:
            self.level -= amount

    def headers(self, name: str, now_wall: float) -> dict[str, str]:
        if self.unlimited:
            limit = remaining = UNLIMITED_HEADER_VALUE
            to_full = 0.0
        else:
            limit, remaining = self.limit, max(0, math.floor(self.level))
            to_full = (self.capacity - self.level) * 60 / self.limit
        reset = dt.datetime.fromtimestamp(now_wall + max(0.0, to_full), tz=dt.UTC)
        prefix = f"anthropic-ratelimit-{name}"
        return {
            f"{prefix}-limit": str(limit),
            f"{prefix}-remaining": str(remaining),
            f"{prefix}-reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def rate_limit_error(name: str, limit: int, wait: float) -> ApiError:
    unit = {"requests": "requests", "input": "input tokens", "output": "output tokens"}[name]
    return ApiError(
        429,
        f"This request would exceed the rate limit for your organization of {limit:,} "
        f"{unit} per minute. For details, refer to: "
        "https://docs.claude.com/en/api/rate-limits. You can see the response headers "
        "for current usage. Please reduce the prompt length or the maximum tokens "
        "requested, or try again later.",
        retry_after=max(1, math.ceil(wait)),
    )


class Acceleration:
    """The API's "acceleration limit": a pool's requests in the last second may be at most
    ``factor`` times those of the second before (or ``floor``, whichever is more), so a sharp
    ramp — a replica firing its whole backlog at once — is answered 429 even within the bucket."""

    __slots__ = ("factor", "floor", "stamps")

    def __init__(self, factor: float, floor: int) -> None:
        self.factor = factor
        self.floor = floor
        self.stamps: deque[float] = deque()

    def refuses(self, now: float) -> bool:
        while self.stamps and self.stamps[0] <= now - 2.0:
            self.stamps.popleft()
        recent = sum(1 for stamp in self.stamps if stamp > now - 1.0)
        before = len(self.stamps) - recent
        return recent + 1 > max(self.floor, self.factor * before)

    def record(self, now: float) -> None:
        self.stamps.append(now)


def acceleration_error() -> ApiError:
    return ApiError(
        429,
        "Your request rate increased too quickly (acceleration limit). Ramp up gradually.",
        retry_after=1,
    )
