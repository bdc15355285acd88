"""Thumbnails: the freedesktop.org thumbnail cache, and a lazy background loader.

Thumbnails follow the freedesktop.org Thumbnail Managing Standard, so the ones
a file manager already made are reused and the ones made here are shared with
it: ``$XDG_CACHE_HOME/thumbnails/{normal,large,x-large,xx-large}/<md5(uri)>.png``
with ``Thumb::URI`` and ``Thumb::MTime`` (and ``Thumb::Size``) in the PNG's text
chunks; a thumbnail is used only while those still match the file. Photos that
cannot be thumbnailed get a marker under ``thumbnails/fail/lookalike-<version>/``.

Decoding and resizing happen on pool threads; the window asks for a thumbnail
when a tile is painted and gets a ``loaded`` signal when it is ready. Requests
form a stack (newest first) so the tiles on screen load before the ones the
user scrolled past, and the stack is capped so a fast scroll never builds a
backlog.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from lookalike import __version__

log = logging.getLogger(__name__)

# Flavour name -> the longest side in pixels (the spec's sizes).
FLAVOURS: tuple[tuple[str, int], ...] = (
    ("normal", 128),
    ("large", 256),
    ("x-large", 512),
    ("xx-large", 1024),
)
FAIL_DIR = f"fail/lookalike-{__version__}"


def thumbnails_root() -> Path:
    """``$XDG_CACHE_HOME/thumbnails`` (``~/.cache/thumbnails`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "thumbnails"


def file_uri(path: Path | str) -> str:
    """The file URI the spec hashes: absolute path, escaped as GLib escapes it."""
    p = os.path.abspath(os.fspath(path))
    return "file://" + quote(p, safe="!'()*/&=:@+$,~")


def thumbnail_name(path: Path | str) -> str:
    return hashlib.md5(file_uri(path).encode("utf-8")).hexdigest() + ".png"


def flavour_for(pixels: int) -> tuple[str, int]:
    """The smallest flavour whose size is at least ``pixels``."""
    for name, size in FLAVOURS:
        if size >= pixels:
            return name, size
    return FLAVOURS[-1]


@dataclass(frozen=True)
class FileStamp:
    uri: str
    mtime: int
    size: int


def stamp(path: Path | str) -> FileStamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileStamp(file_uri(path), int(st.st_mtime), st.st_size)


def _read_valid(thumb: Path, st: FileStamp) -> QImage | None:
    """The thumbnail at ``thumb`` if it exists and still describes the file."""
    if not thumb.is_file():
        return None
    img = QImage(str(thumb))
    if img.isNull():
        return None
    if img.text("Thumb::URI") != st.uri:
        return None
    try:
        if int(img.text("Thumb::MTime") or -1) != st.mtime:
            return None
    except ValueError:
        return None
    size_text = img.text("Thumb::Size")
    if size_text:
        try:
            if int(size_text) != st.size:
                return None
        except ValueError:
            return None
    return img


class ThumbnailStore:
    """Reads and writes thumbnails in the shared cache. Thread-safe (no shared state)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or thumbnails_root()

    def lookup(self, path: Path | str, pixels: int) -> QImage | None:
        st = stamp(path)
        if st is None:
            return None
        name = thumbnail_name(path)
        want, _ = flavour_for(pixels)
        names = [n for n, _ in FLAVOURS]
        # The flavour asked for, then larger ones (downscaling stays crisp).
        for flavour in names[names.index(want) :]:
            img = _read_valid(self.root / flavour / name, st)
            if img is not None:
                return img
        return None

    def failed_before(self, path: Path | str) -> bool:
        st = stamp(path)
        if st is None:
            return True
        return _read_valid(self.root / FAIL_DIR / thumbnail_name(path), st) is not None

    def make(self, path: Path | str, pixels: int) -> QImage | None:
        """Decode the photo, write its thumbnail into the cache, return it (None: unreadable)."""
        st = stamp(path)
        if st is None:
            return None
        flavour, size = flavour_for(pixels)
        try:
            from lookalike.core.index.imaging import ImageDecodeError, decode_file

            decoded = decode_file(path, target=size)
        except ImageDecodeError as exc:
            log.info("no thumbnail for %s: %s", path, exc)
            self._write_fail(path, st)
            return None
        except Exception:  # a bug in a codec: never take the window down
            log.exception("thumbnailing %s failed", path)
            return None
        img = decoded.image
        if max(img.size) > size:
            from PIL import Image

            img = img.copy()
            img.thumbnail((size, size), Image.Resampling.LANCZOS)
        self._write(self.root / flavour / thumbnail_name(path), img, st)
        return pil_to_qimage(img)

    def _write(self, target: Path, img, st: FileStamp) -> None:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Thumb::URI", st.uri)
        info.add_text("Thumb::MTime", str(st.mtime))
        info.add_text("Thumb::Size", str(st.size))
        info.add_text("Software", f"Lookalike {__version__}")
        try:
            self._atomic_save(target, lambda f: img.save(f, "PNG", pnginfo=info))
        except OSError as exc:  # a read-only cache is not worth an error
            log.debug("cannot write thumbnail %s: %s", target, exc)

    def _write_fail(self, path: Path | str, st: FileStamp) -> None:
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Thumb::URI", st.uri)
        info.add_text("Thumb::MTime", str(st.mtime))
        info.add_text("Thumb::Size", str(st.size))
        info.add_text("Software", f"Lookalike {__version__}")
        target = self.root / FAIL_DIR / thumbnail_name(path)
        try:
            self._atomic_save(target, lambda f: Image.new("RGBA", (1, 1)).save(f, "PNG", pnginfo=info))
        except OSError as exc:
            log.debug("cannot write failure marker %s: %s", target, exc)

    @staticmethod
    def _atomic_save(target: Path, write) -> None:
        """Write to a temporary file in the same folder, then rename (the spec asks for it)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        for d in (target.parent, target.parent.parent):
            try:
                os.chmod(d, 0o700)
            except OSError:
                pass
        fd, tmp = tempfile.mkstemp(prefix=".lookalike-", suffix=".png", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def pil_to_qimage(img) -> QImage:
    """A PIL RGB/RGBA image -> a QImage that owns its pixels."""
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGB")
    data = img.tobytes()
    w, h = img.size
    if img.mode == "RGBA":
        q = QImage(data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    else:
        q = QImage(data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return q.copy()


def rounded(img: QImage, radius: float) -> QImage:
    """``img`` with rounded corners, premultiplied ARGB (ready to draw; made off the GUI thread)."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QPainter, QPainterPath

    out = QImage(img.size(), QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(Qt.GlobalColor.transparent)
    p = QPainter(out)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    path = QPainterPath()
    path.addRoundedRect(QRectF(0, 0, img.width(), img.height()), radius, radius)
    p.setClipPath(path)
    p.drawImage(0, 0, img)
    p.end()
    return out


class _LoaderSignals(QObject):
    loaded = Signal(str, QImage)  # path, thumbnail (a null QImage: cannot be thumbnailed)


class _Drain(QRunnable):
    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        from lookalike.gui.workers import lower_thread_priority

        lower_thread_priority(5)
        loader = self.loader
        while True:
            path = loader._pop()
            if path is None:
                return
            img = None
            try:
                img = loader.store.lookup(path, loader.pixels)
                if img is None and not loader.store.failed_before(path):
                    img = loader.store.make(path, loader.pixels)
            except Exception:
                log.exception("thumbnail of %s", path)
            if img is not None and max(img.width(), img.height()) > loader.pixels:
                from PySide6.QtCore import Qt

                img = img.scaled(
                    loader.pixels,
                    loader.pixels,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            if img is not None and not img.isNull():
                img = rounded(img, max(2.0, 4.0 * loader.pixels / 168))
            loader._done(path, img)


class ThumbnailLoader(QObject):
    """Lazily loads thumbnails on pool threads; keeps recent ones in memory.

    Call :meth:`get` from a paint: it returns the image if it is ready, else
    queues it and returns None; ``loaded(path)`` follows when it is ready.
    """

    loaded = Signal(str)
    failed = Signal(str)

    def __init__(
        self,
        pixels: int = 256,
        *,
        store: ThumbnailStore | None = None,
        threads: int | None = None,
        memory_bytes: int = 192 * 2**20,
        max_pending: int = 300,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.pixels = pixels
        self.store = store or ThumbnailStore()
        self._pool = QThreadPool(self)
        n = threads or max(2, min(4, (QThreadPool.globalInstance().maxThreadCount() or 2) // 2))
        self._pool.setMaxThreadCount(n)
        self._max_workers = n
        self._lock = threading.Lock()
        self._stack: list[str] = []
        self._pending: set[str] = set()
        self._workers = 0
        self._stopped = False
        self._max_pending = max_pending
        self._cache: OrderedDict[str, QImage] = OrderedDict()
        self._cache_bytes = 0
        self._memory_bytes = memory_bytes
        self._bad: set[str] = set()
        self._signals = _LoaderSignals()
        self._signals.loaded.connect(self._on_loaded)

    # -- GUI thread ---------------------------------------------------------------------
    def get(self, path: str) -> QImage | None:
        img = self._cache.get(path)
        if img is not None:
            self._cache.move_to_end(path)
            return img
        if path not in self._bad:
            self._request(path)
        return None

    def is_bad(self, path: str) -> bool:
        return path in self._bad

    def peek(self, path: str) -> QImage | None:
        """The cached image, without queueing a load."""
        return self._cache.get(path)

    def forget(self) -> None:
        """Drop queued requests (a new result list is on screen)."""
        with self._lock:
            for p in self._stack:
                self._pending.discard(p)
            self._stack.clear()

    def stop(self, wait_ms: int = 3000) -> None:
        with self._lock:
            self._stopped = True
            self._stack.clear()
        self._pool.waitForDone(wait_ms)

    def _request(self, path: str) -> None:
        start_worker = False
        with self._lock:
            if self._stopped or path in self._pending:
                return
            self._pending.add(path)
            self._stack.append(path)
            if len(self._stack) > self._max_pending:
                dropped = self._stack[: len(self._stack) - self._max_pending]
                del self._stack[: len(dropped)]
                for p in dropped:
                    self._pending.discard(p)
            if self._workers < self._max_workers:
                self._workers += 1
                start_worker = True
        if start_worker:
            self._pool.start(_Drain(self).run)

    def _on_loaded(self, path: str, img: QImage) -> None:
        if img.isNull():
            self._bad.add(path)
            self.failed.emit(path)
            return
        old = self._cache.pop(path, None)
        if old is not None:
            self._cache_bytes -= old.sizeInBytes()
        self._cache[path] = img
        self._cache_bytes += img.sizeInBytes()
        while self._cache_bytes > self._memory_bytes and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._cache_bytes -= evicted.sizeInBytes()
        self.loaded.emit(path)

    # -- pool threads -------------------------------------------------------------------
    def _pop(self) -> str | None:
        with self._lock:
            if self._stopped or not self._stack:
                self._workers -= 1
                return None
            return self._stack.pop()

    def _done(self, path: str, img: QImage | None) -> None:
        with self._lock:
            self._pending.discard(path)
            stopped = self._stopped
        if not stopped:
            try:
                self._signals.loaded.emit(path, img if img is not None else QImage())
            except RuntimeError:
                pass
