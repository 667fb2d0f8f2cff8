"""Reading the values documents print: amounts in their local styles, dates, currency marks."""

from __future__ import annotations

import contextlib
from datetime import date, datetime

CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%B %d, %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%d %b %Y",
    "%B %d %Y",
    "%b %d %Y",
)


def parse_number(raw: str) -> float | None:
    """Parses 1,234.50 / 1.234,50 / 1 234.50 into 1234.5; None when it is not a number."""
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


def parse_date(raw: str) -> str | None:
    """An ISO date (YYYY-MM-DD) from the usual printed forms; None when it is none of them."""
    value = raw.strip()
    with contextlib.suppress(ValueError):
        return date.fromisoformat(value).isoformat()  # the common case, without strptime's cost
    for date_format in DATE_FORMATS:
        try:
            return datetime.strptime(value, date_format).date().isoformat()
        except ValueError:
            continue
    return None
