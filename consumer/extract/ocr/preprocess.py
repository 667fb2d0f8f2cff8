"""What a phone photo or a fax needs before Tesseract reads it well.

Tesseract is trained on dark text on a light page with capitals some 20-40 px tall; a receipt
photographed at 480 px across, a grey fax background or a photo stored sideways (EXIF) reads
badly or not at all. Each step here is cheap and fixes one of those.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageOps

# Below this long edge a page is upscaled: small receipt photos have letters too few pixels
# tall for the recogniser (measured on the bench corpus: a 480 px receipt reads ~70 % of its
# fields as is and all of them at 3x).
UPSCALE_BELOW_PX = 1600
_MAX_UPSCALE = 4.0
# Deskew turns the page only when it leans at least this much (degrees); less, Tesseract
# copes, and a rotation blurs every stroke a little.
MIN_SKEW_DEGREES = 0.3
# Leans looked for: scans and photos of flat pages lean a few degrees, not more.
_MAX_SKEW_DEGREES = 5.0
# The skew is measured on a copy this wide: enough rows per text line, a few ms per angle.
_SKEW_PROBE_WIDTH = 800


def prepare(image: Image.Image) -> Image.Image:
    """Upright, greyscale, full contrast and large enough: the page Tesseract reads best."""
    image = ImageOps.exif_transpose(image) or image  # phones store photos sideways plus a tag
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels are usually "no ink": flatten onto white, not onto black.
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, "white")
        flat.alpha_composite(rgba)
        image = flat
    grey = image.convert("L")
    # A grey or yellowed background and faded ink become white and black again; the 1 %
    # cut-off keeps a few specks of dirt from defining the range.
    grey = ImageOps.autocontrast(grey, cutoff=1)
    long_edge = max(grey.size)
    if 0 < long_edge < UPSCALE_BELOW_PX:
        scale = min(_MAX_UPSCALE, UPSCALE_BELOW_PX / long_edge)
        grey = grey.resize((round(grey.width * scale), round(grey.height * scale)), Image.Resampling.LANCZOS)
    # Scanner specks, sensor noise and JPEG blocks are read as punctuation or break letters
    # apart; a 3-pixel median removes specks smaller than a stroke (after upscaling, so that
    # a small photo's strokes are wider than the filter).
    return grey.filter(ImageFilter.MedianFilter(3))


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
