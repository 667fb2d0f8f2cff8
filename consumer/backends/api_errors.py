"""The fate of every Messages API failure, decided by HTTP status code.

Classified by status, not by SDK exception class: those classes moved between
SDK versions (529 and 413 in particular).
"""

from __future__ import annotations

import anthropic

from consumer.errors import (
    ApiAuthenticationFailed,
    ApiConnectionFailed,
    ApiRequestRejected,
    ApiTimeout,
    ApiUnavailable,
    ProcessingError,
    RateLimited,
)

# status -> error type; statuses not listed: 5xx are ApiUnavailable, other 4xx rejections.
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


def _retry_after(headers: object) -> float | None:
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


def classify_api_error(error: anthropic.APIError) -> ProcessingError:
    """The classified docmill error for an SDK exception."""
    if isinstance(error, anthropic.APITimeoutError):
        return ApiTimeout("the API call timed out")
    if isinstance(error, anthropic.APIConnectionError):
        return ApiConnectionFailed(f"the API cannot be reached: {error}")
    if isinstance(error, anthropic.APIStatusError):
        status = error.status_code
        fate = STATUS_FATES.get(status, ApiUnavailable if status >= 500 else ApiRequestRejected)
        message = f"API answered {status}: {error.message}"
        if issubclass(fate, RateLimited | ApiUnavailable):
            return fate(message, retry_after=_retry_after(error.response.headers))
        return fate(message)
    return ApiRequestRejected(f"unexpected API error: {error}")
