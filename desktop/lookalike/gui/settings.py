"""What the window remembers between runs, in an INI file under AppPaths.config.

Kept in one file of our own (not the platform's registry or default location)
so that LOOKALIKE_HOME moves it along with the library, and tests stay apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from lookalike.core.paths import AppPaths, ensure_private_dir

HISTORY_LIMIT = 50


class Settings:
    """A typed view of the window's QSettings."""

    def __init__(self, paths: AppPaths) -> None:
        ensure_private_dir(paths.config)
        self.file = paths.config / "window.ini"
        self.qs = QSettings(str(self.file), QSettings.Format.IniFormat)

    def _get(self, key: str, default: Any = None) -> Any:
        return self.qs.value(key, default)

    # geometry
    def geometry(self) -> QByteArray | None:
        v = self._get("window/geometry")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def set_geometry(self, data: QByteArray) -> None:
        self.qs.setValue("window/geometry", data)

    def splitter_state(self) -> QByteArray | None:
        v = self._get("window/splitter")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def set_splitter_state(self, data: QByteArray) -> None:
        self.qs.setValue("window/splitter", data)

    # the query
    def last_query(self) -> str:
        return str(self._get("search/last_query", "") or "")

    def set_last_query(self, text: str) -> None:
        self.qs.setValue("search/last_query", text)

    def last_images(self) -> list[tuple[str, float]]:
        raw = self._get("search/last_images", []) or []
        if isinstance(raw, str):
            raw = [raw]
        out = []
        for entry in raw:
            sign, _, path = str(entry).partition("|")
            try:
                out.append((path, float(sign)))
            except ValueError:
                continue
        return out

    def set_last_images(self, images: list[tuple[str, float]]) -> None:
        self.qs.setValue("search/last_images", [f"{w:g}|{p}" for p, w in images])

    def history(self) -> list[str]:
        raw = self._get("search/history", []) or []
        if isinstance(raw, str):
            raw = [raw]
        return [str(x) for x in raw if str(x).strip()]

    def remember_query(self, text: str) -> list[str]:
        text = text.strip()
        hist = self.history()
        if text:
            hist = [text] + [h for h in hist if h != text]
        hist = hist[:HISTORY_LIMIT]
        self.qs.setValue("search/history", hist)
        return hist

    # folders (a copy of what the library knows, shown before the engine is up)
    def folders(self) -> list[str]:
        raw = self._get("library/folders", []) or []
        if isinstance(raw, str):
            raw = [raw]
        return [str(x) for x in raw]

    def set_folders(self, folders: list[str]) -> None:
        self.qs.setValue("library/folders", list(folders))

    # view
    def sort_order(self) -> str:
        return str(self._get("view/sort", "score"))

    def set_sort_order(self, order: str) -> None:
        self.qs.setValue("view/sort", order)

    def min_score(self) -> int:
        try:
            return int(self._get("view/min_score", 0))
        except (TypeError, ValueError):
            return 0

    def set_min_score(self, value: int) -> None:
        self.qs.setValue("view/min_score", int(value))

    # model
    def model(self) -> tuple[str, str]:
        """(encoder name, model file or '')."""
        return str(self._get("model/name", "offline") or "offline"), str(self._get("model/file", "") or "")

    def set_model(self, name: str, model_file: str | Path | None = None) -> None:
        self.qs.setValue("model/name", name)
        self.qs.setValue("model/file", str(model_file or ""))

    def first_run_seen(self) -> bool:
        return str(self._get("app/first_run_seen", "false")).lower() == "true"

    def set_first_run_seen(self) -> None:
        self.qs.setValue("app/first_run_seen", "true")

    def sync(self) -> None:
        self.qs.sync()
