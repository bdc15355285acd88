"""Measure how long the GUI event loop goes without running (its longest stall).

A precise QTimer asks to run every few milliseconds; any gap between two runs
beyond the interval is time the event loop was busy with something else (a
paint, a slot, or a Python thread holding the GIL). The longest gap is the
freeze a person would feel.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer


@dataclass(frozen=True)
class StallReport:
    longest_ms: float
    p99_ms: float
    ticks: int
    over_50ms: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"longest event-loop stall {self.longest_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"{self.over_50ms} stalls over 50 ms in {self.seconds:.1f} s ({self.ticks} ticks)"
        )


class StallMeter(QObject):
    def __init__(self, interval_ms: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval = interval_ms / 1000.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self._start = 0.0
        self._stalls: list[float] = []
        self._worst: list[tuple[float, float]] = []  # (stall, seconds after start)

    def start(self) -> None:
        self._stalls.clear()
        self._worst.clear()
        self._start = self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> StallReport:
        self._timer.stop()
        return self.report()

    def _tick(self) -> None:
        now = time.perf_counter()
        stall = max(0.0, now - self._last - self.interval)
        self._stalls.append(stall)
        if stall > 0.03:
            self._worst.append((stall, self._last - self._start))
        self._last = now

    def worst(self, n: int = 5) -> list[tuple[float, float]]:
        """The ``n`` longest stalls as (milliseconds, seconds after start when it began)."""
        return [(s * 1000, t) for s, t in sorted(self._worst, reverse=True)[:n]]

    def report(self) -> StallReport:
        stalls = sorted(self._stalls)
        n = len(stalls)
        longest = stalls[-1] * 1000 if n else 0.0
        p99 = stalls[min(n - 1, int(n * 0.99))] * 1000 if n else 0.0
        return StallReport(longest, p99, n, sum(1 for s in stalls if s > 0.05), time.perf_counter() - self._start)
