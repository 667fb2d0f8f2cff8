"""The commit-metadata format: which offsets above a committed watermark are already finished.

Records of a partition finish in any order, so the committed offset (the
watermark) is the lowest unfinished one. The finished offsets above it travel
in the commit's metadata, a zlib-compressed bitmap, so that the next owner of
the partition (after a crash or a rebalance) skips them, and `docmill status`
counts them as done. The consumer writes it; the operator tools read it.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable

# Kafka refuses commit metadata above offset.metadata.max.bytes (4096 by default).
MAX_METADATA_BYTES = 4000
_PREFIX = "dm1:"
_MAX_BITMAP_BYTES = 1024 * 1024


def encode_done(watermark: int, done: Iterable[int]) -> str:
    """Metadata naming the finished offsets above ``watermark``; "" when none, or too many to fit.

    A bitmap (bit i = offset watermark + 1 + i) compresses to a few bytes for
    the common case of a dense run of finished records behind one slow one.
    """
    above = sorted(offset for offset in done if offset > watermark)
    if not above:
        return ""
    size = (above[-1] - watermark + 7) // 8
    if size > _MAX_BITMAP_BYTES:
        return ""  # a gap too wide to describe (and to read back): commit the plain watermark
    bits = bytearray(size)
    for offset in above:
        index = offset - watermark - 1
        bits[index // 8] |= 1 << (index % 8)
    encoded = _PREFIX + base64.urlsafe_b64encode(zlib.compress(bytes(bits), 9)).decode("ascii")
    # Too many to fit: the plain watermark is still correct, only less thrifty.
    return encoded if len(encoded) <= MAX_METADATA_BYTES else ""


def decode_done(watermark: int, metadata: str | None) -> set[int]:
    """The finished offsets above ``watermark`` recorded by ``encode_done``; empty if unreadable."""
    if not metadata or not metadata.startswith(_PREFIX):
        return set()
    try:
        # Bounded: even hostile metadata cannot inflate past 8M offsets' worth of bits.
        inflater = zlib.decompressobj()
        bits = inflater.decompress(base64.urlsafe_b64decode(metadata[len(_PREFIX) :]), _MAX_BITMAP_BYTES)
        if not inflater.eof:
            return set()  # truncated or oversized: not something encode_done wrote
    except (ValueError, zlib.error):
        return set()  # metadata written by something else: redo rather than skip
    return {
        watermark + 1 + byte_index * 8 + bit
        for byte_index, byte in enumerate(bits)
        if byte
        for bit in range(8)
        if byte & (1 << bit)
    }
