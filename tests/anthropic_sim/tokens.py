"""The deterministic token estimates of text, JSON and images, and the per-page and per-reply costs."""

from __future__ import annotations

import math
from typing import Final

import orjson

# Images whose long edge exceeds this are downscaled before tokenisation.
IMAGE_LONG_EDGE: Final = 1568
PDF_TOKENS_PER_PAGE: Final = 1500
OUTPUT_TOKEN_OVERHEAD: Final = 20


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def json_tokens(obj: object) -> int:
    return math.ceil(len(orjson.dumps(obj)) / 4)


def image_tokens(width: int, height: int) -> int:
    long_edge = max(width, height)
    if long_edge > IMAGE_LONG_EDGE:
        # The API downscales large images, so they cost no more than a 1568 px one.
        scale = IMAGE_LONG_EDGE / long_edge
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return max(1, math.ceil(width * height / 750))
