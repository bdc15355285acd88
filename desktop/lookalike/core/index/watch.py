"""Live folder watching: keeps a library current while the app is open.

:class:`FolderWatcher` listens to the operating system's file-change
notifications (watchdog: inotify, FSEvents, ReadDirectoryChangesW) for every
folder of the library - it never polls the photos themselves. Events are
debounced: a batch is indexed once the folder has been quiet for ``quiet``
seconds, or ``max_delay`` seconds after its first event while a burst goes
on, so a copy of thousands of files becomes a handful of indexing runs. Each
run is an ordinary incremental :meth:`SearchEngine.index` of the folders
touched, so new, changed, deleted, moved and renamed photos are handled by
the same diff as a manual rescan (a moved photo keeps its vector).

Folders themselves are followed too:

* a library folder renamed or moved in place keeps its photos and vectors
  (the library records its new path);
* a folder that goes away (drive unplugged, share offline, folder deleted) is
  marked offline by the indexer and its photos are kept; a cheap check of
  each folder's own entry every ``recheck`` seconds notices when it is back,
  and it is then watched and rescanned.

All indexing happens on the watcher's own thread; ``on_change`` is called
there after each batch with a :class:`WatchUpdate`.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.core.errors import LookalikeError
from lookalike.core.index.imaging import is_photo_name
from lookalike.core.progress import CancelToken

if TYPE_CHECKING:  # pragma: no cover
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers.api import BaseObserver, ObservedWatch

    from lookalike.core.engine import SearchEngine
    from lookalike.core.index.indexer import IndexReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchUpdate:
    """What one debounced batch did."""

    folders: tuple[Path, ...]  # library folders brought up to date
    events: int  # file-system events folded into this batch
    report: IndexReport | None  # None when the run could not happen (see error)
    offline: tuple[Path, ...] = ()  # folders found offline (photos kept)
    renamed: tuple[tuple[Path, Path], ...] = ()  # library folders that were renamed: (old, new)
    error: str | None = None  # why the run failed, in words (e.g. the library is locked)
    waited: float = 0.0  # seconds from the batch's first event to the start of its run
    seconds: float = 0.0  # how long the run took


@dataclass
class WatchStats:
    batches: int = 0
    events: int = 0
    max_waited: float = 0.0  # the longest a change waited before its run began
    max_run: float = 0.0  # the longest run
    errors: int = 0


@dataclass
class _Root:
    path: Path
    online: bool = True
    watch: ObservedWatch | None = None  # watchdog's watch of the folder's tree
    known_photos: int = 0


@dataclass
class Batch:
    """Changes folded together for one indexing run."""

    roots: set[Path] = field(default_factory=set)  # library folders touched
    renamed: list[tuple[Path, Path]] = field(default_factory=list)  # library folders renamed: (old, new)
    events: int = 0
    first: float = 0.0  # when the first change came


class Debouncer:
    """Folds change notices into batches; pure (the caller passes the time), so its
    rule can be tested with a made-up clock.

    A batch is due once no notice came for ``quiet`` seconds, or ``max_delay``
    seconds after its first notice while a burst goes on; never before a back-off
    set after a failed run. An urgent notice (a rescan asked for) is due at once.
    """

    def __init__(self, quiet: float, max_delay: float) -> None:
        self.quiet = float(quiet)
        self.max_delay = float(max_delay)
        self._batch = Batch()
        self._last = 0.0
        self._not_before = 0.0

    @property
    def pending(self) -> bool:
        return bool(self._batch.roots or self._batch.renamed)

    def note(self, root: Path, now: float, *, events: int = 1, urgent: bool = False) -> None:
        """A change under ``root`` (``events`` file-system events)."""
        if not self.pending:
            self._batch.first = now
        self._batch.roots.add(root)
        self._batch.events += events
        self._last = now - self.quiet if urgent else now

    def renamed(self, old: Path, new: Path, now: float) -> None:
        """The library folder ``old`` now lives at ``new``."""
        self._batch.renamed.append((old, new))
        self.note(old, now)

    def back_off(self, until: float) -> None:
        """Run nothing before ``until`` (after a run failed)."""
        self._not_before = until

    def due(self) -> float | None:
        """When the pending batch is due (None: nothing pending)."""
        if not self.pending:
            return None
        return max(min(self._last + self.quiet, self._batch.first + self.max_delay), self._not_before)

    def take(self, now: float) -> Batch | None:
        """The pending batch if it is due at ``now`` (and start a new one), else None."""
        due = self.due()
        if due is None or now < due:
            return None
        batch, self._batch = self._batch, Batch()
        return batch


def _hidden_part(rel: str) -> bool:
    from lookalike.core.index.scan import is_junk

    return any(part and is_junk(part) for part in rel.split(os.sep))


class FolderWatcher:
    """Watches every folder of ``engine``'s library and indexes changes in batches.

    ``engine`` must be open for writing (it owns the library's writer lock);
    if it is not, each batch reports the reason in :attr:`WatchUpdate.error`
    and is retried every ``recheck`` seconds.
    """

    def __init__(
        self,
        engine: SearchEngine,
        on_change: Callable[[WatchUpdate], None] | None = None,
        *,
        quiet: float = 0.75,
        max_delay: float = 4.0,
        recheck: float = 5.0,
        excludes: Sequence[str] = (),
        catch_up: bool = False,
    ) -> None:
        self.engine = engine
        self.on_change = on_change
        self.recheck = float(recheck)
        self.excludes = tuple(excludes)
        self.catch_up = catch_up
        self.stats = WatchStats()
        self._cond = threading.Condition()
        self._debounce = Debouncer(quiet, max_delay)
        self._roots: dict[Path, _Root] = {}
        self._parents: dict[Path, ObservedWatch] = {}  # parent folder -> watch (catches renames of a root)
        self._sync_lock = threading.Lock()
        self._watch_errors: dict[Path, str] = {}
        self._running_batch = False
        self._stopping = False
        self._cancel = CancelToken()
        self._thread: threading.Thread | None = None
        self._observer: BaseObserver | None = None
        self._handler: FileSystemEventHandler | None = None
        self._library = os.fspath(engine.library.path)

    # -- life cycle -----------------------------------------------------------

    def start(self) -> None:
        """Begin watching (returns at once; indexing happens on a background thread)."""
        if self._thread is not None:
            return
        self._stopping = False
        self._cancel = CancelToken()
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # on watchdog's thread
                try:
                    watcher._on_event(event)
                except Exception:  # never let a bad event kill the observer
                    log.exception("While handling %r", event)

        self._handler = _Handler()
        self._observer = Observer()
        self._observer.start()
        self._sync_roots()
        if self.catch_up:
            with self._cond:
                for root in self._roots:
                    self._mark(root, count=0, quiet=False)
        self._thread = threading.Thread(target=self._run, name="folder-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop watching; a run in progress is cancelled after its batch in flight."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._cancel.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout)
            except Exception:  # pragma: no cover - best effort at shutdown
                log.debug("observer stop", exc_info=True)
            self._observer = None
        with self._cond:  # a later start() schedules everything again on a new observer
            for root in self._roots.values():
                root.watch = None
            self._parents.clear()

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def sync(self) -> None:
        """Re-read the library's folders now (after the window added or removed one)."""
        self._sync_roots()

    def request(self, folder: Path | str | None = None) -> None:
        """Ask for a rescan of ``folder`` (a library folder, or None for all) without waiting for events."""
        with self._cond:
            targets = list(self._roots) if folder is None else [Path(folder)]
            for t in targets:
                self._mark(self._root_of(os.fspath(t)) or Path(t), count=0, quiet=False)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is pending and no run is going on. False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._debounce.pending or self._running_batch:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def watched(self) -> dict[Path, bool]:
        """Library folder -> online, as the watcher sees them."""
        with self._cond:
            return {p: r.online for p, r in self._roots.items()}

    # -- roots and their watches ----------------------------------------------

    def _sync_roots(self) -> None:
        with self._sync_lock:
            try:
                infos = self.engine.folders()
            except Exception as exc:
                log.warning("Cannot list the library's folders: %s", exc)
                return
            wanted = {Path(f.path): f for f in infos}
            # Look at the disk outside the lock: a dead network share can make stat() hang.
            with self._cond:
                unwatched = [p for p in wanted if (r := self._roots.get(p)) is None or r.watch is None]
            here = {p: self._available(_Root(p, known_photos=wanted[p].photos)) for p in unwatched}
            to_watch: list[_Root] = []
            with self._cond:
                for path in list(self._roots):
                    if path not in wanted:
                        self._unwatch(self._roots.pop(path))
                for path, info in wanted.items():
                    root = self._roots.get(path)
                    if root is None:
                        root = self._roots[path] = _Root(path, online=info.online)
                    root.known_photos = info.photos
                    if not info.online:
                        root.online = False
                    if root.watch is None and here.get(path):
                        if not root.online:
                            # Offline in the library but reachable now: bring it back.
                            self._mark(path, count=0, quiet=False)
                        root.online = True
                        to_watch.append(root)
                self._refresh_parent_watches()
            # Scheduling a recursive watch walks the whole tree: not while holding the lock
            # that the event handler needs.
            for root in to_watch:
                watch = self._watch(root)
                with self._cond:
                    if self._roots.get(root.path) is root and root.watch is None:
                        root.watch = watch
                    elif watch is not None:
                        self._unwatch(_Root(root.path, watch=watch))

    def _watch(self, root: _Root) -> ObservedWatch | None:
        if self._observer is None or self._handler is None:  # the handler is set with the observer
            return None
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
        )

        kinds = [
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileClosedEvent,
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
        ]
        try:
            watch = self._observer.schedule(self._handler, os.fspath(root.path), recursive=True, event_filter=kinds)
        except OSError as exc:
            why = exc.strerror or str(exc)
            if getattr(exc, "errno", None) == errno.ENOSPC:
                why = "the system's limit of watched folders is reached (fs.inotify.max_user_watches)"
            if self._watch_errors.get(root.path) != why:  # said once, retried at each check
                log.warning("Cannot watch %s live: %s; it is rescanned when the app starts", root.path, why)
                self._watch_errors[root.path] = why
            return None
        self._watch_errors.pop(root.path, None)
        return watch

    def _unwatch(self, root: _Root) -> None:
        if root.watch is not None and self._observer is not None:
            try:
                self._observer.unschedule(root.watch)
            except (KeyError, OSError):
                pass
        root.watch = None

    def _refresh_parent_watches(self) -> None:
        """Watch each root's parent (not recursively) to see the root itself renamed, removed or back."""
        if self._observer is None or self._handler is None:  # the handler is set with the observer
            return
        from watchdog.events import DirCreatedEvent, DirDeletedEvent, DirMovedEvent

        wanted = {r.parent for r in self._roots if r.parent != r}
        for parent in list(self._parents):
            if parent not in wanted or not os.path.isdir(parent):
                try:
                    self._observer.unschedule(self._parents.pop(parent))
                except (KeyError, OSError):
                    pass
        for parent in wanted - set(self._parents):
            try:
                self._parents[parent] = self._observer.schedule(
                    self._handler,
                    os.fspath(parent),
                    recursive=False,
                    event_filter=[DirCreatedEvent, DirDeletedEvent, DirMovedEvent],
                )
            except OSError:
                pass  # the parent is missing too (a drive's mount point): the periodic check covers it

    def _available(self, root: _Root) -> bool:
        """Is the folder there and readable - and, if it held photos, not suddenly empty (unmounted)?"""
        from lookalike.core.index.scan import folder_is_offline

        return folder_is_offline(root, root.known_photos) is None  # type: ignore[arg-type]

    # -- events (watchdog's thread) --------------------------------------------

    def _root_of(self, path: str) -> Path | None:
        best: Path | None = None
        for root in self._roots:
            r = os.fspath(root)
            inside = path == r or path.startswith(r.rstrip(os.sep) + os.sep)
            if inside and (best is None or len(r) > len(os.fspath(best))):
                best = root
        return best

    def _relevant(self, path: str, root: Path, is_dir: bool) -> bool:
        if path == self._library or path.startswith(self._library + os.sep):
            return False  # our own catalog and graph
        rel = os.path.relpath(path, root)
        if rel != "." and _hidden_part(rel):
            return False
        if self.excludes:
            from lookalike.core.index.scan import _excluded

            if _excluded(path, os.path.basename(path), self.excludes):
                return False
        return is_dir or is_photo_name(os.path.basename(path))

    def _on_event(self, event) -> None:
        src = os.fsdecode(event.src_path) if event.src_path else ""
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        kind = event.event_type
        with self._cond:
            if self._stopping:
                return
            roots = {os.fspath(r): r for r in self._roots}
            # The root itself renamed, removed or back (seen from its parent's watch).
            if event.is_directory and src in roots:
                root = roots[src]
                if kind == "moved" and dest:
                    self._debounce.renamed(root, Path(dest), time.monotonic())
                    self._cond.notify_all()
                    return
                if kind in ("deleted", "created"):  # gone (the indexer marks it offline), or back
                    self._mark(root, quiet=True)
                    return
            if event.is_directory and kind == "moved" and dest in roots:
                self._mark(roots[dest], quiet=True)  # a folder moved into a root's place
                return
            for p in (src, dest):
                if not p:
                    continue
                owner = self._root_of(p)
                if owner is None or p == os.fspath(owner):
                    continue
                if self._relevant(p, owner, event.is_directory):
                    self._mark(owner, quiet=True)

    def _mark(self, root: Path, *, count: int = 1, quiet: bool = True) -> None:
        """Note a change under ``root`` (call with the condition held); not ``quiet``: a
        request, due at once."""
        self._debounce.note(root, time.monotonic(), events=count, urgent=not quiet)
        self._cond.notify_all()

    # -- the worker thread --------------------------------------------------------

    def _run(self) -> None:
        next_check = time.monotonic() + self.recheck
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    due = self._debounce.due()
                    if (due is not None and now >= due) or now >= next_check:
                        break
                    wake = min(x for x in (due, next_check) if x is not None)
                    self._cond.wait(max(0.01, wake - now))
                if self._stopping:
                    return
                batch = self._debounce.take(time.monotonic())
                self._running_batch = batch is not None
            if batch is not None:
                try:
                    self._run_batch(batch)
                finally:
                    with self._cond:
                        self._running_batch = False
                        self._cond.notify_all()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + self.recheck
                try:
                    self._check_roots()
                except Exception:
                    log.exception("Checking the library's folders")

    def _check_roots(self) -> None:
        """The periodic look at each folder's own entry: gone (unmounted) or back."""
        self._sync_roots()
        with self._cond:
            roots = [(r.path, r.online, r.known_photos) for r in self._roots.values()]
        for path, online, known in roots:
            here = self._available(_Root(path, known_photos=known))
            if online != here:
                # Gone: the indexer marks it offline, keeping its photos. Back: rescan and watch again.
                with self._cond:
                    self._mark(path, count=0, quiet=False)

    def _run_batch(self, batch: Batch) -> None:
        t0 = time.monotonic()
        waited = t0 - batch.first if batch.first else 0.0
        renamed: list[tuple[Path, Path]] = []
        error: str | None = None
        report = None
        targets: list[Path] = []
        roots = set(batch.roots)
        try:
            for old, new in batch.renamed:
                if self._follow_rename(old, new):
                    renamed.append((old, new))
                    roots.discard(old)
                    roots.add(new)
            # Roots removed from the library meanwhile are dropped.
            known = {Path(f.path) for f in self.engine.folders()}
            targets = sorted(r for r in roots if r in known)
            if targets:
                report = self.engine.index(targets, excludes=self.excludes, cancel=self._cancel)
        except LookalikeError as exc:
            error = str(exc)
            log.warning("Watching: %s", exc)
            with self._cond:  # try again later
                for r in roots:
                    self._mark(r, count=0, quiet=True)
                self._debounce.back_off(time.monotonic() + self.recheck)
        except Exception as exc:  # a bug: say so, keep watching
            error = f"{exc.__class__.__name__}: {exc}"
            log.exception("Watching: indexing failed")
        seconds = time.monotonic() - t0
        offline = tuple(report.offline_folders) if report is not None else ()
        with self._cond:
            for p in offline:
                root = self._roots.get(Path(p))
                if root is not None:
                    root.online = False
                    self._unwatch(root)
        self._sync_roots()  # watches the folders that are (back) online
        with self._cond:
            self.stats.batches += 1
            self.stats.events += batch.events
            self.stats.max_waited = max(self.stats.max_waited, waited)
            self.stats.max_run = max(self.stats.max_run, seconds)
            self.stats.errors += error is not None
        update = WatchUpdate(
            tuple(sorted(roots)), batch.events, report, offline, tuple(renamed), error, waited, seconds
        )
        if self.on_change is not None:
            try:
                self.on_change(update)
            except Exception:
                log.exception("on_change failed")

    def _follow_rename(self, old: Path, new: Path) -> bool:
        """A library folder renamed or moved on disk: record its new path, keeping its photos."""
        try:
            if not new.is_dir():
                return False
            self.engine.move_folder(old, new)
        except LookalikeError as exc:
            log.warning("Cannot follow %s to %s: %s", old, new, exc)
            return False
        with self._cond:
            root = self._roots.pop(old, None)
            if root is not None:
                self._unwatch(root)
        return True
