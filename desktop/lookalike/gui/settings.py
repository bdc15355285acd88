"""What the window remembers between runs, in an INI file under AppPaths.config.

Kept in one file of our own (not the platform's registry or default location)
so that LOOKALIKE_HOME moves it along with the library, and tests stay apart.

Reads happen once, at start. Changes are kept in memory and written a moment
later on a pool thread (QSettings syncs with fsync; on a busy disk that can
take a tenth of a second, which the GUI thread must never wait for), and
once more, synchronously, when the window closes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QRunnable, QSettings, QThreadPool, QTimer

from lookalike.core.store.paths import AppPaths, ensure_private_dir

HISTORY_LIMIT = 50

_KEYS = (
    "window/geometry",
    "window/splitter",
    "search/last_query",
    "search/last_images",
    "search/history",
    "library/folders",
    "view/sort",
    "view/min_score",
    "model/name",
    "model/file",
    "app/first_run_seen",
)


class _Write(QRunnable):
    def __init__(self, settings: Settings, changes: dict[str, Any]) -> None:
        super().__init__()
        self.settings = settings
        self.changes = changes

    def run(self) -> None:
        self.settings._write(self.changes)


class Settings:
    """A typed, in-memory view of the window's settings, saved in the background."""

    def __init__(self, paths: AppPaths, *, delay_ms: int = 1500) -> None:
        ensure_private_dir(paths.config)
        self.file = paths.config / "window.ini"
        qs = QSettings(str(self.file), QSettings.Format.IniFormat)
        self._values: dict[str, Any] = {k: qs.value(k) for k in _KEYS if qs.contains(k)}
        del qs
        self._dirty: dict[str, Any] = {}
        self._write_lock = threading.Lock()
        self._pool = QThreadPool()
        self._pool.setMaxThreadCount(1)
        self._timer: QTimer | None = None
        self._delay_ms = delay_ms

    # -- storage --------------------------------------------------------------------------
    def _get(self, key: str, default: Any = None) -> Any:
        v = self._values.get(key)
        return default if v is None else v

    def _set(self, key: str, value: Any) -> None:
        if self._values.get(key) == value and key in self._values:
            return
        self._values[key] = value
        self._dirty[key] = value
        if self._timer is None:
            self._timer = QTimer()
            self._timer.setSingleShot(True)
            self._timer.timeout.connect(self._save_later)
        if not self._timer.isActive():
            self._timer.start(self._delay_ms)

    def _save_later(self) -> None:
        changes, self._dirty = self._dirty, {}
        if changes:
            self._pool.start(_Write(self, changes))

    def _write(self, changes: dict[str, Any]) -> None:
        with self._write_lock:
            qs = QSettings(str(self.file), QSettings.Format.IniFormat)
            for k, v in changes.items():
                qs.setValue(k, v)
            qs.sync()

    def sync(self) -> None:
        """Write every pending change now (at close)."""
        if self._timer is not None:
            self._timer.stop()
        self._pool.waitForDone(5000)
        changes, self._dirty = self._dirty, {}
        if changes:
            self._write(changes)

    # -- geometry -------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        v = self._get("window/geometry")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def set_geometry(self, data: QByteArray) -> None:
        self._set("window/geometry", QByteArray(data))

    def splitter_state(self) -> QByteArray | None:
        v = self._get("window/splitter")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def set_splitter_state(self, data: QByteArray) -> None:
        self._set("window/splitter", QByteArray(data))

    # -- the query ------------------------------------------------------------------------
    def last_query(self) -> str:
        return str(self._get("search/last_query", "") or "")

    def set_last_query(self, text: str) -> None:
        self._set("search/last_query", text)

    @staticmethod
    def _list(raw: Any) -> list[str]:
        if raw is None or raw == "":
            return []
        if isinstance(raw, str):
            return [raw]
        return [str(x) for x in raw]

    def last_images(self) -> list[tuple[str, float]]:
        out = []
        for entry in self._list(self._get("search/last_images")):
            sign, _, path = entry.partition("|")
            try:
                out.append((path, float(sign)))
            except ValueError:
                continue
        return out

    def set_last_images(self, images: list[tuple[str, float]]) -> None:
        self._set("search/last_images", [f"{w:g}|{p}" for p, w in images])

    def history(self) -> list[str]:
        return [x for x in self._list(self._get("search/history")) if x.strip()]

    def remember_query(self, text: str) -> list[str]:
        text = text.strip()
        hist = self.history()
        if text:
            hist = [text] + [h for h in hist if h != text]
        hist = hist[:HISTORY_LIMIT]
        self._set("search/history", hist)
        return hist

    # -- folders (a copy of what the library knows, shown before the engine is up) ----------
    def folders(self) -> list[str]:
        return self._list(self._get("library/folders"))

    def set_folders(self, folders: list[str]) -> None:
        self._set("library/folders", list(folders))

    # -- view -----------------------------------------------------------------------------
    def sort_order(self) -> str:
        return str(self._get("view/sort", "score"))

    def set_sort_order(self, order: str) -> None:
        self._set("view/sort", order)

    def min_score(self) -> int:
        try:
            return int(self._get("view/min_score", 0))
        except (TypeError, ValueError):
            return 0

    def set_min_score(self, value: int) -> None:
        self._set("view/min_score", int(value))

    # -- model ----------------------------------------------------------------------------
    def model(self) -> tuple[str, str]:
        """(encoder name, model file or '')."""
        return str(self._get("model/name", "offline") or "offline"), str(self._get("model/file", "") or "")

    def set_model(self, name: str, model_file: str | Path | None = None) -> None:
        self._set("model/name", name)
        self._set("model/file", str(model_file or ""))

    def first_run_seen(self) -> bool:
        return str(self._get("app/first_run_seen", "false")).lower() == "true"

    def set_first_run_seen(self) -> None:
        self._set("app/first_run_seen", "true")
