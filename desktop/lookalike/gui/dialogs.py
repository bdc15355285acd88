"""Small dialogs of the window: unreadable files, keyboard shortcuts, about."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QMessageBox, QVBoxLayout, QWidget

from lookalike import APP_NAME, __version__
from lookalike.core.words import counted

if TYPE_CHECKING:
    from lookalike.core.search import Failure

SHORTCUTS = (
    ("Ctrl+F", "focus the search field"),
    ("Enter", "search / open the preview"),
    ("Esc", "clear the search"),
    ("↓, arrows", "move through the results"),
    ("Ctrl+V", "paste a photo (or a copied file) into the query"),
    ("Ctrl+I", "search by image…"),
    ("Ctrl+O", "add a folder…"),
    ("+ / −", "more / less like the selected photo"),
    ("Ctrl+Return", "open with the default app"),
    ("Ctrl+Shift+O", "show in folder"),
    ("Ctrl+Shift+C", "copy path"),
    ("Ctrl+C", "copy image"),
    ("← / → (preview)", "previous / next result"),
    ("F5", "re-scan all folders"),
    ("Ctrl+P", "pause or resume indexing"),
)


class FailuresDialog(QDialog):
    """The files of a folder (or of the library) that could not be read, each with its reason."""

    def __init__(self, rows: Sequence[Failure], folder: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FailuresDialog")
        self.setWindowTitle("Unreadable files")
        lay = QVBoxLayout(self)
        where = f" in {folder}" if folder else ""
        n = len(rows)
        lay.addWidget(
            QLabel(
                f"{counted(n, 'file')}{where} could not be read:" if rows else f"Every photo{where} could be read.",
                self,
            )
        )
        self.list = QListWidget(self)
        for r in rows:
            self.list.addItem(f"{r.path} — {r.reason}")
        lay.addWidget(self.list, 1)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self.resize(720, 360)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)


def show_shortcuts(parent: QWidget) -> None:
    rows = "".join(
        f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>" for k, v in SHORTCUTS
    )
    QMessageBox.information(parent, "Keyboard shortcuts", f"<table>{rows}</table>")


def show_about(parent: QWidget, library: str) -> None:
    QMessageBox.about(
        parent,
        f"About {APP_NAME}",
        f"<b>{APP_NAME} {__version__}</b><p>Find photos by likeness.</p><p>Library: {html.escape(library)}</p>",
    )
