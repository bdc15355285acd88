"""Files change only by write-temp, fsync, rename (rule 4)."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lookalike.core.errors import DiskFullError


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename over target.

    On any failure the temporary file is removed and ``target`` is untouched.
    A full disk becomes :class:`DiskFullError`.
    """
    with atomic_paths(target) as tmps:
        yield tmps[0]


@contextmanager
def atomic_paths(*targets: Path) -> Iterator[list[Path]]:
    """Like :func:`atomic_path` for files that belong together: every temporary is written
    and fsynced first, then all are renamed back to back, so a reader sees the old set or
    the new one except for the instant between the renames (not the seconds of an fsync)."""
    dests = [Path(t) for t in targets]
    tmps: list[Path] = []
    try:
        for t in dests:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{t.name}.", suffix=".tmp", dir=t.parent)
            os.close(fd)
            tmps.append(Path(tmp_name))
        yield tmps
        for tmp in tmps:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        for tmp, t in zip(tmps, dests):
            os.replace(tmp, t)
        for d in {t.parent for t in dests}:
            fsync_dir(d)
    except BaseException as exc:
        for tmp in tmps:
            try:
                tmp.unlink()
            except OSError:
                pass
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                f"The disk is full: could not save {dests[0].name}. The previous copy is intact; "
                "free some space and try again."
            ) from None
        raise


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(target: Path, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
