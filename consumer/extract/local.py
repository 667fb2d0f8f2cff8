"""A zero-cost extractor for documents with a text layer: finds fields by their labels.

It reads plain text and the text layer of PDFs, looks for labelled values
("Invoice Number: ...", "Total: ...") and reports a confidence: the share of
the schema's required fields it found. Documents without text (images,
scanned PDFs) are a permanent ``UnsupportedByBackend`` failure here; the
``claude`` backend reads those.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from datetime import date, datetime
from typing import Any

from pypdf import PdfReader

from consumer.extract.base import Extraction
from consumer.fate.errors import OutputValidationFailed, UnsupportedByBackend
from consumer.fetch.documents import Document
from schemas.extraction import ExtractionSchema
from schemas.messages import Backend

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
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%B %d, %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%d %b %Y",
)


def _number(raw: str) -> float | None:
    """Parses 1,234.50 / 1.234,50 / 1 234.50 into 1234.5."""
    text = raw.strip().replace(" ", "").replace("'", "").rstrip(".,")
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        text = text.replace(thousands, "").replace(decimal, ".")
    elif "," in text:
        head, _, tail = text.rpartition(",")
        text = f"{head.replace(',', '')}.{tail}" if len(tail) == 2 else text.replace(",", "")
    elif text.count(".") > 1:
        # 1.234.567: several dots can only be thousands separators.
        text = text.replace(".", "")
    try:
        return float(text)
    except ValueError:
        return None


def _iso_date(raw: str) -> str:
    value = raw.strip()
    with contextlib.suppress(ValueError):
        return date.fromisoformat(value).isoformat()  # the common case, without strptime's cost
    for date_format in _DATE_FORMATS:
        try:
            return datetime.strptime(value, date_format).date().isoformat()
        except ValueError:
            continue
    return raw.strip()


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
        symbol, amount = totals[-1].group(1) or totals[-1].group(3), _number(totals[-1].group(2))
        if amount is not None:
            found["total_amount"] = amount
        if symbol and "currency" not in found:
            found["currency"] = _SYMBOLS.get(symbol, symbol.upper())
    return found


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        reader.decrypt("")
    return "\n".join(page.extract_text() or "" for page in reader.pages)


class LocalExtractor:
    """Label-based extraction from text layers; costs nothing and needs no network."""

    name = Backend.LOCAL

    async def extract(self, document: Document, schema: ExtractionSchema) -> Extraction:
        if schema.name != "invoice":
            raise UnsupportedByBackend(
                f"the local backend only knows the invoice schema, not {schema.name!r}"
            )
        if document.media_type == "text/plain":
            text = document.text or ""
        elif document.media_type == "application/pdf":
            text = await asyncio.to_thread(_pdf_text, document.data)
        else:
            raise UnsupportedByBackend(f"the local backend cannot read {document.media_type} documents")
        if not text.strip():
            raise UnsupportedByBackend("the document has no text layer (a scan?); use the claude backend")
        data = find_invoice_fields(text)
        required = schema.required_fields
        # The fields are typed by construction here, so only presence can fail; the
        # full JSON Schema check is kept for model replies, whose types are not.
        missing = [name for name in required if name not in data]
        confidence = 1 - len(missing) / len(required) if required else 1.0
        if missing:
            raise OutputValidationFailed(
                f"local extraction incomplete (confidence {confidence:.2f}): missing {', '.join(missing)}"
            )
        return Extraction(data=data, model="local", confidence=confidence)

    async def close(self) -> None:
        return None
