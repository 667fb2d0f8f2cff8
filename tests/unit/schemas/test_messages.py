"""Unit tests of schemas/: generated JSON Schema files, DocumentRef round trips, extraction schemas."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schemas.extraction import available_schemas, load_schema
from schemas.generate import JSON_DIR, render_all
from schemas.messages import SCHEMA_VERSION, Backend, DocumentRef, ExtractionResult, SourcePosition, Usage

VALID_INVOICE = {
    "invoice_number": "INV-1",
    "vendor_name": "Acme",
    "invoice_date": "2026-01-15",
    "currency": "EUR",
    "total_amount": 1234.5,
    "line_items": [{"description": "Widgets", "quantity": 10, "unit_price": 123.45, "amount": 1234.5}],
}


def test_generated_json_schemas_are_up_to_date() -> None:
    """schemas/json/ holds exactly what `python -m schemas.generate` writes (run it if this fails)."""
    rendered = render_all()
    on_disk = {path.name for path in JSON_DIR.glob("*.schema.json")}
    assert on_disk == set(rendered), "schemas/json has missing or extra files: run make schemas"
    stale = [name for name, body in rendered.items() if (JSON_DIR / name).read_bytes() != body]
    assert stale == [], f"stale generated schemas {stale}: run `python -m schemas.generate`"


def test_generated_schemas_are_valid_and_versioned() -> None:
    """Each generated file is a valid 2020-12 JSON Schema whose $id names the current version."""
    for name, body in render_all().items():
        schema = orjson.loads(body)
        Draft202012Validator.check_schema(schema)
        assert schema["$id"].endswith(f":v{SCHEMA_VERSION}:{name.removesuffix('.schema.json')}")


def test_document_ref_json_validates_against_generated_schema() -> None:
    """A DocumentRef's JSON passes the generated document_ref schema non-Python producers use."""
    ref = DocumentRef(
        document_id="d-1",
        uri="https://x.example/a.pdf",
        schema="invoice",
        attributes={"k": "v"},
        submitted_at=datetime(2026, 1, 15, tzinfo=UTC),
    )
    schema = orjson.loads(render_all()["document_ref.schema.json"])
    errors = list(Draft202012Validator(schema).iter_errors(orjson.loads(ref.to_json())))
    assert errors == []


def test_document_ref_accepts_schema_alias() -> None:
    """The wire name 'schema' fills extraction_schema; the Python name works too."""
    by_alias = DocumentRef.model_validate({"document_id": "d", "uri": "u", "schema": "receipt"})
    by_name = DocumentRef(document_id="d", uri="u", extraction_schema="receipt")
    assert by_alias.extraction_schema == by_name.extraction_schema == "receipt"


def test_document_ref_round_trips_through_json() -> None:
    """to_json writes 'schema' (not extraction_schema), omits None, and decodes to an equal ref."""
    ref = DocumentRef(
        document_id="d-1",
        uri="file:///data/a.pdf",
        schema="invoice",
        job_id="job-1",
        submitted_at=datetime(2026, 1, 15, 10, 30, tzinfo=UTC),
        attributes={"tenant": "acme"},
    )
    wire = orjson.loads(ref.to_json())
    assert wire["schema"] == "invoice"
    assert "extraction_schema" not in wire
    assert "content_type" not in wire  # None is omitted
    assert wire["schema_version"] == SCHEMA_VERSION
    assert DocumentRef.model_validate_json(ref.to_json()) == ref


def test_document_ref_is_immutable() -> None:
    """A DocumentRef is frozen: fields cannot be reassigned after validation."""
    ref = DocumentRef(document_id="d", uri="u")
    with pytest.raises(ValueError, match="frozen"):
        ref.uri = "other"  # type: ignore[misc]


def test_invoice_schema_is_available() -> None:
    """The built-in 'invoice' extraction schema is listed and loads; unknown names give None."""
    assert "invoice" in available_schemas()
    schema = load_schema("invoice")
    assert schema is not None
    assert schema.required_fields == [
        "invoice_number",
        "vendor_name",
        "invoice_date",
        "currency",
        "total_amount",
    ]
    assert load_schema("no-such-schema") is None


def test_good_invoice_has_no_problems() -> None:
    """Complete invoice data, with or without line items, has no problems."""
    schema = load_schema("invoice")
    assert schema is not None
    assert schema.problems(VALID_INVOICE) == []
    assert schema.problems({k: v for k, v in VALID_INVOICE.items() if k != "line_items"}) == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"total_amount": "1234.50"}, "total_amount"),
        ({"invoice_number": 42}, "invoice_number"),
        ({"unexpected": "x"}, "(root)"),
        ({"line_items": [{"description": "no amount"}]}, "line_items.0"),
        ({"line_items": [{"description": "x", "amount": 1, "sku": "A"}]}, "line_items.0"),
    ],
)
def test_bad_invoice_problems_name_the_field(change: dict[str, object], where: str) -> None:
    """Wrong types, unknown fields and bad line items are reported with their location."""
    schema = load_schema("invoice")
    assert schema is not None
    problems = schema.problems({**VALID_INVOICE, **change})
    assert problems
    assert any(problem.startswith(f"{where}: ") for problem in problems), problems


def test_missing_required_fields_are_each_reported() -> None:
    """Every missing required field appears in the problems."""
    schema = load_schema("invoice")
    assert schema is not None
    problems = schema.problems({"invoice_number": "INV-1"})
    for name in ("vendor_name", "invoice_date", "currency", "total_amount"):
        assert any(name in problem for problem in problems), (name, problems)


def test_non_object_data_is_a_problem() -> None:
    """Data that is not an object (a list) is reported, not crashed on."""
    schema = load_schema("invoice")
    assert schema is not None
    assert schema.problems(["not", "an", "object"])


@given(
    text=st.text(max_size=40),
    number=st.floats(allow_nan=False, allow_infinity=False),
    count=st.integers(min_value=-(2**53), max_value=2**53),
    flag=st.booleans(),
)
def test_messages_are_written_byte_for_byte_as_orjson_writes_them(
    text: str, number: float, count: int, flag: bool
) -> None:
    """to_json's compact output equals orjson's rendering of the same dump, for any text and numbers:
    the wire format readers see is the one it always was."""
    result = ExtractionResult(
        document_id="d-1",
        job_id=text or None,
        uri=f"file:///data/{text}.pdf",
        extraction_schema="invoice",
        data={"vendor_name": text, "total_amount": number, "count": count, "paid": flag, "missing": None},
        backend=Backend.CLAUDE,
        model="claude-x",
        confidence=None,
        usage=Usage(input_tokens=abs(count) % 10_000),
        cost_usd=abs(number),
        latency_seconds=0.5,
        source=SourcePosition(topic="t", partition=1, offset=abs(count), timestamp_ms=None),
    )
    assert result.to_json() == orjson.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert ExtractionResult.model_validate_json(result.to_json()) == result
