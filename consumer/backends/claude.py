"""Extraction with Claude through the official SDK, as a forced tool call.

The tool's ``input_schema`` is the extraction schema, so the reply is
structured data, which is validated before it is used; a reply that fails
validation is asked for once more with the problems named, then dead-lettered.
The SDK's own retries are off (``max_retries=0``): docmill retries, so every
attempt is seen and counted.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import anthropic

from consumer.backends.api_errors import classify_api_error
from consumer.backends.base import Extraction
from consumer.document import Document
from consumer.errors import OutputValidationFailed
from consumer.metrics import Metrics
from schemas.extraction import ExtractionSchema
from schemas.messages import Usage
from schemas.settings import ExtractionSettings

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


def _add_usage(total: Usage, usage: Any) -> Usage:
    return Usage(
        input_tokens=total.input_tokens + (usage.input_tokens or 0),
        output_tokens=total.output_tokens + (usage.output_tokens or 0),
        cache_read_input_tokens=total.cache_read_input_tokens + (usage.cache_read_input_tokens or 0),
        cache_creation_input_tokens=total.cache_creation_input_tokens
        + (usage.cache_creation_input_tokens or 0),
    )


class ClaudeExtractor:
    """Extracts with the Messages API."""

    name: Literal["claude"] = "claude"

    def __init__(self, settings: ExtractionSettings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        # The SDK reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL itself.
        self._client = anthropic.AsyncAnthropic(max_retries=0, timeout=settings.request_timeout_seconds)
        self.last_headers: dict[str, str] = {}

    async def close(self) -> None:
        await self._client.close()

    async def _call(self, messages: list[dict[str, Any]], tool: dict[str, Any]) -> Any:
        try:
            # A plain dict: the SDK's TypedDicts add nothing over the API's own validation.
            request: dict[str, Any] = {
                "model": self._settings.model,
                "max_tokens": self._settings.max_output_tokens,
                "system": SYSTEM_PROMPT,
                "tools": [tool],
                "tool_choice": {"type": "tool", "name": tool["name"]},
                "messages": messages,
            }
            raw = await self._client.messages.with_raw_response.create(**request)
        except anthropic.APIError as error:
            status = getattr(error, "status_code", None)
            if status is None:
                status = "timeout" if isinstance(error, anthropic.APITimeoutError) else "connection_error"
            self._metrics.llm_requests.labels(self._settings.model, str(status)).inc()
            raise classify_api_error(error) from None
        self._metrics.llm_requests.labels(self._settings.model, str(raw.status_code)).inc()
        self.last_headers = dict(raw.headers)
        return await raw.parse()

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
        usage = Usage()
        problems: list[str] = []
        for call in (1, 2):
            message = await self._call(messages, tool)
            usage = _add_usage(usage, message.usage)
            tool_use = next(
                (b for b in message.content if b.type == "tool_use" and b.name == tool["name"]),
                None,
            )
            data = tool_use.input if tool_use is not None else None
            problems = ["the reply has no tool call"] if data is None else schema.problems(data)
            if not problems and isinstance(data, dict):
                return Extraction(data=data, model=message.model, usage=usage, api_calls=call)
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
