"""Progress events and cooperative cancellation shared by every long job."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    """What a long job is doing; shared by every producer and every view of progress.

    Counts are photos, except DOWNLOAD (bytes of a model file) and FACES (photos
    whose faces were looked for); TEXT counts photos read for their text.
    """

    SCAN = "scanning"
    ENCODE = "indexing"
    FACES = "faces"
    TEXT = "reading text"
    DOWNLOAD = "downloading"
    LOAD_MODEL = "loading model"
    SAVE = "saving"

    @property
    def counts_bytes(self) -> bool:
        return self is Stage.DOWNLOAD


@dataclass(frozen=True)
class Progress:
    """Where a long job stands. ``total`` is None while still unknown."""

    stage: Stage | str
    done: int
    total: int | None
    rate: float = 0.0  # items per second over the recent window
    note: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def eta_seconds(self) -> float | None:
        if not self.total or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    return None


class Cancelled(Exception):
    """Raised inside a job when its CancelToken was set."""


class CancelToken:
    """A flag a job checks between items. Also supports pause/resume."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # wake a paused job so it can stop

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def check(self) -> None:
        """Block while paused; raise Cancelled if cancelled."""
        while not self._running.wait(0.25):
            pass
        if self._cancel.is_set():
            raise Cancelled()


class RateMeter:
    """Items per second over a sliding window of recent updates."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._samples: list[tuple[float, int]] = []

    def update(self, done: int) -> float:
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window:
            self._samples.pop(0)
        t0, d0 = self._samples[0]
        dt = now - t0
        return (done - d0) / dt if dt > 0 else 0.0
