"""Extractors: `claude` (the Messages API) and `local` (a zero-cost reader of text layers)."""

from __future__ import annotations

from consumer.backends.base import Extraction, Extractor
from consumer.breaker import CircuitBreaker
from consumer.limiter import RateLimiter
from schemas.metrics import Metrics
from schemas.settings import ExtractionSettings


def build_extractor(
    settings: ExtractionSettings, metrics: Metrics, limiter: RateLimiter, breaker: CircuitBreaker
) -> Extractor:
    """The extractor the settings ask for."""
    if settings.resolved_backend() == "claude":
        from consumer.backends.claude import ClaudeExtractor

        return ClaudeExtractor(settings, metrics, limiter, breaker)
    from consumer.backends.local import LocalExtractor

    return LocalExtractor()


__all__ = ["Extraction", "Extractor", "build_extractor"]
