"""The preview's text panel: the words read in the photo, selectable, with "Copy text";
for a ``text:`` search, the lines that matched it first."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QToolButton, QVBoxLayout, QWidget

from lookalike.gui import icons


class PhotoTextPanel(QWidget):
    """Hidden for a photo with no text (or not read yet); filled off the GUI thread."""

    def __init__(self, service, query_text: Callable[[], str], parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("PreviewText")
        self._service = service
        self._query_text = query_text
        self._path = ""
        self.answered = ""  # the photo whose text was last looked up (shown or not)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.setSpacing(2)
        head = QHBoxLayout()
        self.title = QLabel("Text in this photo", self)
        self.matched_label = QLabel(self)  # the lines a text: search matched
        self.matched_label.setObjectName("PreviewTextMatched")
        self.matched_label.setWordWrap(True)
        self.copy_button = QToolButton(self)
        icons.apply(self.copy_button, "copy")
        self.copy_button.setText("Copy text")
        self.copy_button.setAccessibleName("Copy text")
        self.copy_button.setToolTip("Copy the text read in this photo")
        self.copy_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.copy_button.setAutoRaise(True)
        self.copy_button.clicked.connect(self.copy_text)
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.copy_button)
        lay.addLayout(head)
        lay.addWidget(self.matched_label)
        self.text_view = QPlainTextEdit(self)
        self.text_view.setReadOnly(True)  # selectable, not editable
        self.text_view.setMaximumHeight(110)
        lay.addWidget(self.text_view)
        self.hide()

    def text(self) -> str:
        return self.text_view.toPlainText()

    def copy_text(self) -> None:
        cursor = self.text_view.textCursor()
        QGuiApplication.clipboard().setText(cursor.selectedText().replace("\u2029", "\n") or self.text())

    def load(self, path: str, photo_id: int) -> None:
        self._path = path
        self.hide()
        self.text_view.setPlainText("")
        self.matched_label.setText("")
        service = self._service
        if service is None or not service.is_open or not photo_id:
            return
        query = self._query_text()

        def work(engine):
            read = engine.photo_text(path)
            matched = engine.text_matches(query, [photo_id]).get(photo_id, []) if "text:" in query else []
            return (read.text if read is not None else ""), matched

        service.submit(work, lambda value, p=path: self._shown(p, *value), lambda _f: None, name="preview text")

    def _shown(self, path: str, text: str, matched: list[str]) -> None:
        if path != self._path:
            return
        self.answered = path
        if not text:
            return
        self.text_view.setPlainText(text)
        self.matched_label.setText("Matched: " + "  ·  ".join(matched) if matched else "")
        self.matched_label.setVisible(bool(matched))
        self.show()
