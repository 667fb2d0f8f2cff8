"""The local backend reading scans and photos through real Tesseract in the OCR worker pool."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from consumer.extract.local import LocalExtractor
from consumer.extract.ocr.pool import OcrPool, TessdataMissing, find_tessdata
from consumer.fate.errors import CorruptDocument, NothingExtracted, OcrTimeout, OutputValidationFailed
from consumer.fetch.documents import Document, inspect_document
from schemas.extraction import ExtractionSchema, load_schema
from schemas.metrics import Metrics
from tests.helpers.ocr import ocr_pool
from tests.helpers.scans import degrade, encoded, render, scanned_pdf

INVOICE: list[str | tuple[str, str]] = [
    "NORTHWIND TRADERS",
    ("Invoice No.", "NW-2026-0815"),
    ("Vendor:", "Northwind Traders"),
    ("Invoice date:", "2026-03-14"),
    ("Currency:", "USD"),
    ("Subtotal", "1,210.00"),
    ("Total due", "1,331.00"),
]
EXPECTED = {
    "invoice_number": "NW-2026-0815",
    "vendor_name": "Northwind Traders",
    "invoice_date": "2026-03-14",
    "currency": "USD",
    "total_amount": 1331.0,
}


@pytest.fixture(scope="module")
def invoice_schema() -> ExtractionSchema:
    schema = load_schema("invoice")
    assert schema is not None
    return schema


async def extract(pool: OcrPool, data: bytes, schema: ExtractionSchema) -> dict[str, object]:
    extraction = await LocalExtractor(pool).extract(inspect_document(data), schema)
    assert extraction.model == "local"
    assert extraction.cost_usd == 0
    return extraction.data


@pytest.mark.parametrize(("image_format", "quality"), [("PNG", 0), ("JPEG", 85), ("WEBP", 85), ("GIF", 0)])
async def test_reads_a_rendered_invoice_in_every_image_format(
    image_format: str, quality: int, ocr_pool: OcrPool, invoice_schema: ExtractionSchema
) -> None:
    data = encoded(render(INVOICE), image_format, quality)
    assert await extract(ocr_pool, data, invoice_schema) == EXPECTED


async def test_reads_a_degraded_scan(ocr_pool: OcrPool, invoice_schema: ExtractionSchema) -> None:
    """Turned 1.5°, blurred, specked, on grey, saved as a low-quality JPEG: still every field."""
    page = degrade(render(INVOICE, font_name="serif"), seed=3, rotate=1.5, blur=0.7, noise=0.01)
    extraction = await LocalExtractor(ocr_pool).extract(
        inspect_document(encoded(page, "JPEG", 60)), invoice_schema
    )
    assert extraction.data == EXPECTED
    assert extraction.field_confidence is not None
    assert set(extraction.field_confidence) == set(EXPECTED)
    # The document is as certain as its least certain field.
    assert extraction.confidence == min(extraction.field_confidence.values())


async def test_a_small_receipt_photo_is_upscaled_before_reading(
    ocr_pool: OcrPool, invoice_schema: ExtractionSchema
) -> None:
    """The demo's receipt is 480 px wide with 11 px letters: unreadable without upscaling."""
    page = render(INVOICE, size=11, width=360, margin=12, column=170)
    assert max(page.size) < 400
    assert await extract(ocr_pool, encoded(page, "PNG"), invoice_schema) == EXPECTED


async def test_a_photo_stored_sideways_is_turned_by_its_exif_orientation(
    ocr_pool: OcrPool, invoice_schema: ExtractionSchema
) -> None:
    """Phones store the sensor's pixels and an Orientation tag; 6 means "turn 90° clockwise"."""
    sideways = render(INVOICE).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    sideways.save(buffer, format="JPEG", quality=90, exif=exif)
    assert await extract(ocr_pool, buffer.getvalue(), invoice_schema) == EXPECTED


async def test_a_scanned_pdf_is_rendered_and_read(
    ocr_pool: OcrPool, invoice_schema: ExtractionSchema
) -> None:
    data = scanned_pdf([render(INVOICE)])
    document = inspect_document(data)
    assert document.media_type == "application/pdf"
    assert await extract(ocr_pool, data, invoice_schema) == EXPECTED


async def test_a_mixed_pdf_is_read_page_by_page(ocr_pool: OcrPool, invoice_schema: ExtractionSchema) -> None:
    """A scanned first page (number, vendor, date) and a typed second one with a text layer
    (currency, total): each page is read its own way and the fields come from both."""
    scan = render(INVOICE[:4])
    data = scanned_pdf([scan], text_pages=[["Currency: USD", "Total due: 1,331.00"]])
    extraction = await LocalExtractor(ocr_pool).extract(inspect_document(data), invoice_schema)
    assert extraction.data == EXPECTED
    assert extraction.field_confidence is not None
    assert extraction.field_confidence["total_amount"] == 1.0  # from the text layer: certain
    assert extraction.field_confidence["invoice_number"] < 1.0  # from OCR


async def test_pages_past_the_limit_are_not_read(invoice_schema: ExtractionSchema) -> None:
    """With a one-page limit, the total on page 2 is never seen: the field is missing, not guessed."""
    pool = ocr_pool(workers=1, max_pages=1, dpi=150)
    try:
        data = scanned_pdf([render(INVOICE[:5]), render(INVOICE[5:])])
        with pytest.raises(OutputValidationFailed, match="total_amount"):
            await LocalExtractor(pool).extract(inspect_document(data), invoice_schema)
    finally:
        await pool.close()


async def test_a_document_over_the_time_limit_is_ocr_timeout_and_the_pool_recovers(
    invoice_schema: ExtractionSchema,
) -> None:
    pool = ocr_pool(workers=1, timeout_seconds=0.05, max_pages=20, dpi=300)
    try:
        data = scanned_pdf([render(INVOICE)] * 6)
        with pytest.raises(OcrTimeout, match=r"more than 0\.05 s"):
            await LocalExtractor(pool).extract(inspect_document(data), invoice_schema)
        assert OcrTimeout.retryable  # a replay after raising the limit can succeed
        pool._timeout = 60  # the killed worker was replaced: the next document is read
        assert await extract(pool, encoded(render(INVOICE), "PNG"), invoice_schema) == EXPECTED
    finally:
        await pool.close()


async def test_a_corrupt_image_keeps_its_precise_class(
    ocr_pool: OcrPool, invoice_schema: ExtractionSchema
) -> None:
    """Caught when the document is inspected; and should one reach the workers, they say the same."""
    data = encoded(render(INVOICE), "PNG")[:400]
    with pytest.raises(CorruptDocument):
        inspect_document(data)
    with pytest.raises(CorruptDocument, match="cannot be decoded"):
        await LocalExtractor(ocr_pool).extract(Document(data=data, media_type="image/png"), invoice_schema)


async def test_a_page_of_noise_is_nothing_extracted(
    ocr_pool: OcrPool, invoice_schema: ExtractionSchema
) -> None:
    noise = Image.effect_noise((600, 400), 90).convert("L")
    with pytest.raises(NothingExtracted):
        await LocalExtractor(ocr_pool).extract(inspect_document(encoded(noise, "PNG")), invoice_schema)


async def test_the_pool_admits_what_it_can_read_within_the_grace_period() -> None:
    pool = ocr_pool(grace_seconds=10)
    assert pool.capacity == 2 * 10  # one second per document until measured
    pool.seconds_per_document = 4.0
    assert pool.capacity == 2 * 2
    pool.seconds_per_document = 30.0
    assert pool.capacity == 2  # a slow pool still takes one per worker
    await pool.close()


async def test_reading_speed_is_measured_from_the_workers_own_time(ocr_pool: OcrPool) -> None:
    before = ocr_pool.seconds_per_document
    read = await ocr_pool.read(inspect_document(encoded(render(INVOICE), "PNG")))
    assert 0 < read.seconds < 30
    assert ocr_pool.seconds_per_document == pytest.approx(before + 0.2 * (read.seconds - before))


async def test_ocr_runs_in_other_processes_and_never_blocks_the_event_loop(ocr_pool: OcrPool) -> None:
    """While both workers read, the loop keeps ticking every few milliseconds."""
    documents = [inspect_document(encoded(render(INVOICE), "PNG")) for _ in range(4)]
    reading = asyncio.gather(*(ocr_pool.read(document) for document in documents))
    loop = asyncio.get_running_loop()
    longest = 0.0
    while not reading.done():
        before = loop.time()
        await asyncio.sleep(0.01)
        longest = max(longest, loop.time() - before)
    await reading
    assert longest < 0.5


def test_missing_tessdata_is_one_clear_line(tmp_path: object) -> None:
    with pytest.raises(TessdataMissing, match="install the tesseract-ocr package"):
        find_tessdata(tmp_path)  # type: ignore[arg-type]


async def test_each_document_read_is_counted_in_the_metrics(invoice_schema: ExtractionSchema) -> None:
    """A mixed PDF: one scanned page and one with a text layer, and the worker's time."""
    metrics = Metrics()
    pool = ocr_pool(workers=1, dpi=150, metrics=metrics)
    try:
        data = scanned_pdf([render(INVOICE[:4])], text_pages=[["Currency: USD", "Total due: 1,331.00"]])
        await LocalExtractor(pool).extract(inspect_document(data), invoice_schema)
    finally:
        await pool.close()
    sample = metrics.registry.get_sample_value
    assert sample("docmill_ocr_pages_total", {"source": "ocr"}) == 1
    assert sample("docmill_ocr_pages_total", {"source": "text_layer"}) == 1
    assert sample("docmill_ocr_seconds_count") == 1
    assert 0 < sample("docmill_ocr_seconds_sum") < 60  # type: ignore[operator]


async def test_the_in_flight_bound_follows_the_share_of_documents_that_need_ocr(
    ocr_pool: OcrPool, invoice_schema: ExtractionSchema
) -> None:
    """Until measured, every record counts as a scan; a stream of text lifts the bound, and
    scans bring it back down."""
    extractor = LocalExtractor(ocr_pool)
    assert extractor.capacity == ocr_pool.capacity
    text = inspect_document(b"Invoice Number: T-1\nVendor: Acme\nInvoice Date: 2026-01-02\nTotal: 3.00 EUR\n")
    for _ in range(100):
        await extractor.extract(text, invoice_schema)
    lifted = extractor.capacity
    assert lifted is not None
    assert lifted > 50 * ocr_pool.capacity
    scan = inspect_document(encoded(render(INVOICE), "PNG"))
    for _ in range(5):
        await extractor.extract(scan, invoice_schema)
    assert extractor.capacity is not None
    assert extractor.capacity < lifted / 2
