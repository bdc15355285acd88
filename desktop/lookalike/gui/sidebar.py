"""The sidebar: the window's views (Search, People, …) over the library's folders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QFrame, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from lookalike.gui import icons
from lookalike.gui.panels import FoldersPanel

if TYPE_CHECKING:
    from lookalike.gui.views import View


class ViewList(QListWidget):
    """One row per view, icon and title, as tall as its rows."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ViewList")
        self.setIconSize(QSize(20, 20))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSpacing(1)
        self.setAccessibleName("Views")

    def fit(self) -> None:
        rows = sum(self.sizeHintForRow(i) + 2 * self.spacing() for i in range(self.count()))
        self.setFixedHeight(rows + 2 * self.frameWidth() + 4)


class Sidebar(QFrame):
    """Views on top, folders below. ``view_selected`` carries the chosen view's key."""

    view_selected = Signal(str)

    def __init__(self, views: Sequence[View], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Sidebar")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.views = ViewList(self)
        for view in views:
            item = QListWidgetItem(icons.icon(view.icon), view.title)
            item.setData(Qt.ItemDataRole.UserRole, view.key)
            item.setSizeHint(QSize(0, 30))
            self.views.addItem(item)
        self.views.fit()
        self.views.currentItemChanged.connect(self._on_current_changed)
        lay.addWidget(self.views)
        self.folders = FoldersPanel(self)
        lay.addWidget(self.folders, 1)

    def select(self, key: str) -> None:
        for i in range(self.views.count()):
            if self.views.item(i).data(Qt.ItemDataRole.UserRole) == key:
                self.views.setCurrentRow(i)
                return

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.view_selected.emit(current.data(Qt.ItemDataRole.UserRole))
