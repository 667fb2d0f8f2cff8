"""Scans and photos made on the spot: documents rendered to images, degraded as real ones are.

Fonts come from Debian's fonts-dejavu-core and fonts-liberation2 (deploy/install-prerequisites.sh
installs them); Pillow's own font stands in for any that is missing.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFilter, ImageFont

_FONT_FILES = {
    "sans": ("dejavu/DejaVuSans.ttf",),
    "serif": ("dejavu/DejaVuSerif.ttf", "liberation2/LiberationSerif-Regular.ttf"),
    "mono": ("dejavu/DejaVuSansMono.ttf", "liberation2/LiberationMono-Regular.ttf"),
    "liberation-sans": ("liberation2/LiberationSans-Regular.ttf",),
}
_FONT_ROOTS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"))
FONTS = tuple(_FONT_FILES)


def font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for relative in _FONT_FILES[name]:
        for root in _FONT_ROOTS:
            path = root / relative
            if path.is_file():
                return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def render(
    lines: Sequence[str | tuple[str, str]],
    *,
    font_name: str = "sans",
    size: int = 28,
    width: int = 1200,
    margin: int = 60,
    column: int = 560,
) -> Image.Image:
    """A white page with one line per entry; a (label, value) pair prints the value in a
    second column, as forms and receipts lay them out."""
    face = font(font_name, size)
    step = int(size * 1.6)
    page = Image.new("L", (width, margin * 2 + step * len(lines)), 255)
    draw = ImageDraw.Draw(page)
    for row, line in enumerate(lines):
        y = margin + row * step
        if isinstance(line, tuple):
            label, value = line
            draw.text((margin, y), label, font=face, fill=0)
            draw.text((margin + column, y), value, font=face, fill=0)
        else:
            draw.text((margin, y), line, font=face, fill=0)
    return page


def degrade(
    page: Image.Image,
    *,
    seed: int,
    rotate: float = 1.5,
    blur: float = 0.8,
    noise: float = 0.04,
    background: int = 200,
) -> Image.Image:
    """The page as a cheap scanner or a phone sees it: a little turned, soft, specked, grey."""
    rng = random.Random(seed)
    grey = page.point(
        lambda value: background + (value * (255 - background)) // 255 if value > 128 else value
    )
    turned = grey.rotate(rotate, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=background)
    soft = turned.filter(ImageFilter.GaussianBlur(blur))
    pixels = soft.load()
    assert pixels is not None
    for _ in range(int(soft.width * soft.height * noise)):
        x, y = rng.randrange(soft.width), rng.randrange(soft.height)
        pixels[x, y] = rng.choice((0, 255))
    return soft


def encoded(page: Image.Image, image_format: str, quality: int = 90) -> bytes:
    """The page as PNG, JPEG, WEBP or GIF bytes (``quality`` for the lossy ones)."""
    buffer = io.BytesIO()
    image = page.convert("RGB") if image_format in ("JPEG", "WEBP") else page
    options = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def scanned_pdf(pages: Sequence[Image.Image], *, text_pages: Sequence[Sequence[str]] = ()) -> bytes:
    """A PDF of page images without a text layer (as a scanner writes one); each of
    ``text_pages`` is added after them as a page with a real text layer."""
    pdf = FPDF(unit="pt")
    for page in pages:
        width, height = page.width * 72 / 200, page.height * 72 / 200  # the scan was 200 dpi
        pdf.add_page(format=(width, height))
        buffer = io.BytesIO()
        page.convert("L").save(buffer, format="PNG")
        pdf.image(buffer, x=0, y=0, w=width, h=height)
    for lines in text_pages:
        pdf.add_page(format="A4")
        pdf.set_font("Helvetica", size=11)
        for line in lines:
            pdf.cell(0, 16, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
