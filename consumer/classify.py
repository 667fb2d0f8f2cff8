"""The one table that decides the fate of every failure that is not already a ProcessingError.

API failures are classified by HTTP status code, not by SDK exception
class: those classes moved between SDK versions (529 and 413 in particular).
"""

from __future__ import annotations

from typing import Any

import anthropic
from aiokafka.errors import KafkaError

from consumer.errors import (
    ApiAuthenticationFailed,
    ApiConnectionFailed,
    ApiRequestRejected,
    ApiTimeout,
    ApiUnavailable,
    KafkaUnavailable,
    ProcessingError,
    RateLimited,
    SpendLimitReached,
)

# HTTP status -> error type. Not listed: other 5xx are ApiUnavailable, other 4xx ApiRequestRejected.
STATUS_FATES: dict[int, type[ProcessingError]] = {
    400: ApiRequestRejected,
    401: ApiAuthenticationFailed,
    402: ApiAuthenticationFailed,  # billing: the organisation must act, like a bad key
    403: ApiAuthenticationFailed,
    404: ApiRequestRejected,  # unknown model
    408: ApiUnavailable,
    409: ApiUnavailable,
    413: ApiRequestRejected,
    422: ApiRequestRejected,
    429: RateLimited,
    500: ApiUnavailable,
    502: ApiUnavailable,
    503: ApiUnavailable,
    504: ApiUnavailable,
    529: ApiUnavailable,
}

# enforced_spend_limit_reached (organisation cap) and contract_spend_limit_reached (contract cap).
SPEND_LIMIT_CODE = "spend_limit_reached"


def retry_after_seconds(headers: Any) -> float | None:
    """The server's requested delay, from retry-after-ms or retry-after."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def _is_spend_limit(error: anthropic.APIStatusError) -> bool:
    return SPEND_LIMIT_CODE in str(error.body) or "spend limit" in str(error.message).lower()


def classify(error: BaseException) -> ProcessingError:  # noqa: PLR0911 - one return per fate reads as a table
    """The classified docmill error for any exception raised while processing a record."""
    if isinstance(error, ProcessingError):
        return error
    if isinstance(error, anthropic.APITimeoutError):
        return ApiTimeout("the API call timed out")
    if isinstance(error, anthropic.APIConnectionError):
        return ApiConnectionFailed(f"the API cannot be reached: {error}")
    if isinstance(error, anthropic.APIStatusError):
        status = error.status_code
        retry_after = retry_after_seconds(error.response.headers)
        message = f"API answered {status}: {error.message}"
        if status == 429 and retry_after is None and _is_spend_limit(error):
            return SpendLimitReached(message)
        fate = STATUS_FATES.get(status, ApiUnavailable if status >= 500 else ApiRequestRejected)
        if issubclass(fate, RateLimited | ApiUnavailable):
            return fate(message, retry_after=retry_after)
        return fate(message)
    if isinstance(error, KafkaError):
        if error.retriable:
            return KafkaUnavailable(f"Kafka: {type(error).__name__}: {error}")
        return ProcessingError(f"Kafka: {type(error).__name__}: {error}")
    if isinstance(error, anthropic.APIError):
        return ApiRequestRejected(f"unexpected API error: {error}")
    raise error
