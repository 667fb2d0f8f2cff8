"""Unit tests of consumer.document.inspect_document: type from bytes, wholeness and API limits."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image
from pypdf import PdfWriter

from consumer.fate.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    UnsupportedDocumentType,
)
from consumer.fetch.documents import MAX_IMAGE_BYTES, MAX_PDF_PAGES, inspect_document
from tests.helpers.documents import docx_bytes, image_bytes, pdf_bytes


def _blank_pdf(pages: int, *, user_password: str | None = None, owner_password: str = "") -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    if user_password is not None:
        writer.encrypt(user_password=user_password, owner_password=owner_password or None)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _noise_image(image_format: str, size: tuple[int, int], seed: int = 7) -> bytes:
    rng = random.Random(seed)
    pixels = rng.randbytes(size[0] * size[1] * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(buffer, image_format)
    return buffer.getvalue()


# --- recognised types ---------------------------------------------------------


def test_plain_text_is_text_plain_with_its_text() -> None:
    """UTF-8 text (non-ASCII included) is text/plain and carries the decoded text."""
    data = "Invoice № 7\nTotal: 12,50 €\n".encode()
    document = inspect_document(data)
    assert document.media_type == "text/plain"
    assert document.text == "Invoice № 7\nTotal: 12,50 €\n"
    assert document.data == data
    assert not document.is_image


def test_pdf_is_recognised_with_its_page_count() -> None:
    """A PDF made by fpdf2 is application/pdf and reports its number of pages."""
    document = inspect_document(pdf_bytes("Invoice Number: INV-1", pages=3))
    assert document.media_type == "application/pdf"
    assert document.pages == 3
    assert not document.is_image


def test_pdf_with_exactly_the_page_limit_is_accepted() -> None:
    """A PDF of exactly 100 pages is within the API's limit."""
    assert inspect_document(_blank_pdf(MAX_PDF_PAGES)).pages == MAX_PDF_PAGES


@pytest.mark.parametrize(
    ("image_format", "media_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_images_get_media_type_and_size(image_format: str, media_type: str) -> None:
    """PNG, JPEG, GIF and WebP made by Pillow get the right media type, width and height."""
    document = inspect_document(image_bytes(image_format, (40, 30)))
    assert document.media_type == media_type
    assert (document.width, document.height) == (40, 30)
    assert document.is_image


def test_type_comes_from_bytes_not_a_claim() -> None:
    """A PNG's bytes are identified as PNG even though nothing names it (no file name involved)."""
    assert inspect_document(image_bytes("PNG")).media_type == "image/png"
    assert inspect_document(image_bytes("JPEG")).media_type == "image/jpeg"


def test_image_at_the_edge_limit_is_accepted() -> None:
    """An 8000 px wide image is exactly at the API's limit and is accepted."""
    assert inspect_document(image_bytes("PNG", (8000, 10))).width == 8000


# --- empty --------------------------------------------------------------------


def test_zero_bytes_is_empty() -> None:
    """Zero bytes are an EmptyDocument."""
    with pytest.raises(EmptyDocument):
        inspect_document(b"")


def test_whitespace_only_text_is_empty() -> None:
    """Text of only spaces, tabs and newlines is an EmptyDocument."""
    with pytest.raises(EmptyDocument, match="whitespace"):
        inspect_document(b"  \n\t \r\n  ")


# --- unsupported --------------------------------------------------------------


def test_docx_is_unsupported() -> None:
    """A real .docx (zip with [Content_Types].xml and word/document.xml) is UnsupportedDocumentType."""
    with pytest.raises(UnsupportedDocumentType, match="docx"):
        inspect_document(docx_bytes())


def test_random_binary_is_unsupported() -> None:
    """Random bytes of no known type are UnsupportedDocumentType, not text."""
    data = random.Random(3).randbytes(4096)
    with pytest.raises(UnsupportedDocumentType, match="binary"):
        inspect_document(data)


def test_utf8_with_control_bytes_is_unsupported() -> None:
    """Valid UTF-8 containing NUL and other control bytes is binary, not text."""
    with pytest.raises(UnsupportedDocumentType):
        inspect_document(b"Invoice\x00\x01\x02 data")


@pytest.mark.parametrize("image_format", ["BMP", "TIFF"])
def test_other_image_formats_are_unsupported(image_format: str) -> None:
    """BMP and TIFF images are types the API does not take: UnsupportedDocumentType."""
    with pytest.raises(UnsupportedDocumentType):
        inspect_document(image_bytes(image_format))


# --- corrupt ------------------------------------------------------------------


def test_truncated_pdf_is_corrupt() -> None:
    """The first 60% of a valid PDF's bytes is a CorruptDocument (pypdf cannot recover it)."""
    whole = pdf_bytes("Invoice Number: INV-1", pages=2)
    with pytest.raises(CorruptDocument):
        inspect_document(whole[: int(len(whole) * 0.6)])


def test_pdf_header_followed_by_garbage_is_corrupt() -> None:
    """Bytes that start like a PDF and then are garbage are a CorruptDocument."""
    with pytest.raises(CorruptDocument):
        inspect_document(b"%PDF-1.4 garbage")


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_image_is_corrupt(image_format: str, keep: float) -> None:
    """A PNG or JPEG cut short is a CorruptDocument: every pixel is decoded, not just the header."""
    whole = _noise_image(image_format, (200, 150))
    inspect_document(whole)  # the uncut image is fine
    with pytest.raises(CorruptDocument):
        inspect_document(whole[: int(len(whole) * keep)])


# --- encrypted ----------------------------------------------------------------


def test_pdf_with_user_password_is_encrypted() -> None:
    """A PDF that needs a user password to open is an EncryptedDocument."""
    with pytest.raises(EncryptedDocument):
        inspect_document(_blank_pdf(1, user_password="s3cret", owner_password="owner"))


def test_owner_locked_pdf_with_empty_user_password_is_readable() -> None:
    """A PDF encrypted only with an owner password opens with the empty user password."""
    document = inspect_document(_blank_pdf(2, user_password="", owner_password="owner"))
    assert document.media_type == "application/pdf"
    assert document.pages == 2


# --- too large ----------------------------------------------------------------


def test_pdf_over_page_limit_is_too_large() -> None:
    """A PDF of 101 blank pages is DocumentTooLarge, naming the page count."""
    with pytest.raises(DocumentTooLarge, match="101 pages"):
        inspect_document(_blank_pdf(MAX_PDF_PAGES + 1))


def test_image_over_edge_limit_is_too_large() -> None:
    """A PNG 8001 px wide is DocumentTooLarge, naming its size."""
    with pytest.raises(DocumentTooLarge, match="8001x10"):
        inspect_document(image_bytes("PNG", (8001, 10)))


def test_image_too_large_to_decode_safely_is_too_large_not_corrupt() -> None:
    """A small but valid 20000x10000 PNG (Pillow's decompression-bomb guard) is DocumentTooLarge."""
    buffer = io.BytesIO()
    Image.new("1", (20000, 10000)).save(buffer, "PNG")
    with pytest.raises(DocumentTooLarge):
        inspect_document(buffer.getvalue())


def test_image_over_byte_limit_is_too_large() -> None:
    """A PNG of random noise larger than 5 MB is DocumentTooLarge even though its edges are fine."""
    data = _noise_image("PNG", (1400, 1400))
    assert len(data) > MAX_IMAGE_BYTES
    with pytest.raises(DocumentTooLarge, match=str(len(data))):
        inspect_document(data)
