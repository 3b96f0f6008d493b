"""How long the event loop went without running: a 10 ms timer that records its late ticks.

A window that never blocks keeps every tick close to 10 ms; the longest gap beyond the
interval is the longest stall a person could feel (a frozen window at 100 ms and more).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer


class StallMeter(QObject):
    """Measures the event loop's longest stall between :meth:`start` and :meth:`stop`."""

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.interval_ms = interval_ms
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps_ms: list[float] = []
        self._last = 0.0
        self.worst_at = 0.0

    def start(self) -> None:
        self.gaps_ms.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        """Stop measuring; return the longest stall in ms."""
        self.timer.stop()
        return self.longest_ms

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = max(0.0, (now - self._last) * 1000 - self.interval_ms)
        if gap > self.longest_ms:
            self.worst_at = self._last  # when the longest stall began (perf_counter)
        self.gaps_ms.append(gap)
        self._last = now

    @property
    def longest_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the stalls, in ms."""
        if not self.gaps_ms:
            return 0.0
        ordered = sorted(self.gaps_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
