"""Regenerates the bundled sample invoices (deploy/samples/invoices/).

Run with the dev dependencies installed: ``.venv/bin/python deploy/samples/make_samples.py``.
The outputs are committed; this script documents how they were made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw

OUT = Path(__file__).parent / "invoices"

INVOICES = [
    (
        "INV-2026-0001",
        "Acme Industrial Supplies Ltd",
        "2026-01-15",
        "EUR",
        [("Steel brackets", 120, 2.5), ("Hex bolts M8 (box)", 10, 14.9)],
    ),
    (
        "INV-2026-0002",
        "Northwind Traders",
        "2026-01-22",
        "USD",
        [("Coffee beans 1kg", 24, 18.0), ("Paper cups (1000)", 3, 42.5)],
    ),
    ("A-77812", "Globex Corporation", "2026-02-03", "USD", [("Consulting, February", 1, 4800.0)]),
    (
        "2026/INV/0415",
        "Initech GmbH",
        "2026-02-11",
        "EUR",
        [("Software licence (annual)", 5, 349.0), ("Support plan", 1, 990.0)],
    ),
    (
        "UK-55102",
        "Brightside Print Co",
        "2026-02-19",
        "GBP",
        [("Business cards (500)", 4, 38.0), ("Flyers A5 (2000)", 1, 156.4)],
    ),
    (
        "INV-88341",
        "Umbrella Logistics",
        "2026-03-01",
        "USD",
        [("Freight Rotterdam-Newark", 1, 2310.75), ("Customs handling", 1, 180.0)],
    ),
    (
        "F-2026-219",
        "Boulangerie Martin SARL",
        "2026-03-07",
        "EUR",
        [("Catering, staff event", 1, 1265.0)],
    ),
    (
        "INV-0099-B",
        "Stark Office Furniture",
        "2026-03-14",
        "USD",
        [("Ergonomic chair", 6, 412.0), ("Standing desk", 2, 689.0)],
    ),
    (
        "R-118204",
        "Cedar Hardware Store",
        "2026-03-18",
        "CAD",
        [("Paint, 4L", 3, 54.99), ("Rollers", 4, 8.5)],
    ),
    (
        "INV-7731",
        "Blue Harbor Seafood",
        "2026-03-21",
        "USD",
        [("Salmon fillet (kg)", 15, 24.8), ("Delivery", 1, 35.0)],
    ),
    (
        "2026-INV-00042",
        "Helios Solar BV",
        "2026-03-25",
        "EUR",
        [("Panel inspection", 1, 640.0), ("Inverter replacement", 1, 1875.0)],
    ),
    (
        "INV-31337",
        "Quantum Cloud Hosting Inc",
        "2026-03-30",
        "USD",
        [("Compute, March", 1, 3120.44), ("Storage, March", 1, 219.56)],
    ),
]


def lines_of(
    number: str, vendor: str, date: str, currency: str, items: list[tuple[str, int, float]]
) -> list[str]:
    total = round(sum(qty * price for _, qty, price in items), 2)
    lines = [
        "INVOICE",
        f"Vendor: {vendor}",
        f"Invoice Number: {number}",
        f"Invoice Date: {date}",
        f"Currency: {currency}",
        "",
        "Description | Qty | Unit price | Amount",
    ]
    lines += [f"{name} | {qty} | {price:,.2f} | {qty * price:,.2f}" for name, qty, price in items]
    lines += ["", f"Subtotal: {total:,.2f}", "Tax: 0.00", f"Total: {total:,.2f}"]
    return lines


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for index, invoice in enumerate(INVOICES, start=1):
        lines = lines_of(*invoice)
        if index % 3 == 0:
            (OUT / f"invoice-{index:02d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            continue
        pdf = FPDF()
        pdf.set_creation_date(datetime(2026, 4, 1, tzinfo=UTC))  # reproducible bytes
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for line in lines:
            pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
        pdf.output(str(OUT / f"invoice-{index:02d}.pdf"))
    # A photographed receipt: an image, which only the claude backend can read.
    image = Image.new("RGB", (480, 320), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(
        lines_of("RCPT-5521", "Corner Cafe", "2026-03-31", "USD", [("Lunch", 3, 12.5)])
    ):
        draw.text((16, 12 + row * 20), line, fill="black")
    image.save(OUT / "receipt-13.png", optimize=True)


if __name__ == "__main__":
    main()
