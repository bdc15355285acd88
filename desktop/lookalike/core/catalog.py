"""The SQLite catalog: folders, photos (with their vectors), failures, meta.

The catalog is the library's source of truth, vectors included: the HNSW
graph on disk is a cache that can always be rebuilt from it. Paths are stored
as BLOBs of their file-system bytes, so any name the OS allows (non-UTF-8
included) round-trips exactly.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.core.concepts_schema import FILTER_INDEX as _FILTER_INDEX
from lookalike.core.concepts_schema import MIGRATION as _CONCEPTS_SCHEMA
from lookalike.core.concepts_schema import USER_TAGS as _USER_TAGS_SCHEMA
from lookalike.core.duplicates.schema import MIGRATION as _DUPLICATES_SCHEMA
from lookalike.core.duplicates.schema import MIGRATION_RESTORE as _DUPLICATES_RESTORE
from lookalike.core.errors import DiskFullError, LibraryCorruptError, LibraryNeedsUpgradeError, LookalikeError
from lookalike.core.faces.schema import MIGRATION as _FACES_SCHEMA
from lookalike.core.text.schema import MIGRATION as _TEXT_SCHEMA

log = logging.getLogger(__name__)

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS folders (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    path      BLOB NOT NULL UNIQUE,
    added     REAL NOT NULL,
    last_scan REAL,
    online    INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS photos (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    path      BLOB NOT NULL UNIQUE,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    width     INTEGER,
    height    INTEGER,
    taken     REAL,
    indexed   REAL NOT NULL,
    vector    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_hash ON photos(hash);
CREATE INDEX IF NOT EXISTS photos_folder ON photos(folder_id);
CREATE TABLE IF NOT EXISTS failures (
    path      BLOB PRIMARY KEY,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    size      INTEGER,
    mtime_ns  INTEGER,
    reason    TEXT NOT NULL,
    at        REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_folder ON failures(folder_id);
"""

# One entry per schema step; a feature's tables are its own step, its SQL kept in
# the feature's module. Numbers taken: 1 base, 2 faces/people, 3 tags/concepts,
# 4 duplicates/trash journal, 5 the filters' index, 6 text in photos, 7 user tags.
MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1}
MIGRATIONS[2] = _FACES_SCHEMA
MIGRATIONS[3] = _CONCEPTS_SCHEMA
MIGRATIONS[4] = _DUPLICATES_SCHEMA
MIGRATIONS[5] = _FILTER_INDEX  # filters and browse (core/concepts_schema.py)
MIGRATIONS[6] = _TEXT_SCHEMA  # text in photos (core/text/schema.py)
MIGRATIONS[7] = _USER_TAGS_SCHEMA  # user tags (core/user_tags.py, SQL in core/concepts_schema.py)
MIGRATIONS[8] = _DUPLICATES_RESTORE  # undo restores a photo whole; the keeper a user chose
SCHEMA_VERSION = max(MIGRATIONS)

_SQLITE_FULL, _SQLITE_IOERR, _SQLITE_CANTOPEN = 13, 10, 14


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration, each whole (a trigger's body holds semicolons)."""
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\n;"):
                yield buf
            buf = ""
    if buf.strip(" \t\n;"):
        yield buf


def _sqlite_disk_full(exc: sqlite3.Error, path: Path) -> bool:
    """Did this SQLite error come from a full disk? SQLITE_FULL says so; an I/O error
    (the WAL index cannot grow, say) counts when the file system has no room left."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == _SQLITE_FULL or "full" in str(exc).lower():
        return True
    if code in (_SQLITE_IOERR, _SQLITE_CANTOPEN) or "i/o error" in str(exc).lower():
        try:
            st = os.statvfs(path.parent)
            return st.f_bavail * st.f_frsize < 1024 * 1024
        except OSError:
            return False
    return False


def pkey(path: Path | str) -> bytes:
    """A path as the bytes the catalog stores."""
    return os.fsencode(os.fspath(path))


def unkey(blob: bytes) -> Path:
    return Path(os.fsdecode(bytes(blob)))


def prefix_range(folder: Path | str) -> tuple[bytes, bytes]:
    """[lo, hi) of path keys strictly inside ``folder``."""
    base = pkey(folder).rstrip(b"/") + b"/"
    return base, base[:-1] + b"0"  # '0' is the byte after '/'


@dataclass(frozen=True)
class PhotoRow:
    id: int
    path: Path
    folder_id: int
    size: int
    mtime_ns: int
    hash: str
    width: int | None
    height: int | None
    taken: float | None


@dataclass(frozen=True)
class Folder:
    """A library folder: where it is, whether it was there at the last look, what it holds."""

    id: int
    path: Path
    added: float
    last_scan: float | None
    online: bool
    photos: int = 0
    failures: int = 0  # files in it that could not be read


@dataclass(frozen=True)
class NewPhoto:
    """A photo ready to be committed, vector included."""

    path: Path
    folder_id: int
    size: int
    mtime_ns: int
    hash: str
    width: int | None
    height: int | None
    taken: float | None
    vector: np.ndarray


@dataclass(frozen=True)
class FailureRow:
    path: Path
    folder_id: int
    reason: str
    size: int | None = None
    mtime_ns: int | None = None


_PHOTO_COLS = "id, path, folder_id, size, mtime_ns, hash, width, height, taken"
_FOLDER_SELECT = (
    "SELECT f.id, f.path, f.added, f.last_scan, f.online, "
    "(SELECT COUNT(*) FROM photos p WHERE p.folder_id = f.id), "
    "(SELECT COUNT(*) FROM failures x WHERE x.folder_id = f.id) FROM folders f"
)


def _folder(row: Sequence) -> Folder:
    return Folder(row[0], unkey(row[1]), row[2], row[3], bool(row[4]), row[5], row[6])


def _photo(row: Sequence) -> PhotoRow:
    return PhotoRow(row[0], unkey(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8])


class Catalog:
    """One connection, guarded by a lock; every write is a short transaction."""

    FILENAME = "catalog.sqlite3"

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                os.fspath(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            else:
                self._db.execute("PRAGMA query_only = 1")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
            self._check()
        except sqlite3.OperationalError as exc:
            # Not damage: the disk, a lock or permissions. Telling the user to move a
            # sound catalog aside would be the worst advice.
            self._close_quietly()
            if _sqlite_disk_full(exc, self.path):
                raise DiskFullError(
                    f"The disk holding the library {self.path.parent} is full, so its catalog cannot be "
                    "opened. Nothing was changed; free some space and try again."
                ) from None
            raise LookalikeError(f"Cannot open the catalog {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise LibraryCorruptError(
                f"The catalog {self.path} is damaged and cannot be opened ({exc}). "
                "Move it aside and index your folders again."
            ) from None

    def _close_quietly(self) -> None:
        try:
            self._db.close()
        except (AttributeError, sqlite3.Error):
            pass

    # -- set-up -------------------------------------------------------------

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LookalikeError(
                f"The library {self.path.parent} was made by a newer Lookalike "
                f"(schema {version}); update Lookalike to open it."
            )
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            if version == 0:
                raise LookalikeError(f"{self.path.parent} is not a Lookalike library yet")
            raise LibraryNeedsUpgradeError("The library needs an upgrade; open it once for writing.")
        with self.transaction():
            for v in sorted(k for k in MIGRATIONS if k > version):
                for stmt in _statements(MIGRATIONS[v]):
                    self._db.execute(stmt)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check(self) -> None:
        """SQLite's structural check before anything is written; a reader checks every
        table but the photos (its vectors are most of the file: checking them would make
        a query's start grow with the library), and of that one its index and both ends.
        Damage a reader meets later is reported as damage too (see _q)."""
        if not self.readonly:
            self._quick_check("PRAGMA quick_check")
            return
        tables = [r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if table != "photos" and not table.startswith("sqlite_"):
                self._quick_check(f'PRAGMA quick_check("{table}")')
        self._db.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM photos").fetchone()

    def _quick_check(self, pragma: str) -> None:
        row = self._db.execute(pragma).fetchone()
        if row is None or row[0] != "ok":
            raise sqlite3.DatabaseError(row[0] if row else "quick_check failed")

    def data_version(self) -> int:
        """A number that changes when another connection (another process) commits a change."""
        return int(self._q("PRAGMA data_version")[0][0])

    def set_writable(self, on: bool) -> None:
        """Let this connection write (the library's writer lock is held) or stop it again."""
        with self._lock:
            self._db.execute(f"PRAGMA query_only = {0 if on else 1}")
            if on:
                self._db.execute("PRAGMA synchronous = NORMAL")
            self.readonly = not on

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    # Also when COMMIT itself failed (a full disk): never leave the
                    # connection inside a transaction that every later write would hit.
                    if self._db.in_transaction:
                        try:
                            self._db.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass
                    raise
            except sqlite3.OperationalError as exc:
                if _sqlite_disk_full(exc, self.path):
                    raise DiskFullError(
                        "The disk is full: the last changes were not saved, the library "
                        "is as it was before them. Free some space and index again."
                    ) from None
                raise

    def _q(self, sql: str, args: Iterable = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, tuple(args)).fetchall()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) or "malformed" not in str(exc):
                    raise
                raise LibraryCorruptError(
                    f"The catalog {self.path} is damaged ({exc}). Move it aside and index your folders again."
                ) from None

    def query(self, sql: str, args: Iterable = ()) -> list[tuple]:
        """Rows of a read (a feature reading its own tables; writes go through transaction())."""
        return self._q(sql, args)

    def delete_photos(self, conn: sqlite3.Connection, ids: Sequence[int]) -> None:
        """Forget photos inside the caller's transaction (a feature removing photos together
        with its own rows); searches see it at once through the generation."""
        conn.executemany("DELETE FROM photos WHERE id = ?", [(int(i),) for i in ids])
        self._bump(conn)

    # -- meta ---------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._q("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, items: dict[str, object], db: sqlite3.Connection | None = None) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, str(v)) for k, v in items.items()],
            )

        if db is not None:
            run(db)
        else:
            with self.transaction() as conn:
                run(conn)

    def meta(self) -> dict[str, str]:
        return dict(self._q("SELECT key, value FROM meta"))

    def generation(self) -> int:
        return int(self.get_meta("generation", "0") or 0)

    def _bump(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES('generation', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    # -- folders ------------------------------------------------------------

    def add_folder(self, path: Path) -> Folder:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO folders(path, added) VALUES(?, ?) ON CONFLICT(path) DO NOTHING",
                (pkey(path), time.time()),
            )
        row = self.folder_by_path(path)
        assert row is not None
        return row

    def remove_folder(self, folder_id: int) -> int:
        """Forget a folder, its photos and failures. Returns the photos removed."""
        with self.transaction() as conn:
            n = conn.execute("SELECT COUNT(*) FROM photos WHERE folder_id = ?", (folder_id,)).fetchone()[0]
            conn.execute("DELETE FROM photos WHERE folder_id = ?", (folder_id,))
            conn.execute("DELETE FROM failures WHERE folder_id = ?", (folder_id,))
            conn.execute("DELETE FROM folders WHERE id = ?", (folder_id,))
            self._bump(conn)
        return n

    def move_folder(self, folder_id: int, new_path: Path) -> int:
        """A folder renamed or moved on disk: give it and everything under it the new path.

        Photos keep their ids and vectors. Returns the photos moved.
        """
        rows = self._q("SELECT path FROM folders WHERE id = ?", (folder_id,))
        if not rows:
            raise LookalikeError("That folder is not in the library")
        old, new = bytes(rows[0][0]).rstrip(b"/"), pkey(new_path).rstrip(b"/")
        lo, hi = prefix_range(unkey(old))
        nlo, nhi = prefix_range(new_path)
        with self.transaction() as conn:
            if (
                conn.execute("SELECT 1 FROM folders WHERE path = ? AND id != ?", (new, folder_id)).fetchone()
                or conn.execute("SELECT 1 FROM photos WHERE path >= ? AND path < ? LIMIT 1", (nlo, nhi)).fetchone()
            ):
                raise LookalikeError(f"{new_path} is already in the library")
            conn.execute("UPDATE folders SET path = ?, online = 1 WHERE id = ?", (new, folder_id))
            moved = 0
            for table in ("photos", "failures"):
                paths = [
                    bytes(r[0])
                    for r in conn.execute(f"SELECT path FROM {table} WHERE path >= ? AND path < ?", (lo, hi))
                ]
                conn.executemany(
                    f"UPDATE {table} SET path = ? WHERE path = ?", [(new + p[len(old) :], p) for p in paths]
                )
                if table == "photos":
                    moved = len(paths)
            self._bump(conn)
        return moved

    def folders(self) -> list[Folder]:
        return [_folder(r) for r in self._q(f"{_FOLDER_SELECT} ORDER BY f.path")]

    def folder_by_path(self, path: Path) -> Folder | None:
        rows = self._q(f"{_FOLDER_SELECT} WHERE f.path = ?", (pkey(path),))
        return _folder(rows[0]) if rows else None

    def absorb_folder(self, child_id: int, into_id: int) -> None:
        """A folder inside another library folder joins it: its photos and failures move over."""
        with self.transaction() as conn:
            conn.execute("UPDATE photos SET folder_id = ? WHERE folder_id = ?", (into_id, child_id))
            conn.execute("UPDATE failures SET folder_id = ? WHERE folder_id = ?", (into_id, child_id))
            conn.execute("DELETE FROM folders WHERE id = ?", (child_id,))

    def set_folder_state(self, folder_id: int, *, online: bool, scanned: bool = False) -> None:
        with self.transaction() as conn:
            if scanned:
                conn.execute(
                    "UPDATE folders SET online = ?, last_scan = ? WHERE id = ?",
                    (int(online), time.time(), folder_id),
                )
            else:
                conn.execute("UPDATE folders SET online = ? WHERE id = ?", (int(online), folder_id))

    def folder_counts(self) -> dict[int, tuple[int, int]]:
        """folder id -> (photos, failures)."""
        out: dict[int, list[int]] = {}
        for fid, n in self._q("SELECT folder_id, COUNT(*) FROM photos GROUP BY folder_id"):
            out.setdefault(fid, [0, 0])[0] = n
        for fid, n in self._q("SELECT folder_id, COUNT(*) FROM failures GROUP BY folder_id"):
            out.setdefault(fid, [0, 0])[1] = n
        return {k: (v[0], v[1]) for k, v in out.items()}

    # -- photos -------------------------------------------------------------

    def photo_count(self) -> int:
        return self._q("SELECT COUNT(*) FROM photos")[0][0]

    def photos_in_folder(self, folder_id: int) -> dict[bytes, tuple[int, int, int, str]]:
        """path key -> (id, size, mtime_ns, hash) for a folder's photos."""
        return {
            bytes(r[0]): (r[1], r[2], r[3], r[4])
            for r in self._q("SELECT path, id, size, mtime_ns, hash FROM photos WHERE folder_id = ?", (folder_id,))
        }

    def failures_in_folder(self, folder_id: int) -> dict[bytes, tuple[int | None, int | None]]:
        return {
            bytes(r[0]): (r[1], r[2])
            for r in self._q("SELECT path, size, mtime_ns FROM failures WHERE folder_id = ?", (folder_id,))
        }

    def photo_by_path(self, path: Path) -> PhotoRow | None:
        rows = self._q(f"SELECT {_PHOTO_COLS} FROM photos WHERE path = ?", (pkey(path),))
        return _photo(rows[0]) if rows else None

    def photos_by_ids(self, ids: Sequence[int]) -> dict[int, PhotoRow]:
        out: dict[int, PhotoRow] = {}
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self._q(f"SELECT {_PHOTO_COLS} FROM photos WHERE id IN ({marks})", chunk):
                out[r[0]] = _photo(r)
        return out

    def ids_in_folder(self, folder: Path) -> np.ndarray:
        lo, hi = prefix_range(folder)
        rows = self._q("SELECT id FROM photos WHERE path >= ? AND path < ?", (lo, hi))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vector(self, photo_id: int) -> np.ndarray | None:
        rows = self._q("SELECT vector FROM photos WHERE id = ?", (photo_id,))
        return np.frombuffer(rows[0][0], dtype=np.float32).copy() if rows else None

    def vectors_of(self, ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those of ``ids`` in the catalog, in the order asked, as one
        contiguous float32 array."""
        want = [int(i) for i in np.asarray(ids, np.int64).tolist()]
        blobs: dict[int, bytes] = {}
        for start in range(0, len(want), 500):
            chunk = want[start : start + 500]
            marks = ",".join("?" * len(chunk))
            blobs.update(self._q(f"SELECT id, vector FROM photos WHERE id IN ({marks})", chunk))
        found = [i for i in want if i in blobs]
        if not found:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        vecs = np.frombuffer(b"".join(blobs[i] for i in found), np.float32).reshape(len(found), -1)
        return np.asarray(found, np.int64), vecs

    def iter_vectors(self, batch: int = 4096, after_id: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in id order, in batches, for rebuilding the graph."""
        last = after_id
        while True:
            rows = self._q("SELECT id, vector FROM photos WHERE id > ? ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            yield ids, vecs
            last = int(ids[-1])

    def all_ids(self) -> np.ndarray:
        rows = self._q("SELECT id FROM photos ORDER BY id")
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def commit_batch(
        self,
        *,
        added: Sequence[NewPhoto] = (),
        removed_ids: Sequence[int] = (),
        moved: Sequence[tuple[int, Path, int, int, int]] = (),  # (id, new path, folder_id, size, mtime_ns)
        touched: Sequence[tuple[int, int, int]] = (),  # (id, size, mtime_ns): same content, new stat
        failures: Sequence[FailureRow] = (),
        cleared_failures: Sequence[Path] = (),
        also: Callable[[sqlite3.Connection, list[int]], None] | None = None,
    ) -> list[int]:
        """One transaction: everything lands together or nothing does. Returns new ids.

        ``also(conn, new_ids)`` runs inside the same transaction, after the rows are
        written: an indexing stage's own rows commit with the photos they belong to."""
        now = time.time()
        new_ids: list[int] = []
        with self.transaction() as conn:
            if removed_ids:
                conn.executemany("DELETE FROM photos WHERE id = ?", [(int(i),) for i in removed_ids])
            for pid, new_path, fid, size, mtime in moved:
                conn.execute("DELETE FROM photos WHERE path = ? AND id != ?", (pkey(new_path), pid))
                conn.execute(
                    "UPDATE photos SET path = ?, folder_id = ?, size = ?, mtime_ns = ? WHERE id = ?",
                    (pkey(new_path), fid, size, mtime, pid),
                )
            if touched:
                conn.executemany(
                    "UPDATE photos SET size = ?, mtime_ns = ? WHERE id = ?",
                    [(s, m, i) for i, s, m in touched],
                )
            for p in added:
                conn.execute("DELETE FROM photos WHERE path = ?", (pkey(p.path),))
                cur = conn.execute(
                    "INSERT INTO photos(path, folder_id, size, mtime_ns, hash, width, height, taken, "
                    "indexed, vector) VALUES(?,?,?,?,?,?,?,?,?,?)",
                    (
                        pkey(p.path),
                        p.folder_id,
                        p.size,
                        p.mtime_ns,
                        p.hash,
                        p.width,
                        p.height,
                        p.taken,
                        now,
                        np.ascontiguousarray(p.vector, dtype=np.float32).tobytes(),
                    ),
                )
                assert cur.lastrowid is not None  # an INSERT always sets it
                new_ids.append(int(cur.lastrowid))
            if cleared_failures or added or moved:
                conn.executemany(
                    "DELETE FROM failures WHERE path = ?",
                    [(pkey(p),) for p in list(cleared_failures) + [a.path for a in added] + [m[1] for m in moved]],
                )
            if failures:
                conn.executemany(
                    "INSERT INTO failures(path, folder_id, size, mtime_ns, reason, at) VALUES(?,?,?,?,?,?) "
                    "ON CONFLICT(path) DO UPDATE SET reason = excluded.reason, size = excluded.size, "
                    "mtime_ns = excluded.mtime_ns, at = excluded.at, folder_id = excluded.folder_id",
                    [(pkey(f.path), f.folder_id, f.size, f.mtime_ns, f.reason, now) for f in failures],
                )
                conn.executemany("DELETE FROM photos WHERE path = ?", [(pkey(f.path),) for f in failures])
            if also is not None:
                also(conn, new_ids)
            self._bump(conn)
        return new_ids

    # -- failures -----------------------------------------------------------

    def failures(self, folder_id: int | None = None) -> list[FailureRow]:
        sql = "SELECT path, folder_id, reason, size, mtime_ns FROM failures"
        args: tuple = ()
        if folder_id is not None:
            sql += " WHERE folder_id = ?"
            args = (folder_id,)
        return [FailureRow(unkey(r[0]), r[1], r[2], r[3], r[4]) for r in self._q(sql + " ORDER BY path", args)]

    def failure_count(self) -> int:
        return self._q("SELECT COUNT(*) FROM failures")[0][0]
