"""Tags: your own tags, what they learned, and the photos they suggest ("windmill", "my bike").

A tag and a concept are one thing (:mod:`lookalike.core.learning.user_tags`). The list on the left
holds your tags with how many photos carry each and how many more may. The right side
shows the chosen tag: the photos tagged (and, crossed, those rejected), then "N more
photos may be 'windmill' - review": its suggestions, best first, with "Accept" / "Reject"
(each retrains at once; a rejected photo is never suggested again), and "Show photos" to
see exactly the photos carrying it in the result grid. "Add tag..." takes the photos
selected in the search or browse grid (or photos picked from disk). Every change goes to
the library's write queue: catalog data the command line sees too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from lookalike.core.words import counted
from lookalike.gui.messages import Level, failure_text
from lookalike.gui.results import ResultItem
from lookalike.gui.views.base import PhotoSet, View, ViewContext
from lookalike.gui.workers import JobFailure

log = logging.getLogger(__name__)

THUMB = 112
PathRole = Qt.ItemDataRole.UserRole + 1
NameRole = Qt.ItemDataRole.UserRole + 2


def _tile(img: QImage | None, mark: str = "") -> QIcon:
    pix = QPixmap(THUMB, THUMB)
    pix.fill(QColor(238, 238, 242))
    p = QPainter(pix)
    if img is not None and not img.isNull():
        scaled = img.scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        p.drawImage((THUMB - scaled.width()) // 2, (THUMB - scaled.height()) // 2, scaled)
    if mark:
        p.fillRect(0, 0, 26, 22, QColor(200, 40, 40) if mark == "\u2715" else QColor(40, 140, 60))
        p.setPen(QColor("white"))
        p.drawText(0, 0, 26, 22, Qt.AlignmentFlag.AlignCenter, mark)
    p.end()
    return QIcon(pix)


# How each way of learning reads to a person (core.learning.Method), not its name.
_METHOD_WORDS = {
    "centroid": "found by likeness to your examples",
    "probe": "learned from your examples and the photos marked not",
    "metric": "learned from your examples and the photos marked not, with more care",
}


def _method_words(method: str | None) -> str:
    return _METHOD_WORDS.get(method or "", "not learned yet")


class PhotoStrip(QListWidget):
    """A row of photo thumbnails that fill in as the loader has them."""

    def __init__(self, loader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setWrapping(True)
        self.setSpacing(4)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        loader.loaded.connect(self._on_loaded)

    def set_photos(self, photos: Sequence[tuple[str, str, str]]) -> None:
        """(path, caption, mark) each; mark is '' or a check or a cross."""
        self.clear()
        for path, caption, mark in photos:
            item = QListWidgetItem(_tile(self.loader.get(path), mark), caption)
            item.setData(PathRole, path)
            item.setData(Qt.ItemDataRole.UserRole + 3, mark)
            item.setToolTip(path)
            self.addItem(item)

    def _on_loaded(self, path: str) -> None:
        for i in range(self.count()):
            item = self.item(i)
            if item.data(PathRole) == path:
                item.setIcon(_tile(self.loader.peek(path), item.data(Qt.ItemDataRole.UserRole + 3) or ""))

    def selected_paths(self) -> list[str]:
        return [i.data(PathRole) for i in self.selectedItems()]


class ConceptsView(View):
    key = "concepts"
    title = "Tags"
    icon = "concepts"

    def __init__(self, context: ViewContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._stale = True
        self._current = ""
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.teach_button = QPushButton("Add tag\u2026", self)
        self.teach_button.setObjectName("TeachConcept")
        self.teach_button.setToolTip("Tag the photos selected in the search or browse grid; the tag learns from them")
        self.teach_button.clicked.connect(lambda: self.teach_from_selection())
        top.addWidget(self.teach_button)
        self.rename_button = QPushButton("Rename\u2026", self)
        self.rename_button.clicked.connect(self.rename_current)
        top.addWidget(self.rename_button)
        self.add_button = QPushButton("Tag selected", self)
        self.add_button.setToolTip("Give this tag to the photos selected in the search or browse grid")
        self.add_button.clicked.connect(self.add_examples)
        top.addWidget(self.add_button)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self.delete_current)
        top.addWidget(self.delete_button)
        top.addStretch(1)
        root.addLayout(top)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        self.list = QListWidget(split)
        self.list.setObjectName("ConceptList")
        self.list.setMinimumWidth(200)
        self.list.currentItemChanged.connect(lambda cur, _prev: self._select(cur))
        right = QWidget(split)
        lay = QVBoxLayout(right)
        lay.setContentsMargins(8, 0, 0, 0)
        self.heading = QLabel("", right)
        self.heading.setObjectName("ConceptHeading")
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.heading.setWordWrap(True)  # the empty view's hint is long: it wraps, the window keeps its width
        lay.addWidget(self.heading)
        self.show_button = QPushButton("Show photos", right)
        self.show_button.clicked.connect(self.show_current)
        lay.addWidget(self.show_button, 0, Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(QLabel("<b>Tagged</b> (a red cross: rejected, not this)", right))
        self.examples = PhotoStrip(context.thumbnails, right)
        self.examples.setObjectName("ConceptExamples")
        lay.addWidget(self.examples, 1)
        self.ask_label = QLabel("", right)
        lay.addWidget(self.ask_label)
        self.offered = PhotoStrip(context.thumbnails, right)
        self.offered.setObjectName("ConceptOffered")
        lay.addWidget(self.offered, 1)
        marks = QHBoxLayout()
        self.right_button = QPushButton("\u2713 Accept", right)
        self.right_button.setToolTip("The selected suggestions carry the tag")
        self.right_button.setObjectName("MarkRight")
        self.right_button.clicked.connect(lambda: self.mark_selected(True))
        self.wrong_button = QPushButton("\u2715 Reject", right)
        self.wrong_button.setToolTip("The selected photos do not: never suggested again (a tagged photo is untagged)")
        self.wrong_button.setObjectName("MarkWrong")
        self.wrong_button.clicked.connect(lambda: self.mark_selected(False))
        marks.addWidget(self.right_button)
        marks.addWidget(self.wrong_button)
        marks.addStretch(1)
        lay.addLayout(marks)
        split.setStretchFactor(1, 1)
        root.addWidget(split, 1)
        context.service.indexing_finished.connect(lambda _o: self._mark_stale())
        context.service.opened.connect(lambda _o: self._mark_stale())
        self._enable()

    # -- the list
    def menu_actions(self) -> Sequence[QAction | None]:
        a = QAction("Add Tag to the Selected Photos\u2026", self)
        a.triggered.connect(lambda: self.teach_from_selection())
        return (a,)

    def _mark_stale(self) -> None:
        self._stale = True
        if self.isVisible():
            self.refresh()

    def activated(self) -> None:
        if self._stale:
            self.refresh()

    def refresh(self, select: str = "") -> None:
        self._stale = False
        want = select or self._current

        def work(engine: Any):
            return engine.learner().user_tags.counts()[0]

        def shown(infos) -> None:
            self.list.blockSignals(True)
            self.list.clear()
            for info in infos:
                more = f" \u00b7 {info.suggested:,} more may be" if info.suggested else ""
                item = QListWidgetItem(f"{info.name}\n{counted(info.photos, 'photo')}{more}")
                item.setData(NameRole, info.name)
                self.list.addItem(item)
            self.list.blockSignals(False)
            names = [i.name for i in infos]
            if want in names:
                self.list.setCurrentRow(names.index(want))
            elif names:
                self.list.setCurrentRow(0)
            else:
                self._select(None)
                self.heading.setText(
                    "<b>No tags of yours yet.</b> Select a few photos of something that matters to you "
                    "(your cat, your bike) in the search or browse grid, then <i>Add tag\u2026</i>: "
                    "the tag learns from them and suggests the rest"
                )

        self.service.submit(work, shown, self._failed, name="concepts")

    def _select(self, item: QListWidgetItem | None) -> None:
        self._current = item.data(NameRole) if item is not None else ""
        self._enable()
        if not self._current:
            self.examples.clear()
            self.offered.clear()
            self.ask_label.setText("")
            return
        name = self._current

        def work(engine: Any):
            learner = engine.learner()
            info = learner.concepts.get(name)
            examples = learner.concepts.examples(name)
            likely = learner.user_tags.suggest(name, k=None) if info.method else []
            # none likely: the nearest photos still, to review
            shown = likely[:12] or (learner.user_tags.suggest(name, k=12, every=True) if info.method else [])
            tagged = len(learner.user_tags.photo_ids(name))
            return info, examples, [os.fspath(s.path) for s in shown], len(likely), tagged

        self.service.submit(work, self._show_concept, self._failed, name="concept")

    def _show_concept(self, value) -> None:
        info, examples, offered, likely, tagged = value
        if info.name != self._current:
            return
        self.heading.setText(
            f"<span style='font-size:16pt'><b>{info.name}</b></span> &nbsp; {counted(tagged, 'photo')} tagged"
            f" &middot; {info.counter_examples} not &middot; {_method_words(info.method)}"
        )
        self.examples.set_photos(
            [(os.fspath(e.path), e.path.name, "" if e.right else "\u2715") for e in examples if e.photo_id is not None]
        )
        self.offered.set_photos([(p, os.path.basename(p), "") for p in offered])
        if likely:
            self.ask_label.setText(
                f"<b>{likely:,} more photo{'s' if likely != 1 else ''} may be \u2018{info.name}\u2019 \u2014 review:</b>"
                " select them below, then Accept or Reject; the tag learns at once."
            )
        else:
            self.ask_label.setText(
                f"<b>No other photo is likely to be \u2018{info.name}\u2019.</b> The nearest, to review:"
                if offered
                else ""
            )

    def _enable(self) -> None:
        has = bool(self._current)
        for b in (self.rename_button, self.delete_button, self.show_button, self.right_button, self.wrong_button):
            b.setEnabled(has)
        self.add_button.setEnabled(has)

    # -- actions
    def _grid_selection(self) -> list[str]:
        """The photos selected in the grid the user looked at last (search or browse): a
        selection left behind in the other grid is not part of it."""
        return list(dict.fromkeys(self.context.selected_photos()))

    def teach_from_selection(self, paths: Sequence[str] | None = None) -> None:
        """Ask a name and teach a concept from ``paths`` (default: the photos selected in the
        search or browse grid; none: photos picked from disk)."""
        paths = list(paths) if paths else self._grid_selection()
        if not paths:
            picked, _ = QFileDialog.getOpenFileNames(
                self, "Example photos of the new concept", "", "Photos (*.jpg *.jpeg *.png *.heic *.webp *.tif *.tiff)"
            )
            paths = list(picked)
        if not paths:
            return
        name, ok = QInputDialog.getText(
            self, "Add tag", f"Tag these {counted(len(paths), 'photo')}:" if len(paths) != 1 else "Tag this photo:"
        )
        if ok and name.strip():
            self.teach(name.strip(), paths)

    def teach(self, name: str, paths: Sequence[str], counter: Sequence[str] = ()) -> None:
        """Tag ``paths`` with ``name`` (and ``counter`` as photos that are not it)."""

        def work(engine: Any):
            user_tags = engine.learner().user_tags
            added = user_tags.add(name, list(paths))
            if counter:
                user_tags.reject(name, list(counter))
            return user_tags.concepts.get(name), added

        def done(value) -> None:
            info, added = value
            self.context.notify(Level.STATUS, f"{info.name}: {counted(added, 'photo')} tagged")
            self.refresh(select=info.name)

        self.service.submit(work, done, self._failed, write=True, name="teach")

    def add_examples(self) -> None:
        paths = self._grid_selection()
        if self._current and paths:
            self.teach(self._current, paths)

    def mark_selected(self, right: bool) -> None:
        paths = self.offered.selected_paths() or self.examples.selected_paths()
        name = self._current
        if not paths or not name:
            return

        from_strip = not self.offered.selected_paths()  # photos chosen among the tagged ones

        def work(engine: Any):
            user_tags = engine.learner().user_tags
            if right:
                return user_tags.accept(name, list(paths))
            if from_strip:
                user_tags.remove(name, list(paths))
            return user_tags.reject(name, list(paths))

        self.service.submit(work, lambda _n: self.refresh(select=name), self._failed, write=True, name="mark")

    def rename_current(self) -> None:
        old = self._current
        if not old:
            return
        new, ok = QInputDialog.getText(self, "Rename the concept", "New name:", text=old)
        if not ok or not new.strip() or new.strip() == old:
            return
        self.service.submit(
            lambda engine: engine.learner().concepts.rename(old, new.strip()),
            lambda info: self.refresh(select=info.name),
            self._failed,
            write=True,
            name="rename",
        )

    def delete_current(self) -> None:
        name = self._current
        if not name:
            return
        answer = QMessageBox.question(
            self,
            "Delete the concept",
            f"Delete the concept \u201c{name}\u201d and its examples? Your photos are not touched.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._current = ""
        self.service.submit(
            lambda engine: engine.learner().concepts.delete(name),
            lambda _info: self.refresh(),
            self._failed,
            write=True,
            name="delete",
        )

    def show_current(self) -> None:
        name = self._current
        if not name:
            return

        def work(engine: Any):
            results = engine.search(f'tag:"{name}"', k=10_000)  # exactly the photos carrying it
            return [ResultItem.from_result(r) for r in results]

        self.service.submit(
            work,
            lambda items: self.context.show_photos(PhotoSet(name, tuple(items), scored=True)),
            self._failed,
            name="concept-photos",
        )

    def _failed(self, failure: JobFailure) -> None:
        self.context.notify(Level.WARNING, failure_text(failure), key="concepts")
