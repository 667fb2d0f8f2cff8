"""The Messages API request of one extraction, shaped by the model table.

Everything that differs between models — how structured output is asked
for, the cheapest thinking setting, whether effort may be set — comes from
``schemas.models``; nothing here names a model. No sampling parameters are
sent (the current API version refuses them) and the last message is always
the user's (assistant prefill is refused by current models).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from consumer.extract.output_schema import api_schema
from consumer.fetch.documents import Document
from schemas.extraction import ExtractionSchema
from schemas.models import ModelFacts

SYSTEM_PROMPT = (
    "You are a meticulous document-extraction engine. Read the document and record its "
    "fields as JSON matching the given schema, exactly as printed. Dates are ISO 8601 "
    "(YYYY-MM-DD), amounts are plain numbers without currency symbols or thousands "
    "separators, and currencies are ISO 4217 codes. Never invent a value: when a field is "
    "absent, use the closest faithful reading of the document."
)


class EffortNotSupported(ValueError):
    """An effort was asked for on a model that does not take one."""


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


@dataclass(frozen=True)
class ThinkingChoice:
    """What a request says about thinking: a ``thinking`` type and/or an ``effort``, or nothing."""

    thinking: str | None
    effort: str | None


def thinking_choice(facts: ModelFacts, effort: str | None) -> ThinkingChoice:
    """The model's cheapest setting for extraction, or the operator's ``effort`` instead.

    An explicit effort leaves thinking to the model (its default) at that effort.
    """
    if effort is not None:
        if effort not in facts.effort:
            raise EffortNotSupported(
                f"model {facts.id!r} does not take effort {effort!r}"
                + (f" (it takes: {', '.join(facts.effort)})" if facts.effort else " (it takes none)")
            )
        return ThinkingChoice(thinking=None, effort=effort)
    return ThinkingChoice(thinking=facts.thinking.extraction, effort=facts.thinking.extraction_effort)


def build_request(
    facts: ModelFacts,
    schema: ExtractionSchema,
    messages: list[dict[str, Any]],
    *,
    max_tokens: int,
    effort: str | None,
) -> dict[str, Any]:
    """The keyword arguments of ``messages.create`` for one call."""
    choice = thinking_choice(facts, effort)
    output_config: dict[str, Any] = {"format": {"type": "json_schema", "schema": _sent_schema(schema)}}
    if choice.effort is not None:
        output_config["effort"] = choice.effort
    request: dict[str, Any] = {
        "model": facts.id,
        "max_tokens": max_tokens,
        "system": SYSTEM_PROMPT,
        "messages": messages,
        "output_config": output_config,
    }
    if choice.thinking is not None:
        request["thinking"] = {"type": choice.thinking}
    return request


def prompt_chars(request: dict[str, Any]) -> int:
    """The length of what a request adds to its document: the system prompt and the schema."""
    return len(request["system"]) + len(orjson.dumps(request["output_config"]))


# The schema as sent, by extraction schema name (schemas are loaded once, by name): converted once,
# not on every call.
_SENT_SCHEMAS: dict[str, dict[str, Any]] = {}


def _sent_schema(schema: ExtractionSchema) -> dict[str, Any]:
    sent = _SENT_SCHEMAS.get(schema.name)
    if sent is None:
        sent = _SENT_SCHEMAS[schema.name] = api_schema(schema.json_schema, schema.name)
    return sent


def first_messages(document: Document, schema: ExtractionSchema) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                document_block(document),
                {"type": "text", "text": f"Extract this document's {schema.name} fields."},
            ],
        }
    ]


def corrective_messages(
    messages: list[dict[str, Any]], answer: str, problems: list[str]
) -> list[dict[str, Any]]:
    """The conversation once more, with the previous answer and what was wrong with it."""
    turns = list(messages)
    if answer:
        turns.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    turns.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "Your answer could not be used: "
                    + "; ".join(problems[:10])
                    + ". Answer again with the complete JSON object only.",
                }
            ],
        }
    )
    return turns
