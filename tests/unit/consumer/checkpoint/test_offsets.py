"""Unit tests of consumer.offsets.PartitionOffsets: the contiguous commit watermark."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.checkpoint.offsets import PartitionOffsets


@st.composite
def completion_orders(draw: st.DrawFn) -> tuple[int, list[int]]:
    start = draw(st.integers(min_value=0, max_value=10**12))
    count = draw(st.integers(min_value=1, max_value=60))
    order = draw(st.permutations(list(range(start, start + count))))
    return start, order


@given(completion_orders())
def test_watermark_is_smallest_unfinished_offset(case: tuple[int, list[int]]) -> None:
    """For any completion order, the watermark is the smallest unfinished offset (or last+1)."""
    start, order = case
    offsets = PartitionOffsets()
    for offset in range(start, start + len(order)):
        offsets.start(offset)
    assert offsets.watermark() == start
    assert offsets.in_flight == len(order)
    finished: set[int] = set()
    for offset in order:
        offsets.finish(offset)
        finished.add(offset)
        unfinished = [o for o in range(start, start + len(order)) if o not in finished]
        expected = min(unfinished) if unfinished else start + len(order)
        assert offsets.watermark() == expected
        assert offsets.in_flight == len(unfinished)


@given(completion_orders(), st.data())
def test_interleaved_starts_and_finishes(case: tuple[int, list[int]], data: st.DataObject) -> None:
    """Starting offsets while others finish keeps the watermark at the smallest unfinished one."""
    start, _ = case
    count = len(case[1])
    offsets = PartitionOffsets()
    started: list[int] = []
    finished: set[int] = set()
    next_offset = start
    while len(finished) < count:
        can_start = next_offset < start + count
        running = [o for o in started if o not in finished]
        if can_start and (not running or data.draw(st.booleans())):
            offsets.start(next_offset)
            started.append(next_offset)
            next_offset += 1
        else:
            chosen = data.draw(st.sampled_from(running))
            offsets.finish(chosen)
            finished.add(chosen)
        running = [o for o in started if o not in finished]
        assert offsets.watermark() == (min(running) if running else next_offset)
        assert offsets.in_flight == len(running)


@given(st.integers(min_value=0, max_value=1000), st.integers(min_value=1, max_value=1000))
def test_gaps_in_offsets_are_allowed(first: int, gap: int) -> None:
    """Offsets need not be contiguous (compaction, transactions): a gap is skipped over."""
    offsets = PartitionOffsets()
    offsets.start(first)
    offsets.start(first + gap)
    offsets.finish(first)
    assert offsets.watermark() == first + gap
    offsets.finish(first + gap)
    assert offsets.watermark() == first + gap + 1
    assert offsets.in_flight == 0


def test_nothing_started_has_no_watermark() -> None:
    """A fresh partition has nothing to commit: watermark None, nothing in flight."""
    offsets = PartitionOffsets()
    assert offsets.watermark() is None
    assert offsets.in_flight == 0


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**6))
def test_starting_a_lower_offset_raises(last: int, back: int) -> None:
    """Starting an offset lower than one already started is a ValueError."""
    offsets = PartitionOffsets()
    offsets.start(last)
    with pytest.raises(ValueError, match="started after"):
        offsets.start(max(0, last - back))


def test_starting_the_same_offset_twice_raises() -> None:
    """Re-starting the last offset (a duplicate delivery) is a ValueError, not double counting."""
    offsets = PartitionOffsets()
    offsets.start(5)
    with pytest.raises(ValueError, match="started after"):
        offsets.start(5)
    assert offsets.in_flight == 1
