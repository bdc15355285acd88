"""The window's indexing runs, without Qt: what a run is about (:class:`IndexJob`) and the
queue that keeps at most one running and merges everything asked for meanwhile into one
run after it (:class:`IndexQueue`). The window's service starts what the queue hands back on
its write queue; the logic is here so that it is tested without a window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class IndexKind(StrEnum):
    FOLDERS = "folders"  # the folders named
    ALL = "all"  # every folder of the library (a re-scan)
    MODEL = "model"  # every folder, into a new library built with another model


@dataclass(frozen=True)
class IndexJob:
    """What an indexing run is about."""

    kind: IndexKind
    folders: tuple[str, ...] = ()  # for FOLDERS
    model: str = ""  # for MODEL: the model's name

    @classmethod
    def all(cls) -> IndexJob:
        return cls(IndexKind.ALL)

    @classmethod
    def of(cls, folders: Sequence[str]) -> IndexJob:
        return cls(IndexKind.FOLDERS, tuple(dict.fromkeys(folders)))

    @classmethod
    def switch(cls, model: str) -> IndexJob:
        return cls(IndexKind.MODEL, model=model)

    def covers(self, folder: str) -> bool:
        """Does this run index ``folder`` of the current library?"""
        return self.kind is IndexKind.ALL or folder in self.folders

    def merged(self, other: IndexJob) -> IndexJob:
        """One run that does both (for the queue; model switches are never queued)."""
        if IndexKind.ALL in (self.kind, other.kind):
            return IndexJob.all()
        return IndexJob.of(self.folders + other.folders)

    def without(self, folder: str) -> IndexJob | None:
        """This run less ``folder`` (None when nothing is left)."""
        if self.kind is not IndexKind.FOLDERS:
            return self
        rest = tuple(f for f in self.folders if f != folder)
        return IndexJob.of(rest) if rest else None

    @property
    def title(self) -> str:
        """What the indexing bar says while it runs."""
        if self.kind is IndexKind.MODEL:
            return f"Re-indexing with {self.model or 'the new model'}…"
        return "Re-scanning…" if self.kind is IndexKind.ALL else "Indexing…"


class IndexQueue:
    """At most one run at a time, and one queued run that does all that was asked meanwhile.
    Model switches run through it too, but are never queued (the window asks for them only
    while nothing runs)."""

    def __init__(self) -> None:
        self.running: IndexJob | None = None
        self.queued: IndexJob | None = None

    def ask(self, job: IndexJob) -> IndexJob | None:
        """``job`` when it may start now (then call :meth:`started`), else None: it waits,
        merged with what waits already."""
        if self.running is None:
            return job
        self._queue(job)
        return None

    def started(self, job: IndexJob) -> None:
        self.running = job

    def finished(self) -> None:
        """The running run is over (done, failed or cancelled)."""
        self.running = None

    def take_next(self) -> IndexJob | None:
        """The queued run, now that nothing runs (None: none, or one still runs)."""
        if self.running is not None or self.queued is None:
            return None
        job, self.queued = self.queued, None
        return job

    def remove_folder(self, folder: str) -> bool:
        """``folder`` leaves the library: nothing queued indexes it any more. True when the
        running run indexes it and must be cancelled (the rest of that run is queued)."""
        if self.queued is not None:
            self.queued = self.queued.without(folder)
        job = self.running
        if job is None or job.kind is IndexKind.MODEL or not job.covers(folder):
            return False
        rest = job.without(folder)
        if rest is not None:
            self._queue(rest)
        return True

    def clear(self) -> None:
        """Forget what is queued (the running run is not touched)."""
        self.queued = None

    def _queue(self, job: IndexJob) -> None:
        self.queued = job if self.queued is None else self.queued.merged(job)
