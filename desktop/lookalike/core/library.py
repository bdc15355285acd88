"""A library on disk: a private folder holding the catalog and the vector graph.

One writer at a time, guarded by a lock file; readers are always welcome.
A library opened ``on_demand`` (the window's) may write but holds the lock
only while it writes (:meth:`Library.writing`), so the command line can write
the library while the window stays open and idle.
The library records which encoder built it (id, weights checksum, dimension)
and refuses vectors from any other.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.core.catalog import Catalog
from lookalike.core.errors import (
    DiskFullError,
    LibraryCorruptError,
    LibraryLockedError,
    LibraryNeedsUpgradeError,
    LookalikeError,
    ModelMismatchError,
)
from lookalike.core.fsutil import atomic_write_text
from lookalike.core.paths import app_paths, ensure_private_dir

if TYPE_CHECKING:
    from filelock import BaseFileLock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRecord:
    """What a library remembers about the encoder that built it."""

    name: str  # registry name: offline, clip, resnet50
    encoder_id: str
    weights_checksum: str
    dimension: int
    model_file: str = ""


def _command_line() -> str:
    """This process's command as a person typed it ('python -m lookalike' reads 'lookalike')."""
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "lookalike"
    if prog in ("__main__.py", "-c", "-m", ""):
        prog = "lookalike"
    return " ".join([prog] + sys.argv[1:])[:200]


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, TypeError, ValueError):
        return True
    return True


class Library:
    LOCK = "writer.lock"
    HOLDER = "writer.json"

    def __init__(
        self,
        path: Path | None = None,
        *,
        writer: bool = False,
        create: bool | None = None,
        on_demand: bool = False,
        purpose: str = "index",
    ) -> None:
        """``writer``: hold the writer lock from now until :meth:`close`. ``on_demand``: may
        write, taking the lock only inside :meth:`writing` (``writer`` is True only there).
        ``purpose`` words the message when the lock is held by someone else ("to index")."""
        self.path = Path(path).expanduser().resolve() if path else app_paths().default_library
        self.writer = writer
        self.on_demand = on_demand and not writer
        self.purpose = purpose
        self._lock: BaseFileLock | None = None
        self._writing_lock = threading.Lock()
        self._depth = 0  # nested or concurrent writing() blocks in progress
        self.before_release: Callable[[], None] | None = None  # e.g. save the graph, while still the writer
        create = (writer or on_demand) if create is None else create
        if not create and not (self.path / Catalog.FILENAME).exists():
            raise LookalikeError(
                f"There is no library at {self.path} yet. Index a folder first: "
                f"lookalike index PATH" + ("" if path is None else f" --library {self.path}")
            )
        self.created = not self.path.exists()  # this open made the folder (see discard_if_unused)
        try:
            data = app_paths().data.expanduser().resolve()
            if self.path.parent == data:  # the data folder names the user's model file: private too
                ensure_private_dir(data)
            ensure_private_dir(self.path)
        except OSError as exc:
            raise LookalikeError(f"Cannot create the library folder {self.path}: {exc.strerror or exc}") from None
        if self.on_demand:
            self._open_on_demand()
            return
        if writer:
            self._acquire()
        try:
            self._check_not_emptied()
            try:
                self.catalog = Catalog(self.path / Catalog.FILENAME, readonly=not writer)
            except LibraryNeedsUpgradeError:
                self._upgrade()
                self.catalog = Catalog(self.path / Catalog.FILENAME, readonly=True)
        except BaseException:
            self.release()
            raise

    def _open_on_demand(self) -> None:
        """Create or upgrade the catalog under the writer lock if no one holds it, then let
        the lock go: the catalog stays open read-only until a :meth:`writing` block."""
        cat = self.path / Catalog.FILENAME
        try:
            self._acquire()
        except LibraryLockedError:
            if not cat.exists():
                raise
        try:
            self._check_not_emptied()
            if self._lock is not None:
                Catalog(cat, readonly=False).close()  # creates, upgrades and checks it
            try:
                self.catalog = Catalog(cat, readonly=True)
            except LibraryNeedsUpgradeError:
                self._upgrade()
                self.catalog = Catalog(cat, readonly=True)
        finally:
            self.release()

    @property
    def can_write(self) -> bool:
        """May this process write the library (now, or by taking the lock when it does)?"""
        return self.writer or self.on_demand

    @contextmanager
    def writing(self, what: str = "change the library") -> Iterator[bool]:
        """A block that writes the library: on an ``on_demand`` library the writer lock is
        taken at its start (LibraryLockedError, worded for ``what``, when another process
        holds it) and let go at the end of the outermost block. Blocks may nest and run on
        several threads at once. Yields True for the block that took the lock."""
        if not self.on_demand:
            if not self.writer:
                raise LookalikeError(self.holder(what) or f"This library is open for searching only; cannot {what}.")
            yield False
            return
        with self._writing_lock:
            first = self._depth == 0
            if first:
                self._acquire(what)
                try:
                    self.catalog.set_writable(True)
                except BaseException:
                    self.release()
                    raise
                self.writer = True
            self._depth += 1
        try:
            yield first
        finally:
            with self._writing_lock:
                self._depth -= 1
                if self._depth == 0:
                    try:
                        if self.before_release is not None:
                            self.before_release()
                    finally:
                        self.writer = False
                        try:
                            self.catalog.set_writable(False)
                        finally:
                            self.release()

    def _upgrade(self) -> None:
        """A reader met an older catalog (a search after Lookalike was updated): when no one
        writes the library, take the writer lock for as long as the catalog's migration
        takes, so the search answers instead of asking for a writer first."""
        try:
            self._acquire()
        except LibraryLockedError:
            raise LibraryNeedsUpgradeError(
                "The library needs an upgrade, which the Lookalike that is writing it makes when it "
                f"opens it again. {self._holder_message()}"
            ) from None
        try:
            Catalog(self.path / Catalog.FILENAME, readonly=False).close()
            log.info("upgraded the library's catalog at %s", self.path)
        finally:
            self.release()

    def _check_not_emptied(self) -> None:
        """A catalog emptied to 0 bytes (a damaged disk or a bad copy) is not a new library.

        SQLite would happily start a fresh one in it, and the vector graph would then be
        reconciled to nothing: every photo silently gone. While the graph's sidecar says
        the library held photos, that is refused. (A new WAL-mode catalog can be 0 bytes
        with its content still in the -wal file; that is fine.)
        """
        cat = self.path / Catalog.FILENAME
        wal = cat.with_name(cat.name + "-wal")
        try:
            if cat.stat().st_size != 0 or (wal.exists() and wal.stat().st_size > 0):
                return
            held = int(json.loads((self.path / "vectors.json").read_text()).get("count", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            return
        if held > 0:
            raise LibraryCorruptError(
                f"The catalog {cat} is empty (0 bytes), but this library held {held} photos. "
                "It was damaged; move the library folder aside and index your folders again."
            )

    # -- the writer lock ----------------------------------------------------

    def _acquire(self, what: str | None = None) -> None:
        from filelock import FileLock, Timeout

        where = self.path / self.LOCK
        lock = FileLock(os.fspath(where), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise LibraryLockedError(self._holder_message(what)) from None
        except OSError as exc:  # a folder in its place, no permission, a read-only disk
            why = "a folder is in its place" if where.is_dir() else (exc.strerror or str(exc)).lower()
            raise LookalikeError(
                f"Cannot take the library's writer lock {where}: {why}. Move it aside (or fix its "
                "permissions) and try again; searching still works."
            ) from None
        self._lock = lock
        try:
            atomic_write_text(
                self.path / self.HOLDER,
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "since": time.time(),
                        "command": _command_line(),
                    }
                ),
            )
        except (OSError, DiskFullError):  # only a note for other processes: the work itself says what failed
            pass
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        """Temporary copies a killed writer left behind (write-temp-then-rename, rule 4).

        Only a writer saves here, and we are it now, so none is in use. Without
        this, every crash during a save would leave a copy of the graph behind.
        """
        for tmp in self.path.glob(".*.tmp"):
            try:
                tmp.unlink()
                log.info("Removed %s, left by an interrupted save", tmp.name)
            except OSError:
                pass

    def _holder_info(self) -> dict | None:
        """What the lock holder wrote about itself. It writes that just after taking the
        lock, and a crashed holder's note stays behind, so a missing note or one naming a
        dead process on this host is given a moment to appear or be replaced."""
        deadline = time.monotonic() + 0.5
        while True:
            info = None
            try:
                info = json.loads((self.path / self.HOLDER).read_text())
                if not isinstance(info, dict):
                    info = None
                elif info.get("host") != socket.gethostname() or _pid_alive(info.get("pid")):
                    return info
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                return info
            time.sleep(0.02)

    def _holder_message(self, what: str | None = None) -> str:
        who = "another Lookalike"
        info = self._holder_info()
        if info is not None:
            since = time.strftime("%H:%M", time.localtime(info.get("since", 0)))
            who = (
                f"another Lookalike (pid {info.get('pid')} on {info.get('host')}, "
                f"'{info.get('command')}', since {since})"
            )
        return (
            f"The library {self.path} is being updated by {who}. "
            f"Searching still works; to {what or self.purpose}, wait for it to finish or close it."
        )

    def holder(self, what: str | None = None) -> str | None:
        """Who holds the writer lock now, or None."""
        if self._lock is not None:
            return None
        from filelock import FileLock, Timeout

        probe = FileLock(os.fspath(self.path / self.LOCK), timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return self._holder_message(what)
        except OSError:
            return None
        probe.release()
        return None

    def release(self) -> None:
        if self._lock is not None:
            try:
                (self.path / self.HOLDER).unlink()
            except OSError:
                pass
            self._lock.release()
            self._lock = None

    def close(self) -> None:
        try:
            self.catalog.close()
        except AttributeError:
            pass
        self.release()

    def close_or_discard(self) -> None:
        """Close; a library folder this open created and nothing was put in (no model bound,
        no photo: a command that failed before any work, such as a model that could not be
        loaded; what it wrote, the folders asked for, goes with it) is removed again, so no
        empty library is left behind."""
        try:
            unused = self.created and self.writer and self.model_record() is None and self.catalog.photo_count() == 0
        except Exception:
            unused = False
        self.close()
        if not unused:
            return
        ours = {Catalog.FILENAME, f"{Catalog.FILENAME}-wal", f"{Catalog.FILENAME}-shm", self.LOCK, self.HOLDER}
        try:
            entries = list(self.path.iterdir())
            if any(p.name not in ours or not p.is_file() for p in entries):
                return  # something else is there: leave it all
            for p in entries:
                p.unlink()
            self.path.rmdir()
        except OSError as exc:
            log.info("Could not remove the unused library folder %s: %s", self.path, exc)

    # -- the model ----------------------------------------------------------

    def model_record(self) -> ModelRecord | None:
        m = self.catalog.meta()
        if "encoder_id" not in m:
            return None
        return ModelRecord(
            m.get("encoder_name", ""),
            m["encoder_id"],
            m.get("weights_checksum", ""),
            int(m.get("dimension", "0")),
            m.get("model_file", ""),
        )

    def bind_model(self, record: ModelRecord) -> None:
        """Record the encoder on first use; refuse any other afterwards."""
        current = self.model_record()
        if current is None:
            if not self.writer:
                return
            self.catalog.set_meta(
                {
                    "encoder_name": record.name,
                    "encoder_id": record.encoder_id,
                    "weights_checksum": record.weights_checksum,
                    "dimension": record.dimension,
                    "model_file": record.model_file,
                }
            )
            return
        self.check_model(record)

    def check_model(self, record: ModelRecord) -> None:
        current = self.model_record()
        if current is None:
            return
        if (current.encoder_id, current.weights_checksum, current.dimension) != (
            record.encoder_id,
            record.weights_checksum,
            record.dimension,
        ):
            raise ModelMismatchError(
                f"This library was built with '{current.encoder_id}' and cannot take vectors from "
                f"'{record.encoder_id}' (vectors of two models never mix). Use the same model, or "
                f"index into a new library: lookalike index PATH --library NEW_DIR --model {record.name}"
            )
