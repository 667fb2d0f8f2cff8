"""The Claude request as the model table shapes it, and the schema subset structured output takes."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.extract.output_schema import SchemaNotExpressible, api_schema
from consumer.extract.request import EffortNotSupported, build_request, first_messages
from consumer.fetch.documents import inspect_document
from schemas.extraction import load_schema
from schemas.models import model_facts, model_table


def _request(model: str, effort: str | None = None) -> dict[str, Any]:
    schema = load_schema("invoice")
    assert schema is not None
    document = inspect_document(b"Invoice Number: INV-1\nTotal: 3.00\n")
    return build_request(
        model_facts(model), schema, first_messages(document, schema), max_tokens=512, effort=effort
    )


@pytest.mark.parametrize(
    ("model", "thinking", "effort"),
    [
        ("claude-haiku-5-5", {"type": "disabled"}, None),
        ("claude-sonnet-5-5", {"type": "between_tools"}, None),
        ("claude-opus-5-5", None, "low"),
        ("claude-haiku-4-5", None, None),
    ],
)
def test_each_model_gets_its_cheapest_thinking_setting(model: str, thinking: Any, effort: str | None) -> None:
    request = _request(model)
    assert request.get("thinking") == thinking
    assert request["output_config"].get("effort") == effort


@pytest.mark.parametrize("model", sorted(model_table().models))
def test_no_request_carries_what_current_models_refuse(model: str) -> None:
    """No forced tool, no sampling parameters, no prefill: structured output in output_config."""
    request = _request(model)
    assert not {"tools", "tool_choice", "temperature", "top_p", "top_k"} & request.keys()
    assert request["messages"][-1]["role"] == "user"
    assert request["output_config"]["format"]["type"] == "json_schema"


def test_an_explicit_effort_replaces_the_cheapest_setting_and_is_refused_where_unsupported() -> None:
    request = _request("claude-haiku-5-5", effort="high")
    assert "thinking" not in request
    assert request["output_config"]["effort"] == "high"
    with pytest.raises(EffortNotSupported, match="claude-haiku-4-5"):
        _request("claude-haiku-4-5", effort="low")


def test_bounds_are_dropped_and_every_object_is_closed() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "t",
        "type": "object",
        "properties": {
            "total": {"type": "number", "minimum": 0, "maximum": 10},
            "code": {"type": "string", "minLength": 3, "maxLength": 3, "pattern": "^[A-Z]+$"},
            "lines": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}},
        },
        "required": ["total"],
    }
    sent = api_schema(schema, "t")
    assert sent == {
        "type": "object",
        "properties": {
            "total": {"type": "number"},
            "code": {"type": "string"},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"x": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
        },
        "required": ["total"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "object", "properties": {}, "additionalProperties": True}, "additionalProperties"),
        ({"type": "object", "patternProperties": {"^x": {}}}, "patternProperties"),
        ({"type": "object", "properties": {"a": {"$ref": "https://example.org/s.json"}}}, "not local"),
        (
            {
                "$defs": {"n": {"type": "object", "properties": {"child": {"$ref": "#/$defs/n"}}}},
                "$ref": "#/$defs/n",
            },
            "recursive",
        ),
        ({"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(25)}}, "optional"),
    ],
)
def test_what_cannot_be_expressed_is_refused_naming_it(schema: dict[str, Any], keyword: str) -> None:
    with pytest.raises(SchemaNotExpressible, match=keyword):
        api_schema(schema, "custom")


def test_the_shipped_schemas_fit() -> None:
    schema = load_schema("invoice")
    assert schema is not None
    api_schema(schema.json_schema, "invoice")
