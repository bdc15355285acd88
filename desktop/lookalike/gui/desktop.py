"""The desktop around the window: open a file, show it in its folder, the clipboard, drops.

Nothing here runs a shell: files open through QDesktopServices, "show in
folder" asks the file manager over D-Bus (org.freedesktop.FileManager1) and
falls back to opening the folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage

from lookalike.core.index.imaging import is_photo_name

log = logging.getLogger(__name__)


def open_with_default_app(path: str) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


_pending_calls: set = set()


def show_in_folder(path: str) -> bool:
    """Show ``path`` selected in the file manager (or at least open its folder).

    On Linux the file manager is asked over D-Bus without waiting for it (it
    may take seconds to start); if it answers with an error, the folder is
    opened instead.
    """
    folder_url = QUrl.fromLocalFile(os.path.dirname(path))
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        try:
            from PySide6.QtDBus import QDBusConnection, QDBusMessage, QDBusPendingCallWatcher

            bus = QDBusConnection.sessionBus()
            if bus.isConnected():
                msg = QDBusMessage.createMethodCall(
                    "org.freedesktop.FileManager1",
                    "/org/freedesktop/FileManager1",
                    "org.freedesktop.FileManager1",
                    "ShowItems",
                )
                msg.setArguments([[QUrl.fromLocalFile(path).toString()], ""])
                watcher = QDBusPendingCallWatcher(bus.asyncCall(msg, 10_000))
                _pending_calls.add(watcher)

                def finished(w=watcher) -> None:
                    _pending_calls.discard(w)
                    if w.isError():
                        log.debug("FileManager1.ShowItems failed: %s", w.error().message())
                        QDesktopServices.openUrl(folder_url)
                    w.deleteLater()

                watcher.finished.connect(finished)
                return True
        except Exception:  # no D-Bus here: fall back
            log.debug("FileManager1 unavailable", exc_info=True)
    elif sys.platform == "darwin":
        from PySide6.QtCore import QProcess

        if QProcess.startDetached("open", ["-R", path]):
            return True
    elif sys.platform == "win32":
        from PySide6.QtCore import QProcess

        if QProcess.startDetached("explorer.exe", ["/select,", os.path.normpath(path)]):
            return True
    return QDesktopServices.openUrl(folder_url)


def copy_paths(paths: list[str]) -> None:
    mime = QMimeData()
    mime.setText("\n".join(paths))
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    QGuiApplication.clipboard().setMimeData(mime)


def copy_image(path: str, image: QImage) -> None:
    mime = QMimeData()
    mime.setImageData(image)
    mime.setUrls([QUrl.fromLocalFile(path)])
    QGuiApplication.clipboard().setMimeData(mime)


def load_full_image(path: str) -> QImage:
    """Decode a photo for the clipboard (on a pool thread), oriented, at most 4096 px."""
    from lookalike.core.index.imaging import decode_file
    from lookalike.gui.thumbnails import pil_to_qimage

    decoded = decode_file(path, target=None)
    img = decoded.image
    if max(img.size) > 4096:
        from PIL import Image

        img = img.copy()
        img.thumbnail((4096, 4096), Image.Resampling.LANCZOS)
    return pil_to_qimage(img)


@dataclass(frozen=True)
class DropContent:
    """What a drop or a paste carries, sorted into what the window does with it."""

    folders: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # files that are neither
    image_data: QImage | None = None  # raw pixels (a screenshot, a copied image)

    @property
    def empty(self) -> bool:
        return not (self.folders or self.images or self.image_data is not None)


def _local_paths(mime: QMimeData) -> list[str]:
    paths: list[str] = []
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile():
                paths.append(url.toLocalFile())
    elif mime.hasText():
        # Some file managers copy plain paths or file:// lines only as text.
        for line in mime.text().splitlines():
            line = line.strip()
            if line.startswith("file://"):
                u = QUrl(line)
                if u.isLocalFile():
                    paths.append(u.toLocalFile())
            elif line.startswith("/") and os.path.exists(line):
                paths.append(line)
    return paths


def classify(mime: QMimeData | None) -> DropContent:
    if mime is None:
        return DropContent()
    folders, images, ignored = [], [], []
    for p in _local_paths(mime):
        if os.path.isdir(p):
            folders.append(os.path.abspath(p))
        elif os.path.isfile(p) and is_photo_name(p):
            images.append(os.path.abspath(p))
        else:
            ignored.append(p)
    data = None
    if not images and not folders and mime.hasImage():
        img = mime.imageData()
        if isinstance(img, QImage) and not img.isNull():
            data = img
        elif img is not None:
            try:
                data = QImage(img)
            except TypeError:
                data = None
            if data is not None and data.isNull():
                data = None
    return DropContent(tuple(folders), tuple(images), tuple(ignored), data)


def accepts(mime: QMimeData | None) -> bool:
    """Quick check for drag-enter: anything we might use (local files or image data)."""
    if mime is None:
        return False
    if mime.hasUrls():
        return any(u.isLocalFile() for u in mime.urls())
    return mime.hasImage()


def save_query_image(image: QImage, folder: Path) -> str:
    """Store pasted pixels as a PNG so the query can name it (content-addressed)."""
    buf = QByteArray()
    qbuf = QBuffer(buf)
    qbuf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(qbuf, "PNG")  # type: ignore[call-overload]  # (PySide6 wants str here; its stubs say bytes)
    qbuf.close()
    data = bytes(buf.data())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pasted-{hashlib.sha1(data).hexdigest()[:16]}.png"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return os.fspath(path)
