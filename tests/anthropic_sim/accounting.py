"""What the simulator counts: usage totals, request summaries, SimStats, and bill_usd."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

# Bounded so a long benchmark cannot grow memory without limit.
ACCEPTED_HISTORY: Final = 100_000


@dataclasses.dataclass
class UsageTotals:
    """Token totals for one model, as the API would bill them."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    thinking_tokens: int = 0  # part of output_tokens
    billed_usd: float = 0.0  # request by request, at the tier of each request's prompt


@dataclasses.dataclass(frozen=True)
class RequestSummary:
    """One accepted (200) ``/v1/messages`` request.

    The Messages API has no field for docmill's document id (``metadata`` only allows
    ``user_id``), so the summary keeps what is visible on the wire: model, block types,
    document titles and ``metadata.user_id``.
    """

    request_id: str
    model: str
    block_types: tuple[str, ...]
    document_titles: tuple[str, ...]
    tool_name: str | None
    stop_reason: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    auth_method: str
    metadata_user_id: str | None
    received_at: float
    """``time.monotonic()`` when the request arrived."""


@dataclasses.dataclass
class SimStats:
    """Counters for assertions. :attr:`AnthropicSimulator.stats` returns a private copy."""

    received: int = 0
    """``/v1/messages`` requests that arrived (including ones still in flight)."""
    total_requests: int = 0
    """``/v1/messages`` requests answered (or abandoned by the client: status 499)."""
    in_flight: int = 0
    by_status: dict[int, int] = dataclasses.field(default_factory=dict)
    by_error_type: dict[str, int] = dataclasses.field(default_factory=dict)
    by_model: dict[str, int] = dataclasses.field(default_factory=dict)
    by_auth: dict[str, int] = dataclasses.field(default_factory=dict)
    """Keys: ``"x-api-key"``, ``"bearer"``, ``"both"``, ``"none"``."""
    by_version: dict[str, int] = dataclasses.field(default_factory=dict)
    accepted: deque[RequestSummary] = dataclasses.field(
        default_factory=lambda: deque(maxlen=ACCEPTED_HISTORY)
    )
    usage: dict[str, UsageTotals] = dataclasses.field(default_factory=dict)
    count_tokens_requests: int = 0
    acceleration_refusals: int = 0
    """429s answered by the acceleration limit rather than a bucket."""
    started_at: float | None = None
    """Monotonic time of the first admitted request (since the last reset)."""
    rate_limited_at: list[float] = dataclasses.field(default_factory=list)
    """Seconds after ``started_at`` of each 429 (0 for those before any was admitted)."""

    def snapshot(self) -> SimStats:
        """An independent copy; cheap even with a full history (summaries are frozen)."""
        return dataclasses.replace(
            self,
            by_status=dict(self.by_status),
            by_error_type=dict(self.by_error_type),
            by_model=dict(self.by_model),
            by_auth=dict(self.by_auth),
            by_version=dict(self.by_version),
            accepted=deque(self.accepted, maxlen=self.accepted.maxlen),
            usage={m: dataclasses.replace(u) for m, u in self.usage.items()},
            rate_limited_at=list(self.rate_limited_at),
        )

    def status(self, code: int) -> int:
        """How many ``/v1/messages`` requests were answered with ``code``."""
        return self.by_status.get(code, 0)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly view (without the per-request history) for ``GET /_sim/stats``."""
        return {
            "received": self.received,
            "total_requests": self.total_requests,
            "in_flight": self.in_flight,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_error_type": dict(self.by_error_type),
            "by_model": dict(self.by_model),
            "by_auth": dict(self.by_auth),
            "by_version": dict(self.by_version),
            "accepted": len(self.accepted),
            "usage": {m: dataclasses.asdict(u) for m, u in self.usage.items()},
            "count_tokens_requests": self.count_tokens_requests,
            "acceleration_refusals": self.acceleration_refusals,
            "rate_limited_at": [round(t, 3) for t in self.rate_limited_at],
        }


def bill_usd(usage: Mapping[str, UsageTotals], prices: Mapping[str, Mapping[str, float]]) -> float:
    """Cost in USD of ``usage`` given ``{model_prefix: {rate: USD per MTok}}``.

    Rates: ``input``, ``output``, ``cache_write_5m``, ``cache_read`` and, only needed when
    1-hour cache writes occurred, ``cache_write_1h``. The longest matching prefix wins. A
    model without a price raises :class:`KeyError` — guessing would hide a gap in the
    price table under test.
    """
    total = 0.0
    for model, u in usage.items():
        matches = [p for p in prices if model.startswith(p)]
        if not matches:
            raise KeyError(f"no price for model {model!r} (known prefixes: {sorted(prices)})")
        rate = prices[max(matches, key=len)]
        cost = (
            u.input_tokens * rate["input"]
            + u.output_tokens * rate["output"]
            + u.cache_creation_5m_input_tokens * rate["cache_write_5m"]
            + u.cache_read_input_tokens * rate["cache_read"]
        )
        if u.cache_creation_1h_input_tokens:
            cost += u.cache_creation_1h_input_tokens * rate["cache_write_1h"]
        total += cost / 1_000_000
    return total
