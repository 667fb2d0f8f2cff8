"""Per-partition bookkeeping of started and finished offsets: the commit watermark and its metadata.

Records of a partition finish in any order; the offset committed is the
highest one below which *every* record is done, so a crash never skips an
unfinished record. The offsets already finished *above* the watermark travel
in the commit's metadata (``schemas.commit_metadata``), so that after a crash
or a rebalance the next owner skips them and re-pays only for what was truly
in flight.
"""

from __future__ import annotations

from collections import deque

from schemas.commit_metadata import encode_done


class PartitionOffsets:
    """Offsets of one partition handed out for processing, in the order received.

    ``already_done`` are offsets a previous owner finished (from the commit
    metadata): they are skipped when read, and remembered in every commit
    until the watermark passes them.
    """

    __slots__ = ("_done", "_next", "_pending", "_skip")

    def __init__(self, already_done: set[int] | None = None) -> None:
        self._pending: deque[int] = deque()  # offsets started, ascending
        self._done: set[int] = set()  # finished offsets not yet below the watermark
        self._next: int | None = None  # offset after the last one started
        self._skip: set[int] = set(already_done or ())

    def should_skip(self, offset: int) -> bool:
        return offset in self._skip

    def advance_to(self, position: int) -> None:
        """Nothing in flight and the consumer has read up to ``position``: everything below is done.

        The offsets in between were not records (transaction markers), or were
        records already finished here.
        """
        if self.in_flight == 0 and (self._next is None or position > self._next):
            self._pending.clear()
            self._done.clear()
            self._next = position

    def accepts(self, offset: int) -> bool:
        """Whether ``offset`` comes after every offset started so far."""
        return self._next is None or offset >= self._next

    def start(self, offset: int) -> None:
        if self._next is not None and offset < self._next:
            raise ValueError(f"offset {offset} started after {self._next - 1}")
        self._pending.append(offset)
        self._next = offset + 1

    def finish(self, offset: int) -> None:
        self._done.add(offset)
        self._skip.discard(offset)
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
        mark = self._next
        # Offsets a previous owner finished right at the watermark are done too: step
        # over them, or the next commit's metadata (which starts above it) forgets them.
        while mark is not None and mark in self._skip:
            mark += 1
        return mark

    def metadata(self) -> str:
        """Commit metadata for the current watermark: the finished offsets above it."""
        mark = self.watermark()
        if mark is None:
            return ""
        return encode_done(mark, self._done | self._skip)
