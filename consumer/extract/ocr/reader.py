"""Reads a document's pages in a worker process: a PDF's text layer where it has one, OCR where not.

Everything here runs in the OCR pool's processes (``consumer.extract.ocr.pool``), never in the
event loop: Tesseract holds its process for a second or more per page. Each worker loads the
recogniser once (``start_worker``) and reuses it for every page it is given.
"""

from __future__ import annotations

import io
import time

import pypdfium2
import tesserocr
from PIL import Image, UnidentifiedImageError

from consumer.extract.ocr.preprocess import prepare
from consumer.extract.ocr.words import Page, ReadDocument, Word
from consumer.fate.errors import CorruptDocument, EncryptedDocument

# A page whose text layer holds fewer visible characters than this is a scan (scanners often
# stamp a page number or a date into an otherwise empty layer).
MIN_TEXT_LAYER_CHARS = 16
# What Tesseract is told a page's resolution is: rendered PDF pages are exactly this; photos
# carry none (or a camera's meaningless 72), and Tesseract's character size priors assume print.
_ASSUMED_DPI = 300

# This process's recogniser, once ``start_worker`` has loaded it.
_worker: dict[str, tesserocr.PyTessBaseAPI] = {}


def start_worker(tessdata: str) -> None:
    """Loads the recogniser (English, the LSTM engine) once for this process."""
    api = tesserocr.PyTessBaseAPI(
        path=tessdata, lang="eng", psm=tesserocr.PSM.AUTO, oem=tesserocr.OEM.LSTM_ONLY
    )
    # Leptonica's complaints about odd boxes on noisy pages would go to stderr, unstructured.
    api.SetVariable("debug_file", "/dev/null")
    _worker["api"] = api


def read_document(data: bytes, media_type: str, max_pages: int, pdf_dpi: int) -> ReadDocument:
    """The pages of ``data`` (at most ``max_pages``), as text layers or OCR'd words."""
    started = time.perf_counter()
    read = _read_pdf(data, max_pages, pdf_dpi) if media_type == "application/pdf" else _read_image(data)
    return read._replace(seconds=time.perf_counter() - started)


def _read_image(data: bytes) -> ReadDocument:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # an animated GIF or WebP: its first frame is the page
            return ReadDocument((Page(1, None, ocr_words(image)),))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise CorruptDocument(f"image cannot be decoded: {error}") from None


def _read_pdf(data: bytes, max_pages: int, dpi: int) -> ReadDocument:
    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        message = str(error)
        if "password" in message.lower():
            raise EncryptedDocument("PDF is encrypted with a password") from None
        raise CorruptDocument(f"PDF cannot be parsed: {message}") from None
    try:
        total = len(pdf)
        pages = []
        for index in range(min(total, max_pages)):
            page = pdf[index]
            try:
                text = page.get_textpage().get_text_bounded()
                if sum(1 for char in text if not char.isspace()) >= MIN_TEXT_LAYER_CHARS:
                    pages.append(Page(index + 1, text))
                    continue
                bitmap = page.render(scale=dpi / 72, grayscale=True)
                pages.append(Page(index + 1, None, ocr_words(bitmap.to_pil())))
            finally:
                page.close()
        return ReadDocument(tuple(pages), pages_skipped=max(0, total - max_pages))
    finally:
        pdf.close()


def ocr_words(image: Image.Image) -> tuple[Word, ...]:
    """The words Tesseract reads on one page image, after preprocessing it."""
    api = _worker.get("api")
    if api is None:
        raise RuntimeError("the OCR worker was not started")  # a wiring bug, not the document's fault
    api.SetImage(prepare(image))
    api.SetSourceResolution(_ASSUMED_DPI)
    api.Recognize()
    words: list[Word] = []
    iterator = api.GetIterator()
    if iterator is None:
        return ()
    level, line_level = tesserocr.RIL.WORD, tesserocr.RIL.TEXTLINE
    line = -1
    for word in tesserocr.iterate_level(iterator, level):
        if word.IsAtBeginningOf(line_level):
            line += 1
        try:
            text = word.GetUTF8Text(level)
        except RuntimeError:  # "No text returned": a blank page's iterator has nothing to give
            break
        box = word.BoundingBox(level)
        if not text or not text.strip() or box is None:
            continue
        left, top, right, bottom = box
        confidence = word.Confidence(level) / 100.0
        words.append(Word(text.strip(), confidence, left, top, right, bottom, max(line, 0)))
    return tuple(words)
