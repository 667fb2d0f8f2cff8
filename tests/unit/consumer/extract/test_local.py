"""Unit tests of consumer.backends.local: label-based invoice extraction from text layers."""

from __future__ import annotations

import io

import pytest
from fpdf import FPDF
from PIL import Image

from consumer.extract.local import LocalExtractor, find_invoice_fields
from consumer.extract.ocr.pool import OcrPool
from consumer.fate.errors import NothingExtracted, OutputValidationFailed, UnsupportedByBackend
from consumer.fetch.documents import Document, inspect_document
from schemas.extraction import ExtractionSchema, load_schema

COMPLETE_INVOICE = """\
ACME Supplies GmbH
Invoice No. INV-2026-0042
Vendor: ACME Supplies GmbH
Invoice Date: 15/01/2026

Widgets x 10           1,000.00
Subtotal: $1,000.00
Tax: $234.50
Total Amount Due: $1,234.50
"""


@pytest.fixture(scope="module")
def invoice_schema() -> ExtractionSchema:
    schema = load_schema("invoice")
    assert schema is not None
    return schema


def _pdf_with_lines(lines: list[str]) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for line in lines:
        pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# --- find_invoice_fields ----------------------------------------------------------


def test_finds_every_field_of_a_us_style_invoice() -> None:
    """Invoice No., Vendor, a dd/mm/yyyy date and 'Total Amount Due: $1,234.50' are all found."""
    assert find_invoice_fields(COMPLETE_INVOICE) == {
        "invoice_number": "INV-2026-0042",
        "vendor_name": "ACME Supplies GmbH",
        "invoice_date": "2026-01-15",
        "currency": "USD",
        "total_amount": 1234.5,
    }


@pytest.mark.parametrize(
    ("line", "number"),
    [
        ("Invoice No. INV-1", "INV-1"),
        ("Invoice No: 2026/001", "2026/001"),
        ("INVOICE # 42", "42"),
        ("Invoice Number: A-17.3", "A-17.3"),
        ("invoice num 9981", "9981"),
        ("Receipt Number: R-9", "R-9"),
        ("Bill ID: B/7", "B/7"),
        ("   Invoice #: X1", "X1"),
    ],
)
def test_invoice_number_label_styles(line: str, number: str) -> None:
    """Invoice, receipt and bill numbers are found under their usual label spellings."""
    assert find_invoice_fields(line)["invoice_number"] == number


@pytest.mark.parametrize(
    ("line", "vendor"),
    [
        ("Vendor: Acme GmbH", "Acme GmbH"),
        ("Supplier Name: Foo Ltd.", "Foo Ltd."),
        ("Seller: Müller & Söhne KG", "Müller & Söhne KG"),
        ("Issued by: Bar Inc", "Bar Inc"),
        ("From: Baz S.A.  ", "Baz S.A."),
    ],
)
def test_vendor_label_styles(line: str, vendor: str) -> None:
    """Vendor, supplier, seller, 'issued by' and 'from' labels give the vendor name, trimmed."""
    assert find_invoice_fields(line)["vendor_name"] == vendor


@pytest.mark.parametrize(
    ("line", "iso"),
    [
        ("Date: 15/01/2026", "2026-01-15"),
        ("Invoice Date: January 15, 2026", "2026-01-15"),
        ("Issue Date: 2026-01-15", "2026-01-15"),
        ("Date of issue: 15.01.2026", "2026-01-15"),
        ("Date: 15 January 2026", "2026-01-15"),
        ("Date: Jan 15, 2026", "2026-01-15"),
        ("Date: 15 Jan 2026", "2026-01-15"),
    ],
)
def test_dates_become_iso(line: str, iso: str) -> None:
    """Dates in common European and English styles are normalised to YYYY-MM-DD."""
    assert find_invoice_fields(line)["invoice_date"] == iso


def test_unparseable_date_is_kept_verbatim() -> None:
    """A date that matches no known format (31 February) is kept as printed, not invented."""
    assert find_invoice_fields("Date: 31/02/2026")["invoice_date"] == "31/02/2026"


def test_due_date_is_not_the_invoice_date() -> None:
    """'Due Date:' is not mistaken for the issue date."""
    found = find_invoice_fields("Due Date: 28/02/2026\nInvoice Date: 15/01/2026")
    assert found["invoice_date"] == "2026-01-15"


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("Total Amount Due: $1,234.50", 1234.5, "USD"),
        ("Total: 1.234,50 EUR", 1234.5, "EUR"),
        ("Grand Total: EUR 1.234,50", 1234.5, "EUR"),
        ("Total: 12,50 €", 12.5, "EUR"),
        ("Balance due: £ 1 234.50", 1234.5, "GBP"),
        ("Total (incl. VAT): 1'234.50 CHF", 1234.5, "CHF"),
        ("Amount due: ¥120000", 120000.0, "JPY"),
        ("Total due: 1.234.567,89 EUR", 1234567.89, "EUR"),
        ("Total: 1.234.567 EUR", 1234567.0, "EUR"),
        ("Total: 1,234,567", 1234567.0, None),
        ("Total: 99", 99.0, None),
    ],
)
def test_totals_in_varied_number_styles(text: str, amount: float, currency: str | None) -> None:
    """US, European, Swiss and spaced number styles parse to the same float; symbols give currency."""
    found = find_invoice_fields(text)
    assert found["total_amount"] == pytest.approx(amount)
    assert found.get("currency") == currency


def test_trailing_word_is_not_a_currency() -> None:
    """A lowercase word after the total ('per month') is not read as a currency code."""
    assert "currency" not in find_invoice_fields("Total: 100 per month")


def test_next_line_is_not_a_trailing_currency() -> None:
    """A code-like word at the start of the next line does not become the total's currency."""
    found = find_invoice_fields("Total: 120.00\nABC Holdings")
    assert found["total_amount"] == 120.0
    assert "currency" not in found


def test_last_total_wins_over_earlier_totals() -> None:
    """With several total lines the last one (the grand total) is the total_amount."""
    found = find_invoice_fields("Total: 12.50\nSubtotal: 10.00\nTotal: 1,000,000.75")
    assert found["total_amount"] == 1000000.75


def test_subtotal_alone_is_not_a_total() -> None:
    """A subtotal line alone does not produce a total_amount."""
    assert "total_amount" not in find_invoice_fields("Subtotal: 100.00\nSub Total: 100.00")


def test_explicit_currency_line_wins_over_symbol() -> None:
    """A 'Currency:' line (any case) wins over the total's symbol and is upper-cased."""
    found = find_invoice_fields("Currency: chf\nTotal: $10.00")
    assert found["currency"] == "CHF"


def test_windows_line_endings() -> None:
    """CRLF text is read like LF text (no stray carriage returns in values)."""
    found = find_invoice_fields(COMPLETE_INVOICE.replace("\n", "\r\n"))
    assert found["vendor_name"] == "ACME Supplies GmbH"
    assert found["invoice_date"] == "2026-01-15"
    assert found["total_amount"] == 1234.5


def test_text_without_labels_finds_nothing() -> None:
    """Prose without any labels yields no fields."""
    assert find_invoice_fields("Dear customer, thank you for your order.") == {}


# --- LocalExtractor ------------------------------------------------------------------


async def test_extracts_from_text_document(invoice_schema: ExtractionSchema) -> None:
    """A complete text invoice yields schema-valid data, model 'local' and confidence 1.0."""
    document = inspect_document(COMPLETE_INVOICE.encode())
    extraction = await LocalExtractor().extract(document, invoice_schema)
    assert extraction.data["invoice_number"] == "INV-2026-0042"
    assert extraction.data["total_amount"] == 1234.5
    assert invoice_schema.problems(extraction.data) == []
    assert extraction.confidence == 1.0
    assert extraction.model == "local"
    assert extraction.usage.input_tokens == 0
    assert extraction.api_calls == 0


async def test_extracts_from_pdf_text_layer(invoice_schema: ExtractionSchema, ocr_pool: OcrPool) -> None:
    """A PDF with a text layer (made by fpdf2) yields the same fields as the text version."""
    data = _pdf_with_lines(
        [
            "Invoice Number: PDF-77",
            "Supplier: Globex Corporation",
            "Invoice Date: January 15, 2026",
            "Grand Total: 1.234,50 EUR",
        ]
    )
    document = inspect_document(data)
    assert document.media_type == "application/pdf"
    extraction = await LocalExtractor(ocr_pool).extract(document, invoice_schema)
    assert extraction.data == {
        "invoice_number": "PDF-77",
        "vendor_name": "Globex Corporation",
        "invoice_date": "2026-01-15",
        "currency": "EUR",
        "total_amount": 1234.5,
    }
    assert extraction.confidence == 1.0


async def test_without_an_ocr_pool_images_are_unsupported(invoice_schema: ExtractionSchema) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buffer, "PNG")
    document = inspect_document(buffer.getvalue())
    with pytest.raises(UnsupportedByBackend, match="image/png"):
        await LocalExtractor().extract(document, invoice_schema)


async def test_a_blank_image_is_nothing_extracted(
    invoice_schema: ExtractionSchema, ocr_pool: OcrPool
) -> None:
    """A page with no words on it: NothingExtracted, not a guess and not a crash."""
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buffer, "PNG")
    with pytest.raises(NothingExtracted):
        await LocalExtractor(ocr_pool).extract(inspect_document(buffer.getvalue()), invoice_schema)


async def test_a_blank_scanned_pdf_is_nothing_extracted(
    invoice_schema: ExtractionSchema, ocr_pool: OcrPool
) -> None:
    pdf = FPDF()
    pdf.add_page()
    with pytest.raises(NothingExtracted):
        await LocalExtractor(ocr_pool).extract(inspect_document(bytes(pdf.output())), invoice_schema)


async def test_text_missing_fields_fails_validation(invoice_schema: ExtractionSchema) -> None:
    """Text with only some labels is OutputValidationFailed naming the missing fields."""
    document = inspect_document(b"Invoice Number: INV-1\nTotal: 10.00\n")
    with pytest.raises(OutputValidationFailed) as caught:
        await LocalExtractor().extract(document, invoice_schema)
    message = str(caught.value)
    assert "vendor_name" in message
    assert "invoice_date" in message
    assert "2 of 5 required fields found" in message


async def test_other_extraction_schema_is_unsupported(invoice_schema: ExtractionSchema) -> None:
    """The local backend only knows 'invoice'; another schema is UnsupportedByBackend."""
    other = ExtractionSchema("receipt", invoice_schema.json_schema, invoice_schema._validator)
    document = Document(data=b"x", media_type="text/plain", text="Invoice Number: 1")
    with pytest.raises(UnsupportedByBackend, match="receipt"):
        await LocalExtractor().extract(document, other)
