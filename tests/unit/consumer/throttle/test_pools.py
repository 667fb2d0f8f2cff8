"""One limiter per rate-limit pool, all at the replica's share."""

from __future__ import annotations

from consumer.throttle.limiter import RateLimiter
from consumer.throttle.pools import PoolLimiters


def test_each_pool_gets_its_own_limiter_and_the_main_one_keeps_the_configured_limits() -> None:
    main = RateLimiter(rpm=600)
    pools = PoolLimiters("haiku-5-5", main, RateLimiter)
    assert pools.for_pool("haiku-5-5") is main
    other = pools.for_pool("sonnet-5-5")
    assert other is not main
    assert pools.for_pool("sonnet-5-5") is other
    assert other.buckets is not main.buckets
    assert all(bucket.limit == 0 for bucket in other.buckets.values())  # learnt from its headers


def test_the_share_applies_to_every_pool_also_one_made_later() -> None:
    pools = PoolLimiters("haiku-5-5", RateLimiter(rpm=600), RateLimiter)
    early = pools.for_pool("opus-5-5")
    pools.set_share(0.25)
    late = pools.for_pool("sonnet-5-5")
    assert pools.main.share == early.share == late.share == 0.25
