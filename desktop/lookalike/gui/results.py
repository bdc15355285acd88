"""The result grid: a list model over search results, its tile delegate, and the view.

The model keeps every result of the last search. A search's results carry its
answer (:mod:`lookalike.core.search.answer`: which results match, how surely): the
grid shows the matches, sorted by score (best first) or by date taken (newest
first, undated last), then, only when asked (``set_weaker_shown``), the weaker
results in the search's order, painted faded. An answer with no match shows its
:data:`CLOSEST` best results, faded, as the closest few. Results without an
answer (a person's photos, a group) are all shown, sorted. The view is a virtualised QListView in icon
mode with uniform item sizes, so 10,000 results scroll as smoothly as ten:
only the tiles on screen are painted, and only they ask for thumbnails.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from lookalike.gui.thumbnails import ThumbnailLoader

if TYPE_CHECKING:
    from lookalike.core.engine import SearchResult


@dataclass(frozen=True)
class ResultItem:
    """One tile: what the grid needs of a core.search.SearchResult (frozen, GUI-side)."""

    rank: int
    path: str
    score: float
    photo_id: int = 0
    width: int = 0
    height: int = 0
    taken: float | None = None
    size: int = 0
    text: str = ""  # for a text: search, the lines of the photo's text it matched
    match: bool | None = None  # the search's answer: whether it is what was asked for (None: no answer)
    confidence: float | None = None  # ...and how sure, 0-1 (None: beyond what the answer judged)

    @classmethod
    def from_result(cls, r: SearchResult, text: str = "", rank: int | None = None) -> ResultItem:
        return cls(
            r.rank if rank is None else rank,
            os.fspath(r.path),
            r.score,
            r.photo_id,
            r.width or 0,
            r.height or 0,
            r.taken,
            r.size,
            text,
            r.match,
            r.confidence,
        )

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


class SortOrder(StrEnum):
    SCORE = "score"
    DATE = "date"


PathRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
ItemRole = Qt.ItemDataRole.UserRole + 3
MatchRole = Qt.ItemDataRole.UserRole + 4  # True/False: a match or not; None: the results have no answer

#: An answer with no match shows this many of its best results, marked as not matches.
CLOSEST = 6


def format_taken(taken: float | None) -> str:
    if taken is None:
        return "date unknown"
    try:
        return datetime.fromtimestamp(taken).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return "date unknown"


def format_bytes(n: int) -> str:
    if n <= 0:
        return "size unknown"
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} bytes"


_ROOT = QModelIndex()  # the invisible root: a list's rows hang off it


class ResultsModel(QAbstractListModel):
    """Search results: filtered by a minimum score and sorted; thumbnails from a loader."""

    counts_changed = Signal(int, int)  # shown, total

    def __init__(self, loader: ThumbnailLoader | None = None, parent=None) -> None:
        super().__init__(parent)
        self._all: list[ResultItem] = []
        self._shown: list[ResultItem] = []
        self._row_of: dict[str, int] = {}
        self._min_score: float | None = None
        self._min_confidence: float | None = None  # None: the answer's own line
        self._weaker_shown = False
        self._matches = 0
        self._weaker = 0
        self._order = SortOrder.SCORE
        self.loader = loader
        if loader is not None:
            loader.loaded.connect(self._on_thumbnail)
            loader.failed.connect(self._on_thumbnail)

    # -- content -----------------------------------------------------------------------
    def set_results(self, results: Sequence[ResultItem]) -> None:
        items = list(results)
        if self.loader is not None:
            self.loader.forget()
        self._all = items
        self._refresh()

    def clear(self) -> None:
        self.set_results([])

    def set_min_score(self, value: float | None) -> None:
        if value == self._min_score:
            return
        self._min_score = value
        self._refresh()

    def min_score(self) -> float | None:
        return self._min_score

    def set_min_confidence(self, value: float | None) -> None:
        """A result matches when its confidence is at least ``value`` (None: the answer's verdict)."""
        if value == self._min_confidence:
            return
        self._min_confidence = value
        self._refresh()

    def min_confidence(self) -> float | None:
        return self._min_confidence

    def set_weaker_shown(self, shown: bool) -> None:
        """Show the results that are not matches after the matches (or hide them)."""
        if bool(shown) == self._weaker_shown:
            return
        self._weaker_shown = bool(shown)
        self._refresh()

    def weaker_shown(self) -> bool:
        return self._weaker_shown

    def answered(self) -> bool:
        """Whether the results carry an answer (which match)."""
        return any(i.match is not None for i in self._all)

    def matches(self) -> int:
        """How many results match (at the confidence asked for)."""
        return self._matches

    def weaker(self) -> int:
        """How many results do not match."""
        return self._weaker

    def is_match(self, item: ResultItem) -> bool | None:
        if item.match is None:
            return None
        if self._min_confidence is None:
            return item.match
        return item.confidence is not None and item.confidence >= self._min_confidence

    def set_order(self, order: SortOrder) -> None:
        order = SortOrder(order)
        if order == self._order:
            return
        self._order = order
        self._refresh()

    def order(self) -> SortOrder:
        return self._order

    def total(self) -> int:
        return len(self._all)

    def items(self) -> list[ResultItem]:
        return list(self._shown)

    def all_items(self) -> list[ResultItem]:
        """Every result of the search, the filtered-out ones too."""
        return list(self._all)

    def item(self, row: int) -> ResultItem | None:
        if 0 <= row < len(self._shown):
            return self._shown[row]
        return None

    def row_of(self, path: str) -> int:
        return self._row_of.get(path, -1)

    def _sorted(self, items: list[ResultItem], by_rank: bool) -> list[ResultItem]:
        if self._order == SortOrder.DATE:
            dated = sorted((i for i in items if i.taken is not None), key=lambda i: (-(i.taken or 0.0), i.rank))
            return dated + [i for i in items if i.taken is None]
        if by_rank:  # an answer's order (its kinds' evidence, or the score) is its ranks
            return sorted(items, key=lambda i: i.rank)
        return sorted(items, key=lambda i: (-i.score, i.rank))

    def _refresh(self) -> None:
        items = self._all
        if self._min_score is not None:
            items = [i for i in items if i.score >= self._min_score or i.score != i.score]  # NaN: listed, unscored
        if any(i.match is not None for i in items):
            matched = [i for i in items if self.is_match(i)]
            weaker = sorted((i for i in items if not self.is_match(i)), key=lambda i: i.rank)
            self._matches, self._weaker = len(matched), len(weaker)
            if self._weaker_shown:
                tail = weaker
            else:
                tail = [] if matched else weaker[:CLOSEST]
            items = self._sorted(matched, by_rank=True) + tail
        else:
            self._matches, self._weaker = len(items), 0
            items = self._sorted(list(items), by_rank=False)
        self.beginResetModel()
        self._shown = items
        self._row_of = {i.path: n for n, i in enumerate(items)}
        self.endResetModel()
        self.counts_changed.emit(len(self._shown), len(self._all))

    # -- Qt model ----------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._shown)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._shown)):
            return None
        item = self._shown[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.name
        if role == Qt.ItemDataRole.ToolTipRole:
            dims = f"{item.width}×{item.height}" if item.width else ""
            parts = [item.path, f"score {item.score:.3f}", format_taken(item.taken)]
            if dims:
                parts.append(dims)
            verdict = self.is_match(item)
            if verdict is not None:
                sure = f", confidence {item.confidence:.2f}" if item.confidence is not None else ""
                parts.append(("a match" if verdict else "not a match") + sure)
            if item.text:
                parts.append(f"Text: {item.text}")
            return "\n".join(parts)
        if role == PathRole:
            return item.path
        if role == ScoreRole:
            return item.score
        if role == ItemRole:
            return item
        if role == MatchRole:
            return self.is_match(item)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            verdict = self.is_match(item)
            tail = "" if verdict is None else (", a match" if verdict else ", not a match")
            return f"{item.name}, score {item.score:.2f}{tail}"
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        if index.isValid():
            return base | Qt.ItemFlag.ItemIsDragEnabled
        return base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        mime = QMimeData()
        urls = []
        for idx in indexes:
            item = self.item(idx.row())
            if item is not None:
                urls.append(QUrl.fromLocalFile(item.path))
        mime.setUrls(urls)
        mime.setText("\n".join(u.toLocalFile() for u in urls))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction | Qt.DropAction.LinkAction

    def _on_thumbnail(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class TileDelegate(QStyledItemDelegate):
    """Paints a tile: the thumbnail fitted in a square, its score, its name."""

    def __init__(self, loader: ThumbnailLoader, tile: int = 168, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.tile = tile
        self.margin = 6
        self.show_scores = True  # False for photos that were not ranked (a person's, a group's)
        self._badges: dict[tuple, QPixmap] = {}
        self._names: dict[tuple, str] = {}

    def _badge(self, option: QStyleOptionViewItem, text: str) -> QPixmap:
        """A rounded dark label with ``text``, cached (a tile's paint stays a few calls)."""
        dpr = option.widget.devicePixelRatioF() if option.widget is not None else 1.0
        key = (text, option.font.key(), dpr)
        pm = self._badges.get(key)
        if pm is None:
            font = QFont(option.font)
            font.setPointSizeF(max(7.0, option.font.pointSizeF() * 0.85))
            font.setBold(True)
            fm = QFontMetrics(font)
            w, h = fm.horizontalAdvance(text) + 10, fm.height() + 2
            pm = QPixmap(round(w * dpr), round(h * dpr))
            pm.setDevicePixelRatio(dpr)
            pm.fill(Qt.GlobalColor.transparent)
            p = QPainter(pm)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 150))
            p.drawRoundedRect(QRectF(0, 0, w, h), h / 2, h / 2)
            p.setFont(font)
            p.setPen(QColor(255, 255, 255))
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignCenter, text)
            p.end()
            if len(self._badges) > 4000:
                self._badges.clear()
            self._badges[key] = pm
        return pm

    def _elided(self, option: QStyleOptionViewItem, name: str) -> str:
        key = (name, option.font.key())
        text = self._names.get(key)
        if text is None:
            text = option.fontMetrics.elidedText(name, Qt.TextElideMode.ElideMiddle, self.tile)
            if len(self._names) > 20000:
                self._names.clear()
            self._names[key] = text
        return text

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:
        fm = option.fontMetrics
        return QSize(self.tile + 2 * self.margin, self.tile + 2 * self.margin + fm.height() + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        item: ResultItem | None = index.data(ItemRole)
        if item is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        pal: QPalette = option.palette
        r: QRect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        focused = bool(option.state & QStyle.StateFlag.State_HasFocus)

        cell = QRectF(r.adjusted(2, 2, -2, -2))
        if selected:
            hl = QColor(pal.color(QPalette.ColorRole.Highlight))
            bg = QColor(hl)
            bg.setAlpha(70)
            painter.setPen(QPen(hl, 2))
            painter.setBrush(bg)
            painter.drawRoundedRect(cell, 8, 8)
        elif hovered:
            bg = QColor(pal.color(QPalette.ColorRole.Text))
            bg.setAlpha(18)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(bg)
            painter.drawRoundedRect(cell, 8, 8)

        if index.data(MatchRole) is False:  # not a match: faded, so the matches stand out
            painter.setOpacity(0.45)
        thumb_rect = QRect(r.x() + self.margin, r.y() + self.margin, self.tile, self.tile)
        img = self.loader.get(item.path)
        image_rect = QRectF(thumb_rect).adjusted(8, 8, -8, -8)
        if img is not None:
            iw, ih = img.width(), img.height()
            s = min(self.tile / iw, self.tile / ih)
            w, h = max(1, round(iw * s)), max(1, round(ih * s))
            target = QRectF(thumb_rect.x() + (self.tile - w) / 2, thumb_rect.y() + (self.tile - h) / 2, w, h)
            image_rect = target
            painter.drawImage(target, img)  # corners were rounded by the loader
        else:
            ph = QColor(pal.color(QPalette.ColorRole.Text))
            ph.setAlpha(22)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(ph)
            painter.drawRoundedRect(QRectF(thumb_rect).adjusted(8, 8, -8, -8), 6, 6)
            if self.loader.is_bad(item.path):
                painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(thumb_rect, Qt.AlignmentFlag.AlignCenter, "cannot show\nthis photo")

        # The score badge, top-left over the image (rendered once per score text).
        if self.show_scores:
            badge = self._badge(option, f"{item.score:.2f}")
            painter.drawPixmap(QPointF(image_rect.x() + 4, image_rect.y() + 4), badge)

        # The file name under the thumbnail.
        name_rect = QRect(r.x() + self.margin, thumb_rect.bottom() + 3, self.tile, option.fontMetrics.height())
        painter.setPen(pal.color(QPalette.ColorRole.Text))
        painter.drawText(
            name_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, self._elided(option, item.name)
        )
        if focused and not selected:
            pen = QPen(pal.color(QPalette.ColorRole.Highlight), 1, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(cell, 8, 8)
        painter.restore()


class ResultsView(QListView):
    """A virtualised grid of tiles. Enter opens the current photo (``open_requested``)."""

    open_requested = Signal(int)  # row

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.SinglePass)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setMouseTracking(True)
        self.setSpacing(2)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setAcceptDrops(False)  # drops go to the window: they become image queries
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.doubleClicked.connect(self._on_double_clicked)

    def resizeEvent(self, event) -> None:
        self._spread_columns()
        super().resizeEvent(event)

    def _spread_columns(self) -> None:
        """Share the row's width among the columns, so the grid has no ragged right edge."""
        delegate = self.itemDelegate()
        if not isinstance(delegate, TileDelegate):
            return
        option = QStyleOptionViewItem()
        option.initFrom(self)
        hint = delegate.sizeHint(option, QModelIndex())
        width = self.viewport().width() - 2 * self.spacing()
        cols = max(1, width // (hint.width() + 2 * self.spacing()))
        cell = QSize(max(hint.width(), width // cols), hint.height() + 2 * self.spacing())
        if self.gridSize() != cell:
            self.setGridSize(cell)

    def _on_double_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.open_requested.emit(index.row())

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            idx = self.currentIndex()
            if idx.isValid():
                self.open_requested.emit(idx.row())
                event.accept()
                return
        super().keyPressEvent(event)

    def current_row(self) -> int:
        idx = self.currentIndex()
        return idx.row() if idx.isValid() else -1

    def selected_rows(self) -> list[int]:
        rows = sorted({i.row() for i in self.selectionModel().selectedIndexes()}) if self.selectionModel() else []
        if not rows and self.current_row() >= 0:
            rows = [self.current_row()]
        return rows
