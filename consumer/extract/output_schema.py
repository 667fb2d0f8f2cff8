"""An extraction schema as the API's structured output accepts it (``output_config.format``).

The API takes a subset of JSON Schema: every object closed with
``additionalProperties: false``, no numeric or length bounds, no recursive or
remote ``$ref``, and a bounded number of optional and union-typed properties.
Bounds are dropped from what is sent and kept for docmill's own validation
of the reply; what cannot be expressed at all is refused, naming the keyword
and where it is, when the replica starts.
"""

from __future__ import annotations

from typing import Any

# Checked by docmill after the reply instead (schemas.extraction validates the full schema).
_DROPPED = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "pattern",
    }
)
# Annotations the API does not need; leaving them out keeps the request (and its tokens) small.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "examples"})
_INEXPRESSIBLE = frozenset(
    {
        "patternProperties",
        "dependentSchemas",
        "dependentRequired",
        "unevaluatedProperties",
        "if",
        "then",
        "else",
        "not",
        "$dynamicRef",
        "contains",
    }
)
MAX_OPTIONAL_PROPERTIES = 24
MAX_UNION_PROPERTIES = 16


class SchemaNotExpressible(ValueError):
    """An extraction schema uses something the API's structured output cannot take."""


def api_schema(json_schema: dict[str, Any], name: str = "schema") -> dict[str, Any]:
    """The schema to send: bounds and annotations dropped, every object closed; or raises."""
    counts = {"optional": 0, "union": 0}
    sent: dict[str, Any] = _convert(json_schema, json_schema, "#", name, counts)
    if counts["optional"] > MAX_OPTIONAL_PROPERTIES:
        raise SchemaNotExpressible(
            f"{name}: {counts['optional']} optional properties; "
            f"the API takes at most {MAX_OPTIONAL_PROPERTIES}"
        )
    if counts["union"] > MAX_UNION_PROPERTIES:
        raise SchemaNotExpressible(
            f"{name}: {counts['union']} union-typed properties; the API takes at most {MAX_UNION_PROPERTIES}"
        )
    return sent


def _convert(node: Any, root: dict[str, Any], path: str, name: str, counts: dict[str, int]) -> Any:
    if isinstance(node, list):
        return [_convert(item, root, f"{path}/{i}", name, counts) for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    for keyword in node.keys() & _INEXPRESSIBLE:
        raise SchemaNotExpressible(f"{name}: {keyword!r} at {path} cannot be expressed in structured output")
    ref = node.get("$ref")
    if ref is not None:
        _check_ref(ref, root, path, name)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key in _ANNOTATIONS:
            continue
        if key in ("properties", "$defs", "definitions"):
            out[key] = {
                prop: _convert(schema, root, f"{path}/{key}/{prop}", name, counts)
                for prop, schema in value.items()
            }
        elif key in ("enum", "const", "required", "default", "description", "format", "type"):
            out[key] = value
        else:
            out[key] = _convert(value, root, f"{path}/{key}", name, counts)
    if _is_object(node):
        extra = node.get("additionalProperties", False)
        if extra is not False:
            raise SchemaNotExpressible(
                f"{name}: additionalProperties at {path} must be false for structured output"
            )
        out["additionalProperties"] = False
        properties = node.get("properties", {})
        required = set(node.get("required", ()))
        counts["optional"] += sum(1 for prop in properties if prop not in required)
        counts["union"] += sum(1 for schema in properties.values() if _is_union(schema))
    return out


def _is_object(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node


def _is_union(schema: Any) -> bool:
    return isinstance(schema, dict) and (isinstance(schema.get("type"), list) or "anyOf" in schema)


def _check_ref(ref: Any, root: dict[str, Any], path: str, name: str) -> None:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        raise SchemaNotExpressible(
            f"{name}: $ref {ref!r} at {path} is not local; only '#/$defs/…' is allowed"
        )
    # A definition that refers to itself (directly) is recursive, which the API refuses.
    if path.startswith(ref + "/") or path == ref:
        raise SchemaNotExpressible(f"{name}: $ref {ref!r} at {path} is recursive")
