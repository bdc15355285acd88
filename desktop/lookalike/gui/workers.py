"""Background work for the window: QRunnable jobs that report through signals.

Widgets are touched only on the GUI thread. A job runs a plain callable on a
QThreadPool thread and reports back through a :class:`JobSignals` holder (a
QObject living on the GUI thread), so every slot runs on the GUI thread.
Payloads are frozen dataclasses or plain immutable values.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobFailure:
    """What a failed job hands back: the exception, and whether it is a user's problem."""

    error: BaseException
    user_facing: bool  # a LookalikeError: show its message, no traceback
    details: str  # a traceback for bugs (logged, never shown in a dialog)

    @property
    def message(self) -> str:
        return str(self.error) or self.error.__class__.__name__


def _is_user_error(exc: BaseException) -> bool:
    try:
        from lookalike.core.errors import LookalikeError
    except Exception:  # pragma: no cover - core always importable
        return False
    return isinstance(exc, LookalikeError)


class JobSignals(QObject):
    """Signals of one job. Created on the GUI thread; emitted from the worker."""

    succeeded = Signal(object)  # the callable's return value
    failed = Signal(object)  # JobFailure
    progressed = Signal(object)  # whatever the job reports (e.g. core.progress.Progress)
    finished = Signal()  # always, after succeeded or failed


class Job(QRunnable):
    """Run ``fn(*args, **kwargs)`` on a pool thread.

    If ``with_progress`` is true, ``fn`` receives a ``progress`` keyword: a
    callable that emits :attr:`JobSignals.progressed` (thread-safe).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        with_progress: bool = False,
        name: str = "",
        background: bool = False,
        stopping: Callable[[], bool] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.stopping = stopping or (lambda: False)  # true once its runner was stopped
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.name = name or getattr(fn, "__name__", "job")
        self.signals = JobSignals()
        self.background = background
        if with_progress:
            self.kwargs["progress"] = self.signals.progressed.emit

    def run(self) -> None:  # on a pool thread
        t0 = time.perf_counter()
        if self.background:
            lower_thread_priority()
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # reported, never swallowed
            user = _is_user_error(exc)
            details = "" if user else traceback.format_exc()
            if not user:
                # a job cut short by the window closing (its library closed under it) is no bug
                (log.debug if self.stopping() else log.error)("job %s failed:\n%s", self.name, details)
            try:
                self.signals.failed.emit(JobFailure(exc, user, details))
            except RuntimeError:  # the receiver is gone (window closed)
                pass
        else:
            try:
                self.signals.succeeded.emit(result)
            except RuntimeError:
                pass
        finally:
            log.debug("job %s took %.1f ms", self.name, (time.perf_counter() - t0) * 1000)
            try:
                self.signals.finished.emit()
            except RuntimeError:
                pass


def lower_thread_priority(nice: int = 10) -> None:
    """Make the calling thread (and the threads it starts) yield the CPU to the GUI thread.

    Linux keeps a nice value per thread and new threads inherit it, so the
    indexer's decode pool and the encoder's threads started from a niced job
    thread all run below the window. Elsewhere this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if current < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (OSError, AttributeError):
        pass


def make_pool(threads: int, name: str) -> QThreadPool:
    pool = QThreadPool()
    pool.setMaxThreadCount(max(1, threads))
    pool.setObjectName(name)
    return pool


class Throttle(QObject):
    """Pass on at most one value per ``interval_ms`` (the latest), on the GUI thread.

    Workers may report progress thousands of times a second; the window needs
    about ten updates a second. :meth:`push` may be called often; ``fired``
    is emitted with the newest value at most every interval, and once more
    at the end with the last value (:meth:`flush`).
    """

    fired = Signal(object)

    def __init__(self, interval_ms: int = 100, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer)
        self._pending: Any = None
        self._has_pending = False
        self._last_emit = 0.0
        self.interval = interval_ms / 1000.0

    def push(self, value: Any) -> None:
        self._pending = value
        self._has_pending = True
        now = time.monotonic()
        if now - self._last_emit >= self.interval and not self._timer.isActive():
            self._emit()
        elif not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        self._timer.stop()
        if self._has_pending:
            self._emit()

    def _on_timer(self) -> None:
        if self._has_pending:
            self._emit()

    def _emit(self) -> None:
        value = self._pending
        self._pending = None
        self._has_pending = False
        self._last_emit = time.monotonic()
        self.fired.emit(value)


class JobRunner(QObject):
    """Starts jobs on a pool and keeps their signal holders alive until they finish.

    Hold one per kind of work (``threads=1`` makes a serial queue).
    """

    def __init__(self, threads: int, name: str, parent: QObject | None = None, *, background: bool = False) -> None:
        super().__init__(parent)
        self.pool = make_pool(threads, name)
        self.background = background  # jobs run below the GUI thread's CPU priority
        self.stopped = False  # set when the window closes: what fails from then on is not logged as an error
        self._live: set[JobSignals] = set()

    def start(self, job: Job, priority: int = 0) -> JobSignals:
        signals = job.signals
        self._live.add(signals)
        signals.finished.connect(lambda s=signals: self._live.discard(s))
        self.pool.start(job, priority)
        return signals

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_success: Callable[[Any], None] | None = None,
        on_failure: Callable[[JobFailure], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        name: str = "",
        priority: int = 0,
        **kwargs: Any,
    ) -> JobSignals:
        job = Job(
            fn,
            *args,
            with_progress=on_progress is not None,
            name=name,
            background=self.background,
            stopping=lambda: self.stopped,
            **kwargs,
        )
        if on_success is not None:
            job.signals.succeeded.connect(on_success)
        if on_failure is not None:
            job.signals.failed.connect(on_failure)
        if on_progress is not None:
            job.signals.progressed.connect(on_progress)
        if on_finished is not None:
            job.signals.finished.connect(on_finished)
        return self.start(job, priority)

    @property
    def busy(self) -> bool:
        return bool(self._live)

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)
