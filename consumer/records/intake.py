"""Decodes a record's value into a DocumentRef, or a precise permanent error."""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from consumer.fate.errors import (
    InvalidMessage,
    MessageValidationError,
    UnsupportedSchemaVersion,
)
from schemas.messages import SCHEMA_VERSION, DocumentRef
from schemas.validation import validation_problems

# Larger values are refused before parsing: a reference is a few hundred
# bytes, and parsing megabytes of JSON per record would stall the loop.
MAX_VALUE_BYTES = 1024 * 1024


def decode_document_ref(value: bytes | None) -> DocumentRef:
    """Parses and validates one record value."""
    if value is None:
        raise InvalidMessage("record has no value (tombstone)")
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidMessage(f"value is {len(value)} bytes; a reference is at most {MAX_VALUE_BYTES}")
    try:
        payload = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        # orjson rejects invalid UTF-8 with the same error type; say which it was.
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidMessage("value is not UTF-8") from None
        raise InvalidMessage(f"value is not JSON: {error.msg}") from None
    if not isinstance(payload, dict):
        raise InvalidMessage(f"value is JSON {type(payload).__name__}, not an object")
    version = payload.get("schema_version", 1)
    # Pydantic's lax mode would read true as version 1; the published schema says integer.
    if isinstance(version, bool):
        raise MessageValidationError("schema_version: must be an integer, not a boolean")
    # Checked before validation so that a newer message whose fields changed is
    # reported as a newer version, not as a pile of field errors.
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise _newer_version(version)
    try:
        ref = DocumentRef.model_validate(payload)
    except ValidationError as error:
        raise MessageValidationError("; ".join(map(str, validation_problems(error)))) from None
    # Validation coerces "2" and 2.0 to 2: check again what the version really means.
    if ref.schema_version > SCHEMA_VERSION:
        raise _newer_version(ref.schema_version)
    return ref


def _newer_version(version: int) -> UnsupportedSchemaVersion:
    return UnsupportedSchemaVersion(f"schema_version {version} is newer than the supported {SCHEMA_VERSION}")
