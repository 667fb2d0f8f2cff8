"""Unit tests of consumer.classify.classify (formerly backends.api_errors) on real SDK exceptions."""

from __future__ import annotations

import anthropic
import httpx2
import pytest
from anthropic._error_classes import make_status_error

from consumer.classify import classify as classify_api_error
from consumer.errors import (
    ApiAuthenticationFailed,
    ApiConnectionFailed,
    ApiRequestRejected,
    ApiTimeout,
    ApiUnavailable,
    DocumentNotFound,
    KafkaUnavailable,
    ProcessingError,
    RateLimited,
    SpendLimitReached,
    TransientError,
)

_URL = "https://api.anthropic.com/v1/messages"


def _status_error(
    status: int, headers: dict[str, str] | None = None, body: object = None
) -> anthropic.APIStatusError:
    """The exception the SDK itself raises for this status (same factory as the client uses)."""
    request = httpx2.Request("POST", _URL)
    response = httpx2.Response(status, headers=headers or {}, request=request)
    if body is None:
        body = {"type": "error", "error": {"type": "some_error", "message": f"status {status}"}}
    return make_status_error(f"Error code: {status}", body=body, response=response)


@pytest.mark.parametrize(
    ("status", "sdk_class"),
    [
        (400, anthropic.BadRequestError),
        (404, anthropic.NotFoundError),
        (413, anthropic.APIStatusError),
        (422, anthropic.UnprocessableEntityError),
    ],
)
def test_rejections_are_permanent(status: int, sdk_class: type[Exception]) -> None:
    """400, 404, 413 and 422 become ApiRequestRejected, which is not retried."""
    error = _status_error(status)
    assert isinstance(error, sdk_class)
    fate = classify_api_error(error)
    assert type(fate) is ApiRequestRejected
    assert not fate.retryable
    assert str(status) in str(fate)


@pytest.mark.parametrize("status", [401, 402, 403])
def test_auth_failures_are_permanent(status: int) -> None:
    """401, 402 (billing) and 403 become ApiAuthenticationFailed, not retried."""
    fate = classify_api_error(_status_error(status))
    assert type(fate) is ApiAuthenticationFailed
    assert not fate.retryable


def test_rate_limit_carries_retry_after_seconds() -> None:
    """429 with retry-after: 7 becomes RateLimited with retry_after 7.0."""
    error = _status_error(429, headers={"retry-after": "7"})
    assert isinstance(error, anthropic.RateLimitError)
    fate = classify_api_error(error)
    assert isinstance(fate, RateLimited)
    assert fate.retryable
    assert fate.retry_after == 7.0


def test_rate_limit_prefers_retry_after_ms() -> None:
    """retry-after-ms is more precise than retry-after and wins when both are sent."""
    fate = classify_api_error(_status_error(429, headers={"retry-after-ms": "1500", "retry-after": "2"}))
    assert isinstance(fate, RateLimited)
    assert fate.retry_after == 1.5


@pytest.mark.parametrize("header", [{}, {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}])
def test_rate_limit_without_usable_retry_after(header: dict[str, str]) -> None:
    """429 without a numeric retry-after is still RateLimited, with retry_after None."""
    fate = classify_api_error(_status_error(429, headers=header))
    assert isinstance(fate, RateLimited)
    assert fate.retry_after is None


def test_negative_retry_after_is_clamped_to_zero() -> None:
    """A negative retry-after is read as 0, never as a negative wait."""
    fate = classify_api_error(_status_error(429, headers={"retry-after": "-3"}))
    assert isinstance(fate, TransientError)
    assert fate.retry_after == 0.0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529, 408, 409, 599])
def test_server_failures_are_retryable(status: int) -> None:
    """5xx (529 overloaded included), 408 and 409 become ApiUnavailable, which is retried."""
    fate = classify_api_error(_status_error(status))
    assert type(fate) is ApiUnavailable
    assert fate.retryable


def test_overloaded_keeps_retry_after() -> None:
    """529 with a retry-after header passes the hint on."""
    error = _status_error(529, headers={"retry-after": "3"})
    assert isinstance(error, anthropic.InternalServerError)
    fate = classify_api_error(error)
    assert isinstance(fate, ApiUnavailable)
    assert fate.retry_after == 3.0


@pytest.mark.parametrize("status", [418, 451])
def test_unlisted_client_errors_are_rejections(status: int) -> None:
    """A 4xx status without a listed fate is a permanent ApiRequestRejected."""
    assert type(classify_api_error(_status_error(status))) is ApiRequestRejected


def test_non_json_error_body_is_classified() -> None:
    """An HTML error page from a proxy (body is a string) is still classified by status."""
    fate = classify_api_error(_status_error(502, body="<html>Bad gateway</html>"))
    assert type(fate) is ApiUnavailable


def test_timeout_is_api_timeout() -> None:
    """APITimeoutError becomes ApiTimeout (retryable), not ApiConnectionFailed."""
    error = anthropic.APITimeoutError(request=httpx2.Request("POST", _URL))
    assert isinstance(error, anthropic.APIConnectionError)  # the subclass relation that matters
    fate = classify_api_error(error)
    assert type(fate) is ApiTimeout
    assert fate.retryable


def test_connection_error_is_connection_failed() -> None:
    """APIConnectionError becomes ApiConnectionFailed (retryable)."""
    error = anthropic.APIConnectionError(request=httpx2.Request("POST", _URL))
    fate = classify_api_error(error)
    assert type(fate) is ApiConnectionFailed
    assert fate.retryable


def test_other_api_errors_are_permanent_rejections() -> None:
    """A response that fails the SDK's own validation is a permanent, classified error."""
    request = httpx2.Request("POST", _URL)
    error = anthropic.APIResponseValidationError(
        httpx2.Response(200, request=request), body={"unexpected": True}
    )
    fate = classify_api_error(error)
    assert isinstance(fate, ProcessingError)
    assert not fate.retryable


async def test_classifies_what_the_client_really_raises() -> None:
    """A 429 from a local server, raised by the real AsyncAnthropic client, becomes RateLimited."""
    from aiohttp import web

    async def limited(_: web.Request) -> web.Response:
        return web.json_response(
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            status=429,
            headers={"retry-after": "7"},
        )

    app = web.Application()
    app.router.add_post("/v1/messages", limited)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    client = anthropic.AsyncAnthropic(api_key="test-key", base_url=f"http://{host}:{port}", max_retries=0)
    try:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
            )
    finally:
        await client.close()
        await runner.cleanup()
    fate = classify_api_error(caught.value)
    assert isinstance(fate, RateLimited)
    assert fate.retry_after == 7.0
    assert "slow down" in str(fate)


def test_spend_limit_429_is_spend_limit_reached() -> None:
    """A 429 naming the spend limit (no retry-after) is SpendLimitReached, which spends no budget."""
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "spend limit reached",
            "details": {"error_code": "enforced_spend_limit_reached"},
        },
    }
    fate = classify_api_error(_status_error(429, body=body))
    assert type(fate) is SpendLimitReached
    assert fate.retryable
    assert not fate.consumes_budget


def test_already_classified_errors_pass_through() -> None:
    """A ProcessingError is returned as it is, not wrapped."""
    original = DocumentNotFound("gone")
    assert classify_api_error(original) is original


def test_retriable_kafka_error_is_kafka_unavailable() -> None:
    """A retriable aiokafka error becomes KafkaUnavailable (retryable)."""
    from aiokafka.errors import RequestTimedOutError

    fate = classify_api_error(RequestTimedOutError())
    assert type(fate) is KafkaUnavailable
    assert fate.retryable


def test_unknown_exceptions_are_not_swallowed() -> None:
    """An exception nobody classified (a bug) is re-raised, not turned into a fate."""
    with pytest.raises(ZeroDivisionError):
        classify_api_error(ZeroDivisionError("bug"))
