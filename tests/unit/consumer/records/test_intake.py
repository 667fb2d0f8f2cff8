"""Unit tests of consumer.intake.decode_document_ref: every bad value gets a precise permanent error."""

from __future__ import annotations

import orjson
import pytest

from consumer.fate.errors import (
    InvalidMessage,
    MessageValidationError,
    PermanentError,
    UnsupportedSchemaVersion,
)
from consumer.records.intake import MAX_VALUE_BYTES, decode_document_ref


def _value(**fields: object) -> bytes:
    base: dict[str, object] = {"document_id": "doc-1", "uri": "file:///data/a.pdf"}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_valid_reference_is_decoded() -> None:
    """A complete, valid value decodes into a DocumentRef carrying every field."""
    value = _value(
        schema="invoice",
        content_type="application/pdf",
        job_id="job-7",
        submitted_at="2026-01-15T10:00:00Z",
        attributes={"tenant": "acme"},
    )
    ref = decode_document_ref(value)
    assert ref.document_id == "doc-1"
    assert ref.uri == "file:///data/a.pdf"
    assert ref.extraction_schema == "invoice"
    assert ref.content_type == "application/pdf"
    assert ref.job_id == "job-7"
    assert ref.submitted_at is not None
    assert ref.submitted_at.year == 2026
    assert ref.attributes == {"tenant": "acme"}
    assert ref.schema_version == 1


def test_minimal_reference_gets_defaults() -> None:
    """Only document_id and uri are needed; schema defaults to invoice and version to 1."""
    ref = decode_document_ref(_value())
    assert ref.extraction_schema == "invoice"
    assert ref.schema_version == 1
    assert ref.attributes == {}


def test_not_utf8_is_invalid_message() -> None:
    """Bytes that are not UTF-8 are an InvalidMessage that says so."""
    with pytest.raises(InvalidMessage, match="not UTF-8"):
        decode_document_ref(b'{"document_id": "\xff\xfe", "uri": "x"}')


def test_not_json_is_invalid_message() -> None:
    """UTF-8 text that is not JSON is an InvalidMessage that says it is not JSON."""
    with pytest.raises(InvalidMessage, match="not JSON"):
        decode_document_ref(b"document_id=doc-1")


@pytest.mark.parametrize(
    ("value", "kind"),
    [(b"[1, 2, 3]", "list"), (b"42", "int"), (b'"a string"', "str"), (b"null", "NoneType")],
)
def test_json_that_is_not_an_object_is_invalid_message(value: bytes, kind: str) -> None:
    """JSON arrays, numbers, strings and null are refused as InvalidMessage naming the JSON type."""
    with pytest.raises(InvalidMessage, match=kind):
        decode_document_ref(value)


@pytest.mark.parametrize("missing", ["document_id", "uri"])
def test_missing_required_field_is_validation_error(missing: str) -> None:
    """A value without document_id or uri is a MessageValidationError naming the field."""
    with pytest.raises(MessageValidationError, match=missing):
        decode_document_ref(_value(**{missing: ...}))


def test_document_id_of_wrong_type_is_validation_error() -> None:
    """An integer document_id is refused (no silent coercion to a string)."""
    with pytest.raises(MessageValidationError, match="document_id"):
        decode_document_ref(_value(document_id=12345))


def test_empty_document_id_is_validation_error() -> None:
    """An empty document_id is refused: it cannot key a result."""
    with pytest.raises(MessageValidationError, match="document_id"):
        decode_document_ref(_value(document_id=""))


def test_attributes_with_non_string_values_is_validation_error() -> None:
    """Attributes must map strings to strings; a number value is refused naming the key."""
    with pytest.raises(MessageValidationError, match=r"attributes\.pages"):
        decode_document_ref(_value(attributes={"pages": 3}))


def test_attributes_that_are_not_an_object_is_validation_error() -> None:
    """An attributes list instead of an object is a MessageValidationError."""
    with pytest.raises(MessageValidationError, match="attributes"):
        decode_document_ref(_value(attributes=["a", "b"]))


def test_bad_extraction_schema_name_is_validation_error() -> None:
    """A schema name outside the allowed pattern (e.g. a path) is refused."""
    with pytest.raises(MessageValidationError, match="schema"):
        decode_document_ref(_value(schema="../etc/passwd"))


def test_newer_schema_version_is_unsupported() -> None:
    """schema_version 2 is dead-lettered as UnsupportedSchemaVersion, never guessed at."""
    with pytest.raises(UnsupportedSchemaVersion, match="2"):
        decode_document_ref(_value(schema_version=2))


def test_newer_schema_version_wins_over_field_problems() -> None:
    """A v2 value whose fields v1 would reject is still reported as an unsupported version."""
    with pytest.raises(UnsupportedSchemaVersion):
        decode_document_ref(orjson.dumps({"schema_version": 2, "ref": {"id": 1}}))


@pytest.mark.parametrize("version", ["2", 2.0])
def test_newer_schema_version_in_another_json_type_is_unsupported(version: object) -> None:
    """A newer version written as a string or float is still refused as UnsupportedSchemaVersion."""
    with pytest.raises(UnsupportedSchemaVersion):
        decode_document_ref(_value(schema_version=version))


def test_boolean_schema_version_is_validation_error() -> None:
    """schema_version true is not read as version 1: it is a MessageValidationError."""
    with pytest.raises(MessageValidationError, match="schema_version"):
        decode_document_ref(_value(schema_version=True))


@pytest.mark.parametrize("version", [0, -1])
def test_schema_version_below_one_is_validation_error(version: int) -> None:
    """Versions start at 1; zero and negatives are MessageValidationError."""
    with pytest.raises(MessageValidationError, match="schema_version"):
        decode_document_ref(_value(schema_version=version))


def test_current_schema_version_is_accepted() -> None:
    """An explicit schema_version 1 decodes normally."""
    assert decode_document_ref(_value(schema_version=1)).schema_version == 1


def test_unknown_extra_fields_are_ignored() -> None:
    """Fields a newer producer adds are accepted and dropped, not an error."""
    ref = decode_document_ref(_value(priority="high", nested={"a": [1, 2]}))
    assert ref.document_id == "doc-1"
    assert "priority" not in ref.model_dump()
    assert b"priority" not in ref.to_json()


def test_value_over_one_megabyte_is_invalid_message() -> None:
    """A value over 1 MB is refused before parsing, as InvalidMessage naming its size."""
    padding = "x" * MAX_VALUE_BYTES
    value = _value(attributes={"pad": padding})
    assert len(value) > MAX_VALUE_BYTES
    with pytest.raises(InvalidMessage, match=str(len(value))):
        decode_document_ref(value)


def test_value_just_under_one_megabyte_is_parsed() -> None:
    """The size limit is on bytes: a valid value just under 1 MB still decodes."""
    overhead = len(_value(attributes={"pad": ""}))
    value = _value(attributes={"pad": "x" * (MAX_VALUE_BYTES - overhead)})
    assert len(value) == MAX_VALUE_BYTES
    assert len(decode_document_ref(value).attributes["pad"]) == MAX_VALUE_BYTES - overhead


def test_none_value_is_invalid_message() -> None:
    """A tombstone (no value) is an InvalidMessage, not an AttributeError."""
    with pytest.raises(InvalidMessage, match="tombstone"):
        decode_document_ref(None)


def test_empty_value_is_invalid_message() -> None:
    """Zero bytes are an InvalidMessage (not JSON)."""
    with pytest.raises(InvalidMessage):
        decode_document_ref(b"")


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        _value()[:-1] + b', "attributes": {"k": ' + b"[" * 500 + b"]" * 500 + b"}}",
    ],
    ids=["100k-nested-lists", "100k-nested-objects", "deep-attribute"],
)
def test_deeply_nested_json_is_classified_never_recursion_error(value: bytes) -> None:
    """Pathologically nested JSON yields a permanent classified error, never RecursionError."""
    with pytest.raises(PermanentError) as caught:
        decode_document_ref(value)
    assert isinstance(caught.value, InvalidMessage | MessageValidationError)
