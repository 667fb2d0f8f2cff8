"""Estimates of a call's input tokens, debited from the limiter before the call.

Estimated locally from what the document is, rather than with the
count-tokens endpoint: that would be a second metered request per document,
halving the useful request rate, for a figure the response's usage corrects
a second later anyway (the limiter reconciles every estimate with the real
usage).
"""

from __future__ import annotations

import math

from consumer.fetch.documents import Document

# The API downscales images whose long edge exceeds 1568 px before counting them.
_IMAGE_EDGE = 1568
# Anthropic's guidance: a PDF page costs roughly 1,500-3,000 tokens (its text
# plus the page as an image); the middle of the range errs on the safe side.
_TOKENS_PER_PDF_PAGE = 2000
# Characters per token of typical invoice text (digits and short words).
_CHARS_PER_TOKEN = 3.5
# The tool-use system prompt the API adds when tools are declared.
_TOOL_USE_OVERHEAD = 350


def image_tokens(width: int, height: int) -> int:
    """≈ width × height / 750 after the API's own downscaling."""
    scale = min(1.0, _IMAGE_EDGE / max(width, height, 1))
    return math.ceil((width * scale) * (height * scale) / 750)


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def document_tokens(document: Document) -> int:
    if document.is_image and document.width and document.height:
        return image_tokens(document.width, document.height)
    if document.media_type == "application/pdf":
        return (document.pages or 1) * _TOKENS_PER_PDF_PAGE
    return text_tokens(document.text or "")


def request_tokens(document: Document, prompt_chars: int) -> int:
    """Input tokens of one extraction request: document, prompt and schema, tool-use overhead."""
    return document_tokens(document) + math.ceil(prompt_chars / _CHARS_PER_TOKEN) + _TOOL_USE_OVERHEAD
