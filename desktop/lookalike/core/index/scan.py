"""The scan: walk each indexed folder (excludes, junk names, special files), stat every
file, and say which folders look offline. The first step of a run
(:meth:`lookalike.core.index.indexer.Indexer.run`); the plan diffs its result against
the catalog (:func:`lookalike.core.index.pipeline.make_plan`).
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.core.index.imaging import is_photo_name
from lookalike.core.progress import CancelToken, Progress, ProgressCallback, Stage, no_progress
from lookalike.core.store.catalog import Catalog, FailureRow, Folder

log = logging.getLogger(__name__)


# Names that are never photos of the user's: OS and tool junk.
JUNK_NAMES = frozenset(
    {
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        "@eaDir",
        ".thumbnails",
        "$RECYCLE.BIN",
        "System Volume Information",
        "lost+found",
        "#recycle",
    }
)


def is_junk(name: str) -> bool:
    return name.startswith(".") or name in JUNK_NAMES or name.startswith("._")


@dataclass(frozen=True)
class ScannedFile:
    path: Path
    folder_id: int
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    files: list[ScannedFile] = field(default_factory=list)
    failures: list[FailureRow] = field(default_factory=list)  # unreadable entries found while walking
    offline: list[Folder] = field(default_factory=list)
    scanned: list[Folder] = field(default_factory=list)


# -- scan ---------------------------------------------------------------------------


def _excluded(path: str, name: str, excludes: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(path, g) for g in excludes)


def folder_is_offline(folder: Folder, known_photos: int) -> str | None:
    """A reason the folder's drive looks absent, or None if it is there."""
    p = os.fspath(folder.path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return "the folder is not there (a drive unplugged or a share offline?)"
    except PermissionError:
        return "the folder cannot be opened: permission denied"
    except OSError as exc:
        return f"the folder cannot be reached: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder any more"
    if not os.access(p, os.R_OK | os.X_OK):
        return "the folder cannot be opened: permission denied"
    if known_photos:
        try:
            with os.scandir(p) as it:
                empty = next(it, None) is None
        except OSError as exc:
            return f"the folder cannot be read: {exc.strerror or exc}"
        if empty:
            return "the folder is empty now (an unmounted drive?); its photos are kept until you remove it"
    return None


def scan(
    folders: Sequence[Folder],
    catalog: Catalog,
    excludes: Sequence[str] = (),
    cancel: CancelToken | None = None,
    progress: ProgressCallback = no_progress,
) -> ScanResult:
    """Walk every online folder: photo files with their stat, and unreadable entries."""
    result = ScanResult()
    counts = catalog.folder_counts()
    walker = _Walker(result, excludes, cancel or CancelToken(), progress)
    for folder in folders:
        reason = folder_is_offline(folder, counts.get(folder.id, (0, 0))[0])
        if reason:
            log.warning("Folder %s is offline: %s", folder.path, reason)
            result.offline.append(folder)
            continue
        result.scanned.append(folder)
        walker.walk(folder)
    progress(Progress(Stage.SCAN, len(result.files), len(result.files)))
    return result


class _Walker:
    """Walks folders (symbolic links to folders never followed: no loops, no duplicates)."""

    def __init__(
        self, result: ScanResult, excludes: Sequence[str], cancel: CancelToken, progress: ProgressCallback
    ) -> None:
        self.result = result
        self.excludes = excludes
        self.cancel = cancel
        self.progress = progress

    def walk(self, folder: Folder) -> None:
        root = os.fspath(folder.path)
        stack = [root]
        while stack:
            self.cancel.check()
            d = stack.pop()
            try:
                it = os.scandir(d)
            except OSError as exc:
                if d != root:
                    why = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
                    self.result.failures.append(FailureRow(Path(d), folder.id, f"the folder cannot be opened: {why}"))
                continue
            with it:
                for entry in it:
                    if not self._skipped(entry):
                        self._visit(entry, folder.id, stack)

    def _skipped(self, entry: os.DirEntry) -> bool:
        name = entry.name
        return is_junk(name) or bool(self.excludes and _excluded(entry.path, name, self.excludes))

    def _visit(self, entry: os.DirEntry, folder_id: int, stack: list[str]) -> None:
        try:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
                return
        except OSError:
            return
        if is_photo_name(entry.name):
            self._add_file(entry, folder_id)

    def _add_file(self, entry: os.DirEntry, folder_id: int) -> None:
        path = Path(entry.path)
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            why = "a broken symbolic link (its target is gone)" if entry.is_symlink() else None
            self._fail(path, folder_id, why or "the file disappeared while scanning")
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._fail(path, folder_id, "a symbolic link loop, not a file")
            else:
                self._fail(path, folder_id, f"cannot read the file's details: {exc.strerror or exc}")
            return
        if stat.S_ISDIR(st.st_mode):
            return  # a symlink to a folder: never followed
        if not stat.S_ISREG(st.st_mode):
            self._fail(path, folder_id, f"{_special_kind(st.st_mode)}, not a photo", st.st_mtime_ns)
            return
        self.result.files.append(ScannedFile(path, folder_id, st.st_size, st.st_mtime_ns))
        seen = len(self.result.files)
        if seen % 2000 == 0:
            self.progress(Progress(Stage.SCAN, seen, None, note=os.fspath(path.parent)))

    def _fail(self, path: Path, folder_id: int, why: str, mtime_ns: int | None = None) -> None:
        self.result.failures.append(
            FailureRow(path, folder_id, why) if mtime_ns is None else FailureRow(path, folder_id, why, 0, mtime_ns)
        )


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    return "a socket" if stat.S_ISSOCK(mode) else "a device file"


# -- the run ------------------------------------------------------------------------
