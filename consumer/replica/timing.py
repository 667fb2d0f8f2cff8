"""When a periodic duty of the poll loop is due: commits, share refreshes, drain checks."""

from __future__ import annotations

import time
from collections.abc import Callable


class Every:
    """Due once ``interval`` seconds have passed since it last ran (or since it was made)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last = clock()

    def due(self) -> bool:
        return self._clock() - self._last >= self.interval

    def ran(self) -> None:
        self._last = self._clock()
