"""Extraction schemas: the JSON Schema files in schemas/extraction/, loaded by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

EXTRACTION_DIR = Path(__file__).parent / "extraction"


@dataclass(frozen=True)
class ExtractionSchema:
    """One extraction schema: its name, JSON Schema and a compiled validator."""

    name: str
    json_schema: dict[str, Any]
    _validator: Draft202012Validator = field(repr=False, compare=False)

    @property
    def required_fields(self) -> list[str]:
        return list(self.json_schema.get("required", []))

    def problems(self, data: Any) -> list[str]:
        """Every way ``data`` fails the schema, as short readable lines (empty when valid)."""
        return [
            f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in sorted(self._validator.iter_errors(data), key=lambda e: list(e.path))
        ]


def available_schemas() -> list[str]:
    return sorted(p.stem for p in EXTRACTION_DIR.glob("*.json"))


@cache
def load_schema(name: str) -> ExtractionSchema | None:
    """The named schema, or None when there is no such file."""
    if name not in available_schemas():
        return None
    json_schema = orjson.loads((EXTRACTION_DIR / f"{name}.json").read_bytes())
    Draft202012Validator.check_schema(json_schema)
    return ExtractionSchema(name, json_schema, Draft202012Validator(json_schema))
