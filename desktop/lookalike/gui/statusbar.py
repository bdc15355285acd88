"""The window's status bar: passing notes, the library's size, and the model button."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStatusBar, QToolButton, QWidget

from lookalike.core.words import counted
from lookalike.gui import icons

if TYPE_CHECKING:
    from lookalike.core.search import LibraryStatus


def model_text(status: LibraryStatus | None, loading: bool = False) -> str:
    name = (status.model_name if status is not None else "") or "offline"
    if loading:
        return f"Model: {name} (loading…)"
    # The device is known once the image model is loaded (text searches need only the text side).
    device = status.device if status is not None else ""
    return f"Model: {name} · {device}" if device else f"Model: {name}"


def library_text(status: LibraryStatus) -> str:
    photos, folders = status.photos, status.folders
    text = f"{counted(photos, 'photo')} in {counted(folders, 'folder')}"
    if status.failures:
        text += f" · {status.failures:,} unreadable"
    return text


class StatusBar(QStatusBar):
    """Notes on the left; on the right how many photos the library holds and which model reads them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(True)
        self.model_button = QToolButton(self)
        self.model_button.setObjectName("ModelButton")
        self.model_button.setAutoRaise(True)
        self.model_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        icons.apply(self.model_button, "model")
        self.model_button.setText("Model: opening…")
        self.model_button.setToolTip("The model that reads your photos; click to change it")
        self.library_label = QLabel("", self)
        self.library_label.setObjectName("LibraryLabel")
        self.addPermanentWidget(self.library_label)
        self.addPermanentWidget(self.model_button)

    def show_status(self, status: LibraryStatus, *, loading: bool) -> None:
        self.model_button.setText(model_text(status, loading=loading))
        tip = [f"Encoder: {status.model_id or 'not chosen yet'}"]
        if status.note:
            tip.append(status.note)
        tip.append("Click to change the model")
        self.model_button.setToolTip("\n".join(tip))
        self.library_label.setText(library_text(status))
        self.library_label.setToolTip(f"Library: {status.path}")

    def show_loading(self, status: LibraryStatus | None) -> None:
        self.model_button.setText(model_text(status, loading=True))

    def show_model_state(self, text: str) -> None:
        """``loading…``, ``unavailable``, ``not loaded``: the model button says it."""
        self.model_button.setText(f"Model: {text}")
