"""Every Prometheus metric docmill exposes, defined once, each set on an injectable registry.

Metric names are a contract: the Grafana dashboard and the alert rules in
deploy/ query them, and a test evaluates every one of those queries against
a real Prometheus. Labels stay low-cardinality: model, outcome, status,
error class, reason, bucket, topic and partition; never a document or job id.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.messages import Usage

# LLM calls take seconds to minutes; local extraction takes milliseconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
_E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600)


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    DEAD_LETTERED = "dead_lettered"
    SKIPPED = "skipped"  # finished by a previous owner (commit metadata)


class Metrics:
    """The consumer's metrics and the small API the pipeline records through."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.documents = Counter(
            "docmill_documents", "Documents finished, by outcome.", ["outcome"], registry=r
        )
        self.extraction_seconds = Histogram(
            "docmill_extraction_seconds",
            "Time to fetch and extract one document (all attempts).",
            ["backend"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "docmill_end_to_end_seconds",
            "From submitted_at to the result being acknowledged.",
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self.llm_requests = Counter(
            "docmill_llm_requests",
            "Messages API calls, by model and HTTP status.",
            ["model", "status"],
            registry=r,
        )
        self.tokens = Counter(
            "docmill_tokens", "Tokens used, by model and type.", ["model", "type"], registry=r
        )
        self.cost = Counter("docmill_cost_usd", "Money spent on the API, in USD.", ["model"], registry=r)
        self.retries = Counter("docmill_retries", "Retried attempts, by reason.", ["reason"], registry=r)
        self.dead_letters = Counter(
            "docmill_dead_letters",
            "Records dead-lettered, by error class.",
            ["error_class"],
            registry=r,
        )
        self.in_flight = Gauge("docmill_in_flight", "Records being processed now.", registry=r)
        self.limiter_wait_seconds = Histogram(
            "docmill_limiter_wait_seconds",
            "Time an API call waited for the rate limiter.",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.limiter_remaining = Gauge(
            "docmill_limiter_remaining",
            "Capacity left in this replica's bucket, per bucket.",
            ["bucket"],
            registry=r,
        )
        self.quota_share = Gauge(
            "docmill_quota_share",
            "This replica's share of the API quota (its share of the backlog).",
            registry=r,
        )
        self.breaker_state = Gauge(
            "docmill_circuit_breaker_state",
            "API circuit breaker: 0 closed, 1 open, 2 half-open.",
            registry=r,
        )
        self.spend_limit_reached = Gauge(
            "docmill_spend_limit_reached",
            "1 while the API reports the organisation's spend cap reached.",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "docmill_consumer_lag",
            "Records not yet committed (log end minus committed offset), per owned partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.committed_offset = Gauge(
            "docmill_committed_offset",
            "Last offset committed, per partition.",
            ["topic", "partition"],
            registry=r,
        )

    def record_usage(self, model: str, usage: Usage, cost_usd: float) -> None:
        self.tokens.labels(model, "input").inc(usage.input_tokens)
        self.tokens.labels(model, "output").inc(usage.output_tokens)
        self.tokens.labels(model, "cache_read").inc(usage.cache_read_input_tokens)
        self.tokens.labels(model, "cache_write").inc(usage.cache_creation_input_tokens)
        self.cost.labels(model).inc(cost_usd)

    def record_success(self, backend: str, seconds: float, end_to_end: float | None) -> None:
        self.documents.labels(Outcome.SUCCEEDED).inc()
        self.extraction_seconds.labels(backend).observe(seconds)
        if end_to_end is not None:
            self.end_to_end_seconds.observe(end_to_end)

    def record_dead_letter(self, error_class: str) -> None:
        self.documents.labels(Outcome.DEAD_LETTERED).inc()
        self.dead_letters.labels(error_class).inc()


class PublishOutcome(StrEnum):
    PUBLISHED = "published"
    FAILED = "failed"


class PublisherMetrics:
    """Metrics of a Publisher (the producer side), for upstream services that expose them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.publishes = Counter(
            "docmill_producer_publishes",
            "Document references handed to Kafka, by outcome.",
            ["topic", "outcome"],
            registry=self.registry,
        )
