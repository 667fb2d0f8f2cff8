"""How replies are produced: the Responder type and a crude, deterministic invoice "extractor"."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from tests.anthropic_sim.invoice import extract_invoice
from tests.anthropic_sim.media import pdf_info

Responder = Callable[[dict[str, Any]], dict[str, Any]]
"""Maps a validated request body to the tool input (or JSON object) Claude "returns"."""

IMAGE_INVOICE: Final[Mapping[str, Any]] = {
    "invoice_number": "INV-IMG-0001",
    "vendor_name": "Scanned Supplies Ltd",
    "invoice_date": "2026-01-15",
    "currency": "USD",
    "total_amount": 118.0,
}


PLACEHOLDER_INVOICE: Final[Mapping[str, Any]] = {
    "invoice_number": "UNKNOWN",
    "vendor_name": "UNKNOWN",
    "invoice_date": "UNKNOWN",
    "currency": "USD",
    "total_amount": 0.0,
}


def _request_texts(body: Mapping[str, Any]) -> tuple[list[str], list[str], bool]:
    """(document texts, text-block texts, has_image) from the request's messages."""
    documents: list[str] = []
    texts: list[str] = []
    has_image = False

    def visit(block: object) -> None:
        nonlocal has_image
        if not isinstance(block, dict):
            return
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "image":
            has_image = True
        elif kind == "document":
            source = block.get("source") or {}
            if source.get("type") == "text" and isinstance(source.get("data"), str):
                documents.append(source["data"])
            elif source.get("type") == "base64" and isinstance(source.get("data"), str):
                with contextlib.suppress(ValueError):
                    documents.append(pdf_info(source["data"])[1])
        elif kind == "tool_result" and isinstance(block.get("content"), list):
            for inner in block["content"]:
                visit(inner)

    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for block in content:
                visit(block)
    return documents, texts, has_image


def _placeholder(schema: object) -> Any:
    if not isinstance(schema, dict):
        return "UNKNOWN"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    defaults: dict[str, Any] = {
        "number": 0.0,
        "integer": 0,
        "boolean": False,
        "array": [],
        "object": {},
        "null": None,
    }
    return defaults.get(str(kind), "UNKNOWN")


def _conform(data: dict[str, Any], schema: object) -> dict[str, Any]:
    """Fill required properties the extractor does not know and drop forbidden extras,
    as a schema-following model would."""
    if not isinstance(schema, dict):
        return data
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    if schema.get("additionalProperties") is False and props:
        data = {k: v for k, v in data.items() if k in props}
    for name in schema.get("required") or []:
        if isinstance(name, str) and name not in data:
            data[name] = _placeholder(props.get(name))
    return data


def default_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Extract an invoice from the request's documents and text, as Claude would.

    Documents (PDF text via pypdf, text documents) are searched before text blocks, so
    a labelled example in the prompt never beats the document itself. Requests with
    only images get :data:`IMAGE_INVOICE`. The result is fitted to the forced tool's
    ``input_schema`` (or ``output_config`` schema) when one is given.
    """
    documents, texts, has_image = _request_texts(body)
    invoice = None
    for text in (*documents, "\n".join(texts)):
        invoice = extract_invoice(text)
        if invoice is not None:
            break
    if invoice is None:
        invoice = dict(IMAGE_INVOICE if has_image else PLACEHOLDER_INVOICE)
    return _conform(invoice, _response_schema(body))


def _response_schema(body: Mapping[str, Any]) -> object:
    choice = body.get("tool_choice")
    tools = body.get("tools") or []
    if isinstance(choice, dict) and choice.get("type") in ("tool", "any") and tools:
        name = choice.get("name") if choice.get("type") == "tool" else tools[0].get("name")
        for tool in tools:
            if tool.get("name") == name:
                return tool.get("input_schema")
    output_config = body.get("output_config")
    if isinstance(output_config, dict) and isinstance(output_config.get("format"), dict):
        return output_config["format"].get("schema")
    return None
