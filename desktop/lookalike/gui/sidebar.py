"""The sidebar: the window's views (Search, People, …) over the library's folders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractItemView, QFrame, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

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
        lay.setContentsMargins(4, 8, 4, 4)
        lay.setSpacing(4)
        heading = QLabel("<b>Library</b>", self)
        heading.setContentsMargins(6, 0, 0, 0)
        lay.addWidget(heading)
        self.views = ViewList(self)
        for view in views:
            item = QListWidgetItem(icons.icon(view.icon), view.title)
            item.setData(Qt.ItemDataRole.UserRole, view.key)
            item.setSizeHint(QSize(0, 30))
            self.views.addItem(item)
        self.views.fit()
        self.views.currentItemChanged.connect(self._on_current_changed)
        lay.addWidget(self.views)
        lay.addSpacing(6)
        self.folders = FoldersPanel(self)
        self.folders.list.setFrameShape(QFrame.Shape.NoFrame)
        lay.addWidget(self.folders, 1)
        self._style()

    def _style(self) -> None:
        # One panel in the base colour (as a list is), views and folders inside it.
        pal = self.palette()
        base, border = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Mid)
        css = f"#Sidebar {{ background: {base.name()}; border: 1px solid {border.name()}; border-radius: 6px; }}"
        if css != self.styleSheet():  # setting it changes the palette again
            self.setStyleSheet(css)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._style()
        super().changeEvent(event)

    def select(self, key: str) -> None:
        for i in range(self.views.count()):
            if self.views.item(i).data(Qt.ItemDataRole.UserRole) == key:
                self.views.setCurrentRow(i)
                return

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.view_selected.emit(current.data(Qt.ItemDataRole.UserRole))
