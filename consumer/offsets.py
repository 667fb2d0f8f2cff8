"""Per-partition bookkeeping of in-flight records and the contiguous commit watermark.

Records of a partition finish in any order; the offset committed is the
highest one below which *every* record is done, so a crash never skips an
unfinished record (it may only redo finished ones above the watermark).
"""

from __future__ import annotations

from collections import deque


class PartitionOffsets:
    """Offsets of one partition handed out for processing, in the order received."""

    __slots__ = ("_done", "_next", "_pending")

    def __init__(self) -> None:
        self._pending: deque[int] = deque()  # offsets started, ascending
        self._done: set[int] = set()  # finished offsets not yet below the watermark
        self._next: int | None = None  # offset after the last one started

    def start(self, offset: int) -> None:
        if self._next is not None and offset < self._next:
            raise ValueError(f"offset {offset} started after {self._next - 1}")
        self._pending.append(offset)
        self._next = offset + 1

    def finish(self, offset: int) -> None:
        self._done.add(offset)
        # Advance past the finished prefix; amortised O(1) per record.
        while self._pending and self._pending[0] in self._done:
            self._done.discard(self._pending.popleft())

    @property
    def in_flight(self) -> int:
        return len(self._pending) - len(self._done)

    def watermark(self) -> int | None:
        """The offset to commit (next to read), or None when nothing was started."""
        if self._pending:
            return self._pending[0]
        return self._next
