"""A zero-cost extractor: finds fields by their labels in text layers and in OCR'd scans.

Plain text and PDF text layers are matched line by line ("Invoice Number: ...",
"Total: ..."); scans and photos are read by Tesseract in worker processes and
their words matched by position (``consumer.extract.layout``). Each field found
has a confidence, and the document the mean over the schema's required fields.
A page with nothing on it to extract is a permanent ``NothingExtracted``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import structlog

from consumer.extract.base import Extraction
from consumer.extract.layout import Found, find_fields
from consumer.extract.ocr.pool import OcrPool
from consumer.extract.ocr.words import ReadDocument
from consumer.extract.values import CURRENCY_SYMBOLS, parse_date, parse_number
from consumer.fate.errors import NothingExtracted, OutputValidationFailed, UnsupportedByBackend
from consumer.fetch.documents import Document
from schemas.extraction import ExtractionSchema
from schemas.messages import Backend

log = structlog.get_logger("docmill.consumer")

# How fast the measured share of documents that need OCR follows the stream (per document),
# and the least share the in-flight bound assumes (so it stays finite).
_OCR_SHARE_SMOOTHING = 0.05
_MIN_OCR_SHARE = 0.01

_LABELS: dict[str, re.Pattern[str]] = {
    "invoice_number": re.compile(
        r"^\s*(?:invoice|receipt|bill)\s*(?:no\.?|number|num|#|id)\s*[:#]?\s*([A-Za-z0-9][\w\-/.]*)",
        re.IGNORECASE | re.MULTILINE,
    ),
    "vendor_name": re.compile(
        r"^\s*(?:vendor|supplier|seller|issued by|from)(?:\s*name)?\s*:\s*(.+?)\s*$",
        re.IGNORECASE | re.MULTILINE,
    ),
    "invoice_date": re.compile(
        r"^\s*(?:invoice\s*date|date\s*of\s*issue|issue\s*date|date)\s*:\s*(.+?)\s*$",
        re.IGNORECASE | re.MULTILINE,
    ),
    "currency": re.compile(r"^\s*currency\s*:\s*([A-Za-z]{3})\b", re.IGNORECASE | re.MULTILINE),
    "total_amount": re.compile(
        r"^\s*(?:grand\s*total|total\s*amount(?:\s*due)?|total\s*due|amount\s*due|balance\s*due|total)"
        r"\s*(?:\([^)]*\))?\s*:?\s*([A-Z]{3}|[$€£¥])?\s*(-?[\d][\d.,' ]*)"
        # European style puts the currency after the amount ("1.234,50 EUR", "12,50 €");
        # only upper-case codes on the same line, so a following word ("100 per month")
        # or the next line is not taken for one.
        r"(?:[ \t]*((?-i:[A-Z]{3})\b|[$€£¥]))?",
        re.IGNORECASE | re.MULTILINE,
    ),
}


def _iso_date(raw: str) -> str:
    """The ISO form of a printed date; the text as printed when it is none of the known forms."""
    return parse_date(raw) or raw.strip()


def find_invoice_fields(text: str) -> dict[str, Any]:
    """The invoice fields whose labels appear in the text."""
    found: dict[str, Any] = {}
    for field_name in ("invoice_number", "vendor_name", "invoice_date", "currency"):
        match = _LABELS[field_name].search(text)
        if match:
            found[field_name] = match.group(1).strip()
    if "invoice_date" in found:
        found["invoice_date"] = _iso_date(found["invoice_date"])
    if "currency" in found:
        found["currency"] = found["currency"].upper()
    # The last "total" line is the grand total; earlier ones are usually sub-totals.
    totals = [m for m in _LABELS["total_amount"].finditer(text) if "sub" not in m.group(0).lower()]
    if totals:
        symbol, amount = totals[-1].group(1) or totals[-1].group(3), parse_number(totals[-1].group(2))
        if amount is not None:
            found["total_amount"] = amount
        if symbol and "currency" not in found:
            found["currency"] = CURRENCY_SYMBOLS.get(symbol, symbol.upper())
    return found


class LocalExtractor:
    """Label-based extraction from text layers and OCR; costs nothing and needs no network.

    Plain text is read here; PDFs and images go to the OCR pool's worker processes, which
    return each page's text layer or, where a page has none, the words Tesseract read on it.
    """

    name = Backend.LOCAL

    def __init__(self, ocr: OcrPool | None = None) -> None:
        self._ocr = ocr
        # The share of recent documents that needed OCR (smoothed; 1 until measured).
        self.ocr_share = 1.0

    @property
    def capacity(self) -> int | None:
        """Records in flight such that the scans among them, at the share of documents that
        need OCR lately, are what the pool can read within the grace period. A record's type
        is known only once it is fetched, so the bound is set by the mix seen so far: a stream
        of scans holds the pool's capacity, a stream of text is not held back by it."""
        if self._ocr is None:
            return None
        return math.ceil(self._ocr.capacity / max(self.ocr_share, _MIN_OCR_SHARE))

    def _saw(self, needed_ocr: bool) -> None:
        self.ocr_share += _OCR_SHARE_SMOOTHING * (float(needed_ocr) - self.ocr_share)

    async def extract(self, document: Document, schema: ExtractionSchema) -> Extraction:
        if schema.name != "invoice":
            raise UnsupportedByBackend(
                f"the local backend only knows the invoice schema, not {schema.name!r}"
            )
        if document.media_type == "text/plain":
            # The hot path of the zero-cost tier: exact text, every field found is certain, so
            # no per-field confidence is built or published.
            self._saw(needed_ocr=False)
            data = find_invoice_fields(document.text or "")
            if not data:
                raise NothingExtracted("none of the invoice's labels is in the text")
            _require(data, schema)
            return Extraction(data=data, model="local", confidence=1.0)
        if self._ocr is None:
            raise UnsupportedByBackend(f"the local backend cannot read {document.media_type} documents here")
        read = await self._ocr.read(document)
        self._saw(needed_ocr=read.ocr_pages > 0)
        if read.pages_skipped:
            log.info("ocr.pages_skipped", pages_read=len(read.pages), pages_skipped=read.pages_skipped)
        found = _from_pages(read)
        if not found:
            raise NothingExtracted(
                "none of the invoice's labels is on the page (blank, unreadable, or not an invoice)"
            )
        return _extraction(found, schema)

    async def close(self) -> None:
        if self._ocr is not None:
            await self._ocr.close()


def _from_text(text: str) -> dict[str, Found]:
    """Fields of a text layer: exact text, so each found field is certain."""
    return {name: Found(value, 1.0) for name, value in find_invoice_fields(text).items()}


def _from_pages(read: ReadDocument) -> dict[str, Found]:
    """Fields of every page read: a text layer's first, then what OCR found on the rest; the
    total from the last page that has one (invoices put it at the end)."""
    text = "\n".join(page.text for page in read.pages if page.text is not None)
    found = _from_text(text) if text.strip() else {}
    for page in read.pages:
        if page.text is not None:
            continue
        for name, field in find_fields(page.words).items():
            if name not in found or (name == "total_amount" and found[name].confidence < 1.0):
                found[name] = field
    return found


def _extraction(found: dict[str, Found], schema: ExtractionSchema) -> Extraction:
    """The data and its confidence: per field, and for the document that of its least certain
    required field (a missing one counts as zero): one wrong field makes a wrong document."""
    required = schema.required_fields
    data = {name: field.value for name, field in found.items()}
    field_confidence = {name: field.confidence for name, field in found.items()}
    confidence = min((field_confidence.get(name, 0.0) for name in required), default=1.0)
    _require(data, schema)
    return Extraction(data=data, model="local", confidence=confidence, field_confidence=field_confidence)


def _require(data: dict[str, Any], schema: ExtractionSchema) -> None:
    """Every required field is there. The fields are typed by construction here, so only
    presence can fail; the full JSON Schema check is kept for model replies, whose types are not."""
    required = schema.required_fields
    missing = [name for name in required if name not in data]
    if missing:
        raise OutputValidationFailed(
            f"local extraction incomplete ({len(required) - len(missing)} of {len(required)} required "
            f"fields found): missing {', '.join(missing)}"
        )
