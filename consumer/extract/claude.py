"""Extraction with Claude through the official SDK, as structured output.

The request comes from ``consumer.extract.request`` and the model table:
``output_config.format`` carries the extraction schema, thinking is set to
the model's cheapest mode. The answer is the JSON in the reply's text
blocks (thinking blocks may come first), validated before it is used; an
answer that is cut off, not JSON or fails the schema is asked for once more
with the problems named, then dead-lettered. A refusal is ``Refused``, or
one more attempt on the fallback model when one is configured. The SDK's own
retries are off (``max_retries=0``): docmill retries, so every attempt is
seen and counted.
"""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import structlog

from consumer.extract.base import Extraction
from consumer.extract.request import build_request, corrective_messages, first_messages, prompt_chars
from consumer.extract.token_estimate import request_tokens
from consumer.fate.errors import (
    OutputValidationFailed,
    ProcessingError,
    RateLimited,
    Refused,
    SpendLimitReached,
    TransientError,
)
from consumer.fate.table import classify
from consumer.fetch.documents import Document
from consumer.throttle.breaker import CircuitBreaker
from consumer.throttle.limiter import Permit, RateLimiter
from consumer.throttle.pools import PoolLimiters
from schemas.extraction import ExtractionSchema
from schemas.messages import Backend, Usage
from schemas.metrics import CallFailure, Metrics
from schemas.models import ModelFacts, model_facts
from schemas.settings import ExtractionSettings

log = structlog.get_logger("docmill.claude")

_INITIAL_OUTPUT_ESTIMATE = 300.0
# A reply cut off at max_tokens is asked for again with this much more room.
_MAX_TOKENS_GROWTH = 2


def usage_of(usage: Any) -> Usage:
    """The SDK's usage as docmill's; thinking is the part of output_tokens spent thinking."""
    details = getattr(usage, "output_tokens_details", None)
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        thinking_tokens=(getattr(details, "thinking_tokens", 0) or 0) if details is not None else 0,
    )


def _add(total: Usage, more: Usage) -> Usage:
    return Usage(
        input_tokens=total.input_tokens + more.input_tokens,
        output_tokens=total.output_tokens + more.output_tokens,
        cache_read_input_tokens=total.cache_read_input_tokens + more.cache_read_input_tokens,
        cache_creation_input_tokens=total.cache_creation_input_tokens + more.cache_creation_input_tokens,
        thinking_tokens=total.thinking_tokens + more.thinking_tokens,
    )


def answer_text(message: Any) -> str:
    """The reply's text, block by block by type: thinking blocks first are normal."""
    return "".join(block.text for block in message.content if block.type == "text")


def _refusal(message: Any) -> Refused:
    details = getattr(message, "stop_details", None)
    category = getattr(details, "category", None)
    explanation = getattr(details, "explanation", None)
    reason = f" ({category})" if category else ""
    text = f": {explanation}" if explanation else ""
    return Refused(f"{message.model} declined the document{reason}{text}", category=category)


class ClaudeExtractor:
    """Extracts with the Messages API, every call admitted by the breaker and its pool's limiter."""

    name = Backend.CLAUDE

    def __init__(
        self,
        settings: ExtractionSettings,
        metrics: Metrics,
        limiters: PoolLimiters,
        breaker: CircuitBreaker,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._limiters = limiters
        self._breaker = breaker
        self._facts = model_facts(settings.model)
        fallback = settings.refusal_fallback_model
        self._fallback = model_facts(fallback) if fallback and fallback != settings.model else None
        # The SDK reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL itself.
        self._client = anthropic.AsyncAnthropic(max_retries=0, timeout=settings.request_timeout_seconds)
        self._output_estimate = _INITIAL_OUTPUT_ESTIMATE

    @property
    def capacity(self) -> int | None:
        return None  # the limiter paces calls; records wait for it, not for the poll loop

    async def close(self) -> None:
        await self._client.close()

    async def _call(
        self, facts: ModelFacts, request: dict[str, Any], input_estimate: int
    ) -> tuple[Any, Usage, float]:
        """One admitted API call: the parsed message, its usage and what it cost."""
        is_probe = await self._breaker.admit()
        try:
            return await self._admitted_call(facts, request, input_estimate)
        finally:
            if is_probe:
                self._breaker.probe_done()

    async def _admitted_call(
        self, facts: ModelFacts, request: dict[str, Any], input_estimate: int
    ) -> tuple[Any, Usage, float]:
        limiter = self._limiters.for_pool(facts.rate_limit_pool)
        permit = await limiter.acquire(input_estimate, self._output_estimate)
        try:
            return await self._answered_call(facts, request, limiter, permit)
        finally:
            limiter.answered(permit)  # however the call ended, it left the slow-start window

    async def _answered_call(
        self, facts: ModelFacts, request: dict[str, Any], limiter: RateLimiter, permit: Permit
    ) -> tuple[Any, Usage, float]:
        try:
            raw = await self._client.messages.with_raw_response.create(**request)
        except anthropic.APIError as error:
            raise self._failed(facts, error, limiter, permit) from None
        self._metrics.record_llm_request(facts.id, raw.status_code)
        message = await raw.parse()
        usage = usage_of(message.usage)
        # Only uncached input counts toward the input-token limit; cache reads do not.
        counted_input = usage.input_tokens + usage.cache_creation_input_tokens
        limiter.reconcile(permit, counted_input, usage.output_tokens)
        cost = self._record_cost(facts, message, usage)
        limiter.observe_headers(raw.headers, permit)
        self._breaker.record_success()
        limiter.release_hold()
        self._metrics.set_spend_limit_reached(False)
        self._output_estimate = 0.8 * self._output_estimate + 0.2 * usage.output_tokens
        return message, usage, cost

    def _record_cost(self, facts: ModelFacts, message: Any, usage: Usage) -> float:
        """Counts one call's tokens and money, whatever later becomes of the document (a refused
        call is billed too)."""
        creation = getattr(message.usage, "cache_creation", None)
        one_hour = getattr(creation, "ephemeral_1h_input_tokens", 0) or 0
        # The reply names the model that answered; its facts price it (the same model, or a snapshot).
        answered = facts if message.model == facts.id else model_facts(message.model)
        cost = answered.cost_usd(usage, cache_write_1h_tokens=one_hour)
        self._metrics.record_usage(facts.id, usage, cost)
        return cost

    def _failed(
        self, facts: ModelFacts, error: anthropic.APIError, limiter: RateLimiter, permit: Permit
    ) -> ProcessingError:
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
        self._metrics.record_llm_request(facts.id, status)
        limiter.reconcile(permit, 0, 0)  # a refused call generates no tokens
        headers = error.response.headers if isinstance(error, anthropic.APIStatusError) else None
        if headers is not None:
            limiter.observe_headers(headers, permit)
        if isinstance(failure, SpendLimitReached):
            # A spend cap is lifted by a person: probe for it rarely rather than hammer the API.
            limiter.hold_for_spend_limit(self._settings.spend_limit_probe_seconds)
            self._metrics.set_spend_limit_reached(True)
            log.error(
                "api.spend_limit_reached",
                error=str(failure),
                action="raise the spend limit in the Anthropic console; consumption is paused",
                probe_in_seconds=self._settings.spend_limit_probe_seconds,
            )
            self._breaker.record_neutral()
        elif isinstance(failure, RateLimited):
            limiter.rate_limited(failure.retry_after, headers, permit)
            self._breaker.record_neutral()
        elif isinstance(failure, TransientError):
            # Whether this record waits or spends its budget is the fate table's call; it
            # asks the breaker whether an outage is suspected.
            self._breaker.record_failure()
        else:
            self._breaker.record_neutral()
        return failure

    async def extract(self, document: Document, schema: ExtractionSchema) -> Extraction:
        facts = self._facts
        messages = first_messages(document, schema)
        max_tokens = self._settings.max_output_tokens
        usage = Usage()
        cost = 0.0
        calls = 0
        corrected = False
        problems: list[str] = []
        while True:
            request = build_request(
                facts, schema, messages, max_tokens=max_tokens, effort=self._settings.effort
            )
            estimate = request_tokens(document, prompt_chars(request), facts) * (2 if corrected else 1)
            message, call_usage, call_cost = await self._call(facts, request, estimate)
            calls += 1
            usage, cost = _add(usage, call_usage), cost + call_cost
            if message.stop_reason == "refusal":
                if self._fallback is not None and facts is not self._fallback:
                    log.warning("api.refused", model=facts.id, fallback=self._fallback.id)
                    facts, messages, corrected = self._fallback, first_messages(document, schema), False
                    continue
                raise _refusal(message)
            text = answer_text(message)
            data, problems = _parsed(text, message.stop_reason, schema)
            if not problems and isinstance(data, dict):
                return Extraction(data=data, model=message.model, usage=usage, api_calls=calls, cost_usd=cost)
            if corrected:
                break
            # One more try, telling the model exactly what was wrong.
            corrected = True
            if message.stop_reason == "max_tokens":
                max_tokens *= _MAX_TOKENS_GROWTH
            messages = corrective_messages(messages, text, problems)
        raise OutputValidationFailed("reply fails the schema: " + "; ".join(problems[:5]))


def _parsed(text: str, stop_reason: str | None, schema: ExtractionSchema) -> tuple[Any, list[str]]:
    """The answer's data and every problem with it (none when it can be used)."""
    if stop_reason == "max_tokens":
        return None, ["the answer was cut off at max_tokens"]
    if not text.strip():
        return None, ["the reply has no text answer"]
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return None, [f"the answer is not JSON ({error.msg})"]
    if not isinstance(data, dict):
        return None, [f"the answer is JSON {type(data).__name__}, not an object"]
    return data, schema.problems(data)
