"""The local backend's OCR pool as the tests make it: real Tesseract, settings a test overrides."""

from __future__ import annotations

from typing import Any

from consumer.extract.ocr.pool import OcrPool, find_tessdata


def ocr_pool(**overrides: Any) -> OcrPool:
    settings: dict[str, Any] = {
        "workers": 2,
        "timeout_seconds": 60,
        "max_pages": 5,
        "dpi": 200,
        "tessdata": find_tessdata(None),
        "grace_seconds": 30,
    }
    return OcrPool(**(settings | overrides))
