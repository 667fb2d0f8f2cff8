"""Every Prometheus metric docmill exposes, defined once on an injectable registry.

Metric names are a contract: the Grafana dashboard and the alert rules in
deploy/ query them, and a test evaluates every one of those queries against
a real Prometheus. The pipeline records only through the semantic methods
below, whose labels are str-Enums (or model ids, topics and partitions), so
label values stay low-cardinality and spelled one way: never a document or
job id.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum, StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.error_classes import ErrorClass
from schemas.messages import Backend, Usage

# LLM calls take seconds to minutes; local extraction takes milliseconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
_E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600)
_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    DEAD_LETTERED = "dead_lettered"
    SKIPPED = "skipped"  # finished by a previous owner (commit metadata)


class TokenType(StrEnum):
    INPUT = "input"
    OUTPUT = "output"
    CACHE_WRITE = "cache_write"
    CACHE_READ = "cache_read"
    THINKING = "thinking"  # part of output: counted in both


class Bucket(StrEnum):
    """The rate limiter's buckets, as Anthropic meters an organisation."""

    REQUESTS = "requests"
    INPUT_TOKENS = "input_tokens"
    OUTPUT_TOKENS = "output_tokens"


class CallFailure(StrEnum):
    """The ``status`` of an API call that got no HTTP answer."""

    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"


class BreakerState(IntEnum):
    """The circuit breaker's states, as ``docmill_circuit_breaker_state`` reports them."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class Metrics:
    """The consumer's metrics and the small API the pipeline records through."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        documents = Counter("docmill_documents", "Documents finished, by outcome.", ["outcome"], registry=r)
        # Children of fixed label sets are resolved once: labels() is a dict lookup under a lock.
        self._documents = {outcome: documents.labels(outcome) for outcome in Outcome}
        extraction = Histogram(
            "docmill_extraction_seconds",
            "Time to fetch and extract one document (all attempts).",
            ["backend"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._extraction_seconds = {backend: extraction.labels(backend) for backend in Backend}
        self._end_to_end_seconds = Histogram(
            "docmill_end_to_end_seconds",
            "From submitted_at to the result being acknowledged.",
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self._llm_requests = Counter(
            "docmill_llm_requests",
            "Messages API calls, by model and HTTP status.",
            ["model", "status"],
            registry=r,
        )
        self._tokens = Counter(
            "docmill_tokens", "Tokens used, by model and type.", ["model", "type"], registry=r
        )
        self._cost = Counter("docmill_cost_usd", "Money spent on the API, in USD.", ["model"], registry=r)
        self._retries = Counter("docmill_retries", "Retried attempts, by reason.", ["reason"], registry=r)
        self._dead_letters = Counter(
            "docmill_dead_letters", "Records dead-lettered, by error class.", ["error_class"], registry=r
        )
        self._unexpected_errors = Counter(
            "docmill_unexpected_errors",
            "Exceptions no failure class foresaw (a bug): each record was dead-lettered as UnexpectedError.",
            registry=r,
        )
        self._in_flight = Gauge("docmill_in_flight", "Records being processed now.", registry=r)
        self._ocr_seconds = Histogram(
            "docmill_ocr_seconds",
            "Time an OCR worker took to read one document's pages (without its wait in the queue).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._ocr_pages = Counter(
            "docmill_ocr_pages", "Pages the local backend read, by how.", ["source"], registry=r
        )
        self._limiter_wait_seconds = Histogram(
            "docmill_limiter_wait_seconds",
            "Time an API call waited for the rate limiter.",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        remaining = Gauge(
            "docmill_limiter_remaining",
            "Capacity left in this replica's bucket, per bucket.",
            ["bucket"],
            registry=r,
        )
        self._limiter_remaining = {bucket: remaining.labels(bucket) for bucket in Bucket}
        self._quota_share = Gauge(
            "docmill_quota_share",
            "This replica's share of the API quota (its share of the backlog).",
            registry=r,
        )
        self._breaker_state = Gauge(
            "docmill_circuit_breaker_state", "API circuit breaker: 0 closed, 1 open, 2 half-open.", registry=r
        )
        self._spend_limit_reached = Gauge(
            "docmill_spend_limit_reached",
            "1 while the API reports the organisation's spend cap reached.",
            registry=r,
        )
        self._consumer_lag = Gauge(
            "docmill_consumer_lag",
            "Records not yet committed (log end minus committed offset), per owned partition.",
            ["topic", "partition"],
            registry=r,
        )
        self._committed_offset = Gauge(
            "docmill_committed_offset",
            "Last offset committed, per partition.",
            ["topic", "partition"],
            registry=r,
        )

    # --- documents -------------------------------------------------------------

    def record_success(self, backend: Backend, seconds: float, end_to_end: float | None) -> None:
        self._documents[Outcome.SUCCEEDED].inc()
        self._extraction_seconds[backend].observe(seconds)
        if end_to_end is not None:
            self._end_to_end_seconds.observe(end_to_end)

    def record_dead_letter(self, error_class: ErrorClass) -> None:
        self._documents[Outcome.DEAD_LETTERED].inc()
        self._dead_letters.labels(error_class).inc()

    def record_skipped(self) -> None:
        """A record a previous owner already finished (commit metadata): not processed again."""
        self._documents[Outcome.SKIPPED].inc()

    def record_unexpected_error(self) -> None:
        self._unexpected_errors.inc()

    def record_retry(self, reason: ErrorClass) -> None:
        self._retries.labels(reason).inc()

    def record_ocr(self, seconds: float, ocr_pages: int, text_layer_pages: int) -> None:
        """One document read by the OCR pool: its worker's time and its pages, OCR'd or not."""
        self._ocr_seconds.observe(seconds)
        self._ocr_pages.labels("ocr").inc(ocr_pages)
        self._ocr_pages.labels("text_layer").inc(text_layer_pages)

    def track_in_flight(self, count: Callable[[], int]) -> None:
        """Reports ``count()`` as the records in flight, read when scraped (nothing per record)."""
        self._in_flight.set_function(count)

    # --- the API -------------------------------------------------------------------

    def record_llm_request(self, model: str, status: int | CallFailure) -> None:
        self._llm_requests.labels(model, str(status)).inc()

    def record_usage(self, model: str, usage: Usage, cost_usd: float) -> None:
        self._tokens.labels(model, TokenType.INPUT).inc(usage.input_tokens)
        self._tokens.labels(model, TokenType.OUTPUT).inc(usage.output_tokens)
        self._tokens.labels(model, TokenType.CACHE_READ).inc(usage.cache_read_input_tokens)
        self._tokens.labels(model, TokenType.CACHE_WRITE).inc(usage.cache_creation_input_tokens)
        self._tokens.labels(model, TokenType.THINKING).inc(usage.thinking_tokens)
        self._cost.labels(model).inc(cost_usd)

    def observe_limiter_wait(self, seconds: float) -> None:
        self._limiter_wait_seconds.observe(seconds)

    def set_limiter_remaining(self, bucket: Bucket, level: float) -> None:
        self._limiter_remaining[bucket].set(level)

    def set_quota_share(self, share: float) -> None:
        self._quota_share.set(share)

    def set_breaker_state(self, state: BreakerState) -> None:
        self._breaker_state.set(int(state))

    def set_spend_limit_reached(self, reached: bool) -> None:
        self._spend_limit_reached.set(1 if reached else 0)

    # --- partitions ----------------------------------------------------------------

    def set_partition_lag(self, topic: str, partition: int, lag: int) -> None:
        self._consumer_lag.labels(topic, str(partition)).set(lag)

    def set_committed_offset(self, topic: str, partition: int, offset: int) -> None:
        self._committed_offset.labels(topic, str(partition)).set(offset)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drops a revoked partition's series: its new owner reports them (a copy would double the lag)."""
        for gauge in (self._consumer_lag, self._committed_offset):
            try:
                gauge.remove(topic, str(partition))
            except KeyError:
                continue


class PublishOutcome(StrEnum):
    PUBLISHED = "published"
    FAILED = "failed"


class PublisherMetrics:
    """Metrics of a Publisher (the producer side), for upstream services that expose them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._publishes = Counter(
            "docmill_producer_publishes",
            "Document references handed to Kafka, by outcome.",
            ["topic", "outcome"],
            registry=self.registry,
        )

    def record_publish(self, topic: str, outcome: PublishOutcome) -> None:
        self._publishes.labels(topic, outcome).inc()
