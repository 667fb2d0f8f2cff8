"""Unit tests of consumer.extract.layout: fields found among OCR words by their positions."""

from __future__ import annotations

import pytest

from consumer.extract.layout import find_fields, rows_of
from consumer.extract.ocr.words import Word

HEIGHT = 20
CHAR = 11  # px per character of the made-up font


def line(y: int, *parts: tuple[int, str], confidence: float = 0.9) -> list[Word]:
    """Words at row ``y``: each part is (x, "space separated words")."""
    words = []
    for x, text in parts:
        left = x
        for word in text.split():
            right = left + CHAR * len(word)
            words.append(Word(word, confidence, left, y, right, y + HEIGHT, y))
            left = right + CHAR
    return words


def page(*rows: list[Word]) -> list[Word]:
    return [word for row in rows for word in row]


def values(words: list[Word]) -> dict[str, object]:
    return {name: found.value for name, found in find_fields(words).items()}


def test_a_value_to_the_right_of_its_label_in_a_column_of_its_own() -> None:
    words = page(
        line(0, (0, "ACME SUPPLIES")),
        line(40, (0, "Invoice No."), (400, "INV-2026-0042")),
        line(80, (0, "Vendor:"), (400, "Acme Supplies GmbH")),
        line(120, (0, "Date of issue:"), (400, "15/01/2026")),
        line(160, (0, "Subtotal"), (400, "1,000.00")),
        line(200, (0, "Amount payable"), (400, "EUR 1,234.50")),
    )
    assert values(words) == {
        "invoice_number": "INV-2026-0042",
        "vendor_name": "Acme Supplies GmbH",  # "Supplies" inside the name is no "Supplier" label
        "invoice_date": "2026-01-15",
        "total_amount": 1234.5,
        "currency": "EUR",
    }


def test_a_value_below_its_label_as_forms_print_them() -> None:
    words = page(
        line(0, (0, "Bill number"), (300, "Issue date")),
        line(30, (0, "B/77-1"), (300, "March 3, 2026")),
        line(80, (0, "Supplier")),
        line(110, (0, "Northwind Traders")),
    )
    assert values(words) == {
        "invoice_number": "B/77-1",
        "invoice_date": "2026-03-03",
        "vendor_name": "Northwind Traders",
    }


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Invoice #", "A-17"),
        ("Invoice#", "A-17"),
        ("Invoice Number:", "A-17"),
        ("Invoce Number", "A-17"),  # OCR dropped a letter
        ("Receipt No.", "A-17"),
        ("Receipt", "A-17"),
    ],
)
def test_invoice_number_labels_in_their_usual_forms(label: str, expected: str) -> None:
    assert values(line(0, (0, label), (300, "A-17")))["invoice_number"] == expected


@pytest.mark.parametrize(
    "label", ["Total", "Totat", "Grand total", "Total due", "Amount payable", "Balance due", "Total:"]
)
def test_total_labels_in_their_usual_forms(label: str) -> None:
    assert values(line(0, (0, label), (300, "$37.50")))["total_amount"] == 37.5


def test_the_grand_total_wins_over_subtotals_and_a_lower_specific_label_over_a_plain_total() -> None:
    words = page(
        line(0, (0, "Subtotal"), (300, "30.00")),
        line(30, (0, "Sub total"), (300, "31.00")),
        line(60, (0, "Total"), (300, "36.00")),
        line(90, (0, "Amount due"), (300, "37.50")),
    )
    assert values(words)["total_amount"] == 37.5
    assert (
        values(page(line(0, (0, "Subtotal"), (300, "30.00")), line(30, (0, "Total"), (300, "36.00"))))[
            "total_amount"
        ]
        == 36.0
    )


def test_a_due_date_is_not_the_invoice_date() -> None:
    words = page(line(0, (0, "Due date:"), (300, "2026-04-30")), line(30, (0, "Date:"), (300, "2026-03-31")))
    assert values(words)["invoice_date"] == "2026-03-31"
    assert "invoice_date" not in values(line(0, (0, "Due date:"), (300, "2026-04-30")))


def test_a_value_in_the_next_column_belongs_to_the_next_label() -> None:
    """ "Invoice No: 123      Date: 2026-03-31": the number stops at the gap; the date is its own."""
    words = line(0, (0, "Invoice No: 123"), (500, "Date: 2026-03-31"))
    assert values(words) == {"invoice_number": "123", "invoice_date": "2026-03-31"}


def test_a_label_with_no_value_is_absent_not_guessed() -> None:
    words = page(line(0, (0, "Vendor:")), line(200, (0, "Thank you for your visit")))
    assert values(words) == {}
    assert values(line(0, (0, "Total"), (300, "n/a"))) == {}


def test_confidence_is_the_value_words_ocr_confidence_times_the_label_match() -> None:
    exact = find_fields(line(0, (0, "Total"), (300, "12.00"), confidence=0.8))["total_amount"]
    misspelt = find_fields(line(0, (0, "Totat"), (300, "12.00"), confidence=0.8))["total_amount"]
    assert exact.confidence == pytest.approx(0.8)
    assert misspelt.confidence == pytest.approx(0.8 * 0.8)


def test_split_words_of_a_monospaced_number_are_joined() -> None:
    """OCR reads "INV-2026-0042" in a monospaced font as "INV" and "-2026-0042", touching."""
    words = [
        *line(0, (0, "Invoice No.")),
        Word("INV", 0.7, 300, 0, 333, HEIGHT, 0),
        Word("-2026-0042", 0.7, 340, 0, 450, HEIGHT, 0),
    ]
    assert values(words)["invoice_number"] == "INV-2026-0042"


def test_the_currency_comes_from_the_totals_symbol_or_code_when_not_labelled() -> None:
    assert values(line(0, (0, "Total"), (300, "€12.00")))["currency"] == "EUR"
    assert values(line(0, (0, "Total"), (300, "12.00 GBP")))["currency"] == "GBP"
    words = page(line(0, (0, "Currency:"), (300, "CHF")), line(30, (0, "Total"), (300, "12.00 GBP")))
    assert values(words)["currency"] == "CHF"


def test_rows_follow_the_page_not_the_ocr_blocks() -> None:
    """Words a little above or below each other on one visual row are one row, left to right."""
    words = [Word("37.50", 0.9, 400, 3, 455, 23, 7), Word("Total", 0.9, 0, 0, 55, 20, 2)]
    assert [[word.text for word in row] for row in rows_of(words)] == [["Total", "37.50"]]


def test_a_speck_before_the_value_is_skipped_but_another_label_is_not_read_as_a_value() -> None:
    speck = Word("by", 0.4, 120, 0, 140, HEIGHT, 0)
    assert values([*line(0, (0, "Total")), speck, *line(0, (400, "$37.50"))])["total_amount"] == 37.5
    words = line(0, (0, "Invoice No:"), (500, "Date: 2026-03-31"))
    assert values(words) == {"invoice_date": "2026-03-31"}  # the date is not the invoice's number
