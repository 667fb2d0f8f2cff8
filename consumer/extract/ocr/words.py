"""What reading a page yields: its text layer, or the words OCR saw with where it saw them.

Plain tuples, because they cross a process boundary for every page (pickled) and a page of a
receipt holds hundreds of them.
"""

from __future__ import annotations

from typing import NamedTuple


class Word(NamedTuple):
    """One word as OCR read it: ``confidence`` in [0, 1], a box in pixels, and the line it is on."""

    text: str
    confidence: float
    left: int
    top: int
    right: int
    bottom: int
    line: int  # unique within its page; words of one line share it

    @property
    def height(self) -> int:
        return self.bottom - self.top


class Page(NamedTuple):
    """One page: ``text`` when it has a text layer, otherwise the ``words`` OCR read."""

    number: int  # 1-based
    text: str | None
    words: tuple[Word, ...] = ()


class ReadDocument(NamedTuple):
    """The pages read (at most the page limit), how many more the document has, and how long
    the worker took (its own time, without the wait in the pool's queue)."""

    pages: tuple[Page, ...]
    pages_skipped: int = 0
    seconds: float = 0.0

    @property
    def ocr_pages(self) -> int:
        return sum(1 for page in self.pages if page.text is None)
