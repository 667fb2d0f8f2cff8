"""The prompt cache: hashed prefix breakpoints, their TTLs, and what a request reads or writes."""

from __future__ import annotations

import dataclasses
from typing import Final

# The cache is not locked itself: the simulator mutates it under its lock.

CACHE_TTLS: Final = {"5m": 300.0, "1h": 3600.0}


@dataclasses.dataclass(frozen=True)
class Breakpoint:
    cum_tokens: int
    digest: bytes
    ttl: str


@dataclasses.dataclass(frozen=True)
class CachePlan:
    read: int = 0
    create_5m: int = 0
    create_1h: int = 0

    @property
    def created(self) -> int:
        return self.create_5m + self.create_1h


class PromptCache:
    """Prefix hash → expiry. The longest live breakpoint prefix is read; every eligible
    breakpoint beyond it is written (its new tokens billed at that breakpoint's TTL)."""

    def __init__(self) -> None:
        self.entries: dict[bytes, float] = {}

    def plan(self, bps: list[Breakpoint], now: float, min_tokens: int) -> CachePlan:
        eligible = [bp for bp in bps if bp.cum_tokens >= min_tokens]
        read, start = 0, 0
        for k in range(len(eligible) - 1, -1, -1):
            if self.entries.get(eligible[k].digest, 0.0) > now:
                read, start = eligible[k].cum_tokens, k + 1
                break
        created = {"5m": 0, "1h": 0}
        prev = read
        for bp in eligible[start:]:
            created[bp.ttl] += max(0, bp.cum_tokens - prev)
            prev = max(prev, bp.cum_tokens)
        return CachePlan(read=read, create_5m=created["5m"], create_1h=created["1h"])

    def commit(self, bps: list[Breakpoint], now: float, min_tokens: int) -> None:
        for bp in bps:
            if bp.cum_tokens >= min_tokens:
                # Reads refresh the TTL, as the real cache does.
                self.entries[bp.digest] = now + CACHE_TTLS[bp.ttl]
        if len(self.entries) > 200_000:
            self.entries = {k: v for k, v in self.entries.items() if v > now}
