"""Browse: the whole library newest first, grouped by month, narrowed by filter chips.

The grid is a virtual list (uniform tiles, batched layout), so 100,000 photos
scroll like the search grid. A month begins with a title tile ("June 2024").
The filter chips (date, kind, shape, size, folder, tag, concept) write the same
``key:value`` filters the query language reads (:mod:`lookalike.core.search.parse`),
so a chip and a typed filter are one thing; :class:`FilterBar` also stands
next to the search field.
"""

from __future__ import annotations

import bisect
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lookalike.core.search.browse import BrowseColumns, BrowseItem, month_title
from lookalike.core.search.model import KINDS, Filter, FilterKey, Query, Shape
from lookalike.core.words import counted
from lookalike.gui import desktop
from lookalike.gui.messages import Level
from lookalike.gui.views.base import View, ViewContext
from lookalike.gui.workers import JobFailure

log = logging.getLogger(__name__)

_ROOT = QModelIndex()
TILE = 150
ItemRole = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class BrowseRows:
    """The grid's rows, laid out off the window's thread: the photos as columns, and where
    each month's title tile sits (a title before the month's first photo)."""

    columns: BrowseColumns
    title_rows: list[int]  # grid rows of the month titles, ascending
    titles: list[str]  # "June 2024"

    @classmethod
    def of(cls, columns: BrowseColumns) -> BrowseRows:
        months = columns.months()
        return cls(columns, [first + j for j, (first, _) in enumerate(months)], [month_title(m) for _, m in months])

    @classmethod
    def of_items(cls, items: Sequence[BrowseItem]) -> BrowseRows:
        return cls.of(BrowseColumns.of(items))


class BrowseModel(QAbstractListModel):
    """Rows of month titles (str) and photos (BrowseItem), newest first. The photos are kept
    as columns and a row's item is made when a tile asks for it, so 100,000 photos cost
    the window's thread a model reset, nothing more."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows = BrowseRows.of_items(())
        self._row_of: dict[str, int] = {}  # path -> row, of the tiles shown so far (for thumbnails)
        self._made: dict[int, BrowseItem] = {}  # the items of the rows painted last (a tile repaints often)
        self._count = 0
        self.photos = 0

    def set_rows(self, rows: BrowseRows) -> None:
        self.beginResetModel()
        self._rows = rows
        self._row_of, self._made = {}, {}
        self.photos = len(rows.columns)
        self._count = self.photos + len(rows.titles)
        self.endResetModel()

    def months(self) -> list[str]:
        return list(self._rows.titles)

    def row(self, row: int) -> str | BrowseItem | None:
        item = self._made.get(row)
        if item is not None:
            return item
        rows = self._rows
        if not 0 <= row < self._count:
            return None
        k = bisect.bisect_right(rows.title_rows, row)  # titles at or above this row
        if k and rows.title_rows[k - 1] == row:
            return rows.titles[k - 1]
        item = rows.columns.item(row - k)
        self._row_of[os.fspath(item.path)] = row
        if len(self._made) >= 512:
            self._made.clear()
        self._made[row] = item
        return item

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else self._count

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in (ItemRole, Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        row = self.row(index.row())
        if row is None:
            return None
        if role == ItemRole:
            return row
        if isinstance(row, str):
            return row
        when = time.strftime("%Y-%m-%d", time.localtime(row.date))
        return f"{row.path.name}\n{when}" if role == Qt.ItemDataRole.ToolTipRole else row.path.name

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        row = index.row()
        rows = self._rows
        k = bisect.bisect_right(rows.title_rows, row)
        if 0 <= row < self._count and not (k and rows.title_rows[k - 1] == row):
            return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return Qt.ItemFlag.ItemIsEnabled

    def on_thumbnail(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)


class BrowseDelegate(QStyledItemDelegate):
    """Photo tiles (thumbnail and name) and month title tiles."""

    def __init__(self, loader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:
        return QSize(TILE + 8, TILE + 26)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        row = index.data(ItemRole)
        r = option.rect
        painter.save()
        if isinstance(row, str):
            font = QFont(option.font)
            font.setPointSizeF(font.pointSizeF() * 1.5)
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(option.palette.text().color())
            month, _, year = row.rpartition(" ")
            painter.drawText(
                r.adjusted(10, 10, -6, -r.height() // 2),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                month,
            )
            font.setBold(False)
            painter.setFont(font)
            painter.setPen(QColor(120, 120, 128))
            painter.drawText(
                r.adjusted(10, r.height() // 2, -6, -10), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, year
            )
            painter.restore()
            return
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(r.adjusted(2, 2, -2, -2), option.palette.highlight().color().lighter(160))
        thumb = QRect(r.x() + 4, r.y() + 4, TILE, TILE)
        img = self.loader.get(os.fspath(row.path))
        if img is not None and not img.isNull():
            size = img.size().scaled(thumb.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRectF(
                thumb.x() + (thumb.width() - size.width()) / 2,
                thumb.y() + (thumb.height() - size.height()) / 2,
                size.width(),
                size.height(),
            )
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, img)
        else:
            painter.fillRect(thumb.adjusted(8, 8, -8, -8), QColor(228, 228, 232))
        painter.setPen(option.palette.text().color())
        name = option.fontMetrics.elidedText(row.path.name, Qt.TextElideMode.ElideMiddle, TILE)
        painter.drawText(QRect(r.x() + 4, thumb.bottom() + 3, TILE, 18), Qt.AlignmentFlag.AlignHCenter, name)
        painter.restore()


class BrowseGrid(QListView):
    photo_activated = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setSpacing(2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.doubleClicked.connect(self._on_double_clicked)

    def _on_double_clicked(self, index: QModelIndex) -> None:
        row = index.data(ItemRole)
        if isinstance(row, BrowseItem):
            self.photo_activated.emit(os.fspath(row.path))

    def selected_paths(self) -> list[str]:
        out = []
        for idx in sorted(self.selectionModel().selectedIndexes(), key=lambda i: i.row()):
            row = idx.data(ItemRole)
            if isinstance(row, BrowseItem):
                out.append(os.fspath(row.path))
        return out


# ----------------------------------------------------------------- filter chips


def _span(titles: Sequence[str]) -> str:
    """The years the month titles ("June 2024", newest first) cover: " from 2007 to 2026", " in 2024"."""
    years = [t.rpartition(" ")[2] for t in titles]
    if not years:
        return ""
    first, last = years[-1], years[0]
    return f" in {first}" if first == last else f" from {first} to {last}"


def _this_year() -> int:
    return time.localtime().tm_year


class FilterBar(QWidget):
    """Filter chips: a menu button per kind of filter, and the active filters as chips.

    ``filters_changed(list[Filter])`` follows every change. ``set_filters`` shows the
    filters of a query typed by hand (the field and the chips stay one thing)."""

    filters_changed = Signal(list)

    def __init__(self, context: ViewContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("FilterBar")
        self._filters: list[Filter] = []
        self._tags: list[tuple[str, int]] = []
        self._concepts: list[str] = []
        self._folders: list[str] = []
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self._menus: dict[str, QMenu] = {}
        for label in ("Date", "Kind", "Shape", "Size", "Folder", "Tag", "Concept"):
            b = QToolButton(self)
            b.setText(label)
            b.setObjectName(f"FilterButton{label}")
            b.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            menu = QMenu(b)
            menu.aboutToShow.connect(lambda m=menu, k=label: self._fill(k, m))
            b.setMenu(menu)
            self._menus[label] = menu
            lay.addWidget(b)
        self.chips = QHBoxLayout()
        self.chips.setSpacing(4)
        lay.addLayout(self.chips)
        lay.addStretch(1)

    # -- what the menus offer
    def set_choices(self, tags: list[tuple[str, int]], concepts: list[str], folders: list[str]) -> None:
        self._tags, self._concepts, self._folders = tags, concepts, folders

    def _fill(self, kind: str, menu: QMenu) -> None:
        menu.clear()
        year = _this_year()
        choices: list[tuple[str, Filter | str]] = []
        if kind == "Date":
            choices = [(f"{y}", Filter(FilterKey.YEAR, str(y))) for y in range(year, year - 8, -1)]
            choices.insert(0, ("This month", Filter(FilterKey.AFTER, time.strftime("%Y-%m"))))
        elif kind == "Kind":
            choices = [(k.upper(), Filter(FilterKey.KIND, k)) for k in KINDS]
        elif kind == "Shape":
            choices = [(s.value.title(), Filter(FilterKey.SHAPE, s.value)) for s in Shape]
        elif kind == "Size":
            choices = [(f"At least {mp} megapixels", Filter(FilterKey.MIN, f"{mp}mp")) for mp in (2, 8, 12)]
        elif kind == "Folder":
            choices = [(os.path.basename(f) or f, Filter(FilterKey.IN, f)) for f in self._folders]
        elif kind == "Tag":
            choices = [(f"{t}  ({n})", Filter(FilterKey.TAG, t)) for t, n in self._tags if n]
        elif kind == "Concept":
            choices = [(name, "#" + name) for name in self._concepts]
        if not choices:
            a = menu.addAction("(none yet)")
            a.setEnabled(False)
        for text, value in choices:
            act = QAction(text, menu)
            act.triggered.connect(lambda _=False, v=value: self.add(v))
            menu.addAction(act)

    # -- the active filters
    def filters(self) -> list[Filter]:
        return list(self._filters)

    def add(self, value: Filter | str) -> None:
        if isinstance(value, str):  # a concept: a query term, handed on as text
            self.concept_requested.emit(value)
            return
        if value not in self._filters:
            self._filters.append(value)
            self._show()
            self.filters_changed.emit(self.filters())

    concept_requested = Signal(str)

    def remove(self, value: Filter) -> None:
        if value in self._filters:
            self._filters.remove(value)
            self._show()
            self.filters_changed.emit(self.filters())

    def set_filters(self, filters: Sequence[Filter]) -> None:
        if list(filters) != self._filters:
            self._filters = list(filters)
            self._show()

    def _show(self) -> None:
        while self.chips.count():
            item = self.chips.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()
        for f in self._filters:
            chip = QToolButton(self)
            chip.setObjectName("FilterChip")
            chip.setText(f"{_chip_text(f)}  \u2715")
            chip.setToolTip(f"{f}: click to remove")
            chip.setAutoRaise(False)
            chip.clicked.connect(lambda _=False, v=f: self.remove(v))
            self.chips.addWidget(chip)


def _chip_text(f: Filter) -> str:
    if f.key == FilterKey.IN:
        return "in " + (os.path.basename(f.value) or f.value)
    if f.key == FilterKey.MIN:
        return f"\u2265 {f.value}"
    return f"{f.key}: {f.value}"


def query_text_with(text: str, filters: Sequence[Filter], base: Query | None) -> str:
    """The query text with exactly ``filters``: the terms of ``base`` (the parsed text) kept."""
    if base is None:
        return " ".join(str(f) for f in filters)
    return str(Query(base.terms, "", tuple(filters)))


# ---------------------------------------------------------------------- the view


class BrowsePanel(QWidget):
    """A count line over the month-grouped grid; ``show_query`` fills it off the GUI thread."""

    choices_loaded = Signal(object)  # (tags, concepts, folders) for a filter bar

    def __init__(self, context: ViewContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("BrowsePanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.count_label = QLabel("", self)
        self.count_label.setObjectName("BrowseCount")
        lay.addWidget(self.count_label)
        self.model = BrowseModel(self)
        self.grid = BrowseGrid(self)
        self.grid.setObjectName("BrowseGrid")
        self.grid.setItemDelegate(BrowseDelegate(context.thumbnails, self.grid))
        self.grid.setModel(self.model)
        self.grid.photo_activated.connect(desktop.open_with_default_app)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._menu)
        lay.addWidget(self.grid, 1)
        context.thumbnails.loaded.connect(self.model.on_thumbnail)
        self._asked = 0

    def _menu(self, pos) -> None:
        if not self.grid.selected_paths():
            return
        menu = QMenu(self)
        menu.addAction("Open").triggered.connect(
            lambda: [desktop.open_with_default_app(p) for p in self.grid.selected_paths()[:10]]
        )
        menu.addAction("Teach a Concept from These\u2026").triggered.connect(self._teach_concept)
        menu.popup(self.grid.viewport().mapToGlobal(pos))
        self._context_menu = menu

    def _teach_concept(self) -> None:
        self.context.teach(self.grid.selected_paths())

    def show_query(self, query: Query | None, note: str = "") -> None:
        """List the photos ``query`` (filters, people, concepts; None: everything) allows."""
        self._asked += 1
        asked = self._asked
        self.count_label.setText("Loading…")

        def work(engine: Any):
            items = BrowseRows.of(engine.browse(query, columns=True))  # laid out here, off the window's thread
            learner = engine.learner()
            choices = (
                learner.tags.counts(),
                [c.name for c in learner.concepts.list()],
                [os.fspath(f.path) for f in engine.folders()],
            )
            return items, choices

        def loaded(value) -> None:
            if asked != self._asked:
                return  # a newer request is on its way
            items, choices = value
            self.choices_loaded.emit(choices)
            self.context.thumbnails.forget()
            self.model.set_rows(items)
            self.count_label.setText(f"{counted(len(items.columns), 'photo')}{_span(items.titles)}{note}, newest first")

        def failed(failure: JobFailure) -> None:
            self.count_label.setText("")
            self.context.notify(Level.WARNING, f"Could not list the photos: {failure.message}", key="browse")

        if not self.context.service.submit(work, loaded, failed, name="browse"):
            self.count_label.setText("No library is open")


class BrowseView(View):
    """The library newest first, grouped by month, with filter chips."""

    key = "browse"
    title = "Browse"
    icon = "browse"

    def __init__(self, context: ViewContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._stale = True
        self._concept = ""  # a #concept chosen from the chips
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(6)
        self.filter_bar = FilterBar(context, self)
        self.filter_bar.filters_changed.connect(lambda _f: self.refresh())
        self.filter_bar.concept_requested.connect(self._on_concept)
        root.addWidget(self.filter_bar)
        self.panel = BrowsePanel(context, self)
        self.panel.choices_loaded.connect(lambda c: self.filter_bar.set_choices(*c))
        root.addWidget(self.panel, 1)
        context.service.indexing_finished.connect(lambda _o: self._mark_stale())
        context.service.opened.connect(lambda _o: self._mark_stale())

    @property
    def grid(self) -> BrowseGrid:
        return self.panel.grid

    def selected_photos(self) -> list[str]:
        return self.grid.selected_paths()

    @property
    def model(self) -> BrowseModel:
        return self.panel.model

    def _mark_stale(self) -> None:
        self._stale = True
        if self.isVisible():
            self.refresh()

    def activated(self) -> None:
        if self._stale or not self.model.rowCount():
            self.refresh()

    def query(self) -> Query | None:
        from lookalike.core.search.parse import parse

        filters = tuple(self.filter_bar.filters())
        if self._concept:
            return Query(parse(self._concept).terms, "", filters)
        return Query((), "", filters) if filters else None

    def _on_concept(self, text: str) -> None:
        self._concept = "" if self._concept == text else text
        self.refresh()

    def refresh(self) -> None:
        self._stale = False
        self.panel.show_query(self.query(), f" · {self._concept}" if self._concept else "")
