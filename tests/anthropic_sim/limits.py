"""Size and count limits of the real API, and the media and block types it accepts."""

from __future__ import annotations

from typing import Final

# --- Limits of the real API (ANTHROPIC-API.md) ---------------------------------------------------
MAX_REQUEST_BYTES: Final = 32 * 1024 * 1024
MAX_IMAGE_BYTES: Final = 5 * 1024 * 1024
MAX_IMAGE_SIDE: Final = 8000
MAX_IMAGES_PER_REQUEST: Final = 100
MAX_PDF_PAGES: Final = 100
MAX_CACHE_BREAKPOINTS: Final = 4

IMAGE_MEDIA_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")
KNOWN_BLOCK_TYPES: Final = (
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
)
