"""Builders of real documents for tests: invoices as text, PDF and images, broken ones, and references."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from fpdf import FPDF
from PIL import Image
from pypdf import PdfWriter

from schemas.messages import DocumentRef


def write_file(root: Path, name: str, data: bytes | str) -> Path:
    """Writes ``data`` to ``root/name`` (creating folders) and returns the path."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def document_ref(document_id: str, path: Path | str, **fields: Any) -> DocumentRef:
    """A reference to a file (or any URI) in the tests' job."""
    uri = path.as_uri() if isinstance(path, Path) else path
    return DocumentRef(document_id=document_id, uri=uri, job_id="job-test", **fields)


def invoice_text(
    number: str,
    vendor: str = "Acme Ltd",
    total: str = "1,234.50",
    date: str = "2026-01-15",
    currency: str = "EUR",
) -> str:
    return (
        f"INVOICE\nInvoice Number: {number}\nVendor: {vendor}\nInvoice Date: {date}\n"
        f"Currency: {currency}\nSubtotal: 1.00\nTotal: {total}\n"
    )


def pdf_bytes(text: str, pages: int = 1) -> bytes:
    """A PDF with a real text layer; the text is on the first page."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for page in range(pages):
        pdf.add_page()
        if page == 0:
            for line in text.splitlines():
                pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def image_bytes(image_format: str, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format=image_format)
    return buffer.getvalue()


def docx_bytes() -> bytes:
    """A minimal Word document (a zip with the parts that identify it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def encrypted_pdf_bytes() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt(user_password="s3cret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def corrupt_pdf_bytes() -> bytes:
    return b"%PDF-1.7\n" + b"\x00garbage that is not a PDF body\n" * 20
