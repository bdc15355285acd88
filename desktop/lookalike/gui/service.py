"""The window's link to the library: every call to core.search runs off the GUI thread.

:class:`LibraryService` (a QObject the window talks to) owns one
:class:`~lookalike.core.engine.SearchEngine` (``service.engine``) and
three serial queues of work:

* control: open the library, load the model, add a folder, list folders, status;
* queries: searches (a newer search replaces one still waiting);
* writes: indexing runs and folder removals, in order.

The engine is thread-safe (the catalog and the graph take their own locks), so
a search runs while an indexing run goes on and sees what is indexed so far.
After each batch an indexing run commits, the service reads the library's
status and folders again (at most twice a second) and says so through
``status_changed`` and ``folders_changed``. Indexing progress is handed over
through a one-slot mailbox: the worker keeps only the newest event and wakes
the GUI at most once per delivery, and the GUI passes on about ten updates a
second.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from lookalike.core.index.jobs import IndexJob, IndexKind, IndexQueue
from lookalike.core.store.paths import AppPaths
from lookalike.gui.records import FolderRow
from lookalike.gui.results import ResultItem
from lookalike.gui.workers import JobFailure, JobRunner, Throttle

if TYPE_CHECKING:
    from lookalike.core.engine import Failure, LibraryStatus, SearchEngine
    from lookalike.core.index.watch import FolderWatcher, WatchUpdate
    from lookalike.core.progress import CancelToken, Progress, ProgressCallback
    from lookalike.core.search.model import Query

log = logging.getLogger(__name__)

T = TypeVar("T")

# How many results a search asks for; the grid shows them all (virtualised).
DEFAULT_K = 2000


@dataclass(frozen=True)
class EngineConfig:
    """Which library and model the SearchEngine opens."""

    library: Path | None = None  # None: the default library under AppPaths.data
    model: str | None = None  # None: what the library was built with (else the offline model)
    model_file: Path | None = None
    device: str | None = None


class IndexReport(Protocol):
    """What the window reads of an indexing run's report (core.indexer.IndexReport, handed on by
    SearchEngine.index; the window reaches core only through core.search)."""

    @property
    def added(self) -> int: ...
    @property
    def updated(self) -> int: ...
    @property
    def moved(self) -> int: ...
    @property
    def removed(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def offline_folders(self) -> tuple[Path, ...]: ...
    @property
    def cancelled(self) -> bool: ...


@dataclass(frozen=True)
class OpenOutcome:
    status: LibraryStatus
    folders: tuple[FolderRow, ...]
    read_only: bool
    message: str = ""  # why it is read-only, if it is


@dataclass(frozen=True)
class SearchRequest:
    id: int
    query: Query
    text: str
    k: int
    started: float


@dataclass(frozen=True)
class SearchOutcome:
    request: SearchRequest
    results: tuple[ResultItem, ...]  # best first
    seconds: float
    matches: int = -1  # how many results the answer says match (-1: the results carry no answer)
    note: str = ""  # why none matches, when none does


@dataclass(frozen=True)
class SearchFailure:
    request: SearchRequest
    failure: JobFailure


@dataclass(frozen=True)
class IndexOutcome:
    job: IndexJob
    report: IndexReport | None  # None when the run failed or was cancelled before it reported
    cancelled: bool
    seconds: float


class Operation(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    INDEX = "index"
    MODEL = "model"
    FOLDERS = "folders"
    STATUS = "status"
    FAILURES = "failures"


@dataclass(frozen=True)
class OperationFailure:
    what: Operation
    subject: str  # the folder or model it was about
    failure: JobFailure


@dataclass
class _Mailbox:
    """The newest progress event from a worker; the GUI takes it when woken."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    value: Progress | None = None
    waiting: bool = False


def default_open(config: EngineConfig, writer: bool) -> SearchEngine:
    """The window's engine. ``writer``: it may write, but takes the library's writer lock
    only while it writes (SearchEngine.writing), so the command line can write the library
    while the window is open and idle."""
    from lookalike.core.engine import SearchEngine

    if writer:
        return SearchEngine.open_on_demand(
            config.library, model=config.model, model_file=config.model_file, device=config.device, create=True
        )
    return SearchEngine.open(config.library, model=config.model, model_file=config.model_file, device=config.device)


def _answered(engine: SearchEngine, query: Query, k: int) -> tuple[list, int, str]:
    """A search's answer (:meth:`SearchEngine.answer`) over its own few candidates, then the
    rest of the ``k`` best by plain score, none of them matches: the "kinds" rule re-ranks
    each candidate through the offline classifier, so it judges the best
    :data:`lookalike.core.search.answer.CANDIDATES` at most, not all ``k``."""
    ans = engine.answer(query)
    if ans.rule == "chosen":  # filters, people: every photo they choose is the answer, no re-ranking
        ans = engine.answer(query, k=k)
        return list(ans.results), ans.matches, ans.note
    results = list(ans.results)
    if len(results) >= k:
        return results[:k], ans.matches, ans.note
    seen = {r.photo_id for r in results}
    vec = engine.embed(query) if query.has_vector_terms else None
    rest = [r for r in engine.search(query, k=k, vector=vec) if r.photo_id not in seen]
    results += [replace(r, match=False, confidence=None) for r in rest[: k - len(results)]]
    return results, ans.matches, ans.note


def _folder_rows(engine: SearchEngine) -> tuple[FolderRow, ...]:
    return tuple(FolderRow.from_info(f) for f in engine.folders())


# A unit of write work: given a progress callback, a cancel token and a commit hook, it runs
# on the write queue and returns the indexer's report.
WriteJob = Callable[["ProgressCallback", "CancelToken", Callable[[], None]], "IndexReport"]


def _return_free_heap() -> None:
    """Hand the heap a search has freed back to the system. glibc keeps freed memory in
    the thread's arena: a search that reads a large graph from its file in chunks would
    leave about 150 MB resident at 100,000 photos. A few milliseconds; nothing elsewhere."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl)
        return None


class LibraryService(QObject):
    """Runs the engine's work on pool threads and reports through signals."""

    opened = Signal(object)  # OpenOutcome
    open_failed = Signal(object)  # JobFailure
    model_loading = Signal()
    model_loaded = Signal(object)  # LibraryStatus
    model_failed = Signal(object)  # JobFailure
    status_changed = Signal(object)  # LibraryStatus (after each commit of an indexing run, too)
    folders_changed = Signal(object)  # tuple[FolderRow, ...]
    search_started = Signal(object)  # SearchRequest
    search_finished = Signal(object)  # SearchOutcome
    search_failed = Signal(object)  # SearchFailure
    indexing_started = Signal(object)  # IndexJob
    indexing_progressed = Signal(object)  # core.progress.Progress, about 10 a second
    indexing_paused = Signal(bool)
    indexing_finished = Signal(object)  # IndexOutcome
    operation_failed = Signal(object)  # OperationFailure
    model_switched = Signal(object)  # LibraryStatus of the library built with the new model
    disk_changed = Signal(object)  # core.watch.WatchUpdate: the folder watcher indexed changes
    changed_elsewhere = Signal()  # another process (the command line) wrote the library
    _progress_ready = Signal()
    _committed = Signal()

    def __init__(
        self,
        paths: AppPaths,
        config: EngineConfig | None = None,
        *,
        open_engine: Callable[[EngineConfig, bool], SearchEngine] = default_open,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.paths = paths
        self.config = config or EngineConfig()
        self._open_engine = open_engine
        self.engine: SearchEngine | None = None
        self.read_only = False
        self.closing = False
        self._control = JobRunner(1, "lookalike-control", self)
        self._queries = JobRunner(1, "lookalike-queries", self)
        self._writes = JobRunner(1, "lookalike-writes", self, background=True)
        self._model = JobRunner(1, "lookalike-model", self, background=True)
        self._search_seq = 0
        self._adding = 0
        self._search_running: SearchRequest | None = None
        self._search_waiting: SearchRequest | None = None
        self.latest_search_id = 0
        self._token: CancelToken | None = None  # of the running index job
        self._runs = IndexQueue()  # the running index job, and what runs after it
        self._mailbox = _Mailbox()
        self._throttle = Throttle(100, self)
        self._throttle.fired.connect(self.indexing_progressed)
        self._progress_ready.connect(self._on_progress_ready)
        self._commit_throttle = Throttle(500, self)
        self._commit_throttle.fired.connect(lambda _value: self.refresh())
        self._committed.connect(lambda: self._commit_throttle.push(None))
        self.model_ready = False
        self.last_status: LibraryStatus | None = None
        self.watch = True  # follow the folders live (core.watch.FolderWatcher) while open
        self._watcher: FolderWatcher | None = None
        self.disk_changed.connect(lambda _update: self.refresh())
        self._after_index: list[Callable[[], None]] = []
        # The window holds the writer lock only while it writes, so `lookalike index`, `teach`
        # or `people name` may write the library meanwhile: a look every second at the
        # catalog's data_version (a cheap pragma) tells the window to read it again.
        self._data_version: int | None = None
        self._looking = False
        self._change_timer = QTimer(self)
        self._change_timer.setInterval(1000)
        self._change_timer.timeout.connect(self.look_for_changes)

    # -- opening --------------------------------------------------------------------------
    def open(self) -> None:
        """Open the library (as its writer; read-only if another process holds it)."""
        config = self.config

        def work() -> tuple[SearchEngine, OpenOutcome]:
            from lookalike.core.errors import LibraryLockedError

            try:
                engine = self._open_engine(config, True)
                read_only, locked = False, ""
            except LibraryLockedError as exc:
                engine = self._open_engine(config, False)
                read_only, locked = True, str(exc)
            try:
                status = engine.status()
                message = locked
                if not read_only and not status.writer:  # opened on demand: is another process writing now?
                    message = status.holder or ""
                return engine, OpenOutcome(status, _folder_rows(engine), read_only, message)
            except BaseException:
                engine.close()
                raise

        self._control.submit(work, name="open", on_success=self._on_opened, on_failure=self.open_failed.emit)

    def _on_opened(self, value: tuple[SearchEngine, OpenOutcome]) -> None:
        engine, outcome = value
        if self.closing:
            engine.close()
            return
        self.engine = engine
        self.read_only = outcome.read_only
        self.last_status = outcome.status
        self.opened.emit(outcome)
        self.folders_changed.emit(outcome.folders)
        self._data_version = None
        self._change_timer.start()
        self.load_model()
        if not outcome.read_only and outcome.folders and not outcome.message:
            # Catch up with what changed while the window was closed (visible, cancellable);
            # not while another process is updating the library (its run does that).
            self.index(IndexJob.all())
        if not outcome.read_only and self.watch:
            self._start_watcher(engine)

    # -- changes made by another process -------------------------------------------------
    def look_for_changes(self) -> None:
        """Has another process written the library since the last look? Then read it again
        (status, folders) and say so through ``changed_elsewhere``."""
        engine = self.engine
        if engine is None or self.closing or self._looking:
            return
        self._looking = True

        def done(version: int) -> None:
            before, self._data_version = self._data_version, version
            if before is not None and version != before and engine is self.engine and not self.closing:
                self.refresh()
                self.changed_elsewhere.emit()

        def settled() -> None:
            self._looking = False

        self._control.submit(
            engine.data_version,
            name="data-version",
            on_success=done,
            on_failure=lambda f: log.debug("cannot look for changes: %s", f.message),
            on_finished=settled,
        )

    # -- following the folders live -------------------------------------------------------
    def _start_watcher(self, engine: SearchEngine) -> None:
        """Watch the library's folders; changes are indexed in small batches as they happen."""
        emit = self.disk_changed.emit

        def on_change(update: WatchUpdate) -> None:  # on the watcher's thread
            try:
                emit(update)
            except RuntimeError:
                pass

        def work() -> FolderWatcher:
            from lookalike.core.index.watch import FolderWatcher

            watcher = FolderWatcher(engine, on_change)
            watcher.start()  # from this (low-priority) thread: its threads inherit that
            return watcher

        def started(watcher: FolderWatcher) -> None:
            if self.closing or engine is not self.engine:
                self._control.submit(lambda: watcher.stop(5.0), name="stop-watcher")
                return
            self._watcher = watcher
            self._sync_watcher()  # folders added while it was starting

        # On the write queue: it starts after the catch-up run queued just before it.
        self._writes.submit(
            work,
            name="start-watcher",
            on_success=started,
            on_failure=lambda f: log.warning("not watching the folders: %s", f.message),
        )

    def _sync_watcher(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            self._control.submit(watcher.sync, name="watcher-sync")

    def _stop_watcher(self, wait: bool = True) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is None:
            return
        if wait:
            watcher.stop(5.0)
        else:
            self._control.submit(lambda: watcher.stop(5.0), name="stop-watcher")

    def load_model(self) -> None:
        """Load what text searches need in the background, after the first paint: the offline
        model's torch-free text tower (torch and the image model, about 0.5 GB resident, load
        only when a photo needs encoding), or the whole encoder for the other models."""
        engine = self.engine
        if engine is None:
            return
        self.model_loading.emit()

        def work() -> LibraryStatus | None:
            try:
                engine.query_encoder()
                return None if self.closing else engine.status()
            except Exception as exc:
                if self.closing:  # the window closed while the model loaded, and the library with it
                    log.debug("the model's load ended as the window closed: %s", exc)
                    return None
                raise

        def done(status: LibraryStatus | None) -> None:
            if status is None or self.closing:
                return
            self.model_ready = True
            self.last_status = status
            self.model_loaded.emit(status)
            self.status_changed.emit(status)

        # On a queue of its own, below the GUI's priority: text searches do not need the
        # full model (the engine answers them without torch) and go on meanwhile; a
        # search that does need it waits inside the engine until it is loaded.
        self._model.submit(work, name="load-model", on_success=done, on_failure=self.model_failed.emit)

    @property
    def is_open(self) -> bool:
        return self.engine is not None

    # -- searching ------------------------------------------------------------------------
    def search(self, query: Query, text: str = "", k: int = DEFAULT_K) -> SearchRequest:
        """Queue a search; a search still waiting for its turn is replaced."""
        self._search_seq += 1
        req = SearchRequest(self._search_seq, query, text, k, time.monotonic())
        self.latest_search_id = req.id
        self.search_started.emit(req)
        if self._search_running is None:
            self._start_search(req)
        else:
            self._search_waiting = req
        return req

    def _start_search(self, req: SearchRequest) -> None:
        engine = self.engine
        self._search_running = req

        def work() -> SearchOutcome:
            if engine is None:
                from lookalike.core.errors import LookalikeError

                raise LookalikeError("The library is still opening; try again in a moment.")
            t0 = time.perf_counter()
            results, matches, note = _answered(engine, req.query, req.k)
            seconds = time.perf_counter() - t0
            matched = engine.text_matches(req.query, [r.photo_id for r in results])  # a text: search's lines
            # Converted here, so the GUI thread only swaps the list in.
            items = tuple(
                ResultItem.from_result(r, " | ".join(matched.get(r.photo_id, ())), rank=n)
                for n, r in enumerate(results, 1)
            )
            outcome = SearchOutcome(req, items, seconds, matches, note)
            _return_free_heap()
            return outcome

        def finished() -> None:
            self._search_running = None
            nxt, self._search_waiting = self._search_waiting, None
            if nxt is not None and not self.closing:
                self._start_search(nxt)

        self._queries.submit(
            work,
            name="search",
            on_success=self.search_finished.emit,
            on_failure=lambda f: self.search_failed.emit(SearchFailure(req, f)),
            on_finished=finished,
        )

    @property
    def searching(self) -> bool:
        return self._search_running is not None

    # -- a view's own work --------------------------------------------------------------
    def submit(
        self,
        work: Callable[[SearchEngine], T],
        on_success: Callable[[T], None],
        on_failure: Callable[[JobFailure], None],
        *,
        write: bool = False,
        name: str = "",
        on_finished: Callable[[], None] | None = None,
        lock: bool = True,
    ) -> bool:
        """Run ``work(engine)`` off the GUI thread and hand its result back on it
        (``on_finished`` follows either way).

        Reads go on the control queue; ``write=True`` puts the work on the write queue,
        after the indexing run in progress (one writer at a time), inside the engine's
        ``writing`` block: the library's writer lock is held for as long as the work runs
        (``lock=False``: not around all of it; the work takes the block where it writes, as
        :class:`lookalike.core.duplicates.service.Duplicates` does, and reads meanwhile).
        False when no library is open.
        """
        engine = self.engine
        if engine is None:
            return False
        if write:
            what = "change the library"

            def written(e: SearchEngine) -> T:
                if not lock:
                    return work(e)
                with e.writing(what):
                    return work(e)

            self._writes.submit(
                written,
                engine,
                name=name or what,
                on_success=on_success,
                on_failure=on_failure,
                on_finished=on_finished,
            )
        else:
            self._control.submit(
                work,
                engine,
                name=name or "view-work",
                on_success=on_success,
                on_failure=on_failure,
                on_finished=on_finished,
            )
        return True

    # -- folders --------------------------------------------------------------------------
    def _failed(self, what: Operation, subject: str = "") -> Callable[[JobFailure], None]:
        return lambda f: self.operation_failed.emit(OperationFailure(what, subject, f))

    def add_folders(self, paths: Sequence[str]) -> None:
        """Add folders to the library, then index them in the background."""
        for path in paths:
            self._add_one(path)

    @property
    def busy(self) -> bool:
        """Adding a folder or indexing (an add becomes an indexing run when it is done)."""
        return self._adding > 0 or self.indexing

    def _add_one(self, path: str) -> None:
        engine = self.engine
        if engine is None:
            return
        self._adding += 1

        def settled() -> None:
            self._adding -= 1

        def work() -> tuple[str, tuple[FolderRow, ...]]:
            info = engine.add_folder(path)
            return os.fspath(info.path), _folder_rows(engine)

        def done(value: tuple[str, tuple[FolderRow, ...]]) -> None:
            folder, rows = value
            self.folders_changed.emit(rows)
            self.index(IndexJob.of([folder]))
            self._sync_watcher()

        self._control.submit(
            work, name="add-folder", on_success=done, on_failure=self._failed(Operation.ADD, path), on_finished=settled
        )

    def remove_folder(self, path: str) -> None:
        """Remove a folder (after the running index job, which is cancelled if it is that folder's)."""
        engine = self.engine
        if engine is None:
            return
        if self._runs.remove_folder(path):
            # Stop indexing what is being removed; the rest of that run went back in the queue.
            self.cancel_indexing(clear_queue=False)

        def work() -> tuple[FolderRow, ...]:
            engine.remove_folder(path)
            return _folder_rows(engine)

        def done(rows: tuple[FolderRow, ...]) -> None:
            self.folders_changed.emit(rows)
            self.refresh_status()
            self._sync_watcher()

        self._writes.submit(
            work, name="remove-folder", on_success=done, on_failure=self._failed(Operation.REMOVE, path)
        )

    def refresh(self) -> None:
        """Read the library's status and folders again (e.g. after photos were committed)."""
        self.refresh_status()
        self.refresh_folders()

    def refresh_folders(self) -> None:
        engine = self.engine
        if engine is None:
            return
        self._control.submit(
            lambda: _folder_rows(engine),
            name="folders",
            on_success=self.folders_changed.emit,
            on_failure=self._failed(Operation.FOLDERS),
        )

    def refresh_status(self) -> None:
        engine = self.engine
        if engine is None:
            return

        def done(status: LibraryStatus) -> None:
            self.last_status = status
            self.status_changed.emit(status)

        self._control.submit(engine.status, name="status", on_success=done, on_failure=self._failed(Operation.STATUS))

    def failures(self, callback: Callable[[list[Failure]], None], folder: str | None = None) -> None:
        """The unreadable files (of ``folder``, else of the library), handed to ``callback``."""
        engine = self.engine
        if engine is None:
            return

        def work() -> list[Failure]:
            rows = engine.failures()
            if folder:
                base = Path(folder)
                rows = [r for r in rows if Path(r.path).is_relative_to(base)]
            return rows

        self._control.submit(
            work, name="failures", on_success=callback, on_failure=self._failed(Operation.FAILURES, folder or "")
        )

    # -- indexing -------------------------------------------------------------------------
    @property
    def indexing(self) -> bool:
        return self._runs.running is not None

    @property
    def current_job(self) -> IndexJob | None:
        return self._runs.running

    def index(self, job: IndexJob) -> None:
        """Run ``job``, now or after the run in progress."""
        if self.engine is None or self.read_only:
            return
        now = self._runs.ask(job)
        if now is not None:
            self._start_index(now)

    def _start_index(self, job: IndexJob) -> None:
        engine = self.engine
        assert engine is not None
        roots = None if job.kind is IndexKind.ALL else [Path(f) for f in job.folders]

        def run(report: ProgressCallback, token: CancelToken, on_commit: Callable[[], None]) -> IndexReport:
            return engine.index(roots, progress=report, cancel=token, on_commit=on_commit)

        self._start_write_job(job, run, Operation.INDEX)

    def _start_write_job(
        self,
        job: IndexJob,
        run: WriteJob,
        what: Operation,
        on_done: Callable[[IndexOutcome], None] | None = None,
    ) -> None:
        """Run ``run(report, token, on_commit)`` on the write queue with progress, pause and cancel."""
        from lookalike.core.progress import CancelToken

        token = CancelToken()
        self._token = token
        self._runs.started(job)
        mailbox = self._mailbox
        ready = self._progress_ready
        committed = self._committed

        def report(p: Progress) -> None:  # on indexer threads, maybe thousands of times a second
            with mailbox.lock:
                mailbox.value = p
                wake = not mailbox.waiting
                mailbox.waiting = True
            if wake:
                try:
                    ready.emit()
                except RuntimeError:
                    pass

        def on_commit() -> None:  # on an indexer thread, after each committed batch
            try:
                committed.emit()
            except RuntimeError:
                pass

        def work() -> IndexOutcome:
            from lookalike.core.progress import Cancelled

            t0 = time.perf_counter()
            result: IndexReport | None = None
            try:
                result = run(report, token, on_commit)
            except Cancelled:
                pass
            cancelled = token.cancelled or result is None or result.cancelled
            return IndexOutcome(job, result, cancelled, time.perf_counter() - t0)

        def done(outcome: IndexOutcome) -> None:
            self._throttle.flush()
            if on_done is not None:
                on_done(outcome)
            self.indexing_finished.emit(outcome)

        def failed(f: JobFailure) -> None:
            self._throttle.flush()
            self.operation_failed.emit(OperationFailure(what, job.model or ", ".join(job.folders), f))
            self.indexing_finished.emit(IndexOutcome(job, None, True, 0.0))

        def finished() -> None:
            self._token = None
            self._runs.finished()
            with mailbox.lock:
                mailbox.value = None
            self.refresh()
            hooks, self._after_index = self._after_index, []
            for fn in hooks:
                fn()
            queued = None if self.closing else self._runs.take_next()
            if queued is not None:
                self._start_index(queued)

        self.indexing_started.emit(job)
        self._writes.submit(work, name=what.value, on_success=done, on_failure=failed, on_finished=finished)

    def _on_progress_ready(self) -> None:
        with self._mailbox.lock:
            value = self._mailbox.value
            self._mailbox.waiting = False
        if value is not None:
            self._throttle.push(value)

    def pause_indexing(self) -> None:
        if self._token is not None:
            self._token.pause()
            self.indexing_paused.emit(True)

    def resume_indexing(self) -> None:
        if self._token is not None:
            self._token.resume()
            self.indexing_paused.emit(False)

    @property
    def paused(self) -> bool:
        return bool(self._token is not None and self._token.paused)

    def cancel_indexing(self, clear_queue: bool = True) -> None:
        if clear_queue:
            self._runs.clear()
        if self._token is not None:
            self._token.cancel()

    # -- switching model ------------------------------------------------------------------
    def switch_model(self, config: EngineConfig, folders: Sequence[str]) -> None:
        """Build a library for another model in the background, then swap it in.

        The current engine keeps answering searches until the new library has
        indexed every folder; a cancelled switch leaves everything as it was.
        """
        if self.read_only:
            return
        if self.indexing:
            self.cancel_indexing()
            self._after_index.append(lambda: self.switch_model(config, folders))
            return
        built: list[SearchEngine] = []  # the new engine, once opened (on the write thread)

        def run(report: ProgressCallback, token: CancelToken, _on_commit: Callable[[], None]) -> IndexReport:
            new = self._open_engine(config, True)
            built.append(new)
            for f in folders:
                try:
                    new.add_folder(f)
                except Exception as exc:  # an unplugged folder: index the others
                    log.warning("cannot add %s to the new library: %s", f, exc)
            if self.engine is not None:  # concepts taught and decisions about people come along
                new.adopt_library(self.engine.path)
            return new.index(None, progress=report, cancel=token)

        def on_done(outcome: IndexOutcome) -> None:
            if not built or outcome.cancelled:
                return  # a cancelled one is closed by the clean-up below
            new = built[0]
            self.replace_engine(new, config)
            self._queries.submit(new.status, name="status", on_success=self.model_switched.emit)

        def clean_up() -> None:
            if built and built[0] is not self.engine:
                self._queries.submit(built[0].close, name="close-new")

        self._after_index.append(clean_up)
        self._start_write_job(IndexJob.switch(config.model or ""), run, Operation.MODEL, on_done)

    def replace_engine(self, engine: SearchEngine, config: EngineConfig) -> None:
        """Swap in another engine (a library re-indexed with a new model); close the old one."""
        old = self.engine
        self._stop_watcher(wait=False)
        self.engine = engine
        self.config = config
        self._data_version = None
        self.model_ready = engine.encoder_loaded
        if old is not None and old is not engine:
            self._queries.submit(old.close, name="close-old")
        if self.watch and not self.read_only:
            self._start_watcher(engine)
        self.refresh()

    # -- shutting down --------------------------------------------------------------------
    def shutdown(self, wait_ms: int = 10_000) -> None:
        """Cancel indexing, let running work end, close the library."""
        self.closing = True
        self._change_timer.stop()
        self._runs.clear()
        self._search_waiting = None
        if self._token is not None:
            self._token.cancel()
        self._stop_watcher()
        for runner in (self._writes, self._model, self._queries, self._control):
            runner.wait(wait_ms)
        for runner in (self._writes, self._model, self._queries, self._control):
            runner.stopped = True  # what still runs meets a closed library: not an error to log
        if self.engine is not None:
            try:
                self.engine.close()
            except Exception:
                log.exception("closing the library")
            self.engine = None
