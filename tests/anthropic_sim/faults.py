"""Injected faults: what one holds, and the error it is answered with."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from tests.anthropic_sim.errors import ApiError

_DEFAULT_FAULT_MESSAGES: Final[Mapping[int, str]] = {
    400: "Invalid request (injected fault).",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found (injected fault).",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Rate limited (injected fault).",
    500: "Internal server error",
    504: "Request timed out (injected fault).",
    529: "Overloaded",
}


@dataclasses.dataclass(frozen=True)
class Fault:
    status: int | None
    """None: only delay, then process the request normally."""
    retry_after: float | None = None
    delay: float = 0.0
    message: str | None = None
    details: dict[str, Any] | None = None


def fault_error(fault: Fault) -> ApiError:
    status = fault.status or 500
    message = fault.message or _DEFAULT_FAULT_MESSAGES.get(status, f"Injected HTTP {status}")
    return ApiError(status, message, details=fault.details, retry_after=fault.retry_after)
