"""The fate table's first step, ``classify``, on real SDK exceptions, Kafka errors and bugs.

The API errors are raised by the real ``anthropic`` client talking to an
``httpx2.MockTransport``: the SDK itself builds the exception from the status,
headers and body, exactly as in production, without any network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)

from consumer.fate.backoff import Backoff
from consumer.fate.errors import (
    ApiAuthenticationFailed,
    ApiConnectionFailed,
    ApiRequestRejected,
    ApiTimeout,
    ApiUnavailable,
    DocumentNotFound,
    KafkaUnavailable,
    PermanentError,
    ProcessingError,
    PublishRejected,
    RateLimited,
    SpendLimitReached,
    TransientError,
    UnexpectedError,
)
from consumer.fate.table import API_STATUS, Fate, FateTable, Stage, classify, retry_after_seconds

Handler = Callable[[httpx2.Request], httpx2.Response]


def fate_of(error: ProcessingError) -> Fate:
    """What the fate table does with a first failure of this kind while the API looks healthy."""
    table = FateTable(Backoff())
    return table.decide(error, table.fresh().another(), Stage.EXTRACT, stopping=False).fate


def raised_by_sdk(handler: Handler) -> anthropic.APIError:
    """The exception the real client raises when the transport answers (or fails) as ``handler`` does."""
    client = anthropic.Anthropic(
        api_key="test-key",
        base_url="http://api.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with pytest.raises(anthropic.APIError) as caught:
        client.messages.create(
            model="claude-test", max_tokens=16, messages=[{"role": "user", "content": "hello"}]
        )
    client.close()
    return caught.value


def api_error(
    status: int,
    *,
    headers: dict[str, str] | None = None,
    error_type: str = "api_error",
    message: str = "something happened",
    error_code: str | None = None,
) -> anthropic.APIStatusError:
    """A status error as the SDK builds it from an Anthropic-shaped error body."""
    error: dict[str, Any] = {"type": error_type, "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    body = {"type": "error", "error": error, "request_id": "req_test"}
    raised = raised_by_sdk(lambda request: httpx2.Response(status, headers=headers or {}, json=body))
    assert isinstance(raised, anthropic.APIStatusError)
    assert raised.status_code == status
    return raised


# --- the status table ------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_rejected_requests_are_permanent(status: int) -> None:
    """400, 404, 413 and 422 become ApiRequestRejected: permanent, not retried."""
    fate = classify(api_error(status, error_type="invalid_request_error"))
    assert type(fate) is ApiRequestRejected
    assert isinstance(fate, PermanentError)
    assert fate.retryable is False
    assert str(status) in str(fate)


@pytest.mark.parametrize("status", [401, 402, 403])
def test_credential_and_billing_failures_are_permanent(status: int) -> None:
    """401, 402 and 403 become ApiAuthenticationFailed: permanent, not retried."""
    fate = classify(api_error(status, error_type="authentication_error"))
    assert type(fate) is ApiAuthenticationFailed
    assert fate.retryable is False


def test_rate_limit_with_retry_after_seconds() -> None:
    """A 429 with retry-after: 7 becomes RateLimited(retry_after=7.0), which does not spend the budget."""
    fate = classify(api_error(429, headers={"retry-after": "7"}, error_type="rate_limit_error"))
    assert type(fate) is RateLimited
    assert fate.retryable is True
    assert fate.retry_after == 7.0
    assert fate_of(fate) is Fate.WAIT


def test_rate_limit_with_retry_after_milliseconds() -> None:
    """A 429 with retry-after-ms: 1500 waits 1.5 s (the millisecond header wins over the seconds one)."""
    fate = classify(
        api_error(429, headers={"retry-after-ms": "1500", "retry-after": "9"}, error_type="rate_limit_error")
    )
    assert type(fate) is RateLimited
    assert fate.retry_after == 1.5


def test_rate_limit_without_retry_after() -> None:
    """A plain 429 without any retry-after is still RateLimited, with no delay given."""
    fate = classify(api_error(429, error_type="rate_limit_error"))
    assert type(fate) is RateLimited
    assert fate.retry_after is None


def test_spend_limit_429_is_its_own_fate() -> None:
    """A 429 without retry-after whose error_code is enforced_spend_limit_reached is SpendLimitReached."""
    error = api_error(
        429, error_type="rate_limit_error", message="limit hit", error_code="enforced_spend_limit_reached"
    )
    assert isinstance(error, anthropic.RateLimitError)
    fate = classify(error)
    assert type(fate) is SpendLimitReached
    assert fate.retryable is True
    assert fate_of(fate) is Fate.WAIT


def test_spend_limit_recognised_by_message() -> None:
    """A 429 without retry-after saying "spend limit" in its message is SpendLimitReached too."""
    fate = classify(api_error(429, error_type="rate_limit_error", message="Your Spend Limit is reached"))
    assert type(fate) is SpendLimitReached


def test_spend_limit_code_with_retry_after_is_a_rate_limit() -> None:
    """With a retry-after header, even a spend-limit 429 is a plain RateLimited wait."""
    error = api_error(429, headers={"retry-after": "30"}, error_code="enforced_spend_limit_reached")
    fate = classify(error)
    assert type(fate) is RateLimited
    assert fate.retry_after == 30.0


def test_contract_spend_limit_is_a_spend_limit() -> None:
    """A 429 with error_code contract_spend_limit_reached (an operator must act) is SpendLimitReached."""
    error = api_error(
        429,
        error_type="rate_limit_error",
        message="Your organization has reached its contract limit.",
        error_code="contract_spend_limit_reached",
    )
    assert isinstance(error, anthropic.ContractSpendLimitReachedError)
    assert type(classify(error)) is SpendLimitReached  # actual: RateLimited(retry_after=None)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529, 599])
def test_server_errors_are_transient_and_spend_the_budget(status: int) -> None:
    """5xx and 529 (overloaded) become ApiUnavailable: retried, each attempt spending the budget."""
    fate = classify(api_error(status, error_type="overloaded_error" if status == 529 else "api_error"))
    assert type(fate) is ApiUnavailable
    assert isinstance(fate, TransientError)
    assert fate.retryable is True
    assert fate_of(fate) is Fate.RETRY


def test_server_error_keeps_its_retry_after() -> None:
    """A 503 with retry-after carries the server's delay to the backoff."""
    fate = classify(api_error(503, headers={"retry-after": "12"}))
    assert type(fate) is ApiUnavailable
    assert fate.retry_after == 12.0


@pytest.mark.parametrize("status", [408, 409])
def test_timeout_and_conflict_statuses_are_retried(status: int) -> None:
    """408 (request timeout) and 409 (conflict) are ApiUnavailable, retried."""
    fate = classify(api_error(status))
    assert type(fate) is ApiUnavailable
    assert fate.retryable is True


@pytest.mark.parametrize("status", [405, 410, 412, 415, 431, 451, 499])
def test_other_client_errors_are_rejections(status: int) -> None:
    """A 4xx not in the table is ApiRequestRejected."""
    assert type(classify(api_error(status))) is ApiRequestRejected


def test_every_tabled_status_maps_as_the_table_says() -> None:
    """classify agrees with API_STATUS for every status listed there (429 and spend limits aside)."""
    for status, fate in API_STATUS.items():
        assert type(classify(api_error(status, message="x"))) is fate, status


def test_fate_message_names_the_status() -> None:
    """The classified error's message names the HTTP status and the API's message."""
    fate = classify(api_error(400, message="max_tokens: must be positive"))
    assert "400" in str(fate)
    assert "max_tokens: must be positive" in str(fate)
    assert fate.error_class == "ApiRequestRejected"


# --- errors without a status ------------------------------------------------------


def test_sdk_timeout_is_api_timeout() -> None:
    """An SDK APITimeoutError (the transport timed out) becomes ApiTimeout, retried."""

    def times_out(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("read timed out", request=request)

    error = raised_by_sdk(times_out)
    assert isinstance(error, anthropic.APITimeoutError)
    fate = classify(error)
    assert type(fate) is ApiTimeout
    assert fate.retryable is True


def test_sdk_connection_error_is_connection_failed() -> None:
    """An SDK APIConnectionError (connection refused) becomes ApiConnectionFailed, retried."""

    def refuses(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    error = raised_by_sdk(refuses)
    assert type(error) is anthropic.APIConnectionError
    fate = classify(error)
    assert type(fate) is ApiConnectionFailed
    assert fate.retryable is True


def test_other_sdk_errors_are_rejections() -> None:
    """An SDK error that is neither a status, timeout nor connection error is ApiRequestRejected."""
    request = httpx2.Request("POST", "http://api.test/v1/messages")
    error = anthropic.APIResponseValidationError(
        httpx2.Response(200, request=request), body={"unexpected": True}
    )
    assert type(classify(error)) is ApiRequestRejected


# --- Kafka errors and the rest ------------------------------------------------------


@pytest.mark.parametrize(
    "error_type", [RequestTimedOutError, NotLeaderForPartitionError, KafkaConnectionError]
)
def test_retriable_kafka_errors_are_transient(error_type: type[Exception]) -> None:
    """An aiokafka error flagged retriable becomes KafkaUnavailable, retried."""
    error = error_type()
    assert error.retriable  # type: ignore[attr-defined]
    fate = classify(error)
    assert type(fate) is KafkaUnavailable
    assert fate.retryable is True
    assert error_type.__name__ in str(fate)


@pytest.mark.parametrize("error_type", [KafkaTimeoutError, CommitFailedError])
def test_non_retriable_kafka_errors_are_not_retried(error_type: type[Exception]) -> None:
    """An aiokafka error not flagged retriable (KafkaTimeoutError is not, in aiokafka) is not retried."""
    error = error_type()
    assert not error.retriable  # type: ignore[attr-defined]
    fate = classify(error)
    assert type(fate) is PublishRejected
    assert fate.retryable is False


@pytest.mark.parametrize(
    "error", [DocumentNotFound("gone"), ApiUnavailable("down", retry_after=3.0), RateLimited("slow")]
)
def test_processing_errors_pass_through_unchanged(error: ProcessingError) -> None:
    """A ProcessingError is already classified: classify returns the very same object."""
    assert classify(error) is error


@pytest.mark.parametrize("error", [ValueError("bug"), KeyError("x"), RuntimeError("boom")])
def test_unrelated_exceptions_are_unexpected_errors(error: Exception) -> None:
    """Neither an API, Kafka nor processing error: a bug, classified as a retryable UnexpectedError."""
    fate = classify(error)
    assert type(fate) is UnexpectedError
    assert fate.retryable is True
    assert type(error).__name__ in str(fate)


def test_unexpected_error_names_where_it_was_raised() -> None:
    """The letter of a bug carries the innermost frames of its traceback: file, line and function."""

    def broken_parser() -> None:
        raise ZeroDivisionError("division by zero")

    try:
        broken_parser()
    except ZeroDivisionError as error:
        fate = classify(error)
    assert "ZeroDivisionError: division by zero" in str(fate)
    assert "test_table.py" in str(fate)
    assert "broken_parser" in str(fate)


# --- retry_after_seconds --------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "60"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"retry-after": ""}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    """retry-after-ms wins, then retry-after in seconds; negatives clamp to 0, unreadable values are None."""
    assert retry_after_seconds(httpx2.Headers(headers)) == expected


def test_retry_after_without_headers() -> None:
    """Something without a get() (no headers at all) has no retry-after."""
    assert retry_after_seconds(None) is None
