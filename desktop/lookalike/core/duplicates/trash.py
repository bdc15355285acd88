"""Moving photos to the system trash through a journal, and putting them back.

Each file is checked first (still the file that was indexed: size, time and
content hash; a trash folder usable on its drive), then a journal row is
written ('intent', with the photo's catalog row, vector included), then the file
goes to the trash through send2trash, then one transaction marks the row
'trashed' (where it went) and removes the photo from the catalog. A process
killed anywhere leaves the file either where it was or in the trash; the next
:func:`recover` finishes or cancels each 'intent' row by looking at the disk.

On Linux the trash is the freedesktop one (send2trash's implementation of the
spec): ``$XDG_DATA_HOME/Trash`` for files on the home drive, ``$topdir/.Trash/$uid``
or ``$topdir/.Trash-$uid`` on other drives. A file keeps its inode when renamed
into the trash, which is how the journal finds the name it got there (send2trash
adds " 1", " 2"... when the name is taken). Undo renames it back and removes its
``.trashinfo``, and puts the photo's row back with its id and vector.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from lookalike.core.catalog import pkey, unkey

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from lookalike.core.catalog import Catalog, PhotoRow

log = logging.getLogger(__name__)

FREEDESKTOP = sys.platform.startswith("linux") or "bsd" in sys.platform


class TrashState(StrEnum):
    INTENT = "intent"  # about to be moved
    TRASHED = "trashed"  # in the trash, photo removed from the catalog
    LEFT = "left"  # not moved (note says why)
    RESTORING = "restoring"  # an undo is moving it back
    RESTORED = "restored"  # back in place, photo back in the catalog
    GONE = "gone"  # neither in place nor in the trash when looked at again


class NoTrashError(Exception):
    """The file's drive has no trash Lookalike can use: it is never deleted instead."""


@dataclass(frozen=True)
class Moved:
    path: Path
    trashed_as: Path | None  # the file in the trash (None where the platform does not say)


@dataclass(frozen=True)
class Left:
    path: Path
    reason: str


@dataclass(frozen=True)
class TrashReport:
    run_id: int
    moved: tuple[Moved, ...]
    left: tuple[Left, ...]


@dataclass(frozen=True)
class UndoReport:
    run_id: int | None
    restored: tuple[Path, ...]
    failed: tuple[Left, ...]


# -- the trash on disk ----------------------------------------------------------


def _plat():
    from send2trash import plat_other

    return plat_other


def trash_dir_for(path: Path) -> Path:
    """The freedesktop trash folder a file would go to; NoTrashError when there is none to use."""
    plat = _plat()
    raw = os.fsencode(path)
    try:
        dev = os.lstat(raw).st_dev
        home_dev = os.lstat(os.path.realpath(os.path.expanduser(b"~"))).st_dev
    except OSError as exc:
        raise NoTrashError(f"cannot look at it: {exc.strerror or exc}") from None
    if dev == home_dev:
        return Path(os.fsdecode(plat.HOMETRASH_B))
    top = plat.find_mount_point(raw)
    shared = os.path.join(top, b".Trash")
    try:
        st = os.lstat(shared)
        import stat as st_mod

        if st_mod.S_ISDIR(st.st_mode) and not st_mod.S_ISLNK(st.st_mode) and st.st_mode & st_mod.S_ISVTX:
            mine = os.path.join(shared, str(os.getuid()).encode())
            if os.path.isdir(mine) and os.access(mine, os.W_OK) or os.access(shared, os.W_OK):
                return Path(os.fsdecode(mine))
    except OSError:
        pass
    own = os.path.join(top, b".Trash-" + str(os.getuid()).encode())
    if os.path.isdir(own) and os.access(own, os.W_OK | os.X_OK):
        return Path(os.fsdecode(own))
    if not os.path.exists(own) and os.access(top, os.W_OK | os.X_OK):
        return Path(os.fsdecode(own))
    raise NoTrashError(f"the drive at {os.fsdecode(top)} has no trash folder this user can write to")


def _names(base: str) -> Iterator[str]:
    """The names send2trash tries, in its order: 'a.jpg', 'a 1.jpg', 'a 2.jpg', ..."""
    stem, ext = os.path.splitext(base)
    yield base
    for n in range(1, 100_000):
        yield f"{stem} {n}{ext}"


def _info_path(trash: Path, name: str) -> Path:
    return trash / "info" / (name + ".trashinfo")


def _info_points_at(info: Path, original: Path, trash: Path) -> bool:
    try:
        text = info.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("Path="):
            target = unquote(line[5:])
            full = target if target.startswith("/") else os.path.join(os.fsdecode(_topdir_of(trash)), target)
            return os.path.normpath(full) == os.path.normpath(os.fspath(original))
    return False


def _topdir_of(trash: Path) -> bytes:
    plat = _plat()
    if os.fsencode(trash) == plat.HOMETRASH_B:
        return plat.XDG_DATA_HOME
    parent = trash.parent
    return os.fsencode(parent.parent if parent.name == ".Trash" else parent)


def locate(original: Path, trash: Path, dev: int | None, ino: int | None, size: int | None) -> str | None:
    """The name a trashed file got in ``trash/files``: by its inode, else (moved across
    drives, so copied) by its .trashinfo pointing at ``original`` and its size."""
    files = trash / "files"
    fallback: str | None = None
    for name in _names(original.name):
        entry = files / name
        info = _info_path(trash, name)
        try:
            st = os.lstat(entry)
        except FileNotFoundError:
            if not info.exists():
                break  # the first free name: send2trash would have stopped here
            continue
        except OSError:
            continue
        if ino is not None and st.st_ino == ino and st.st_dev == dev:
            return name
        if fallback is None and st.st_size == size and _info_points_at(info, original, trash):
            fallback = name
    return fallback


def find_trashed(
    original: Path, trash: Path | None, dev: int | None, ino: int | None, size: int | None
) -> tuple[Path, str] | None:
    """(trash folder, name) of a file moved to the trash: where it was meant to go, else the
    home trash (send2trash's fallback when the move crossed drives)."""
    home = Path(os.fsdecode(_plat().HOMETRASH_B))
    for where in dict.fromkeys(t for t in (trash, home) if t is not None):
        name = locate(original, where, dev, ino, size)
        if name is not None:
            return where, name
    return None


def _orphan_infos(original: Path, trash: Path) -> list[Path]:
    """.trashinfo files pointing at ``original`` with no file beside them (a move cut short)."""
    out = []
    for name in _names(original.name):
        entry, info = trash / "files" / name, _info_path(trash, name)
        if not info.exists():
            if not os.path.lexists(entry):
                break
            continue
        if not os.path.lexists(entry) and _info_points_at(info, original, trash):
            out.append(info)
    return out


def _send(path: Path) -> None:
    if FREEDESKTOP:
        _plat().send2trash(os.fsencode(path))
    else:  # pragma: no cover - macOS / Windows: the platform's own trash
        from send2trash import send2trash

        send2trash(os.fspath(path))


def _kill_point(point: str, count: int) -> None:
    """A test hook: LOOKALIKE_TRASH_KILL=POINT:N kills this process (SIGKILL) at POINT
    ('after-intent' or 'after-move') of the N-th file; unset it costs one getenv."""
    want = os.environ.get("LOOKALIKE_TRASH_KILL")
    if want and want == f"{point}:{count}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


# -- the journal ----------------------------------------------------------------


def _name_key(name: str) -> bytes:
    return os.fsencode(name)


def _name_of(blob: bytes) -> str:
    return os.fsdecode(bytes(blob))


def _unchanged(row: PhotoRow) -> str | None:
    """None if the file is the one indexed, else why not."""
    from lookalike.core.indexer import content_hash

    try:
        st = os.stat(row.path)
    except FileNotFoundError:
        return "it is not there any more"
    except OSError as exc:
        return f"cannot look at it: {exc.strerror or exc}"
    if st.st_size != row.size or st.st_mtime_ns != row.mtime_ns:
        return "it changed since it was indexed"
    try:
        with open(row.path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if content_hash(data) != row.hash:
        return "its content changed since it was indexed"
    return None


# -- a photo's rows, kept for its undo ------------------------------------------------


def _foreign_keys(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str, str, str]]]:
    """table -> its foreign keys as (column, parent table, parent column, on delete)."""
    tables = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    ]
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    for t in tables:
        out[t] = [
            (r[3], r[2], r[4] or "id", str(r[6]).upper()) for r in conn.execute(f'PRAGMA foreign_key_list("{t}")')
        ]
    return out


def _plain(value):
    return {"b": base64.b64encode(bytes(value)).decode()} if isinstance(value, (bytes, memoryview)) else value


def _unplain(value):
    return base64.b64decode(value["b"]) if isinstance(value, dict) else value


def snapshot(conn: sqlite3.Connection, photo_id: int) -> str:
    """Every row that goes when the photo's row is deleted - its own (but its vector, kept
    beside) and, following ON DELETE CASCADE down, its faces and their decisions, tags,
    concepts, fingerprints, chosen keeper - as JSON, parents before children."""
    fks = _foreign_keys(conn)
    taken: dict[str, list[dict]] = {}
    cur = conn.execute("SELECT * FROM photos WHERE id = ?", (int(photo_id),))
    cols = [d[0] for d in cur.description]
    taken["photos"] = [{c: _plain(v) for c, v in zip(cols, r) if c != "vector"} for r in cur.fetchall()]
    order = ["photos"]
    grew = True
    while grew:
        grew = False
        for table, keys in fks.items():
            if table in taken:
                continue
            for col, parent, pcol, on_delete in keys:
                if on_delete != "CASCADE" or parent not in taken:
                    continue
                values = sorted({r[pcol] for r in taken[parent] if r.get(pcol) is not None})
                if not values:
                    continue
                cur = conn.execute(f'SELECT * FROM "{table}" WHERE "{col}" IN ({",".join("?" * len(values))})', values)
                cols = [d[0] for d in cur.description]
                rows = [{c: _plain(v) for c, v in zip(cols, r)} for r in cur.fetchall()]
                if rows:
                    taken[table] = rows
                    order.append(table)
                    grew = True
                break
    return json.dumps([[t, taken[t]] for t in order], separators=(",", ":"))


def _put_back(conn: sqlite3.Connection, saved: str, vector: bytes | None) -> bool:
    """Insert the rows :func:`snapshot` kept (a row whose parent is gone meanwhile is left
    out, or loses that link where the catalog would have cleared it). False if the photo's
    own row could not go back."""
    fks = _foreign_keys(conn)
    for table, rows in json.loads(saved):
        if table not in fks:
            continue  # a table this catalog no longer has
        have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
        for raw in rows:
            row = {c: _unplain(v) for c, v in raw.items() if c in have}
            if table == "photos":
                row["vector"] = vector
            keep = True
            for col, parent, pcol, on_delete in fks[table]:
                value = row.get(col)
                if value is None:
                    continue
                if conn.execute(f'SELECT 1 FROM "{parent}" WHERE "{pcol}" = ?', (value,)).fetchone() is None:
                    if on_delete == "SET NULL":
                        row[col] = None
                    else:
                        keep = False
            if not keep:
                if table == "photos":
                    return False
                continue
            names = list(row)
            done = conn.execute(
                f'INSERT OR IGNORE INTO "{table}"({",".join(f"{chr(34)}{c}{chr(34)}" for c in names)}) '
                f"VALUES({','.join('?' * len(names))})",
                [row[c] for c in names],
            ).rowcount
            if table == "photos" and not done:
                return False
    return True


def _not_a_copy(row: PhotoRow, keeper: PhotoRow | None, roots: Sequence[Path]) -> str | None:
    """None if the file can be taken for a copy to move, else why not: it is the file kept
    (a symbolic link and its target are one file), or it is reached now, through a folder
    that became a link, outside every library folder."""
    if keeper is not None:
        try:
            if os.path.samefile(row.path, keeper.path):
                return f"it is the same file as the photo kept ({keeper.path}), through a symbolic link: not a copy"
        except OSError:
            pass  # one of them is not there: said by the checks that follow
    if roots:
        real = Path(os.path.realpath(row.path))
        if not any(real.is_relative_to(r) for r in roots):
            return f"it is now outside every library folder ({real}, through a symbolic link): not moved"
    return None


def library_roots(catalog: Catalog) -> list[Path]:
    """The library's folders where they really are (links followed)."""
    return [Path(os.path.realpath(f.path)) for f in catalog.folders()]


def trash_photos(catalog: Catalog, rows: Sequence[PhotoRow], keepers: dict[int, PhotoRow] | None = None) -> TrashReport:
    """Move these photos' files to the trash, one journalled step each.

    ``keepers``: photo id -> the photo that stays in its stead; a file is moved only
    while its keeper is still there and unchanged, is not the keeper's own file reached
    through a link, and lies inside one of the library's folders."""
    roots = library_roots(catalog)
    with catalog.transaction() as conn:
        run_id = conn.execute("INSERT INTO trash_runs(started) VALUES(?)", (time.time(),)).lastrowid
        assert run_id is not None  # an INSERT always sets it
    moved: list[Moved] = []
    left: list[Left] = []
    checked_keepers: dict[int, str | None] = {}
    for n, row in enumerate(rows, 1):
        keeper = (keepers or {}).get(row.id)
        if keeper is not None:
            if keeper.id not in checked_keepers:
                checked_keepers[keeper.id] = _unchanged(keeper)
            why = checked_keepers[keeper.id]
            if why is not None:
                left.append(Left(row.path, f"the photo to keep instead ({keeper.path.name}): {why}"))
                continue
        why = _unchanged(row) or _not_a_copy(row, keeper, roots)
        if why is not None:
            left.append(Left(row.path, why))
            continue
        if FREEDESKTOP:
            try:
                trash = trash_dir_for(row.path)
            except NoTrashError as exc:
                left.append(Left(row.path, f"not deleted: {exc}"))
                continue
        else:  # pragma: no cover
            trash = None
        st = os.lstat(row.path)
        vector = catalog.vector(row.id)
        with catalog.transaction() as conn:
            jid = conn.execute(
                "INSERT INTO trash_journal(run_id, state, path, photo_id, dev, ino, trash_dir, folder_id, size, "
                "mtime_ns, hash, width, height, taken, vector, at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    TrashState.INTENT.value,
                    pkey(row.path),
                    row.id,
                    st.st_dev,
                    st.st_ino,
                    pkey(trash) if trash is not None else None,
                    row.folder_id,
                    row.size,
                    row.mtime_ns,
                    row.hash,
                    row.width,
                    row.height,
                    row.taken,
                    vector.tobytes() if vector is not None else None,
                    time.time(),
                ),
            ).lastrowid
            conn.execute("INSERT INTO trash_rows(journal_id, rows) VALUES(?, ?)", (jid, snapshot(conn, row.id)))
        _kill_point("after-intent", n)
        try:
            _send(row.path)
        except Exception as exc:  # TrashPermissionError, OSError: the file stays where it is
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            still = os.path.lexists(row.path)
            log.warning("Could not move %s to the trash: %s", row.path, reason)
            if still:
                with catalog.transaction() as conn:
                    conn.execute(
                        "UPDATE trash_journal SET state = ?, note = ? WHERE id = ?",
                        (TrashState.LEFT.value, f"the trash refused it: {reason}", jid),
                    )
                    if trash is not None:
                        for orphan in _orphan_infos(row.path, trash):
                            orphan.unlink(missing_ok=True)
                left.append(Left(row.path, f"not deleted: the trash refused it ({reason})"))
                continue
        _kill_point("after-move", n)
        found = find_trashed(row.path, trash, st.st_dev, st.st_ino, row.size) if FREEDESKTOP else None
        with catalog.transaction() as conn:
            conn.execute(
                "UPDATE trash_journal SET state = ?, trash_dir = ?, trashed_as = ? WHERE id = ?",
                (
                    TrashState.TRASHED.value,
                    pkey(found[0]) if found else None,
                    _name_key(found[1]) if found else None,
                    jid,
                ),
            )
            catalog.delete_photos(conn, [row.id])
        moved.append(Moved(row.path, found[0] / "files" / found[1] if found else None))
    with catalog.transaction() as conn:
        conn.execute("UPDATE trash_runs SET finished = ? WHERE id = ?", (time.time(), run_id))
    return TrashReport(run_id, tuple(moved), tuple(left))


def _journal(catalog: Catalog, where: str, args: Sequence = ()) -> list[dict]:
    cols = (
        "id, run_id, state, path, photo_id, dev, ino, trash_dir, trashed_as, folder_id, size, mtime_ns, hash, "
        "width, height, taken, vector, (SELECT rows FROM trash_rows WHERE journal_id = trash_journal.id)"
    )
    names = [c.strip() for c in cols.split(",")][:-1] + ["rows"]
    return [dict(zip(names, r)) for r in catalog.query(f"SELECT {cols} FROM trash_journal WHERE {where}", args)]


def recover(catalog: Catalog) -> int:
    """Settle journal rows a killed run left behind, by what is on disk. Returns rows settled."""
    settled = 0
    for j in _journal(catalog, "state IN (?, ?)", (TrashState.INTENT.value, TrashState.RESTORING.value)):
        path = unkey(j["path"])
        trash = unkey(j["trash_dir"]) if j["trash_dir"] is not None else None
        try:
            st = os.lstat(path)
            in_place = st.st_ino == j["ino"] and st.st_dev == j["dev"]
        except OSError:
            in_place = False
        found = None if in_place else find_trashed(path, trash, j["dev"], j["ino"], j["size"])
        if j["state"] == TrashState.RESTORING.value:
            if in_place:
                _finish_restore(catalog, j)
            else:
                with catalog.transaction() as conn:
                    conn.execute("UPDATE trash_journal SET state = ? WHERE id = ?", (TrashState.TRASHED.value, j["id"]))
            settled += 1
            continue
        with catalog.transaction() as conn:
            if in_place:
                conn.execute(
                    "UPDATE trash_journal SET state = ?, note = ? WHERE id = ?",
                    (TrashState.LEFT.value, "interrupted before the move", j["id"]),
                )
                if trash is not None:
                    for orphan in _orphan_infos(path, trash):
                        orphan.unlink(missing_ok=True)
            elif found is not None:
                conn.execute(
                    "UPDATE trash_journal SET state = ?, trash_dir = ?, trashed_as = ? WHERE id = ?",
                    (TrashState.TRASHED.value, pkey(found[0]), _name_key(found[1]), j["id"]),
                )
                catalog.delete_photos(conn, [j["photo_id"]])
            else:
                conn.execute(
                    "UPDATE trash_journal SET state = ?, note = ? WHERE id = ?",
                    (TrashState.GONE.value, "neither in its place nor in the trash", j["id"]),
                )
                catalog.delete_photos(conn, [j["photo_id"]])
        settled += 1
    if settled:
        log.info("Settled %d trash journal entries left by an interrupted run", settled)
    return settled


def last_run(catalog: Catalog) -> int | None:
    """The latest run with files still in the trash and not undone."""
    rows = catalog.query(
        "SELECT r.id FROM trash_runs r WHERE r.undone IS NULL AND EXISTS "
        "(SELECT 1 FROM trash_journal j WHERE j.run_id = r.id AND j.state = ?) ORDER BY r.id DESC LIMIT 1",
        (TrashState.TRASHED.value,),
    )
    return int(rows[0][0]) if rows else None


def _finish_restore(catalog: Catalog, j: dict) -> None:
    path = unkey(j["path"])
    with catalog.transaction() as conn:
        folder_ok = conn.execute("SELECT 1 FROM folders WHERE id = ?", (j["folder_id"],)).fetchone()
        taken_path = conn.execute("SELECT 1 FROM photos WHERE path = ?", (pkey(path),)).fetchone()
        if folder_ok and not taken_path and j["vector"] is not None and j["rows"]:
            if _put_back(conn, j["rows"], j["vector"]):
                catalog.delete_photos(conn, [])  # deletes nothing; bumps the generation, so searches see it again
        elif folder_ok and not taken_path and j["vector"] is not None:  # journalled before migration 8
            conn.execute(
                "INSERT OR IGNORE INTO photos(id, path, folder_id, size, mtime_ns, hash, width, height, taken, "
                "indexed, vector) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (
                    j["photo_id"],
                    pkey(path),
                    j["folder_id"],
                    j["size"],
                    j["mtime_ns"],
                    j["hash"],
                    j["width"],
                    j["height"],
                    j["taken"],
                    time.time(),
                    j["vector"],
                ),
            )
            catalog.delete_photos(conn, [])  # deletes nothing; bumps the generation, so searches see it again
        conn.execute("UPDATE trash_journal SET state = ? WHERE id = ?", (TrashState.RESTORED.value, j["id"]))


def undo(catalog: Catalog, run_id: int | None = None) -> UndoReport:
    """Put back the files of a trash run (the latest by default) that are still in the trash."""
    run_id = run_id if run_id is not None else last_run(catalog)
    if run_id is None:
        return UndoReport(None, (), ())
    restored: list[Path] = []
    failed: list[Left] = []
    for j in _journal(catalog, "run_id = ? AND state = ?", (run_id, TrashState.TRASHED.value)):
        path = unkey(j["path"])
        if j["trash_dir"] is None or j["trashed_as"] is None:
            failed.append(Left(path, "restore it from the system trash (Lookalike does not know where it went)"))
            continue
        trash = unkey(j["trash_dir"])
        name = _name_of(j["trashed_as"])
        src = trash / "files" / name
        if not os.path.lexists(src):
            with catalog.transaction() as conn:
                conn.execute(
                    "UPDATE trash_journal SET state = ?, note = ? WHERE id = ?",
                    (TrashState.GONE.value, "no longer in the trash", j["id"]),
                )
            failed.append(Left(path, "it is no longer in the trash (emptied or restored elsewhere)"))
            continue
        if os.path.lexists(path):
            failed.append(Left(path, "another file is in its place now; it stays in the trash"))
            continue
        with catalog.transaction() as conn:
            conn.execute("UPDATE trash_journal SET state = ? WHERE id = ?", (TrashState.RESTORING.value, j["id"]))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(src, path)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                shutil.move(os.fspath(src), os.fspath(path))
        except OSError as exc:
            with catalog.transaction() as conn:
                conn.execute("UPDATE trash_journal SET state = ? WHERE id = ?", (TrashState.TRASHED.value, j["id"]))
            failed.append(Left(path, f"could not move it back: {exc.strerror or exc}"))
            continue
        _info_path(trash, name).unlink(missing_ok=True)
        _finish_restore(catalog, j)
        restored.append(path)
    if not failed:
        with catalog.transaction() as conn:
            conn.execute("UPDATE trash_runs SET undone = ? WHERE id = ?", (time.time(), run_id))
    return UndoReport(run_id, tuple(restored), tuple(failed))
