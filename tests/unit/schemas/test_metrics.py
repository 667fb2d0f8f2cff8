"""The metrics API: each semantic method moves exactly its series, labels spelled one way."""

from __future__ import annotations

from schemas.error_classes import ErrorClass
from schemas.messages import Backend, Usage
from schemas.metrics import BreakerState, Bucket, CallFailure, Metrics, PublisherMetrics, PublishOutcome


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_documents_are_counted_by_outcome_and_dead_letters_by_class() -> None:
    """Success, dead letter and skip each count their outcome; letters also count their class."""
    metrics = Metrics()
    metrics.record_success(Backend.LOCAL, 0.01, end_to_end=2.0)
    metrics.record_dead_letter(ErrorClass.DOCUMENT_NOT_FOUND)
    metrics.record_skipped()
    assert value(metrics, "docmill_documents_total", outcome="succeeded") == 1
    assert value(metrics, "docmill_documents_total", outcome="dead_lettered") == 1
    assert value(metrics, "docmill_documents_total", outcome="skipped") == 1
    assert value(metrics, "docmill_dead_letters_total", error_class="DocumentNotFound") == 1
    assert value(metrics, "docmill_extraction_seconds_count", backend="local") == 1
    assert value(metrics, "docmill_end_to_end_seconds_count") == 1


def test_every_fixed_label_set_exists_from_the_start() -> None:
    """Outcomes, backends and buckets are exported as zero before anything happens (dashboards see them)."""
    metrics = Metrics()
    for outcome in ("succeeded", "dead_lettered", "skipped"):
        assert value(metrics, "docmill_documents_total", outcome=outcome) == 0
    for bucket in Bucket:
        assert value(metrics, "docmill_limiter_remaining", bucket=bucket.value) == 0
    assert value(metrics, "docmill_unexpected_errors_total") == 0


def test_api_calls_tokens_and_money_are_counted_per_model() -> None:
    """Calls by HTTP status or failure, tokens by type and cost, all labelled by model."""
    metrics = Metrics()
    metrics.record_llm_request("claude-x", 200)
    metrics.record_llm_request("claude-x", CallFailure.TIMEOUT)
    metrics.record_usage("claude-x", Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=2), 0.25)
    assert value(metrics, "docmill_llm_requests_total", model="claude-x", status="200") == 1
    assert value(metrics, "docmill_llm_requests_total", model="claude-x", status="timeout") == 1
    assert value(metrics, "docmill_tokens_total", model="claude-x", type="input") == 10
    assert value(metrics, "docmill_tokens_total", model="claude-x", type="cache_read") == 2
    assert value(metrics, "docmill_cost_usd_total", model="claude-x") == 0.25


def test_partition_series_are_forgotten_on_revocation() -> None:
    """A revoked partition's lag and offset series disappear (its new owner reports them)."""
    metrics = Metrics()
    metrics.set_partition_lag("documents", 3, 120)
    metrics.set_committed_offset("documents", 3, 77)
    assert value(metrics, "docmill_consumer_lag", topic="documents", partition="3") == 120
    metrics.forget_partition("documents", 3)
    metrics.forget_partition("documents", 3)  # twice is harmless
    assert value(metrics, "docmill_consumer_lag", topic="documents", partition="3") is None
    assert value(metrics, "docmill_committed_offset", topic="documents", partition="3") is None


def test_gauges_report_the_latest_state() -> None:
    """In flight (read at scrape time), quota share, breaker state and the spend cap report the latest."""
    metrics = Metrics()
    in_flight = [7]
    metrics.track_in_flight(lambda: in_flight[0])
    metrics.set_quota_share(0.25)
    metrics.set_breaker_state(BreakerState.HALF_OPEN)
    metrics.set_spend_limit_reached(True)
    metrics.record_retry(ErrorClass.RATE_LIMITED)
    assert value(metrics, "docmill_in_flight") == 7
    in_flight[0] = 3
    assert value(metrics, "docmill_in_flight") == 3  # read when scraped
    assert value(metrics, "docmill_quota_share") == 0.25
    assert value(metrics, "docmill_circuit_breaker_state") == 2
    assert value(metrics, "docmill_spend_limit_reached") == 1
    assert value(metrics, "docmill_retries_total", reason="RateLimited") == 1


def test_publisher_metrics_count_by_topic_and_outcome() -> None:
    """The producer's own registry counts publishes by topic and outcome."""
    metrics = PublisherMetrics()
    metrics.record_publish("docmill.documents", PublishOutcome.PUBLISHED)
    assert (
        metrics.registry.get_sample_value(
            "docmill_producer_publishes_total", {"topic": "docmill.documents", "outcome": "published"}
        )
        == 1
    )
