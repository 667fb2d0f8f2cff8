"""The local backend on scans and photos: field accuracy, speed and whether confidence means anything.

A corpus of invoices and receipts with known truth is rendered here: four fonts, three
layouts (label and value in columns, "Label: value" inline, the value below its label), the
label wordings real documents use, and each document both clean and degraded (turned a degree
or two, blurred, specked, on a grey background, saved as a low-quality JPEG). Formats rotate
through PNG, JPEG, WebP and image-only PDF. Every document goes through the local extractor and
its OCR pool (one worker per core), as a replica runs it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from consumer.extract.local import LocalExtractor
from consumer.fate.errors import ProcessingError
from consumer.fetch.documents import inspect_document
from schemas.extraction import load_schema
from tests.helpers.ocr import ocr_pool
from tests.helpers.scans import FONTS, degrade, encoded, render, scanned_pdf

FIELDS = ("invoice_number", "vendor_name", "invoice_date", "currency", "total_amount")
_VENDORS = (
    "Acme Industrial Supplies Ltd",
    "Northwind Traders",
    "Globex Corporation",
    "Initech GmbH",
    "Brightside Print Co",
    "Umbrella Logistics",
    "Corner Cafe",
    "Cedar Hardware Store",
    "Blue Harbor Seafood",
    "Helios Solar BV",
)
_NUMBER_LABELS = ("Invoice No.", "Invoice #", "Invoice Number:", "Bill number", "Receipt #", "Receipt No.")
_VENDOR_LABELS = ("Vendor:", "Supplier:", "Seller", "Merchant:", "Issued by")
_DATE_LABELS = ("Invoice date:", "Date:", "Date of issue", "Issue date")
_TOTAL_LABELS = ("Total", "Total due:", "Amount payable", "Grand total", "Amount due", "TOTAL")
_CURRENCIES = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": None}
_FORMATS = ("PNG", "JPEG", "WEBP", "PDF")
_LAYOUTS = ("columns", "inline", "stacked")


@dataclass(frozen=True)
class Sample:
    kind: str  # invoice or receipt
    layout: str
    font: str
    image_format: str
    degraded: bool
    data: bytes
    truth: dict[str, Any]


def _truth(rng: random.Random) -> dict[str, Any]:
    year, month, day = 2026, rng.randint(1, 12), rng.randint(1, 28)
    number = rng.choice(
        (
            f"INV-{year}-{rng.randint(1, 9999):04d}",
            f"{year}/INV/{rng.randint(1, 999):04d}",
            f"A-{rng.randint(10000, 99999)}",
            f"R-{rng.randint(100000, 999999)}",
            f"F-{year}-{rng.randint(100, 999)}",
        )
    )
    currency = rng.choice(tuple(_CURRENCIES))
    return {
        "invoice_number": number,
        "vendor_name": rng.choice(_VENDORS),
        "invoice_date": f"{year}-{month:02d}-{day:02d}",
        "currency": currency,
        "total_amount": round(rng.uniform(5, 5000), 2),
    }


def _printed_date(iso: str, rng: random.Random) -> str:
    year, month, day = (int(part) for part in iso.split("-"))
    names = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December")  # fmt: skip
    return rng.choice(
        (
            iso,
            f"{day:02d}/{month:02d}/{year}",
            f"{names[month - 1]} {day}, {year}",
            f"{day} {names[month - 1][:3]} {year}",
        )
    )


def _lines(kind: str, layout: str, truth: dict[str, Any], rng: random.Random) -> list[str | tuple[str, str]]:
    symbol = _CURRENCIES[truth["currency"]]
    amount = f"{truth['total_amount']:,.2f}"
    total = f"{symbol}{amount}" if symbol and rng.random() < 0.5 else f"{amount} {truth['currency']}"
    labelled = [
        (rng.choice(_NUMBER_LABELS if kind == "invoice" else _NUMBER_LABELS[3:]), truth["invoice_number"]),
        (rng.choice(_VENDOR_LABELS), truth["vendor_name"]),
        (rng.choice(_DATE_LABELS), _printed_date(truth["invoice_date"], rng)),
        ("Currency:", truth["currency"]),
    ]
    subtotal = f"{truth['total_amount'] * 0.9:,.2f}"
    tail = [
        ("Subtotal", subtotal),
        ("Tax", f"{truth['total_amount'] * 0.1:,.2f}"),
        (rng.choice(_TOTAL_LABELS), total),
    ]
    header: list[str | tuple[str, str]] = [
        truth["vendor_name"].upper() if kind == "receipt" else "INVOICE",
        "",
    ]
    items: list[str | tuple[str, str]] = [
        "",
        "Description        Qty   Amount",
        f"Services rendered   1     {subtotal}",
        "",
    ]
    body = [*labelled, *items, *tail]
    lines: list[str | tuple[str, str]] = list(header)
    for entry in body:
        if not isinstance(entry, tuple) or layout == "columns":
            lines.append(entry)
        elif layout == "inline":
            label, value = entry
            lines.append(f"{label.rstrip(':')}: {value}")
        else:  # stacked: the value on the line below its label
            lines.extend(entry)
    return lines


def corpus(count: int, seed: int = 7) -> list[Sample]:
    """``count`` documents, half of them the degraded copies of the other half."""
    rng = random.Random(seed)
    samples = []
    for index in range(max(1, count // 2)):
        kind = "receipt" if index % 3 == 2 else "invoice"
        layout = _LAYOUTS[index % len(_LAYOUTS)]
        font = FONTS[index % len(FONTS)]
        truth = _truth(rng)
        page = render(
            _lines(kind, layout, truth, rng),
            font_name=font,
            size=rng.choice((22, 26, 30)) if kind == "invoice" else rng.choice((16, 20)),
            width=1300 if kind == "invoice" else 700,
            column=520 if kind == "invoice" else 300,
        )
        image_format = _FORMATS[index % len(_FORMATS)]
        for degraded in (False, True):
            shown = (
                degrade(
                    page,
                    seed=index,
                    rotate=rng.choice((-2.0, -1.0, 1.0, 1.5, 2.0)),
                    blur=rng.uniform(0.4, 0.9),
                    noise=rng.uniform(0.003, 0.012),
                    background=rng.randint(185, 225),
                )
                if degraded
                else page
            )
            if image_format == "PDF":
                data = scanned_pdf([shown])
            else:
                data = encoded(shown, image_format, quality=rng.randint(35, 60) if degraded else 90)
            samples.append(Sample(kind, layout, font, image_format, degraded, data, truth))
    return samples


def _correct(field: str, got: Any, want: Any) -> bool:
    if field == "total_amount":
        return isinstance(got, int | float) and abs(got - want) < 0.005
    return bool(got == want)


async def bench_ocr(count: int) -> dict[str, Any]:
    samples = corpus(count)
    schema = load_schema("invoice")
    assert schema is not None
    cores = len(os.sched_getaffinity(0))
    pool = ocr_pool(workers=cores, timeout_seconds=120)
    extractor = LocalExtractor(pool)
    # Warm the workers (each loads the recogniser once) outside the timing.
    await asyncio.gather(*(pool.read(inspect_document(samples[0].data)) for _ in range(cores)))
    pages = 0

    async def one(sample: Sample) -> dict[str, Any]:
        nonlocal pages
        document = inspect_document(sample.data)
        pages += document.pages or 1
        try:
            extraction = await extractor.extract(document, schema)
            data, confidence, error = extraction.data, extraction.confidence, None
        except ProcessingError as failure:
            data, confidence, error = {}, None, failure.error_class.value
        right = {field: _correct(field, data.get(field), sample.truth[field]) for field in FIELDS}
        return {"sample": sample, "right": right, "confidence": confidence, "error": error}

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(sample) for sample in samples))
    seconds = time.perf_counter() - started
    await extractor.close()
    report: dict[str, Any] = {"documents": len(samples), "pages": pages, "cores": cores, "seconds": seconds}
    for label, degraded in (("clean", False), ("degraded", True)):
        group = [o for o in outcomes if o["sample"].degraded is degraded]
        fields = [ok for o in group for ok in o["right"].values()]
        full = [o for o in group if all(o["right"].values())]
        report[label] = {
            "documents": len(group),
            "field_accuracy": sum(fields) / len(fields),
            "fully_correct": len(full) / len(group),
            "by_field": {f: sum(o["right"][f] for o in group) / len(group) for f in FIELDS},
        }
    right_docs = [
        o["confidence"] for o in outcomes if all(o["right"].values()) and o["confidence"] is not None
    ]
    # A wrong field: a value that is there but not the truth (a missing one fails the extraction).
    wrong_docs = [
        o["confidence"] for o in outcomes if not all(o["right"].values()) and o["confidence"] is not None
    ]
    report["confidence_fully_correct"] = sum(right_docs) / len(right_docs) if right_docs else None
    report["confidence_with_a_wrong_field"] = sum(wrong_docs) / len(wrong_docs) if wrong_docs else None
    report["documents_with_a_wrong_field"] = len(wrong_docs)
    report["failed"] = {
        error: sum(1 for o in outcomes if o["error"] == error)
        for error in {o["error"] for o in outcomes}
        if error
    }
    report["pages_per_second_per_core"] = pages / seconds / cores
    report["documents_per_second_per_core"] = len(samples) / seconds / cores
    return report


def render_ocr(report: dict[str, Any]) -> list[str]:
    def share(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    lines = [
        f"6. Local backend on scans and photos: {report['documents']} generated invoices and receipts "
        f"({report['pages']} pages; 4 fonts, 3 layouts, PNG/JPEG/WebP/image-only PDF), {report['cores']} "
        "OCR workers (targets: ≥ 0.95 field accuracy clean, ≥ 0.85 degraded, ≥ 2 pages/s per core)",
        "| documents | field accuracy | fully correct | invoice no. | vendor | date | currency | total |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label in ("clean", "degraded"):
        row = report[label]
        by = row["by_field"]
        lines.append(
            f"| {label} ({row['documents']}) | {row['field_accuracy']:.3f} | {row['fully_correct']:.2f} | "
            + " | ".join(f"{by[f]:.2f}" for f in FIELDS)
            + " |"
        )
    lines += [
        "",
        f"Speed: {report['pages_per_second_per_core']:.2f} pages/s per core "
        f"({report['documents_per_second_per_core']:.2f} documents/s per core, "
        f"{report['seconds']:.1f} s in all). "
        f"Mean confidence: {share(report['confidence_fully_correct'])} for fully correct documents, "
        f"{share(report['confidence_with_a_wrong_field'])} for the {report['documents_with_a_wrong_field']} "
        f"with a wrong field. Failed: {report['failed'] or 'none'}.",
        "",
    ]
    return lines
