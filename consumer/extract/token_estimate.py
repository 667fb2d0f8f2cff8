"""Estimates of a call's input tokens, debited from the limiter before the call.

Estimated locally from what the document is, rather than with the
count-tokens endpoint: that would be a second metered request per document,
halving the useful request rate, for a figure the response's usage corrects
a second later anyway (the limiter reconciles every estimate with the real
usage). The model's tokenizer factor and image limits come from the model table.
"""

from __future__ import annotations

import math

from consumer.fetch.documents import Document
from schemas.models import ModelFacts

# Anthropic's guidance: a PDF page costs roughly 1,500-3,000 tokens (its text
# plus the page as an image); the middle of the range errs on the safe side.
_TOKENS_PER_PDF_PAGE = 2000
# Characters per token of typical invoice text (digits and short words) on the 4.x tokenizer.
_CHARS_PER_TOKEN = 3.5
# What the API adds to a request that asks for structured output.
_STRUCTURED_OUTPUT_OVERHEAD = 100


def image_tokens(width: int, height: int, facts: ModelFacts) -> int:
    """≈ width × height / 750 after the API's downscaling to the model's long edge, capped."""
    scale = min(1.0, facts.image.max_long_edge_px / max(width, height, 1))
    return min(facts.image.max_tokens, math.ceil((width * scale) * (height * scale) / 750))


def text_tokens(text: str, facts: ModelFacts) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN * facts.tokenizer_factor)


def document_tokens(document: Document, facts: ModelFacts) -> int:
    if document.is_image and document.width and document.height:
        return image_tokens(document.width, document.height, facts)
    if document.media_type == "application/pdf":
        return math.ceil((document.pages or 1) * _TOKENS_PER_PDF_PAGE * facts.tokenizer_factor)
    return text_tokens(document.text or "", facts)


def request_tokens(document: Document, prompt_chars: int, facts: ModelFacts) -> int:
    """Input tokens of one extraction request: document, prompt and schema, structured-output overhead."""
    prompt = math.ceil(prompt_chars / _CHARS_PER_TOKEN * facts.tokenizer_factor)
    return document_tokens(document, facts) + prompt + _STRUCTURED_OUTPUT_OVERHEAD
