"""Small panels of the window: the message banner, the indexing bar, the folder list."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
)

from lookalike.core.progress import Progress, Stage
from lookalike.core.words import counted
from lookalike.gui import icons
from lookalike.gui.messages import Action, Level
from lookalike.gui.records import FolderRow

if TYPE_CHECKING:
    from lookalike.gui.service import LibraryService


def _tint(pal: QPalette, level: Level) -> tuple[QColor, QColor]:
    """(background, border) for a banner of ``level`` that suits light and dark palettes."""
    dark = pal.color(QPalette.ColorRole.Window).lightness() < 128
    base = {
        Level.STATUS: QColor("#3d7be0"),
        Level.INFO: QColor("#3d7be0"),
        Level.WARNING: QColor("#d99a00"),
        Level.ERROR: QColor("#d33a3a"),
    }[level]
    bg = QColor(base)
    bg.setAlpha(60 if dark else 34)
    return bg, base


class Banner(QFrame):
    """A message across the top of the window, with optional action buttons.

    Used for everything a person can act on: an unreadable folder, a locked
    library, a missing model. Never a dialog full of traceback.
    """

    closed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        lay.setSpacing(8)
        self.icon = QLabel(self)
        self.icon.setFixedSize(QSize(20, 20))
        lay.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.label, 1)
        self.actions_box = QHBoxLayout()
        self.actions_box.setSpacing(4)
        lay.addLayout(self.actions_box)
        self.close_button = QToolButton(self)
        self.close_button.setAutoRaise(True)
        icons.apply(self.close_button, "close")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAccessibleName("Dismiss message")
        self.close_button.clicked.connect(self.dismiss)
        lay.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.level = Level.INFO
        self.key = ""
        self.hide()

    def show_message(
        self,
        text: str,
        level: Level = Level.INFO,
        *,
        actions: Sequence[Action] = (),
        key: str = "",
        closable: bool = True,
    ) -> None:
        self.level = Level(level)
        self.key = key
        self.label.setText(text)
        name = {Level.STATUS: "info", Level.INFO: "info", Level.WARNING: "warning", Level.ERROR: "warning"}[self.level]
        bg, border = _tint(self.palette(), self.level)
        self.icon.setPixmap(icons.pixmap(name, 20, border))
        self.setStyleSheet(
            f"#Banner {{ background-color: rgba({bg.red()},{bg.green()},{bg.blue()},{bg.alpha()});"
            f" border: 1px solid {border.name()}; border-radius: 6px; }}"
        )
        while self.actions_box.count():
            item = self.actions_box.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.hide()  # at once: deleteLater waits for the event loop
                w.deleteLater()
        for label, fn in actions:
            b = QPushButton(label, self)
            b.clicked.connect(lambda _c=False, f=fn: f())
            self.actions_box.addWidget(b)
        self.close_button.setVisible(closable)
        self.show()

    def text(self) -> str:
        return self.label.text()

    def dismiss(self) -> None:
        self.hide()
        self.key = ""
        self.closed.emit()

    def clear(self, key: str | None = None) -> None:
        """Hide the banner (only if it shows ``key``, when given)."""
        if key is None or self.key == key:
            self.hide()
            self.key = ""


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


STAGE_TITLES = {
    Stage.SCAN: "Looking for photos…",
    Stage.ENCODE: "Indexing…",
    Stage.FACES: "Finding faces…",
    Stage.TEXT: "Reading text in photos…",
    Stage.DOWNLOAD: "Downloading the model…",
    Stage.LOAD_MODEL: "Loading the model…",
    Stage.SAVE: "Saving…",
}


def stage_title(stage: Stage | str) -> str:
    """What a stage is called on screen (a stage this window does not know yet, by its own name)."""
    try:
        return STAGE_TITLES[Stage(stage)]
    except (ValueError, KeyError):
        return f"{str(stage).capitalize() or 'Working'}…"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f}"


def progress_counts(p: Progress) -> str:
    """The counts of a Progress in the unit of its stage: MB for a download, files while scanning, else photos."""
    parts = []
    if p.stage == Stage.DOWNLOAD:
        parts.append(f"{_mb(p.done)} / {_mb(p.total)} MB" if p.total else f"{_mb(p.done)} MB")
        if p.rate > 0:
            parts.append(f"{_mb(p.rate)} MB/s")
    elif p.stage == Stage.SCAN and not p.total:
        parts.append(f"{counted(p.done, 'file')} found")
    else:
        parts.append(f"{p.done:,} / {counted(p.total, 'photo')}" if p.total else counted(p.done, "photo"))
        if p.rate > 0:
            parts.append(f"{p.rate:,.1f}/s")
    if p.total and p.rate > 0:
        parts.append(f"ETA {format_duration(p.eta_seconds)}")
    return " · ".join(parts)


class IndexingBar(QFrame):
    """Progress of the indexing run: a bar, count, rate and ETA, pause and cancel."""

    pause_requested = Signal()
    resume_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("IndexingBar")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 2, 4, 2)
        lay.setSpacing(8)
        self.title = QLabel("Indexing…", self)
        self.title.setObjectName("IndexingTitle")
        lay.addWidget(self.title)
        self.bar = QProgressBar(self)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(10)
        self.bar.setMinimumWidth(160)
        lay.addWidget(self.bar, 1)
        self.detail = QLabel("", self)
        self.detail.setObjectName("IndexingDetail")
        self.detail.setMinimumWidth(240)
        lay.addWidget(self.detail)
        self.pause_button = QToolButton(self)
        self.pause_button.setAutoRaise(True)
        icons.apply(self.pause_button, "pause")
        self.pause_button.setToolTip("Pause indexing")
        self.pause_button.setAccessibleName("Pause indexing")
        self.pause_button.clicked.connect(self._on_pause_clicked)
        lay.addWidget(self.pause_button)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setAutoRaise(True)
        icons.apply(self.cancel_button, "stop")
        self.cancel_button.setToolTip("Cancel indexing (what is done so far is kept)")
        self.cancel_button.setAccessibleName("Cancel indexing")
        self.cancel_button.clicked.connect(self.cancel_requested)
        lay.addWidget(self.cancel_button)
        self.paused = False
        self.encode_title: str | None = None
        self.hide()

    def start(self, title: str = "Indexing…", *, encode_title: str | None = None) -> None:
        """Show a run; ``encode_title`` names its encode stage when plain "Indexing…" would say too little."""
        self.paused = False
        self.encode_title = encode_title
        self.title.setText(title)
        self.bar.setRange(0, 0)
        self.detail.setText("looking for photos…")
        icons.apply(self.pause_button, "pause")
        self.pause_button.setToolTip("Pause indexing")
        self.pause_button.setEnabled(True)
        self.cancel_button.setEnabled(True)
        self.show()

    def update_progress(self, p: Progress) -> None:
        """Show where the run stands: the stage by name, the bar, counts, rate and ETA."""
        if p.total:
            self.bar.setRange(0, p.total)
            self.bar.setValue(min(p.done, p.total))
        else:
            self.bar.setRange(0, 0)
        parts = [progress_counts(p)]
        if self.paused:
            parts.append("paused")
        self.detail.setText(" · ".join(parts))
        if self.paused:
            self.title.setText("Paused")
        elif p.stage == Stage.ENCODE and self.encode_title:
            self.title.setText(self.encode_title)
        else:
            self.title.setText(stage_title(p.stage))

    def follow(self, service: LibraryService) -> None:
        """Show ``service``'s indexing runs, and pause, resume or cancel them from the buttons."""
        service.indexing_started.connect(
            lambda job: self.start(job.title, encode_title=job.title if job.kind == "model" else None)
        )
        service.indexing_progressed.connect(self.update_progress)
        service.indexing_paused.connect(self.set_paused)
        service.indexing_finished.connect(lambda _outcome: self.hide())
        self.pause_requested.connect(service.pause_indexing)
        self.resume_requested.connect(service.resume_indexing)
        self.cancel_requested.connect(service.cancel_indexing)
        self.cancel_requested.connect(self.stopping)

    def _on_pause_clicked(self) -> None:
        if self.paused:
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        icons.apply(self.pause_button, "play" if paused else "pause")
        self.pause_button.setToolTip("Resume indexing" if paused else "Pause indexing")
        self.pause_button.setAccessibleName(self.pause_button.toolTip())
        if paused:
            self.title.setText("Paused")
        else:
            self.title.setText("Indexing…")

    def stopping(self) -> None:
        self.title.setText("Stopping…")
        self.pause_button.setEnabled(False)
        self.cancel_button.setEnabled(False)


class FoldersPanel(QFrame):
    """The library's folders with photo and failure counts; add, remove, re-scan."""

    add_requested = Signal()
    remove_requested = Signal(str)
    rescan_requested = Signal(str)
    failures_requested = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("FoldersPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        head = QHBoxLayout()
        title = QLabel("<b>Folders</b>", self)
        head.addWidget(title, 1)
        self.add_button = QToolButton(self)
        icons.apply(self.add_button, "folder-add")
        self.add_button.setToolTip("Add a folder… (Ctrl+O)")
        self.add_button.setAccessibleName("Add a folder")
        self.add_button.setAutoRaise(True)
        self.add_button.clicked.connect(self.add_requested)
        self.rescan_button = QToolButton(self)
        icons.apply(self.rescan_button, "rescan")
        self.rescan_button.setToolTip("Re-scan the selected folder (F5)")
        self.rescan_button.setAccessibleName("Re-scan folder")
        self.rescan_button.setAutoRaise(True)
        self.rescan_button.clicked.connect(self._emit_rescan)
        self.remove_button = QToolButton(self)
        icons.apply(self.remove_button, "folder-remove")
        self.remove_button.setToolTip("Remove the selected folder from the library (Delete)")
        self.remove_button.setAccessibleName("Remove folder")
        self.remove_button.setAutoRaise(True)
        self.remove_button.clicked.connect(self._emit_remove)
        for b in (self.add_button, self.rescan_button, self.remove_button):
            head.addWidget(b)
        lay.addLayout(head)
        self.list = QListWidget(self)
        self.list.setObjectName("FolderList")
        self.list.setAlternatingRowColors(False)
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setUniformItemSizes(False)
        self.list.setSpacing(2)
        self.list.setIconSize(QSize(22, 22))
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self.list.itemDoubleClicked.connect(self._on_double_clicked)
        lay.addWidget(self.list, 1)
        self.empty = QLabel("No folders yet.\nAdd one with the + button,\nCtrl+O, or drop a folder here.", self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.empty.setWordWrap(True)
        self.empty.setContentsMargins(0, 16, 0, 0)
        pal = self.empty.palette()
        pal.setColor(QPalette.ColorRole.WindowText, pal.color(QPalette.ColorRole.PlaceholderText))
        self.empty.setPalette(pal)
        lay.addWidget(self.empty, 1)
        self._rows: list[FolderRow] = []
        self._busy: set[str] = set()
        self._update_buttons()
        self.set_folders([])

    def set_folders(self, rows: list[FolderRow]) -> None:
        current = self.selected()
        self._rows = list(rows)
        self.list.clear()
        for row in rows:
            it = QListWidgetItem(self._label(row))
            it.setData(Qt.ItemDataRole.UserRole, row.path)
            tip = [row.path, f"{counted(row.photos, 'photo')} indexed"]
            if row.failures:
                tip.append(f"{row.failures:,} could not be read (double-click to see why)")
            if not row.online:
                tip.append("not reachable right now (unplugged or unmounted?)")
            it.setToolTip("\n".join(tip))
            if not row.online or row.failures:
                it.setIcon(icons.icon("warning", "#d99a00" if row.online else "#d33a3a"))
            else:
                it.setIcon(icons.icon("folder-open"))
            self.list.addItem(it)
            if row.path == current:
                it.setSelected(True)
                self.list.setCurrentItem(it)
        self.list.setVisible(bool(rows))
        self.empty.setVisible(not rows)
        self._update_buttons()

    def set_busy(self, paths: set[str]) -> None:
        """Folders being indexed right now (shown as 'indexing…')."""
        self._busy = set(paths)
        self.set_folders(self._rows)

    def _label(self, row: FolderRow) -> str:
        name = os.path.basename(row.path.rstrip(os.sep)) or row.path
        counts = counted(row.photos, "photo")
        if row.failures:
            counts += f" · {row.failures:,} unreadable"
        if not row.online:
            counts += " · offline"
        if row.path in self._busy:
            counts += " · indexing…"
        return f"{name}\n{counts}"

    def rows(self) -> list[FolderRow]:
        return list(self._rows)

    def paths(self) -> list[str]:
        return [r.path for r in self._rows]

    def selected(self) -> str | None:
        it = self.list.currentItem()
        return it.data(Qt.ItemDataRole.UserRole) if it is not None else None

    def select(self, path: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == path:
                self.list.setCurrentRow(i)
                return

    def _update_buttons(self) -> None:
        has = self.selected() is not None
        self.remove_button.setEnabled(has)
        self.rescan_button.setEnabled(has)

    def _emit_remove(self) -> None:
        p = self.selected()
        if p:
            self.remove_requested.emit(p)

    def _emit_rescan(self) -> None:
        p = self.selected()
        if p:
            self.rescan_requested.emit(p)

    def _on_double_clicked(self, item: QListWidgetItem) -> None:
        self.failures_requested.emit(item.data(Qt.ItemDataRole.UserRole))
