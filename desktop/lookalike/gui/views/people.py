"""The People view: one round face per person, named people first, then the unnamed.

Click a person to see their photos in the grid. Rename inline (F2, or the
context menu); drag one person onto another to merge them; hide a person. The
strip under the people shows the chosen person's faces, and the faces
suggested for them: a face's context menu says "Not this person" or "This
is..." someone else, and a suggestion is confirmed or rejected there. Every
decision goes to :class:`lookalike.core.faces.People` on the library's write
queue, so it is catalog data the command line sees too. The menu holds the
setting that turns People off (which deletes every face record).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QIcon, QImage, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lookalike.core.words import counted
from lookalike.gui.messages import Level
from lookalike.gui.views.base import PhotoSet, View, ViewContext
from lookalike.gui.workers import JobFailure

if TYPE_CHECKING:
    from lookalike.core.faces import PersonInfo

log = logging.getLogger(__name__)

FACE = 104  # round face crop, pixels
SMALL_FACE = 72
PersonRole = Qt.ItemDataRole.UserRole + 1
FaceRole = Qt.ItemDataRole.UserRole + 2


def round_face(img: QImage | None, size: int) -> QPixmap:
    """A face crop as a circle (grey when there is none yet)."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    path = QPainterPath()
    path.addEllipse(0, 0, size, size)
    p.setClipPath(path)
    if img is not None and not img.isNull():
        p.drawImage(pix.rect(), img)
    else:
        p.fillRect(pix.rect(), QBrush(QColor(205, 205, 210)))
    p.end()
    return pix


def person_text(info: PersonInfo) -> str:
    n = len(info.photos)
    return f"{info.label}\n{n} photo{'s' if n != 1 else ''}"


class PeopleList(QListWidget):
    """The people as round faces; a person dragged onto another asks for a merge."""

    merge_requested = Signal(int, int)  # dragged person id, target person id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(FACE, FACE))
        self.setGridSize(QSize(FACE + 44, FACE + 56))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Snap)
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setSpacing(6)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def dropEvent(self, event) -> None:  # Qt's name
        target = self.itemAt(event.position().toPoint())
        source = self.currentItem()
        event.ignore()  # never reorder: the order is named first, then largest
        if target is not None and source is not None and target is not source:
            self.merge_requested.emit(int(source.data(PersonRole)), int(target.data(PersonRole)))


def person_query(person_id: int, name: str | None) -> str:
    """The query that finds a person's photos: ``@alice``, ``@"Aunt May"``, or ``@12`` unnamed."""
    if not name or '"' in name:
        return f"@{person_id}"
    if re.fullmatch(r"[\w.-]+", name):
        return f"@{name}"
    return f'@"{name}"'


class PeopleView(View):
    key = "people"
    title = "People"
    icon = "people"

    def __init__(self, context: ViewContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.people: list[PersonInfo] = []
        self.crops: dict[int, QImage] = {}
        self.selected: int | None = None
        self._stale = True
        self._busy = 0
        self._editing: int | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("<h2 style='margin:0'>People</h2>", self))
        bar.addSpacing(16)
        self.show_all = QCheckBox("Show hidden people and faces seen once", self)
        self.show_all.toggled.connect(lambda _on: self.refresh())
        bar.addWidget(self.show_all)
        bar.addStretch(1)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self.refresh)
        bar.addWidget(self.refresh_button)
        outer.addLayout(bar)
        self.summary = QLabel("", self)
        self.summary.setStyleSheet("color: #444;")
        outer.addWidget(self.summary)

        self.list = PeopleList(self)
        self.list.itemClicked.connect(self._on_person_clicked)
        self.list.itemActivated.connect(self._on_person_clicked)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.merge_requested.connect(self.ask_merge)
        self.list.customContextMenuRequested.connect(self._person_menu)
        outer.addWidget(self.list, 3)

        self.faces_title = QLabel("", self)
        self.faces_title.setStyleSheet("font-weight: bold;")
        outer.addWidget(self.faces_title)
        self.faces = QListWidget(self)
        self.faces.setViewMode(QListWidget.ViewMode.IconMode)
        self.faces.setIconSize(QSize(SMALL_FACE, SMALL_FACE))
        self.faces.setGridSize(QSize(SMALL_FACE + 28, SMALL_FACE + 36))
        self.faces.setFlow(QListWidget.Flow.LeftToRight)
        self.faces.setWrapping(False)
        self.faces.setFixedHeight(SMALL_FACE + 56)
        self.faces.setMovement(QListWidget.Movement.Static)
        self.faces.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.faces.customContextMenuRequested.connect(self._face_menu)
        outer.addWidget(self.faces, 0)

        context.service.indexing_finished.connect(lambda _o: self._mark_stale())
        context.service.opened.connect(lambda _o: self._mark_stale())

    # -- the frame ------------------------------------------------------------------

    def activated(self) -> None:
        # Faces may have been named elsewhere (the preview, the command line): list afresh.
        self.refresh()

    def menu_actions(self) -> Sequence[QAction | None]:
        refresh = QAction("Refresh people", self)
        refresh.triggered.connect(self.refresh)
        regroup = QAction("Group faces again (keeps your names and choices)", self)
        regroup.triggered.connect(self.regroup)
        self.enabled_action = QAction("Find faces (People)", self)
        self.enabled_action.setCheckable(True)
        self.enabled_action.setChecked(True)
        self.enabled_action.toggled.connect(self.set_people_enabled)
        return (refresh, regroup, None, self.enabled_action)

    def _mark_stale(self) -> None:
        self._stale = True
        if self.isVisible():
            self.refresh()

    # -- listing --------------------------------------------------------------------

    def refresh(self) -> None:
        include = self.show_all.isChecked()

        def work(engine: Any) -> tuple[bool, list[PersonInfo]]:
            people = engine.people()
            return people.enabled, people.people(include_hidden=include)

        if self._read(work, self._show_people, "list the people"):
            self._stale = False
            self.summary.setText("Looking at faces…")

    def _show_people(self, value: tuple[bool, list[PersonInfo]]) -> None:
        enabled, people = value
        if hasattr(self, "enabled_action"):
            self.enabled_action.blockSignals(True)
            self.enabled_action.setChecked(enabled)
            self.enabled_action.blockSignals(False)
        # Named people first (largest first), then the unnamed groups.
        self.people = sorted(people, key=lambda p: (p.name is None, -p.faces, (p.name or "").lower(), p.id))
        self.list.blockSignals(True)
        self.list.clear()
        for info in self.people:
            item = QListWidgetItem(QIcon(round_face(self.crops.get(info.cover_face or -1), FACE)), person_text(info))
            item.setData(PersonRole, info.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsDragEnabled)
            tip = f"{info.label}: {counted(info.faces, 'face')} in {counted(len(info.photos), 'photo')}"
            if info.suggestions:
                tip += f"; {info.suggestions} more may be them (select to confirm)"
            if info.hidden:
                tip += " (hidden)"
                item.setForeground(QColor(140, 140, 140))
            item.setToolTip(tip)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.list.addItem(item)
        self.list.blockSignals(False)
        named = sum(p.name is not None for p in self.people)
        if not enabled:
            self.summary.setText("People is off: no faces are looked for. Turn it on in the People menu.")
        elif not self.people:
            self.summary.setText("No people yet: faces are found while photos are indexed.")
        else:
            self.summary.setText(
                f"{counted(len(self.people), 'person')} ({named} named). Click a face for their photos; drag one person onto "
                "another to merge; right-click to rename, hide or name."
            )
        self._load_crops([p.cover_face for p in self.people if p.cover_face and p.cover_face not in self.crops])
        if self.selected is not None and any(p.id == self.selected for p in self.people):
            self._show_faces(self.selected)
        else:
            self.faces.clear()
            self.faces_title.setText("")

    def _load_crops(self, face_ids: list[int]) -> None:
        if not face_ids:
            return

        def work(engine: Any) -> dict[int, Any]:
            people = engine.people()
            out = {}
            for fid in face_ids:
                try:
                    out[fid] = people.face_crop(fid, FACE * 2)
                except Exception as exc:  # a photo gone or unreadable: a grey circle
                    log.info("No crop for face %s: %s", fid, exc)
            return out

        self._read(work, self._crops_loaded, "load the faces", quiet=True)

    def _crops_loaded(self, crops: dict[int, Any]) -> None:
        from lookalike.gui.thumbnails import pil_to_qimage

        for fid, img in crops.items():
            if img is not None:
                self.crops[fid] = pil_to_qimage(img)
        for row in range(self.list.count()):
            item = self.list.item(row)
            info = self.person_info(int(item.data(PersonRole)))
            if info is not None and info.cover_face in crops:
                item.setIcon(QIcon(round_face(self.crops.get(info.cover_face), FACE)))
        for row in range(self.faces.count()):
            item = self.faces.item(row)
            fid = int(item.data(FaceRole)[0])
            if fid in crops:
                item.setIcon(QIcon(round_face(self.crops.get(fid), SMALL_FACE)))

    def person_info(self, person_id: int) -> PersonInfo | None:
        return next((p for p in self.people if p.id == person_id), None)

    def item_of(self, person_id: int) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            if int(self.list.item(row).data(PersonRole)) == person_id:
                return self.list.item(row)
        return None

    # -- a person ---------------------------------------------------------------------

    def _on_person_clicked(self, item: QListWidgetItem) -> None:
        info = self.person_info(int(item.data(PersonRole)))
        if info is None:
            return
        self.selected = info.id
        self._show_faces(info.id)
        self.show_person(info.id)

    def show_person(self, person_id: int) -> None:
        """The person's photos in the result grid."""
        info = self.person_info(person_id)
        if info is not None:
            paths = [str(p) for p in info.photos]
            self.context.show_photos(PhotoSet.of_paths(info.label, paths, query=person_query(info.id, info.name)))

    def _show_faces(self, person_id: int) -> None:
        def work(engine: Any) -> tuple[list, list]:
            people = engine.people()
            return people.faces_of_person(person_id), people.suggestions_for(person_id)

        def shown(value: tuple[list, list]) -> None:
            faces, suggested = value
            info = self.person_info(person_id)
            self.faces.clear()
            for f, kind in [(f, "face") for f in faces] + [(f, "suggested") for f in suggested]:
                label = "maybe?" if kind == "suggested" else ("✓" if f.confirmed else "")
                item = QListWidgetItem(QIcon(round_face(self.crops.get(f.id), SMALL_FACE)), label)
                item.setData(FaceRole, (f.id, kind, person_id))
                item.setToolTip(
                    "Suggested: right-click to confirm or reject"
                    if kind == "suggested"
                    else ("Placed by you" if f.confirmed else "Grouped automatically") + "; right-click for more"
                )
                self.faces.addItem(item)
            name = info.label if info else "this person"
            more = f", {len(suggested)} suggested" if suggested else ""
            self.faces_title.setText(f"Faces of {name}: {len(faces)}{more}")
            self._load_crops([f.id for f in faces + suggested if f.id not in self.crops][:60])

        self._read(work, shown, "list the faces", quiet=True)

    def _person_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        info = self.person_info(int(item.data(PersonRole)))
        if info is None:
            return
        menu = QMenu(self)
        menu.addAction("Show photos", lambda: self.show_person(info.id))
        menu.addAction("Rename…" if info.name else "Name…", lambda: self.start_rename(info.id))
        merge = menu.addMenu("Merge into")
        for other in self.people:
            if other.id != info.id:
                merge.addAction(other.label, functools.partial(self.ask_merge, info.id, other.id))
        merge.setEnabled(len(self.people) > 1)
        menu.addSeparator()
        if info.hidden:
            menu.addAction("Show again", lambda: self.hide_person(info.id, False))
        else:
            menu.addAction("Hide", lambda: self.hide_person(info.id, True))
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def start_rename(self, person_id: int) -> None:
        """Edit the name in place (the item shows the name alone while edited)."""
        item = self.item_of(person_id)
        info = self.person_info(person_id)
        if item is None or info is None:
            return
        self._editing = person_id
        self.list.blockSignals(True)
        item.setText(info.name or "")
        self.list.blockSignals(False)
        self.list.editItem(item)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        person_id = int(item.data(PersonRole))
        info = self.person_info(person_id)
        if info is None:
            return
        new = item.text().split("\n")[0].strip()
        self._editing = None
        if not new or new == (info.name or "") or new == info.label:
            self.list.blockSignals(True)
            item.setText(person_text(info))
            self.list.blockSignals(False)
            return
        self.rename(person_id, new)

    def rename(self, person_id: int, name: str) -> None:
        self._write(lambda engine: engine.people().rename(person_id, name), f"name {name}")

    def hide_person(self, person_id: int, hidden: bool = True) -> None:
        self._write(lambda engine: engine.people().hide(person_id, hidden), "hide the person")

    def confirm_merge(self, source: PersonInfo, target: PersonInfo) -> bool:
        """Ask before merging two people (tests replace this)."""
        answer = QMessageBox.question(
            self,
            "Merge people",
            f"{source.label} and {target.label} are the same person?\n\n"
            f"{source.label}'s {counted(source.faces, 'face')} join {target.label}.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes

    def ask_merge(self, source_id: int, target_id: int) -> None:
        source, target = self.person_info(source_id), self.person_info(target_id)
        if source is None or target is None or not self.confirm_merge(source, target):
            return
        self.selected = target_id
        self._write(lambda engine: engine.people().merge(source_id, target_id), "merge the people")

    # -- a face -------------------------------------------------------------------------

    def ask_name(self, title: str, current: str = "") -> str | None:
        """Ask for a name (tests replace this)."""
        names = sorted({p.name for p in self.people if p.name})
        name, ok = QInputDialog.getItem(self, title, "Name:", names or [current], editable=True)
        return name.strip() if ok and name.strip() else None

    def _face_menu(self, pos: QPoint) -> None:
        item = self.faces.itemAt(pos)
        if item is None:
            return
        face_id, kind, person_id = item.data(FaceRole)
        info = self.person_info(person_id)
        label = info.label if info else "this person"
        menu = QMenu(self)
        if kind == "suggested":
            menu.addAction(f"Yes, this is {label}", lambda: self.confirm_face(face_id))
            menu.addAction(f"No, not {label}", lambda: self.reject_face(face_id, person_id))
        else:
            menu.addAction(f"Not {label}", lambda: self.reject_face(face_id, person_id))
        menu.addAction("This is…", lambda: self.name_face(face_id))
        menu.exec(self.faces.viewport().mapToGlobal(pos))

    def name_face(self, face_id: int) -> None:
        name = self.ask_name("This is…")
        if name:
            self._write(lambda engine: engine.people().name_face(face_id, name), f"name {name}")

    def confirm_face(self, face_id: int) -> None:
        self._write(lambda engine: engine.people().confirm(face_id), "confirm the face")

    def reject_face(self, face_id: int, person_id: int) -> None:
        self._write(lambda engine: engine.people().reject(face_id, person_id), "take the face out")

    # -- the setting ----------------------------------------------------------------------

    def confirm_people_off(self) -> bool:
        """Ask before deleting every face record (tests replace this)."""
        answer = QMessageBox.warning(
            self,
            "Turn People off",
            "Stop finding faces and delete every face record of this library: the faces, the people and "
            "the names you gave them. Your photos are not touched.\n\nThis cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def set_people_enabled(self, on: bool) -> None:
        if not on and not self.confirm_people_off():
            self.enabled_action.blockSignals(True)
            self.enabled_action.setChecked(True)
            self.enabled_action.blockSignals(False)
            return
        self.crops.clear()
        self._write(lambda engine: engine.people().set_enabled(on), "change the People setting")
        if on:
            self.context.notify(Level.INFO, "People is on: faces are found at the next indexing run.", key="people")
            from lookalike.gui.service import IndexJob

            self.service.index(IndexJob.all())

    def regroup(self) -> None:
        self._write(lambda engine: engine.people().regroup(), "group the faces again")

    # -- plumbing -------------------------------------------------------------------------

    def _read(self, work: Callable[[Any], Any], done: Callable[[Any], None], what: str, quiet: bool = False) -> bool:
        return self.service.submit(work, done, self._failed(what, quiet), name=f"people: {what}")

    def _write(self, work: Callable[[Any], Any], what: str) -> None:
        self._busy += 1

        def done(_value: Any) -> None:
            self._busy -= 1
            self.refresh()

        def failed(f: JobFailure) -> None:
            self._busy -= 1
            self._failed(what)(f)
            self.refresh()

        if not self.service.submit(work, done, failed, write=True, name=f"people: {what}"):
            self._busy -= 1

    def _failed(self, what: str, quiet: bool = False) -> Callable[[JobFailure], None]:
        def failed(f: JobFailure) -> None:
            if quiet:
                log.info("Could not %s: %s", what, f.message)
            else:
                self.context.notify(Level.ERROR, f"Could not {what}: {f.message}", key="people")

        return failed

    @property
    def busy(self) -> bool:
        return self._busy > 0
