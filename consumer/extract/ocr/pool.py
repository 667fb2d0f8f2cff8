"""The OCR worker processes, and how much reading work a replica may take on.

Tesseract holds a core for a second or so per page; in the event loop that would stall the
heartbeat, the health server and every other record. So pages are read in a pool of worker
processes (pebble's: a task past its time limit has its worker killed and replaced, which a
standard ``ProcessPoolExecutor`` cannot do), each of which loads the recogniser once.

Backpressure: on a rebalance or a shutdown, in-flight records have the grace period to finish.
A replica therefore holds at most what its workers can read within that period, at the
reading speed measured so far (``capacity``), and stops taking records from Kafka at that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import multiprocessing
from pathlib import Path

import pebble

from consumer.extract.ocr.words import ReadDocument
from consumer.fate.errors import CorruptDocument, OcrTimeout
from consumer.fetch.documents import Document
from schemas.metrics import Metrics

# Where Debian's (and Ubuntu's, and Homebrew's) tesseract-ocr packages put the trained data.
_TESSDATA_CANDIDATES = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)
_LANGUAGE_FILE = "eng.traineddata"
# Until a document has been read, assume a second per document.
_FIRST_GUESS_SECONDS = 1.0
_SMOOTHING = 0.2
# A worker is replaced after this many documents: a long-lived Tesseract grows.
_TASKS_PER_WORKER = 500


def _start_worker(tessdata: str) -> None:
    """In a worker: loads the recogniser. The reader (Tesseract, PDFium, numpy: a second of
    imports and tens of MB) is imported only there, never in the replica's own process."""
    from consumer.extract.ocr.reader import start_worker

    start_worker(tessdata)


def _read_document(data: bytes, media_type: str, max_pages: int, dpi: int) -> ReadDocument:
    from consumer.extract.ocr.reader import read_document

    return read_document(data, media_type, max_pages, dpi)


class TessdataMissing(Exception):
    """Tesseract's English data is not installed where docmill looks (or was told to look)."""


def find_tessdata(configured: Path | None) -> Path:
    """The directory holding ``eng.traineddata``: the configured one, or the system's."""
    candidates = [configured] if configured is not None else [Path(p) for p in _TESSDATA_CANDIDATES]
    for directory in candidates:
        if (directory / _LANGUAGE_FILE).is_file():
            return directory
    where = str(configured) if configured is not None else ", ".join(_TESSDATA_CANDIDATES)
    raise TessdataMissing(
        f"Tesseract's English data ({_LANGUAGE_FILE}) is not in {where}: install the tesseract-ocr "
        "package (deploy/install-prerequisites.sh does) or set DOCMILL_OCR_TESSDATA"
    )


class OcrPool:
    """Reads documents' pages in worker processes, within a time limit per document."""

    def __init__(
        self,
        *,
        workers: int,
        timeout_seconds: float,
        max_pages: int,
        dpi: int,
        tessdata: Path,
        grace_seconds: float,
        metrics: Metrics | None = None,
    ) -> None:
        self.workers = workers
        self._timeout = timeout_seconds
        self._max_pages = max_pages
        self._dpi = dpi
        self._tessdata = tessdata
        self._grace = grace_seconds
        self._metrics = metrics
        self._pool: pebble.ProcessPool | None = None
        self.pending = 0
        self.seconds_per_document = _FIRST_GUESS_SECONDS

    @property
    def capacity(self) -> int:
        """Documents the workers can read within the grace period, at the speed seen so far
        (never fewer than one per worker, so a slow pool still makes progress)."""
        per_worker = math.floor(self._grace / max(self.seconds_per_document, 1e-3))
        return self.workers * max(1, per_worker)

    def _started(self) -> pebble.ProcessPool:
        if self._pool is None:
            # forkserver: workers are forked from a clean server process, not from this one
            # with its event loop, threads and sockets.
            self._pool = pebble.ProcessPool(
                max_workers=self.workers,
                max_tasks=_TASKS_PER_WORKER,
                initializer=_start_worker,
                initargs=(str(self._tessdata),),
                context=multiprocessing.get_context("forkserver"),
            )
        return self._pool

    async def read(self, document: Document) -> ReadDocument:
        """The document's pages; ``OcrTimeout`` past the time limit, ``CorruptDocument`` if a
        worker dies reading it (a hostile file that crashes the decoder)."""
        self.pending += 1
        try:
            future = self._started().schedule(
                _read_document,
                args=(document.data, document.media_type, self._max_pages, self._dpi),
                timeout=self._timeout,
            )
            try:
                read: ReadDocument = await asyncio.wrap_future(future)
            except concurrent.futures.TimeoutError:
                raise OcrTimeout(
                    f"reading the document took more than {self._timeout:g} s "
                    f"({document.pages or 1} page(s)); raise DOCMILL_OCR_TIMEOUT_SECONDS to allow more"
                ) from None
            except pebble.ProcessExpired as died:
                raise CorruptDocument(
                    f"the OCR worker died reading the document (exit code {died.exitcode})"
                ) from None
            except asyncio.CancelledError:
                future.cancel()  # type: ignore[no-untyped-call]  # pebble stops the worker that was reading it
                raise
            self.seconds_per_document += _SMOOTHING * (read.seconds - self.seconds_per_document)
            if self._metrics is not None:
                ocr_pages = read.ocr_pages
                self._metrics.record_ocr(read.seconds, ocr_pages, len(read.pages) - ocr_pages)
            return read
        finally:
            self.pending -= 1

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]  # abandons queued work: its records stay uncommitted and are redone
            await asyncio.to_thread(pool.join, 10)
