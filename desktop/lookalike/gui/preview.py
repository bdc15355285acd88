"""The preview: one result large, with its path, size, date and score; next/previous."""

from __future__ import annotations

import functools
from collections.abc import Callable

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lookalike.gui import icons
from lookalike.gui.preview_text import PhotoTextPanel
from lookalike.gui.results import ResultItem, ResultsModel, format_bytes, format_taken
from lookalike.gui.workers import JobFailure, JobRunner

PREVIEW_PIXELS = 1600


def load_preview_image(path: str, pixels: int = PREVIEW_PIXELS) -> QImage:
    """Decode a photo for the preview (on a pool thread): oriented, at most ``pixels`` wide."""
    from PIL import Image

    from lookalike.core.index.imaging import decode_file
    from lookalike.gui.thumbnails import pil_to_qimage

    decoded = decode_file(path, target=pixels // 2)
    img = decoded.image
    if max(img.size) > pixels:
        img = img.copy()
        img.thumbnail((pixels, pixels), Image.Resampling.LANCZOS)
    return pil_to_qimage(img)


class ImageCanvas(QWidget):
    """Paints an image fitted into the widget, centred, never upscaled beyond 2x; with the
    faces found in it framed and named (a click on a frame asks for a name)."""

    face_clicked = Signal(int)  # the face id

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._message = ""
        self._faces: list = []  # core.faces.FaceInfo: box fractions, name
        self._target = QRectF()
        self.setMinimumSize(QSize(320, 240))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, img: QImage | None, message: str = "") -> None:
        self._image = img
        self._message = message
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def set_faces(self, faces: list) -> None:
        self._faces = list(faces)
        self.update()

    def faces(self) -> list:
        return list(self._faces)

    def face_rect(self, face) -> QRectF:
        t = self._target
        x0, y0, x1, y1 = face.box
        return QRectF(t.x() + x0 * t.width(), t.y() + y0 * t.height(), (x1 - x0) * t.width(), (y1 - y0) * t.height())

    def _paint_faces(self, p: QPainter) -> None:
        for face in self._faces:
            r = self.face_rect(face)
            named = face.name is not None
            colour = QColor(255, 214, 0) if named else QColor(235, 235, 235)
            p.setPen(QPen(colour, 2))
            p.drawRect(r)
            label = face.name or (f"{face.suggested_name}?" if face.suggested_name else "Who is this?")
            metrics = p.fontMetrics()
            w, h = metrics.horizontalAdvance(label) + 10, metrics.height() + 4
            tag = QRectF(r.x(), r.bottom() + 2, w, h)
            p.fillRect(tag, QColor(0, 0, 0, 170))
            p.setPen(colour)
            p.drawText(tag, Qt.AlignmentFlag.AlignCenter, label)

    def mousePressEvent(self, event) -> None:  # Qt's name
        pos = event.position()
        for face in self._faces:
            if self.face_rect(face).contains(pos):
                self.face_clicked.emit(int(face.id))
                return
        super().mousePressEvent(event)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.fillRect(self.rect(), QColor(28, 28, 30))  # a neutral dark ground, as photo viewers use
        if self._image is not None and not self._image.isNull():
            iw, ih = self._image.width(), self._image.height()
            dpr = self.devicePixelRatioF()
            s = min(self.width() / (iw / dpr), self.height() / (ih / dpr), 1.0)  # fit, never enlarge
            w, h = iw / dpr * s, ih / dpr * s
            target = QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)
            p.drawImage(target, self._image)
            self._target = target
            self._paint_faces(p)
        elif self._message:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        p.end()


class PreviewDialog(QDialog):
    """A large view of the current result. Left/Right (or the buttons) move through results."""

    row_changed = Signal(int)
    open_requested = Signal(str)
    show_in_folder_requested = Signal(str)
    copy_path_requested = Signal(str)
    more_like_requested = Signal(str)
    less_like_requested = Signal(str)

    def __init__(self, model: ResultsModel, runner: JobRunner, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("PreviewDialog")
        self.setWindowTitle("Preview")
        self.model = model
        self.runner = runner
        self.row = -1
        self._loading = ""
        self.resize(QSize(1000, 720))

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(6)
        self.canvas = ImageCanvas(self)
        lay.addWidget(self.canvas, 1)
        # Faces come from the library of the view that opened the preview (People).
        self._service = getattr(getattr(parent, "context", None), "service", None)
        self.canvas.face_clicked.connect(self._name_face)

        info = QFrame(self)
        grid = QGridLayout(info)
        grid.setContentsMargins(4, 0, 4, 0)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        self.name_label = QLabel(info)
        f = self.name_label.font()
        f.setPointSizeF(f.pointSizeF() * 1.2)
        f.setBold(True)
        self.name_label.setFont(f)
        self.path_label = QLabel(info)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setWordWrap(True)
        self.details_label = QLabel(info)
        self.details_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.position_label = QLabel(info)
        self.position_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(self.name_label, 0, 0)
        grid.addWidget(self.position_label, 0, 1)
        grid.addWidget(self.path_label, 1, 0, 1, 2)
        grid.addWidget(self.details_label, 2, 0, 1, 2)
        self.tags_label = QLabel(info)  # the photo's tags and concepts
        self.tags_label.setObjectName("PreviewTags")
        grid.addWidget(self.tags_label, 3, 0, 1, 2)
        self.tag_field = QLineEdit(info)  # "Add tag": Enter tags the photo shown
        self.tag_field.setObjectName("PreviewAddTag")
        self.tag_field.setPlaceholderText("Add tag\u2026")
        self.tag_field.setToolTip("Type a tag and press Enter: this photo carries it, and the tag learns from it")
        self.tag_field.returnPressed.connect(self.add_tag)
        grid.addWidget(self.tag_field, 4, 0, 1, 2)
        grid.setColumnStretch(0, 1)
        lay.addWidget(info)
        # The text read in the photo (gui/preview_text.py), below the details.
        searched = getattr(parent, "searched_text", None)
        self.text_panel = PhotoTextPanel(self._service, searched if callable(searched) else str, self)
        lay.addWidget(self.text_panel)

        bar = QHBoxLayout()
        bar.setSpacing(4)

        def button(icon_name: str, text: str, tip: str, slot: Callable[[], None]) -> QToolButton:
            b = QToolButton(self)
            icons.apply(b, icon_name)
            b.setText(text)
            b.setToolTip(tip)
            b.setAccessibleName(text)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            bar.addWidget(b)
            return b

        self.prev_button = button("previous", "Previous", "Previous result (Left)", self.previous)
        self.next_button = button("next", "Next", "Next result (Right)", self.next)
        bar.addStretch(1)
        button(
            "more-like", "More like this", "Add as a + image to the query", lambda: self._emit(self.more_like_requested)
        )
        button(
            "less-like", "Less like this", "Add as a − image to the query", lambda: self._emit(self.less_like_requested)
        )
        button("copy", "Copy path", "Copy the file's path", lambda: self._emit(self.copy_path_requested))
        button(
            "folder-open",
            "Show in folder",
            "Show the file in the file manager",
            lambda: self._emit(self.show_in_folder_requested),
        )
        button("open-external", "Open", "Open with the default application", lambda: self._emit(self.open_requested))
        lay.addLayout(bar)

        for key, slot in (
            (Qt.Key.Key_Left, self.previous),
            (Qt.Key.Key_Right, self.next),
            (Qt.Key.Key_PageUp, self.previous),
            (Qt.Key.Key_PageDown, self.next),
            (Qt.Key.Key_Space, self.close),  # Space opened it from the grid: Space closes it
            (Qt.Key.Key_Backspace, self.previous),
        ):
            sc = QShortcut(QKeySequence(key), self)
            sc.activated.connect(slot)
        model.modelReset.connect(self._on_model_reset)

    def _emit(self, signal) -> None:
        item = self.current_item()
        if item is not None:
            signal.emit(item.path)

    def current_item(self) -> ResultItem | None:
        return self.model.item(self.row)

    def show_row(self, row: int) -> None:
        item = self.model.item(row)
        if item is None:
            return
        self.row = row
        self.setWindowTitle(f"{item.name} — Preview")
        self.name_label.setText(item.name)
        self.path_label.setText(item.path)
        dims = f"{item.width:,} × {item.height:,} px" if item.width and item.height else "size unknown"
        self.details_label.setText(
            f"{dims}  ·  {format_bytes(item.size)}  ·  taken {format_taken(item.taken)}"
            + (f"  ·  score {item.score:.3f}" if item.score == item.score else "")
        )
        n = self.model.rowCount()
        self.position_label.setText(f"{row + 1} of {n:,}")
        self.prev_button.setEnabled(row > 0)
        self.next_button.setEnabled(row + 1 < n)
        # Show the thumbnail at once (if any), then the full image when it is decoded.
        thumb = self.model.loader.peek(item.path) if self.model.loader is not None else None
        self.canvas.set_image(thumb, "" if thumb is not None else "Loading…")
        self.canvas.set_faces([])
        self._loading = item.path
        self._load_faces(item.path)
        self._load_tags(item.photo_id, item.path)
        self.text_panel.load(item.path, item.photo_id)
        path = item.path
        self.runner.submit(
            load_preview_image,
            path,
            name="preview",
            on_success=functools.partial(self._on_loaded, path),
            on_failure=functools.partial(self._on_failed, path),
        )
        self.row_changed.emit(row)

    def _on_loaded(self, path: str, img: QImage) -> None:
        if path == self._loading:
            self.canvas.set_image(img)

    def _on_failed(self, path: str, failure: JobFailure) -> None:
        if path == self._loading:
            self.canvas.set_image(None, f"Cannot show this photo: {failure.message}")

    def _load_faces(self, path: str) -> None:
        service = self._service
        if service is None or not service.is_open:
            return
        service.submit(
            lambda engine: engine.people().faces_in_photo(path),
            lambda faces, p=path: self.canvas.set_faces(faces) if p == self._loading else None,
            lambda _f: None,
            name="preview faces",
        )

    def _load_tags(self, photo_id: int, path: str) -> None:
        self.tags_label.setText("")
        service = self._service
        if service is None or not service.is_open or not photo_id:
            return

        def work(engine):
            return engine.learner().user_tags.of(photo_id)

        def shown(value, p=path) -> None:
            mine, auto = value
            if p == self._loading:
                parts = (["Your tags: " + ", ".join(mine)] if mine else []) + (
                    ["Suggested tags: " + ", ".join(auto)] if auto else []
                )
                self.tags_label.setText("  \u00b7  ".join(parts))

        service.submit(work, shown, lambda _f: None, name="preview tags")

    def add_tag(self, name: str = "") -> None:
        """Tag the photo shown with ``name`` (default: what the tag field holds)."""
        name = (name or self.tag_field.text()).strip()
        item = self.current_item()
        service = self._service
        if not name or item is None or service is None or not item.photo_id:
            return
        self.tag_field.clear()
        pid, path = item.photo_id, item.path
        service.submit(
            lambda engine: engine.learner().user_tags.add(name, [pid]),
            lambda _n: self._load_tags(pid, path),
            lambda f: self.tags_label.setText(str(getattr(f, "message", f))),
            write=True,
            name="preview add tag",
        )

    def ask_face_name(self, current: str) -> str | None:
        """Ask who a face is (tests replace this)."""
        from PySide6.QtWidgets import QInputDialog

        name, ok = QInputDialog.getText(self, "Who is this?", "Name:", text=current)
        return name.strip() if ok and name.strip() else None

    def _name_face(self, face_id: int) -> None:
        face = next((f for f in self.canvas.faces() if f.id == face_id), None)
        if face is None or self._service is None:
            return
        name = self.ask_face_name(face.name or face.suggested_name or "")
        if not name:
            return
        path = self._loading
        self._service.submit(
            lambda engine: engine.people().name_face(face_id, name),
            lambda _info: self._load_faces(path),
            lambda f: self.canvas.set_image(self.canvas.image(), f"Could not name the face: {f.message}"),
            write=True,
            name="name a face",
        )

    def next(self) -> None:
        if self.row + 1 < self.model.rowCount():
            self.show_row(self.row + 1)

    def previous(self) -> None:
        if self.row > 0:
            self.show_row(self.row - 1)

    def _on_model_reset(self) -> None:
        if self._loading:
            row = self.model.row_of(self._loading)
            if row >= 0:
                self.row = row
                n = self.model.rowCount()
                self.position_label.setText(f"{row + 1} of {n:,}")
                self.prev_button.setEnabled(row > 0)
                self.next_button.setEnabled(row + 1 < n)
            elif self.isVisible():
                self.close()
