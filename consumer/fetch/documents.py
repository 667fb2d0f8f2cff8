"""Identifies a fetched document by its bytes (never its name) and checks the API's limits."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import filetype
from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from consumer.fate.errors import (
    ContentTypeMismatch,
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    UnsupportedDocumentType,
)
from schemas.limits import MAX_API_REQUEST_BYTES

# Limits of the Messages API (see shared/ANTHROPIC-API.md).
MAX_PDF_PAGES = 100
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_EDGE = 8000

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_PIL_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
# Control characters other than tab, newlines and form feed mean "binary", not text.
_BINARY_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f]")
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


@dataclass(frozen=True, slots=True)
class Document:
    """A document's bytes and what they were found to be."""

    data: bytes
    media_type: str
    pages: int | None = None
    width: int | None = None
    height: int | None = None
    text: str | None = None  # decoded content of text/plain documents

    @property
    def is_image(self) -> bool:
        return self.media_type in IMAGE_TYPES


def inspect_document(data: bytes) -> Document:
    """Detects the type from the bytes and checks the document is whole and within limits.

    CPU-bound for large PDFs and images: call it in a worker thread for those.
    """
    if not data:
        raise EmptyDocument("document has zero bytes")
    if len(data) > MAX_API_REQUEST_BYTES:
        raise DocumentTooLarge(f"document is {len(data)} bytes; the API accepts {MAX_API_REQUEST_BYTES}")
    # The supported types' signatures first: one prefix check each, where the
    # general matcher below tries dozens of formats on every document.
    if data.startswith(b"%PDF-"):
        return _inspect_pdf(data)
    if data.startswith(_IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return _inspect_image(data)
    text = _as_text(data)
    if text is not None:
        return Document(data=data, media_type="text/plain", text=text)
    kind = filetype.guess(data)
    if kind is None:
        raise UnsupportedDocumentType("binary data of an unknown type")
    raise UnsupportedDocumentType(f"{kind.mime} ({kind.extension}) is not a supported document type")


def _as_text(data: bytes) -> str | None:
    """The document as text, when it is UTF-8 without binary control characters."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _BINARY_CONTROLS.search(text, 0, 65536):
        return None
    if not text.strip():
        raise EmptyDocument("text document has only whitespace")
    return text


def _inspect_pdf(data: bytes) -> Document:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            # An empty user password opens "owner-locked" PDFs; anything else needs a secret.
            raise EncryptedDocument("PDF is encrypted with a password")
        pages = len(reader.pages)
    except EncryptedDocument:
        raise
    except (
        PdfReadError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        RecursionError,
        OSError,
    ) as error:
        raise CorruptDocument(f"PDF cannot be parsed: {error}") from None
    if pages == 0:
        raise CorruptDocument("PDF has no pages")
    if pages > MAX_PDF_PAGES:
        raise DocumentTooLarge(f"PDF has {pages} pages; the API accepts {MAX_PDF_PAGES}")
    return Document(data=data, media_type="application/pdf", pages=pages)


def _inspect_image(data: bytes) -> Document:
    if len(data) > MAX_IMAGE_BYTES:
        raise DocumentTooLarge(f"image is {len(data)} bytes; the API accepts {MAX_IMAGE_BYTES}")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            media_type = _PIL_FORMATS.get(probe.format or "")
            width, height = probe.size
        if media_type is None:
            raise UnsupportedDocumentType("image format is not JPEG, PNG, GIF or WebP")
        if max(width, height) > MAX_IMAGE_EDGE:
            raise DocumentTooLarge(
                f"image is {width}x{height} px; the API accepts at most {MAX_IMAGE_EDGE} per side"
            )
        # Decoding every pixel is what catches truncated files; verify() alone does not.
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Image.DecompressionBombError:
        # Pillow refuses huge pixel counts at open(), before the edge check above:
        # the image is whole, just too large, so say that rather than "corrupt".
        raise DocumentTooLarge(
            f"image has more pixels than the API accepts (at most {MAX_IMAGE_EDGE} per side)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise CorruptDocument(f"image cannot be decoded: {error}") from None
    return Document(data=data, media_type=media_type, width=width, height=height)


# Declared types that say nothing about the bytes.
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown"})
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf"}


def check_declared_type(document: Document, declared: str | None) -> None:
    """Refuses a document whose declared type (reference or HTTP header) the bytes contradict.

    The bytes decide what a document is; a contradiction means a mislabelled
    upload or a disguised file, which is worth an operator's look rather than
    a guess.
    """
    if declared is None:
        return
    media_type = declared.split(";", 1)[0].strip().lower()
    media_type = _ALIASES.get(media_type, media_type)
    if media_type in _GENERIC_TYPES or media_type == document.media_type:
        return
    if document.media_type == "text/plain" and media_type.startswith("text/"):
        return
    raise ContentTypeMismatch(f"declared {media_type} but the bytes are {document.media_type}")
