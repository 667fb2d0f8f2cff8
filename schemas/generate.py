"""Writes the JSON Schema of each message into schemas/json/ for non-Python producers.

Run ``python -m schemas.generate`` (or ``make schemas``) after changing a model;
a test fails while the committed files are stale.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas.messages import MESSAGE_MODELS, SCHEMA_VERSION

JSON_DIR = Path(__file__).parent / "json"


def render_all() -> dict[str, bytes]:
    """The file name and exact bytes of every generated schema."""
    rendered = {}
    for name, model in MESSAGE_MODELS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:docmill:schema:v{SCHEMA_VERSION}:{name}"
        body = orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        rendered[f"{name}.schema.json"] = body
    return rendered


def main() -> None:
    JSON_DIR.mkdir(exist_ok=True)
    for file_name, body in render_all().items():
        (JSON_DIR / file_name).write_bytes(body)
        print(f"wrote {JSON_DIR / file_name}")


if __name__ == "__main__":
    main()
