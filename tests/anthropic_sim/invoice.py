"""Reading an invoice's labelled fields out of plain text, as the default responder does."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

# A value ends at a run of 2+ spaces or where the next known label starts: PDF text
# extraction often puts several "Label: value" pairs on one line.
_NEXT_LABEL: Final = re.compile(
    r"[ \t]{2,}|[ \t]+(?=(?:invoice|vendor|supplier|seller|date|due|issue|currency|total|"
    r"subtotal|amount|tax|vat|grand|bill|ship|po|order|customer|payment)\b[^:\n]{0,30}:)",
    re.IGNORECASE,
)
_FIELD_PATTERNS: Final[Mapping[str, tuple[re.Pattern[str], ...]]] = {
    "invoice_number": (
        re.compile(
            r"\binvoice[ \t]*(?:(?:number|no\.?|num\.?|id)[ \t]*[:#]|#[ \t]*:?)[ \t]*"
            r"(?P<v>[A-Za-z0-9][\w./-]*)",
            re.IGNORECASE,
        ),
    ),
    "vendor_name": (
        re.compile(
            r"\b(?:vendor|supplier|seller)(?:[ \t]+name)?[ \t]*:[ \t]*(?P<v>[^\n]*)",
            re.IGNORECASE,
        ),
    ),
    "invoice_date": (
        re.compile(
            r"\b(?:invoice[ \t]+date|issue[ \t]+date|date[ \t]+of[ \t]+issue)[ \t]*:[ \t]*"
            r"(?P<v>[^\n]*)",
            re.IGNORECASE,
        ),
        # A bare "Date:" only at line start, so "Due Date:" is not taken for the issue date.
        re.compile(r"^[ \t]*date[ \t]*:[ \t]*(?P<v>[^\n]*)", re.IGNORECASE | re.MULTILINE),
    ),
    "currency": (re.compile(r"\bcurrency[ \t]*:[ \t]*(?P<v>[A-Za-z]{3})\b", re.IGNORECASE),),
    # Most specific label first; "\btotal" does not match inside "Subtotal".
    "total_amount": tuple(
        re.compile(rf"\b{label}[ \t]*(?:\([^)\n]*\))?[ \t]*:[ \t]*(?P<v>[^\n]*)", re.IGNORECASE)
        for label in (
            r"total[ \t]+amount(?:[ \t]+due)?",
            r"amount[ \t]+due",
            r"grand[ \t]+total",
            r"total[ \t]+due",
            r"invoice[ \t]+total",
            r"total",
        )
    ),
}
_CURRENCY_SYMBOLS: Final = {"€": "EUR", "£": "GBP", "$": "USD", "¥": "JPY", "₹": "INR"}
_DATE_FORMATS: Final = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%b %d %Y",
)
_NUMBER_RE: Final = re.compile(r"[-+]?\d[\d,.' \u00a0]*")


def parse_amount(value: str) -> float | None:
    """``"€1.234,50"`` / ``"1,234.50 EUR"`` → 1234.5; None when there is no number."""
    match = _NUMBER_RE.search(value)
    if match is None:
        return None
    num = re.sub(r"[' \u00a0]", "", match.group()).rstrip(".,")
    if "," in num and "." in num:
        # Whichever separator comes last is the decimal point.
        decimal = "," if num.rfind(",") > num.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        num = num.replace(thousands, "").replace(decimal, ".")
    elif "," in num:
        num = num.replace(",", ".") if re.search(r",\d{1,2}$", num) else num.replace(",", "")
    elif num.count(".") > 1:
        num = num.replace(".", "")
    try:
        return float(num)
    except ValueError:
        return None


def _normalise_date(value: str) -> str:
    value = value.strip().rstrip(".")
    for fmt in _DATE_FORMATS:
        with contextlib.suppress(ValueError):
            return dt.datetime.strptime(value, fmt).date().isoformat()
    return value


def _currency_in(value: str) -> str | None:
    code = re.search(r"\b([A-Z]{3})\b", value)
    if code:
        return code.group(1)
    for symbol, iso in _CURRENCY_SYMBOLS.items():
        if symbol in value:
            return iso
    return None


def extract_invoice(text: str) -> dict[str, Any] | None:
    """Labelled invoice fields found in ``text``; None when no field at all is found."""
    found: dict[str, str] = {}
    for field, patterns in _FIELD_PATTERNS.items():
        for pattern in patterns:
            match = pattern.search(text)
            value = _NEXT_LABEL.split(match.group("v"), maxsplit=1)[0].strip() if match else ""
            if value:
                found[field] = value
                break
    if not found:
        return None
    total_text = found.get("total_amount", "")
    total = parse_amount(total_text) if total_text else None
    currency = found.get("currency") or _currency_in(total_text) or "USD"
    return {
        "invoice_number": found.get("invoice_number", "UNKNOWN").rstrip(".,;"),
        "vendor_name": found.get("vendor_name", "UNKNOWN"),
        "invoice_date": _normalise_date(found["invoice_date"]) if "invoice_date" in found else "UNKNOWN",
        "currency": currency.upper(),
        "total_amount": total if total is not None else 0.0,
    }
