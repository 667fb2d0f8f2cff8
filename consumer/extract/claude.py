"""Extraction with Claude through the official SDK, as a forced tool call.

The tool's ``input_schema`` is the extraction schema, so the reply is
structured data, which is validated before it is used; a reply that fails
validation is asked for once more with the problems named, then dead-lettered.
The SDK's own retries are off (``max_retries=0``): docmill retries, so every
attempt is seen and counted.
"""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import orjson
import structlog

from consumer.extract.base import Extraction
from consumer.extract.pricing import price_for
from consumer.extract.token_estimate import request_tokens
from consumer.fate.errors import (
    OutputValidationFailed,
    ProcessingError,
    RateLimited,
    SpendLimitReached,
    TransientError,
)
from consumer.fate.table import classify
from consumer.fetch.documents import Document
from consumer.throttle.breaker import CircuitBreaker
from consumer.throttle.limiter import Permit, RateLimiter
from schemas.extraction import ExtractionSchema
from schemas.messages import Backend, Usage
from schemas.metrics import CallFailure, Metrics
from schemas.settings import ExtractionSettings

log = structlog.get_logger("docmill.claude")

_INITIAL_OUTPUT_ESTIMATE = 300.0

SYSTEM_PROMPT = (
    "You are a meticulous document-extraction engine. Read the document and record its "
    "fields with the provided tool, exactly as printed. Dates are ISO 8601 (YYYY-MM-DD), "
    "amounts are plain numbers without currency symbols or thousands separators, and "
    "currencies are ISO 4217 codes. Never invent a value: when a field is absent, use the "
    "closest faithful reading of the document."
)


def document_block(document: Document) -> dict[str, Any]:
    """The content block that carries a document, by type."""
    if document.media_type == "text/plain":
        return {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": document.text or ""},
        }
    encoded = base64.standard_b64encode(document.data).decode("ascii")
    block_type = "image" if document.is_image else "document"
    return {
        "type": block_type,
        "source": {"type": "base64", "media_type": document.media_type, "data": encoded},
    }


def tool_for(schema: ExtractionSchema) -> dict[str, Any]:
    input_schema = {k: v for k, v in schema.json_schema.items() if k not in ("$schema", "title")}
    return {
        "name": f"record_{schema.name}",
        "description": schema.json_schema.get("description", f"Record the {schema.name} fields."),
        "input_schema": input_schema,
    }


def _usage_of(usage: Any) -> Usage:
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
    )


def _add_usage(total: Usage, usage: Any) -> Usage:
    return Usage(
        input_tokens=total.input_tokens + (usage.input_tokens or 0),
        output_tokens=total.output_tokens + (usage.output_tokens or 0),
        cache_read_input_tokens=total.cache_read_input_tokens + (usage.cache_read_input_tokens or 0),
        cache_creation_input_tokens=total.cache_creation_input_tokens
        + (usage.cache_creation_input_tokens or 0),
    )


class ClaudeExtractor:
    """Extracts with the Messages API, every call admitted by the breaker and the limiter."""

    name = Backend.CLAUDE

    def __init__(
        self,
        settings: ExtractionSettings,
        metrics: Metrics,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._limiter = limiter
        self._breaker = breaker
        # The SDK reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL itself.
        self._client = anthropic.AsyncAnthropic(max_retries=0, timeout=settings.request_timeout_seconds)
        self._output_estimate = _INITIAL_OUTPUT_ESTIMATE

    async def close(self) -> None:
        await self._client.close()

    async def _call(self, request: dict[str, Any], input_estimate: int) -> tuple[Any, float]:
        """One admitted API call: the parsed message and what it cost."""
        is_probe = await self._breaker.admit()
        try:
            return await self._admitted_call(request, input_estimate)
        finally:
            if is_probe:
                self._breaker.probe_done()

    async def _admitted_call(self, request: dict[str, Any], input_estimate: int) -> tuple[Any, float]:
        permit = await self._limiter.acquire(input_estimate, self._output_estimate)
        try:
            raw = await self._client.messages.with_raw_response.create(**request)
        except anthropic.APIError as error:
            raise self._failed(error, permit) from None
        self._metrics.record_llm_request(self._settings.model, raw.status_code)
        message = await raw.parse()
        usage = message.usage
        # Only uncached input counts toward the input-token limit; cache reads do not.
        counted_input = usage.input_tokens + (usage.cache_creation_input_tokens or 0)
        self._limiter.reconcile(permit, counted_input, usage.output_tokens)
        cost = self._record_cost(message)
        self._limiter.observe_headers(raw.headers, permit)
        self._breaker.record_success()
        self._limiter.release_hold()
        self._metrics.set_spend_limit_reached(False)
        self._output_estimate = 0.8 * self._output_estimate + 0.2 * usage.output_tokens
        return message, cost

    def _record_cost(self, message: Any) -> float:
        """Counts one call's tokens and money, whatever later becomes of the document."""
        usage = _usage_of(message.usage)
        creation = getattr(message.usage, "cache_creation", None)
        one_hour = getattr(creation, "ephemeral_1h_input_tokens", 0) or 0
        cost = price_for(message.model).cost_usd(usage, cache_write_1h_tokens=one_hour)
        self._metrics.record_usage(message.model, usage, cost)
        return cost

    def _failed(self, error: anthropic.APIError, permit: Permit) -> ProcessingError:
        """Classifies a failed call and lets the limiter and breaker learn from it.

        The record's fate is not decided here: the returned error is raised to the
        processor, which asks the fate table.
        """
        failure = classify(error)
        status: int | CallFailure = getattr(error, "status_code", None) or (
            CallFailure.TIMEOUT
            if isinstance(error, anthropic.APITimeoutError)
            else CallFailure.CONNECTION_ERROR
        )
        self._metrics.record_llm_request(self._settings.model, status)
        self._limiter.reconcile(permit, 0, 0)  # a refused call generates no tokens
        if isinstance(error, anthropic.APIStatusError):
            self._limiter.observe_headers(error.response.headers, permit)
        if isinstance(failure, SpendLimitReached):
            # A spend cap is lifted by a person: probe for it rarely rather than hammer the API.
            self._limiter.hold_for_spend_limit(self._settings.spend_limit_probe_seconds)
            self._metrics.set_spend_limit_reached(True)
            log.error(
                "api.spend_limit_reached",
                error=str(failure),
                action="raise the spend limit in the Anthropic console; consumption is paused",
                probe_in_seconds=self._settings.spend_limit_probe_seconds,
            )
            self._breaker.record_neutral()
        elif isinstance(failure, RateLimited):
            self._limiter.pause(failure.retry_after if failure.retry_after is not None else 1.0)
            self._breaker.record_neutral()
        elif isinstance(failure, TransientError):
            # Whether this record waits or spends its budget is the fate table's call; it
            # asks the breaker whether an outage is suspected.
            self._breaker.record_failure()
        else:
            self._breaker.record_neutral()
        return failure

    async def extract(self, document: Document, schema: ExtractionSchema) -> Extraction:
        tool = tool_for(schema)
        messages: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": [
                    document_block(document),
                    {"type": "text", "text": f"Extract this document's {schema.name} fields."},
                ],
            }
        ]
        prompt_chars = len(SYSTEM_PROMPT) + len(orjson.dumps(tool))
        usage = Usage()
        cost = 0.0
        problems: list[str] = []
        for call in (1, 2):
            request: dict[str, Any] = {
                "model": self._settings.model,
                "max_tokens": self._settings.max_output_tokens,
                "system": SYSTEM_PROMPT,
                "tools": [tool],
                "tool_choice": {"type": "tool", "name": tool["name"]},
                "messages": messages,
            }
            message, call_cost = await self._call(request, request_tokens(document, prompt_chars) * call)
            usage = _add_usage(usage, message.usage)
            cost += call_cost
            tool_use = next(
                (b for b in message.content if b.type == "tool_use" and b.name == tool["name"]), None
            )
            data = tool_use.input if tool_use is not None else None
            problems = ["the reply has no tool call"] if data is None else schema.problems(data)
            if not problems and isinstance(data, dict):
                return Extraction(data=data, model=message.model, usage=usage, api_calls=call, cost_usd=cost)
            if tool_use is None:
                break
            # One more try, telling the model exactly what was wrong.
            messages = [
                *messages,
                {"role": "assistant", "content": [tool_use.model_dump(exclude_none=True)]},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": tool_use.id,
                            "is_error": True,
                            "content": "The input does not match the schema: " + "; ".join(problems[:10]),
                        }
                    ],
                },
            ]
        raise OutputValidationFailed("reply fails the schema: " + "; ".join(problems[:5]))
