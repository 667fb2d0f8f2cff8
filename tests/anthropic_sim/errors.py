"""ApiError (Anthropic's error shape), the status → error-type table, the 400 and spend-limit errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

SPEND_LIMIT_ERROR_CODE: Final = "enforced_spend_limit_reached"


class ApiError(Exception):
    """An error answered to the client in Anthropic's ``{"type":"error",...}`` shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ERROR_TYPES.get(status, "api_error")
        self.details = details
        self.retry_after = retry_after


def invalid(message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(400, message, details=details)


def spend_limit_error() -> ApiError:
    """The spend-cap 429, modelled on the SDK 2.x error shape.

    ``error.details.error_code == "enforced_spend_limit_reached"`` (which the SDK maps
    to ``EnforcedSpendLimitReachedError``, a ``RateLimitError``); the message also names
    the code for clients that only read text. No ``retry-after``: waiting does not help.
    """
    return ApiError(
        429,
        "You have reached your organization's enforced spend limit "
        f"({SPEND_LIMIT_ERROR_CODE}). Requests will fail until an administrator raises "
        "the limit or it resets.",
        details={"error_code": SPEND_LIMIT_ERROR_CODE},
    )
