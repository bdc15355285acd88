"""The Duplicates view: groups of copies side by side, the suggested keeper marked, safe clean-up.

Each group is a card: its photos as tiles (thumbnail, pixels and bytes, format,
date taken, folder), the suggested keeper framed in green with the reason, and
the group's actions: keep the suggestion and move the others to the trash, keep
all (remembered), and per photo open and show in folder. Above the groups: which
kinds to find, the same actions for every group at once, and undo of the last
trash run. Finding and every action run on a worker thread of this view; the
engine's Duplicates does the work (:mod:`lookalike.core.duplicates`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lookalike.core.duplicates.finding import DuplicateKind
from lookalike.core.words import counted
from lookalike.gui.messages import Level
from lookalike.gui.views.base import View, ViewContext
from lookalike.gui.workers import JobFailure

if TYPE_CHECKING:
    from lookalike.core.duplicates.service import DuplicateGroup, Member
    from lookalike.core.duplicates.trash import TrashReport, UndoReport
    from lookalike.core.search import SearchEngine

log = logging.getLogger(__name__)

THUMB = 168  # tile thumbnail side, pixels
SHOWN_GROUPS = 150  # cards built at once; "Show more" adds the next ones
KIND_TITLES = {
    DuplicateKind.EXACT: "Exact copies",
    DuplicateKind.NEAR: "Near-duplicates",
    DuplicateKind.SIMILAR: "Similar shots",
}
KEEPER_STYLE = "QFrame#tile { border: 3px solid #2e7d32; border-radius: 8px; background: #f1f8f1; }"
OTHER_STYLE = "QFrame#tile { border: 1px solid #c8c8c8; border-radius: 8px; background: palette(base); }"


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return str(n)


def _taken(t: float | None) -> str:
    return "taken " + time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t is not None else "no date taken"


class PhotoTile(QFrame):
    """One photo of a group: thumbnail and facts; the keeper wears a green frame. A click on
    another photo of the group makes it the keeper (remembered)."""

    def __init__(self, member: Member, keeper: bool, view: DuplicatesView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.member = member
        self.keeper = keeper
        self._view = view
        if not keeper:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
            self.setToolTip("Click to keep this photo instead (remembered)")
        self.setObjectName("tile")
        self.setStyleSheet(KEEPER_STYLE if keeper else OTHER_STYLE)
        self.setFixedWidth(THUMB + 40)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(3)
        badge = QLabel("KEEP" if keeper else "to trash", self)
        badge.setStyleSheet(
            "color: white; background: #2e7d32; border-radius: 4px; padding: 1px 6px; font-weight: bold;"
            if keeper
            else "color: #555; background: #e8e8e8; border-radius: 4px; padding: 1px 6px;"
        )
        badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(badge, 0, Qt.AlignmentFlag.AlignLeft)
        self.image = QLabel(self)
        self.image.setFixedSize(THUMB, THUMB)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setStyleSheet("background: #f0f0f0; border-radius: 4px;")
        lay.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        name = QLabel(member.path.name, self)
        name.setToolTip(os.fsdecode(os.fspath(member.path)))
        name.setStyleSheet("font-weight: bold;")
        name.setWordWrap(True)
        lay.addWidget(name)
        pixels = f"{member.width}×{member.height}" if member.width and member.height else "? pixels"
        metadata = f"EXIF {member.exif} tags" if member.exif else "no EXIF"
        facts = QLabel(
            f"{pixels} · {_bytes(member.size)}\n{member.format.upper()} · {metadata}\n{_taken(member.taken)}", self
        )
        facts.setStyleSheet("color: #444;")
        lay.addWidget(facts)
        folder = QLabel(os.fsdecode(os.fspath(member.folder)), self)
        folder.setStyleSheet("color: #666; font-size: 11px;")
        folder.setWordWrap(True)
        folder.setToolTip(folder.text())
        lay.addWidget(folder)
        row = QHBoxLayout()
        row.setSpacing(4)
        for label, tip, fn in (
            ("Open", "Open with the default app", view.open_photo),
            ("Show in folder", "Show it in the file manager", view.show_photo_in_folder),
        ):
            b = QToolButton(self)
            b.setText(label)
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(lambda _=False, f=fn, p=str(member.path): f(p))
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.set_image(view.context.thumbnails.get(str(member.path)))

    def mousePressEvent(self, event: Any) -> None:  # Qt's name
        if event.button() == Qt.MouseButton.LeftButton and not self.keeper:
            card = self.parent()
            while card is not None and not isinstance(card, GroupCard):
                card = card.parent()
            if card is not None:
                self._view.choose_keeper(card.group, self.member)
                event.accept()
                return
        super().mousePressEvent(event)

    def set_image(self, img: Any) -> None:
        if img is None or img.isNull():
            return
        pix = QPixmap.fromImage(img).scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        self.image.setPixmap(pix)


class GroupCard(QFrame):
    """A group: its kind, what keeping the suggestion saves, the reason, the tiles, the actions."""

    def __init__(self, group: DuplicateGroup, view: DuplicatesView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = group
        self.setObjectName("card")
        self.setStyleSheet(
            "QFrame#card { border: 1px solid #d6d6d6; border-radius: 10px; background: palette(window); }"
        )
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 10)
        head = QHBoxLayout()
        saving = sum(m.size for m in group.others)
        title = QLabel(
            f"<b>{KIND_TITLES[group.kind]}</b> · {counted(len(group.members), 'photo')} · "
            f"keeping the suggestion frees {_bytes(saving)}",
            self,
        )
        head.addWidget(title)
        head.addStretch(1)
        self.trash_button = QPushButton("Keep suggestion, trash others", self)
        self.trash_button.setToolTip("Move the photos not marked KEEP to the system trash (undoable)")
        self.trash_button.clicked.connect(lambda: view.trash_groups([group]))
        self.keep_button = QPushButton("Keep all", self)
        self.keep_button.setToolTip("These are all wanted: this group will not be listed again")
        self.keep_button.clicked.connect(lambda: view.keep_groups([group]))
        head.addWidget(self.trash_button)
        head.addWidget(self.keep_button)
        lay.addLayout(head)
        reason = QLabel(f"Suggested keeper <b>{group.keep.path.name}</b>: {group.reason}", self)
        reason.setStyleSheet("color: #2e7d32;")
        reason.setWordWrap(True)
        lay.addWidget(reason)
        tiles = QHBoxLayout()
        tiles.setSpacing(10)
        self.tiles = [PhotoTile(m, m is group.keep, view, self) for m in group.members]
        for t in self.tiles:
            tiles.addWidget(t)
        tiles.addStretch(1)
        lay.addLayout(tiles)


class DuplicatesView(View):
    key = "duplicates"
    title = "Duplicates"
    icon = "duplicates"

    def __init__(self, context: ViewContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.groups: list[DuplicateGroup] = []
        self.cards: list[GroupCard] = []
        self._tiles: dict[str, list[PhotoTile]] = {}
        self._shown = 0
        self._busy = False
        self._stale = True
        self._can_undo = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        bar = QHBoxLayout()
        heading = QLabel("<h2 style='margin:0'>Duplicates</h2>", self)
        bar.addWidget(heading)
        bar.addSpacing(16)
        self.kind_boxes: dict[DuplicateKind, QCheckBox] = {}
        for kind in DuplicateKind:
            box = QCheckBox(KIND_TITLES[kind], self)
            box.setChecked(kind is not DuplicateKind.SIMILAR)
            box.toggled.connect(lambda _on: self._mark_stale())
            self.kind_boxes[kind] = box
            bar.addWidget(box)
        bar.addStretch(1)
        outer.addLayout(bar)
        # The actions on a row of their own: beside the kinds they made the window at least
        # 1,200 px wide (a stacked view's minimum is the window's), too wide for 800x600.
        bar = QHBoxLayout()
        bar.addStretch(1)
        self.find_button = QPushButton("Find again", self)
        self.find_button.clicked.connect(self.refresh)
        self.trash_all_button = QPushButton("Keep suggestions, trash all others", self)
        self.trash_all_button.clicked.connect(lambda: self.trash_groups(self.groups))
        self.keep_all_button = QPushButton("Keep all", self)
        self.keep_all_button.setToolTip("Every group listed is wanted as it is: none of them will be listed again")
        self.keep_all_button.clicked.connect(lambda: self.keep_groups(self.groups))
        self.undo_button = QPushButton("Undo last trash", self)
        self.undo_button.clicked.connect(self.undo)
        for b in (self.find_button, self.trash_all_button, self.keep_all_button, self.undo_button):
            bar.addWidget(b)
        outer.addLayout(bar)
        self.summary = QLabel("", self)
        self.summary.setStyleSheet("color: #444;")
        outer.addWidget(self.summary)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.inner = QWidget(self.scroll_area)
        self.list = QVBoxLayout(self.inner)
        self.list.setSpacing(12)
        self.list.addStretch(1)
        self.scroll_area.setWidget(self.inner)
        outer.addWidget(self.scroll_area, 1)
        self.more_button = QPushButton("Show more groups", self)
        self.more_button.clicked.connect(self._show_more)
        self.more_button.hide()
        outer.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignHCenter)

        context.thumbnails.loaded.connect(self._on_thumbnail)
        context.service.indexing_finished.connect(lambda _o: self._mark_stale())
        context.service.opened.connect(lambda _o: self._mark_stale())
        self._update_buttons()

    # -- the frame ------------------------------------------------------------------

    def activated(self) -> None:
        if self._stale:
            self.refresh()

    def menu_actions(self) -> Sequence[QAction | None]:
        find = QAction("Find duplicates again", self)
        find.triggered.connect(self.refresh)
        undo = QAction("Undo last trash", self)
        undo.triggered.connect(self.undo)
        return (find, None, undo)

    def _mark_stale(self) -> None:
        self._stale = True
        if self.isVisible():
            self.refresh()

    # -- finding --------------------------------------------------------------------

    def kinds(self) -> tuple[DuplicateKind, ...]:
        return tuple(k for k, box in self.kind_boxes.items() if box.isChecked())

    def refresh(self) -> None:
        if not self.service.is_open or self._busy:
            return
        kinds = self.kinds()
        if not kinds:
            self._show_groups([])
            return
        self._stale = False
        self.summary.setText("Looking for duplicates…")

        def work(engine: SearchEngine) -> tuple[list[DuplicateGroup], bool]:
            dups = self._duplicates(engine)
            return dups.groups(kinds), dups.can_undo()

        self._run(work, lambda value: self._show_groups(*value), "find duplicates")

    def _duplicates(self, engine: SearchEngine) -> Any:
        from lookalike.core.duplicates.service import Duplicates

        return Duplicates(engine)

    def _show_groups(self, groups: list[DuplicateGroup], can_undo: bool | None = None) -> None:
        self.groups = list(groups)
        for card in self.cards:
            self.list.removeWidget(card)
            card.deleteLater()
        self.cards, self._tiles, self._shown = [], {}, 0
        self._show_more()
        if can_undo is not None:
            self._can_undo = can_undo
        n = sum(len(g.others) for g in self.groups)
        saving = sum(m.size for g in self.groups for m in g.others)
        self.summary.setText(
            f"{counted(len(self.groups), 'group')}; keeping every suggestion moves {counted(n, 'photo')} ({_bytes(saving)}) to the trash."
            if self.groups
            else "No duplicates found."
        )
        self._update_buttons()

    def _show_more(self) -> None:
        upto = min(len(self.groups), self._shown + SHOWN_GROUPS)
        for g in self.groups[self._shown : upto]:
            card = GroupCard(g, self, self.inner)
            self.list.insertWidget(self.list.count() - 1, card)
            self.cards.append(card)
            for t in card.tiles:
                self._tiles.setdefault(str(t.member.path), []).append(t)
        self._shown = upto
        self.more_button.setVisible(self._shown < len(self.groups))

    def _on_thumbnail(self, path: str) -> None:
        for tile in self._tiles.get(path, ()):
            tile.set_image(self.context.thumbnails.peek(path))

    # -- actions --------------------------------------------------------------------

    def open_photo(self, path: str) -> None:
        from lookalike.gui.desktop import open_with_default_app

        if not open_with_default_app(path):
            self.context.notify(Level.WARNING, f"Could not open {os.path.basename(path)}")

    def show_photo_in_folder(self, path: str) -> None:
        from lookalike.gui.desktop import show_in_folder

        if not show_in_folder(path):
            self.context.notify(Level.WARNING, f"Could not show {os.path.basename(path)} in its folder")

    def confirm_trash(self, photos: int, size: int) -> bool:
        """Ask before moving photos to the trash (tests replace this)."""
        answer = QMessageBox.question(
            self,
            "Move to the trash",
            f"Move {counted(photos, 'photo')} ({_bytes(size)}) to the trash?\n\n"
            "The photo marked KEEP stays in each group. You can undo this while they are in the trash.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def trash_groups(self, groups: Sequence[DuplicateGroup]) -> None:
        groups = list(groups)
        if not groups or not self.service.is_open or self._busy or self._indexing():
            return
        others = [m for g in groups for m in g.others]
        if not self.confirm_trash(len(others), sum(m.size for m in others)):
            return
        self._run(
            lambda engine: self._duplicates(engine).trash_others(groups), self._trashed, "move photos to the trash"
        )

    def _trashed(self, report: TrashReport) -> None:
        moved, left = len(report.moved), len(report.left)
        text = f"Moved {counted(moved, 'photo')} to the trash."
        if left:
            text += f" {left} left in place: " + "; ".join(f"{x.path.name}: {x.reason}" for x in report.left[:3])
        self.context.notify(
            Level.WARNING if left else Level.INFO, text, key="duplicates", actions=(("Undo", self.undo),)
        )
        self.service.refresh_status()
        self._stale = True

    def keep_groups(self, groups: Sequence[DuplicateGroup]) -> None:
        groups = list(groups)
        if not groups or not self.service.is_open or self._busy:
            return

        def work(engine: SearchEngine) -> int:
            dups = self._duplicates(engine)
            for g in groups:
                dups.keep_all(g)
            return len(groups)

        def done(n: int) -> None:
            self.context.notify(Level.STATUS, f"Kept {counted(n, 'group')} as they are; they will not be listed again.")
            kept = {id(g) for g in groups}
            self._show_groups([g for g in self.groups if id(g) not in kept])

        self._run(work, done, "keep the photos")

    def choose_keeper(self, group: DuplicateGroup, member: Member) -> None:
        """Keep this photo of the group instead of the suggestion (remembered in the catalog)."""
        if not self.service.is_open or self._busy or member.photo_id == group.keep.photo_id:
            return

        def done(new: DuplicateGroup) -> None:
            self._show_groups([new if g is group else g for g in self.groups])
            self.context.notify(Level.STATUS, f"Keeping {member.path.name} in its group.")

        self._run(
            lambda engine: self._duplicates(engine).choose_keeper(group, member), done, "choose the photo to keep"
        )

    def undo(self) -> None:
        if not self.service.is_open or self._busy or self._indexing():
            return
        self._run(lambda engine: self._duplicates(engine).undo(), self._undone, "undo the trash")

    def _undone(self, report: UndoReport) -> None:
        if report.run_id is None:
            self.context.notify(Level.INFO, "Nothing to undo: no photos of a trash run are still in the trash.")
        else:
            text = f"Put back {counted(len(report.restored), 'photo')}."
            if report.failed:
                text += " Not put back: " + "; ".join(f"{x.path.name}: {x.reason}" for x in report.failed[:3])
            self.context.notify(Level.WARNING if report.failed else Level.INFO, text, key="duplicates")
        self.service.refresh_status()
        self._stale = True

    # -- plumbing -------------------------------------------------------------------

    def _indexing(self) -> bool:
        if self.service.indexing:
            self.context.notify(Level.INFO, "Indexing is running; try again when it has finished.", key="duplicates")
            return True
        return False

    def _run(self, work: Callable[[SearchEngine], Any], done: Callable[[Any], None], what: str) -> None:
        """Run ``work(engine)`` on the service's write queue: finding duplicates writes
        fingerprints and recovers an interrupted trash run, and trash, keep and undo change
        the library, so all of it waits for the window's indexing run in progress and no run of
        the window's starts while it works. (Duplicates takes the writer lock itself where it
        writes: finding still works while another Lookalike writes.)"""
        self._busy = True
        self._update_buttons()

        def failed(f: JobFailure) -> None:
            self.context.notify(Level.ERROR, f"Could not {what}: {f.message}", key="duplicates")
            self.summary.setText("")

        def finished() -> None:
            self._busy = False
            self._update_buttons()
            if self._stale and self.isVisible():  # an action changed the library: list again
                self.refresh()

        if not self.service.submit(work, done, failed, write=True, lock=False, name=what, on_finished=finished):
            finished()

    def _update_buttons(self) -> None:
        idle = not self._busy
        has = bool(self.groups)
        self.find_button.setEnabled(idle)
        self.trash_all_button.setEnabled(idle and has)
        self.keep_all_button.setEnabled(idle and has)
        self.undo_button.setEnabled(idle and self._can_undo)
        for card in self.cards:
            card.trash_button.setEnabled(idle)
            card.keep_button.setEnabled(idle)

    @property
    def busy(self) -> bool:
        return self._busy
