"""What every extractor provides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from consumer.fetch.documents import Document
from schemas.extraction import ExtractionSchema
from schemas.messages import Backend, Usage

# Usage is immutable: one shared "nothing used" instance, not a new model per document.
NO_USAGE = Usage()


@dataclass(frozen=True)
class Extraction:
    """Validated data extracted from one document, and what it took."""

    data: dict[str, Any]
    model: str
    usage: Usage = NO_USAGE
    confidence: float | None = None
    field_confidence: dict[str, float] | None = None
    api_calls: int = 0
    cost_usd: float = 0.0


class Extractor(Protocol):
    """Turns a document into data that matches an extraction schema.

    Raises a ``consumer.fate.errors`` exception on failure; anything else it raises
    is a bug, which the fate table dead-letters as ``UnexpectedError``.
    """

    @property
    def name(self) -> Backend: ...

    async def extract(self, document: Document, schema: ExtractionSchema) -> Extraction: ...

    @property
    def capacity(self) -> int | None:
        """How many records may be in flight at once, if the extractor bounds them (None: it
        does not; the API's limiter paces the Claude backend instead)."""
        ...

    async def close(self) -> None: ...
