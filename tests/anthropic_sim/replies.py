"""The JSON bodies the simulator answers with: a Messages reply and an error reply."""

from __future__ import annotations

import math
import uuid
from typing import Any

import orjson
from aiohttp import web

from tests.anthropic_sim.cache import CachePlan
from tests.anthropic_sim.errors import ApiError
from tests.anthropic_sim.tokens import OUTPUT_TOKEN_OVERHEAD
from tests.anthropic_sim.validation import Prepared

# A refusal still costs the few tokens of the classifier's stop.
REFUSAL_OUTPUT_TOKENS = 5


def _fmt_seconds(seconds: float) -> str:
    # Integral values as integers (the real header's format); fractions are kept for
    # fast tests — the SDK accepts non-integer retry-after values.
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def new_id(prefix: str) -> str:
    return f"{prefix}_01{uuid.uuid4().hex[:22]}"


def error_response(request_id: str, err: ApiError) -> web.Response:
    error: dict[str, Any] = {"type": err.error_type, "message": err.message}
    if err.details is not None:
        error["details"] = err.details
    headers = {}
    if err.retry_after is not None:
        headers["retry-after"] = _fmt_seconds(err.retry_after)
    return web.Response(
        status=err.status,
        body=orjson.dumps({"type": "error", "error": error, "request_id": request_id}),
        content_type="application/json",
        headers=headers,
    )


def build_message(
    prepared: Prepared, plan: CachePlan, result: dict[str, Any], *, thinking: int = 0, refused: bool = False
) -> tuple[dict[str, Any], int]:
    """The reply and its billed output tokens (thinking included, as the API bills them).

    A model that thinks answers with a thinking block first; thinking that exhausts
    ``max_tokens`` leaves no answer at all. A refusal is a 200 with ``stop_reason:
    "refusal"``, its details, and no content.
    """
    thinking = min(thinking, prepared.max_tokens)
    content: list[dict[str, Any]] = []
    if thinking:
        content.append({"type": "thinking", "thinking": "Reading the document…", "signature": new_id("sig")})
    stop_details = None
    if refused:
        output_tokens = thinking + REFUSAL_OUTPUT_TOKENS
        stop_reason = "refusal"
        stop_details = {
            "type": "refusal",
            "category": "cyber",
            "explanation": "The request was declined by the model's safety classifiers.",
        }
        content = []
    else:
        output_json = orjson.dumps(result)
        answer_tokens = math.ceil(len(output_json) / 4) + OUTPUT_TOKEN_OVERHEAD
        room = prepared.max_tokens - thinking
        truncated = answer_tokens > room
        if truncated:
            # Like the real API: generation stops at max_tokens, leaving a cut-off answer.
            answer_tokens = room
        output_tokens = thinking + answer_tokens
        if prepared.forced_tool is not None:
            content.append(
                {
                    "type": "tool_use",
                    "id": new_id("toolu"),
                    "name": prepared.forced_tool,
                    "input": {} if truncated else result,
                }
            )
            stop_reason = "max_tokens" if truncated else "tool_use"
        else:
            text = output_json.decode()
            text = text[: answer_tokens * 4] if truncated else text
            if text:
                content.append({"type": "text", "text": text})
            stop_reason = "max_tokens" if truncated else "end_turn"
    message = {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": prepared.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": stop_details,
        "usage": {
            "input_tokens": prepared.total_input_tokens - plan.read - plan.created,
            "output_tokens": output_tokens,
            "output_tokens_details": {"thinking_tokens": thinking},
            "cache_creation_input_tokens": plan.created,
            "cache_read_input_tokens": plan.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": plan.create_5m,
                "ephemeral_1h_input_tokens": plan.create_1h,
            },
            "service_tier": "standard",
        },
    }
    return message, output_tokens
