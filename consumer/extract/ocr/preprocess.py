"""What a phone photo or a fax needs before Tesseract reads it well.

Tesseract is trained on dark text on a light, level page with capitals some 20-40 px tall; a
receipt photographed at 480 px across, a grey fax background, a page fed in crooked, scanner
specks or a photo stored sideways (EXIF) read badly or not at all. Each step here is cheap
(tens of milliseconds) and fixes one of those.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageOps

# Text whose lines of ink are fewer pixels tall than this (a 15 px font's are ~10) is upscaled
# to about the target: the recogniser is trained on larger print, and a receipt photographed
# at 480 px across has lines of 8 (it reads ~70 % of such a receipt's fields as is, all of them
# at 2-3x). Larger text is read at its own size: upscaling it costs time and sharpness.
SMALL_TEXT_PX = 10
_TARGET_TEXT_PX = 20
_MAX_UPSCALE = 4.0
# A page with more lone dark pixels than this share of all pixels is speckled (measured: clean
# renders and scans of print have under 0.0001, a cheap scanner's specks 0.001 and more).
_SPECKLED_SHARE = 0.0003
# Deskew turns the page only when it leans at least this much (degrees); less, Tesseract
# copes, and a rotation blurs every stroke a little.
MIN_SKEW_DEGREES = 0.3
# Leans looked for: scans and photos of flat pages lean a few degrees, not more.
_MAX_SKEW_DEGREES = 5.0
# The skew is measured on a copy this wide: enough rows per text line, a few ms per angle.
_SKEW_PROBE_WIDTH = 800


def prepare(image: Image.Image) -> Image.Image:
    """Upright, greyscale, full contrast, level, free of specks and large enough: the page
    Tesseract reads best."""
    image = ImageOps.exif_transpose(image) or image  # phones store photos sideways plus a tag
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels are usually "no ink": flatten onto white, not onto black.
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, "white")
        flat.alpha_composite(rgba)
        image = flat
    # A grey or yellowed background and faded ink become white and black again; the 1 %
    # cut-off keeps a few specks of dirt from defining the range.
    grey = ImageOps.autocontrast(image.convert("L"), cutoff=1)
    skew = skew_degrees(grey)
    if abs(skew) >= MIN_SKEW_DEGREES:
        grey = rotate(grey, -skew)  # turned back level
    height = text_height(grey)
    if height is not None and height < SMALL_TEXT_PX:
        scale = min(_MAX_UPSCALE, _TARGET_TEXT_PX / height)
        grey = grey.resize((round(grey.width * scale), round(grey.height * scale)), Image.Resampling.LANCZOS)
    if speckled(grey):
        # Scanner specks and sensor noise are read as punctuation or break letters apart; a
        # 3-pixel median removes specks smaller than a stroke. Only on a speckled page: on a
        # clean one it would take the dots and hyphens of small print with it.
        grey = grey.filter(ImageFilter.MedianFilter(3))
    return grey


def speckled(page: Image.Image) -> bool:
    """Whether the page has more lone dark pixels (no dark neighbour) than print ever has."""
    ink = np.asarray(page, dtype=np.uint8) < 128
    padded = np.pad(ink, 1).astype(np.uint8)
    neighbours = sum(
        padded[1 + dy : padded.shape[0] - 1 + dy, 1 + dx : padded.shape[1] - 1 + dx]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    lone = np.count_nonzero(ink & (neighbours == 0))
    return bool(lone > _SPECKLED_SHARE * ink.size)


def text_height(page: Image.Image) -> float | None:
    """The median height of the page's text lines in pixels (None without any): rows of ink
    separated by blank rows, as the level page shows them."""
    ink = np.asarray(page, dtype=np.uint8) < 128
    inked = ink.sum(axis=1) > max(3, 0.01 * page.width)  # a few specks do not make a line
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inked.astype(np.int8), [0]))))
    runs = edges[1::2] - edges[::2]
    runs = runs[runs >= 3]
    return float(np.median(runs)) if runs.size else None


def rotate(image: Image.Image, degrees: float) -> Image.Image:
    """The page turned counter-clockwise by ``degrees``, the uncovered corners white."""
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)


def skew_degrees(page: Image.Image) -> float:
    """How far the text lines lean, counter-clockwise in degrees, by projection profile: turned
    back by the right angle, the page's ink falls into sharp rows (text lines) and clean gaps,
    so the row sums vary most. Coarse steps first, then fine ones around the best."""
    scale = min(1.0, _SKEW_PROBE_WIDTH / max(1, page.width))
    probe = page.resize((max(1, round(page.width * scale)), max(1, round(page.height * scale))))
    ink = probe.point(lambda value: 255 if value < 128 else 0)

    def sharpness(degrees: float) -> float:
        turned = np.asarray(
            ink.rotate(-degrees, resample=Image.Resampling.NEAREST, expand=True), dtype=np.float32
        )
        rows = turned.sum(axis=1)
        return float(np.square(np.diff(rows)).sum())

    coarse = max(np.arange(-_MAX_SKEW_DEGREES, _MAX_SKEW_DEGREES + 0.01, 1.0), key=sharpness)
    fine = max(np.arange(coarse - 0.9, coarse + 0.91, 0.1), key=sharpness)
    return round(float(fine), 2)
