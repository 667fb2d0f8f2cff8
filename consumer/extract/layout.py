"""Finds labelled fields among OCR'd words by where they are on the page.

On a scan there are no lines of text to match, only words with boxes, and OCR garbles a
letter here and there ("Totat", "Vendor." for "Vendor:"). So a label is matched word by word,
allowing a little misspelling, and its value is what stands to its right on the same row, or
just below it when nothing does (a label above its value, as forms print them).

Each field found carries a confidence: the mean OCR confidence of its value's words times how
well its label matched. A field whose label is not on the page is absent: nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from consumer.extract.ocr.words import Word
from consumer.extract.values import CURRENCY_SYMBOLS, parse_date, parse_number

# The forms labels take on real invoices and receipts, most specific first. A label's value
# is typed by its field (see _VALUE_READERS).
LABELS: dict[str, tuple[str, ...]] = {
    "invoice_number": (
        "invoice number",
        "invoice no",
        "invoice #",
        "invoice num",
        "invoice id",
        "inv no",
        "inv #",
        "bill number",
        "bill no",
        "bill #",
        "receipt number",
        "receipt no",
        "receipt #",
        "document number",
        "document no",
        "receipt",
    ),
    "vendor_name": (
        "vendor name",
        "vendor",
        "supplier",
        "seller",
        "merchant",
        "issued by",
        "sold by",
        "billed by",
        "from",
    ),
    "invoice_date": (
        "invoice date",
        "date of issue",
        "issue date",
        "date issued",
        "issued on",
        "receipt date",
        "bill date",
        "date",
    ),
    "currency": ("currency",),
    "total_amount": (
        "grand total",
        "total amount due",
        "total due",
        "amount due",
        "amount payable",
        "balance due",
        "total amount",
        "total to pay",
        "amount to pay",
        "total payable",
        "total",
    ),
}
# A label word preceded by one of these is another field's label ("Due date", "Sub total").
_NOT_AFTER: dict[str, frozenset[str]] = {
    "invoice_date": frozenset(
        {"due", "delivery", "ship", "shipping", "order", "payment", "expiry", "service"}
    ),
    "total_amount": frozenset({"sub"}),
}
# Misspellings OCR makes that a label still matches (SequenceMatcher ratio), for words this long.
_FUZZY_RATIO = 0.8
_FUZZY_MIN_LENGTH = 4
# Values on the row further right than this many row heights belong to another column.
_MAX_GAP_HEIGHTS = 4.0
# A value below its label starts within this many row heights of the label's bottom.
_BELOW_HEIGHTS = 2.2
# Words closer than this many row heights are one word that OCR split.
_GLUED_HEIGHTS = 0.5
_PUNCTUATION = ":.;,|[]()"
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_AMOUNT = re.compile(r"-?\d[\d.,' ]*")
_CENTS = re.compile(r"\d[.,]\d{2}\b")
# Words OCR reads in specks and smudges: short and unsure.
_SPECK_CONFIDENCE = 0.3
_SPECK_LENGTH = 2


@dataclass(frozen=True, slots=True)
class Found:
    value: Any
    confidence: float


@dataclass(frozen=True, slots=True)
class _Token:
    """A word as labels are matched against it: lower-case, without punctuation around it."""

    norm: str
    word: Word


@dataclass(frozen=True, slots=True)
class _LabelMatch:
    field: str
    row: int
    end: int  # index in the row of the first token after the label
    score: float
    tokens: tuple[_Token, ...]
    priority: int  # the label's place in LABELS[field]: lower is more specific

    @property
    def left(self) -> int:
        return self.tokens[0].word.left

    @property
    def right(self) -> int:
        return self.tokens[-1].word.right

    @property
    def bottom(self) -> int:
        return max(token.word.bottom for token in self.tokens)

    @property
    def height(self) -> int:
        return max(1, *(token.word.height for token in self.tokens))


def rows_of(words: Iterable[Word]) -> list[list[Word]]:
    """Words grouped into visual rows (top to bottom), each row left to right.

    By geometry, not by the OCR's own line numbers: a table's label and its value far to the
    right are often separate "blocks" to Tesseract, yet on one row to a reader.
    """
    rows: list[list[Word]] = []
    bands: list[tuple[float, float]] = []
    for word in sorted(words, key=lambda w: (w.top + w.bottom) / 2):
        centre = (word.top + word.bottom) / 2
        if bands and bands[-1][0] <= centre <= bands[-1][1]:
            rows[-1].append(word)
            top, bottom = bands[-1]
            bands[-1] = (min(top, word.top), max(bottom, word.bottom))
        else:
            rows.append([word])
            bands.append((word.top, word.bottom))
    return [sorted(row, key=lambda w: w.left) for row in rows]


def _tokens(row: Sequence[Word]) -> list[_Token]:
    tokens = []
    for word in row:
        text = word.text.lower()
        # "Invoice#123" and "No.:" hold a label's "#" or "no" glued to its neighbours.
        for part in re.split(r"(#)", text):
            norm = part.strip(_PUNCTUATION)
            if norm:
                tokens.append(_Token(norm, word))
    return tokens


def _similarity(label_word: str, token: str) -> float:
    if label_word == token:
        return 1.0
    if len(label_word) < _FUZZY_MIN_LENGTH or abs(len(label_word) - len(token)) > 1:
        return 0.0
    ratio = SequenceMatcher(None, label_word, token).ratio()
    return ratio if ratio >= _FUZZY_RATIO else 0.0


def _starts_phrase(row: Sequence[_Token], start: int, forbidden: frozenset[str]) -> bool:
    """Whether a label may start at ``start``: at the row's beginning or a column's, not in
    the middle of a phrase ("Acme Supplies GmbH" holds no "Supplier" label)."""
    if start == 0:
        return True
    before, token = row[start - 1], row[start]
    if before.norm in forbidden:
        return False
    return before.word.text.endswith(":") or (
        token.word.left - before.word.right > _MAX_GAP_HEIGHTS * max(1, token.word.height)
    )


def _match_labels(rows: Sequence[Sequence[_Token]]) -> list[_LabelMatch]:
    matches: list[_LabelMatch] = []
    for field, labels in LABELS.items():
        forbidden = _NOT_AFTER.get(field, frozenset())
        for row_index, row in enumerate(rows):
            taken_until = -1  # a word is part of one label of a field at most
            for start in range(len(row)):
                if start < taken_until or not _starts_phrase(row, start, forbidden):
                    continue
                best: _LabelMatch | None = None
                for priority, label in enumerate(labels):
                    parts = label.split()
                    if start + len(parts) > len(row):
                        continue
                    scores = [_similarity(part, row[start + i].norm) for i, part in enumerate(parts)]
                    if min(scores) == 0.0:
                        continue
                    score = sum(scores) / len(scores)
                    candidate = _LabelMatch(
                        field,
                        row_index,
                        start + len(parts),
                        score,
                        tuple(row[start : start + len(parts)]),
                        priority,
                    )
                    if best is None or (candidate.score, -candidate.priority) > (best.score, -best.priority):
                        best = candidate
                if best is not None:
                    matches.append(best)
                    taken_until = best.end
    return matches


def _runs_right(
    match: _LabelMatch, row: Sequence[_Token], label_starts: set[tuple[int, int]]
) -> list[list[_Token]]:
    """The runs of tokens after the label on its row, split where a gap starts another column,
    however far right the first starts (forms and receipts print values in a column of their
    own), and ending where another label starts."""
    runs: list[list[_Token]] = []
    previous_right = match.right
    for index in range(match.end, len(row)):
        token = row[index]
        if (match.row, index) in label_starts:
            break
        if not runs and token.norm in ("#", "no", "number"):
            continue  # the label's own tail ("Invoice # :", "No.")
        if not runs or token.word.left - previous_right > _MAX_GAP_HEIGHTS * match.height:
            runs.append([token])
        else:
            runs[-1].append(token)
        previous_right = token.word.right
    return runs


def _value_below(
    match: _LabelMatch, rows: Sequence[Sequence[_Token]], label_starts: set[tuple[int, int]]
) -> list[_Token]:
    """The run of tokens just below the label, starting under it (unless another label is there)."""
    for row_index in range(match.row + 1, min(len(rows), match.row + 3)):
        row = rows[row_index]
        if not row:
            continue
        top = min(token.word.top for token in row)
        if top - match.bottom > _BELOW_HEIGHTS * match.height:
            return []
        under = [token for token in row if token.word.right >= match.left and token.word.left <= match.right]
        if not under:
            continue
        start = row.index(under[0])
        if (row_index, start) in label_starts:
            return []
        value = [row[start]]
        for token in row[start + 1 :]:
            if token.word.left - value[-1].word.right > _MAX_GAP_HEIGHTS * match.height:
                break
            value.append(token)
        return value
    return []


def _mean_confidence(tokens: Sequence[_Token]) -> float:
    words = {id(token.word): token.word for token in tokens}.values()
    return sum(word.confidence for word in words) / len(words)


def _read_number(tokens: Sequence[_Token]) -> tuple[Any, list[_Token]] | None:
    """The first group of touching words with a digit in it: OCR splits "INV-2026-0042" in
    monospaced print into "INV" and "-2026-0042", a few pixels apart."""
    groups: list[list[_Token]] = []
    for token in tokens:
        if groups and token.word.left - groups[-1][-1].word.right < _GLUED_HEIGHTS * token.word.height:
            groups[-1].append(token)
        else:
            groups.append([token])
    for group in groups:
        text = "".join(token.word.text for token in group).strip(_PUNCTUATION + "#:")
        if any(char.isdigit() for char in text):
            return text, group
    return None


def _read_text(tokens: Sequence[_Token]) -> tuple[Any, list[_Token]] | None:
    words = [token.word.text for token in tokens]
    text = " ".join(words).strip(" " + _PUNCTUATION)
    if not any(char.isalpha() for char in text):
        return None
    return text, list(tokens)


def _read_date(tokens: Sequence[_Token]) -> tuple[Any, list[_Token]] | None:
    # A date is one to three words ("2026-03-31", "31 March 2026", "March 31, 2026").
    for length in (3, 2, 1):
        for start in range(0, max(0, len(tokens) - length) + 1):
            part = tokens[start : start + length]
            if len(part) < length:
                continue
            parsed = parse_date(" ".join(token.word.text for token in part).strip(_PUNCTUATION))
            if parsed is not None:
                return parsed, list(part)
    return None


def _read_currency(tokens: Sequence[_Token]) -> tuple[Any, list[_Token]] | None:
    for token in tokens:
        text = token.word.text.strip(_PUNCTUATION)
        if _CURRENCY_CODE.fullmatch(text):
            return text, [token]
        if text in CURRENCY_SYMBOLS:
            return CURRENCY_SYMBOLS[text], [token]
    return None


def _read_amount(tokens: list[_Token]) -> tuple[Any, list[_Token]] | None:
    """An amount and, as its second value, the currency printed beside it (or None). An amount
    with cents ("37.50") is preferred over a bare number, which may be a speck read as "4"."""
    with_cents = [index for index, token in enumerate(tokens) if _CENTS.search(token.word.text)]
    order = with_cents + [index for index in range(len(tokens)) if index not in with_cents]
    for index in order:
        token = tokens[index]
        text = token.word.text.strip("|[]():;")
        symbol = next((s for s in CURRENCY_SYMBOLS if text.startswith(s) or text.endswith(s)), None)
        digits = text.strip("".join(CURRENCY_SYMBOLS))
        match = _AMOUNT.fullmatch(digits)
        if match is None:
            continue
        amount = parse_number(digits)
        if amount is None:
            continue
        currency = CURRENCY_SYMBOLS[symbol] if symbol else None
        used = [token]
        for neighbour in tokens[max(0, index - 1) : index] + tokens[index + 1 : index + 2]:
            if currency is None:
                code = neighbour.word.text.strip(_PUNCTUATION)
                if _CURRENCY_CODE.fullmatch(code):
                    currency = code
                elif code in CURRENCY_SYMBOLS:
                    currency = CURRENCY_SYMBOLS[code]
        return (amount, currency), used
    return None


_VALUE_READERS = {
    "invoice_number": _read_number,
    "vendor_name": _read_text,
    "invoice_date": _read_date,
    "currency": _read_currency,
    "total_amount": _read_amount,
}


def _speck(word: Word) -> bool:
    return word.confidence < _SPECK_CONFIDENCE and len(word.text) <= _SPECK_LENGTH


def find_fields(words: Iterable[Word], fields: Iterable[str] = tuple(LABELS)) -> dict[str, Found]:
    """The ``fields`` whose labels are on the page, each with the value read beside or below it."""
    rows = [_tokens(row) for row in rows_of(word for word in words if not _speck(word))]
    wanted = set(fields)
    candidates: dict[str, list[tuple[_LabelMatch, Any, float]]] = {}
    matches = _match_labels(rows)
    label_starts = {(match.row, match.end - len(match.tokens)) for match in matches}
    for match in matches:
        if match.field not in wanted:
            continue
        reader = _VALUE_READERS[match.field]
        read = None
        # The first run to the right that reads as the field's value (a speck OCR read as a
        # word may stand before it), else the value below the label.
        for value_tokens in (
            *_runs_right(match, rows[match.row], label_starts),
            _value_below(match, rows, label_starts),
        ):
            if value_tokens:
                read = reader(value_tokens)
                if read is not None:
                    break
        if read is None:
            continue
        value, used = read
        confidence = _mean_confidence(used) * match.score
        candidates.setdefault(match.field, []).append((match, value, confidence))
    found: dict[str, Found] = {}
    for field, options in candidates.items():
        if field == "total_amount":
            # The most specific label wins; among equals the lowest on the page (a last
            # "Total" after the sub-totals is the grand total).
            match, value, confidence = min(options, key=lambda o: (o[0].priority, -o[0].row))
        else:
            match, value, confidence = min(options, key=lambda o: (o[0].priority, o[0].row))
        found[field] = Found(value, round(confidence, 4))
    total = found.get("total_amount")
    if total is not None:
        amount, currency = total.value
        found["total_amount"] = Found(amount, total.confidence)
        if currency is not None and "currency" in wanted and "currency" not in found:
            found["currency"] = Found(currency, total.confidence)
    return found
