"""The per-model and per-version request rules of the current API: each broken one is a 400.

Also decides, per request, how many tokens the model spends thinking before
it answers (billed as output), and whether the request is one the model
refuses (a document carrying :data:`REFUSAL_MARKER`).
"""

from __future__ import annotations

from typing import Any, Final

from tests.anthropic_sim.errors import invalid
from tests.anthropic_sim.models import EFFORTS, THINKING_TOKENS, SimModel

# Versions from this one on refuse sampling parameters on every model.
SAMPLING_REFUSED_FROM: Final = "2026-10-21"
SAMPLING_PARAMETERS: Final = ("temperature", "top_p", "top_k")
# A document containing this text is declined by the model's safety classifiers.
REFUSAL_MARKER: Final = "SIMULATOR-REFUSES-THIS"
_UNSUPPORTED_SCHEMA_KEYWORDS: Final = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
)


def check(body: dict[str, Any], model: SimModel, version: str | None, forced_tool: str | None) -> None:
    """Raises the 400 the API answers for a request this model or version refuses."""
    if version is not None and version >= SAMPLING_REFUSED_FROM:
        for name in SAMPLING_PARAMETERS:
            if name in body:
                raise invalid(
                    f"{name}: sampling parameters are not supported with anthropic-version {version}"
                )
    choice = body.get("tool_choice")
    if forced_tool is not None and not model.forced_tool_ok and isinstance(choice, dict):
        raise invalid('tool_choice: type "tool" and "any" are not supported for this model.')
    messages = body.get("messages") or []
    if (
        messages
        and isinstance(messages[-1], dict)
        and messages[-1].get("role") == "assistant"
        and not model.prefill_ok
    ):
        raise invalid(
            "This model does not support assistant message prefill. "
            "The conversation must end with a user message."
        )
    thinking = body.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind not in model.thinking_types:
            if kind == "disabled" and model.thinking_default == "always":
                raise invalid(
                    "thinking.type: 'disabled' is not supported: this model always thinks; "
                    "lower output_config.effort"
                )
            raise invalid(f"thinking.type: {kind!r} is not supported for this model")
    output_config = body.get("output_config")
    if isinstance(output_config, dict):
        effort = output_config.get("effort")
        if effort is not None:
            if not model.effort_ok:
                raise invalid("output_config.effort: this model does not support effort")
            if effort not in EFFORTS:
                raise invalid(f"output_config.effort: Input should be {', '.join(map(repr, EFFORTS))}")
        fmt = output_config.get("format")
        if isinstance(fmt, dict) and isinstance(fmt.get("schema"), dict):
            _check_schema(fmt["schema"], "output_config.format.schema")


def _check_schema(node: Any, path: str) -> None:
    if isinstance(node, list):
        for index, item in enumerate(node):
            _check_schema(item, f"{path}.{index}")
        return
    if not isinstance(node, dict):
        return
    for keyword in _UNSUPPORTED_SCHEMA_KEYWORDS:
        if keyword in node:
            raise invalid(f"{path}: JSON schema keyword '{keyword}' is not supported for structured output")
    ref = node.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#/")):
        raise invalid(f"{path}.$ref: external references are not supported for structured output")
    is_object = node.get("type") == "object" or "properties" in node
    if is_object and node.get("additionalProperties") is not False:
        raise invalid(f"{path}: 'additionalProperties' must be explicitly set to false for objects")
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for name, schema in value.items():
                _check_schema(schema, f"{path}.{key}.{name}")
        elif key in ("items", "anyOf", "allOf", "prefixItems"):
            _check_schema(value, f"{path}.{key}")


def thinking_tokens(body: dict[str, Any], model: SimModel, forced_tool: str | None) -> int:
    """Tokens the model thinks before answering this request (0 when it does not think)."""
    if forced_tool is not None:
        return 0  # a forced tool call, where allowed, is answered without thinking
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    output_config = body.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    if kind in ("disabled", "between_tools"):
        return 0  # between_tools: no thinking up front, and a single answer has no tools between
    if kind == "enabled":
        budget = thinking.get("budget_tokens", 1024) if isinstance(thinking, dict) else 1024
        return min(int(budget), THINKING_TOKENS["medium"])
    if kind is None and model.thinking_default == "off":
        return 0
    return THINKING_TOKENS[effort or model.default_effort or "medium"]


def refuses(body: dict[str, Any]) -> bool:
    """Whether the request carries the marker the simulated classifiers decline."""
    return REFUSAL_MARKER in str(body.get("messages"))
