"""The messages docmill puts on Kafka: versioned, compact UTF-8 JSON (read with orjson).

Readers accept unknown *fields* (a newer producer may add optional ones) and
ignore them, but refuse an unknown *newer* ``schema_version``: a new version
may change what existing fields mean, so guessing is worse than a clear error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

DocumentId = Annotated[str, StringConstraints(min_length=1, max_length=512)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, absent optional fields left out, written by pydantic's own serializer."""
        return self.__pydantic_serializer__.to_json(self, by_alias=True, exclude_none=True)


class DocumentRef(_Message):
    """A reference to one document to extract: the value on the documents topic."""

    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)
    document_id: DocumentId
    uri: Annotated[str, StringConstraints(min_length=1, max_length=8192)]
    content_type: str | None = None
    extraction_schema: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = Field(
        default="invoice", alias="schema"
    )
    job_id: str | None = None
    submitted_at: datetime | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class Backend(StrEnum):
    """What extracted a document."""

    CLAUDE = "claude"
    LOCAL = "local"


class Usage(BaseModel):
    """Tokens one extraction used, as the API reports them (all zero for `local`)."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    # The part of output_tokens spent thinking (billed as output, already in output_tokens).
    thinking_tokens: int = 0


class SourcePosition(BaseModel):
    """Where a record came from, so any result or letter can be traced to its input."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


class ExtractionResult(_Message):
    """The structured data extracted from one document: the value on the results topic."""

    schema_version: int = SCHEMA_VERSION
    document_id: DocumentId
    job_id: str | None = None
    uri: str
    extraction_schema: str = Field(alias="schema")
    data: dict[str, Any]
    backend: Backend
    model: str
    confidence: float | None = None
    # Per field, where the backend knows one (the local backend's OCR: how sure it is of each).
    field_confidence: dict[str, float] | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    attempts: int = 1
    latency_seconds: float
    extracted_at: datetime = Field(default_factory=utc_now)
    source: SourcePosition


class DeadLetter(_Message):
    """A record that could not be processed, with everything needed to understand and replay it.

    ``original_value`` is the record's value verbatim: UTF-8 text when it
    decodes, otherwise base64 (``original_encoding`` says which). A value too
    large for the dead-letter topic keeps only its beginning
    (``original_truncated``); its size and SHA-256 still identify it.
    """

    schema_version: int = SCHEMA_VERSION
    document_id: str | None = None
    job_id: str | None = None
    original_value: str | None
    original_encoding: Literal["utf-8", "base64"] = "utf-8"
    original_size: int | None = None
    original_sha256: str | None = None
    original_truncated: bool = False
    original_key: str | None = None
    error_class: str
    error_message: str
    # A finer reason where the failure has one, e.g. a refusal's category.
    error_category: str | None = None
    retryable: bool
    attempts: int
    first_failure_at: datetime
    last_failure_at: datetime
    consumer_id: str
    source: SourcePosition


class JobRecord(_Message):
    """A batch run: how many documents it published and where they landed (the jobs topic).

    ``offsets`` maps each partition of ``topic`` to the inclusive offset ranges
    its documents got, so progress can be computed exactly from the group's
    committed offsets.
    """

    schema_version: int = SCHEMA_VERSION
    job_id: str
    topic: str
    documents: int
    offsets: dict[int, list[tuple[int, int]]]
    started_at: datetime
    published_at: datetime


MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    "document_ref": DocumentRef,
    "extraction_result": ExtractionResult,
    "dead_letter": DeadLetter,
    "job_record": JobRecord,
}
