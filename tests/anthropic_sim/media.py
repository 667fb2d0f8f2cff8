"""Decoding of inline base64 media: image type and size, PDF page count and text."""

from __future__ import annotations

import base64
import binascii
import functools
import io

import pypdf
from PIL import Image, UnidentifiedImageError

# Pure functions: the server runs them (through validation) on a worker thread.


def b64decode(data: object, what: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise ValueError(f"{what}: Input should be a non-empty base64 string")
    try:
        # validate=True: the real API rejects stray characters rather than skipping them.
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what}: invalid base64 data") from None


def sniff_image(raw: bytes) -> str | None:
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(raw) >= 12 and raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header, or None when it is too large to even open."""
    try:
        # Image.open only parses the header, so this is cheap even for big images.
        with Image.open(io.BytesIO(raw)) as img:
            return img.size
    except Image.DecompressionBombError:
        # > 2 x MAX_IMAGE_PIXELS (~179 Mpx) necessarily has a side above 8000 px.
        return None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"Could not process image: {exc}") from None


@functools.lru_cache(maxsize=32)
def pdf_info(data_b64: str) -> tuple[int, str]:
    """(page count, extracted text) of a base64 PDF; raises ValueError if it is not one.

    Cached because validation, the token estimator and the default responder all need it,
    and benchmarks resend the same documents.
    """
    raw = b64decode(data_b64, "source.data")
    if not raw.startswith(b"%PDF"):
        raise ValueError("The PDF specified was not valid: data does not start with %PDF")
    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise ValueError("The PDF specified is password protected.")
        pages = len(reader.pages)
    except ValueError:
        raise
    except Exception as exc:  # pypdf raises a zoo of types for broken files
        raise ValueError(f"The PDF specified was not valid: {exc}") from None
    if pages < 1:
        raise ValueError("The PDF specified was not valid: it has no pages")
    texts: list[str] = []
    for page in reader.pages:
        try:
            texts.append(page.extract_text() or "")
        except Exception:
            # A page without extractable text still costs its per-page base.
            texts.append("")
    return pages, "\n".join(texts)
