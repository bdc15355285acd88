"""The query bar: a search field with history, image chips, and inline errors.

A query is the text in the field plus any number of query images, each shown
as a removable chip marked + (more like this) or - (less like this). Enter
submits. A parse error is shown where it happened: the offending characters
are underlined in red inside the field and repeated under it with the reason.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, QSize, QStringListModel, Qt, Signal
from PySide6.QtGui import QColor, QInputMethodEvent, QKeySequence, QPalette, QTextCharFormat
from PySide6.QtWidgets import (
    QCompleter,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lookalike.core.search.model import Query, Term
from lookalike.core.search.parse import parse
from lookalike.gui import icons
from lookalike.gui.thumbnails import ThumbnailLoader


@dataclass(frozen=True)
class ImageTerm:
    """A query image as the window holds it: a path and a signed weight."""

    path: str
    weight: float = 1.0

    @property
    def positive(self) -> bool:
        return self.weight >= 0


def error_colour(pal: QPalette) -> QColor:
    dark = pal.color(QPalette.ColorRole.Window).lightness() < 128
    return QColor("#ff6b6b") if dark else QColor("#c62828")


class SearchField(QLineEdit):
    """A line edit that can underline a span of its text, and hands arrows to the grid."""

    down_requested = Signal()
    escape_pressed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._marked: tuple[int, int] | None = None
        # Called on Ctrl+V: returns True if it used the clipboard (a photo), else the text is pasted.
        self.paste_filter: Callable[[], bool] | None = None
        # Called on Tab: returns True if it took the focus (the result grid), else Tab moves on.
        self.tab_to: Callable[[], bool] | None = None
        self.textEdited.connect(lambda _t: self.clear_mark())

    def mark(self, start: int, length: int) -> None:
        """Underline ``text[start:start+length]`` with a red wave (the error's place)."""
        self._marked = (start, max(1, length))
        fmt = QTextCharFormat()
        fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        fmt.setUnderlineColor(error_colour(self.palette()))
        fmt.setForeground(error_colour(self.palette()))
        self._apply([(start, max(1, length), fmt)])

    def clear_mark(self) -> None:
        if self._marked is not None:
            self._marked = None
            self._apply([])

    def marked(self) -> tuple[int, int] | None:
        return self._marked

    def _apply(self, spans) -> None:
        # QLineEdit draws input-method formats; positions are relative to the cursor.
        cursor = self.cursorPosition()
        attrs = [
            QInputMethodEvent.Attribute(QInputMethodEvent.AttributeType.TextFormat, start - cursor, length, fmt)
            for start, length, fmt in spans
        ]
        QCoreApplication.sendEvent(self, QInputMethodEvent("", attrs))

    def focusNextPrevChild(self, next: bool) -> bool:
        """Tab: to ``tab_to``'s widget (the result grid) when it takes the focus."""
        if next and self.tab_to is not None and self.tab_to():
            return True
        return super().focusNextPrevChild(next)

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.StandardKey.Paste) and self.paste_filter is not None and self.paste_filter():
            event.accept()
            return
        completer = self.completer()
        popup = completer.popup() if completer is not None else None
        popup_open = popup is not None and popup.isVisible()
        if not popup_open:
            if event.key() == Qt.Key.Key_Down and not event.modifiers():
                self.down_requested.emit()
                event.accept()
                return
            if event.key() == Qt.Key.Key_Escape:
                self.escape_pressed.emit()
                event.accept()
                return
        super().keyPressEvent(event)


class QueryChip(QFrame):
    """One query image: a thumbnail, a +/- toggle and a remove button."""

    sign_toggled = Signal(str)
    remove_requested = Signal(str)

    def __init__(self, term: ImageTerm, loader: ThumbnailLoader | None, parent=None) -> None:
        super().__init__(parent)
        self.term = term
        self.loader = loader
        self.setObjectName("QueryChip")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(3, 2, 3, 2)
        lay.setSpacing(3)
        self.sign = QToolButton(self)
        self.sign.setAutoRaise(True)
        self.sign.setFixedSize(QSize(22, 22))
        self.sign.clicked.connect(lambda: self.sign_toggled.emit(self.term.path))
        self.thumb = QLabel(self)
        self.thumb.setFixedSize(QSize(26, 26))
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = QLabel(self)
        self.name.setMaximumWidth(110)
        self.remove = QToolButton(self)
        self.remove.setAutoRaise(True)
        icons.apply(self.remove, "close")
        self.remove.setIconSize(QSize(12, 12))
        self.remove.setFixedSize(QSize(20, 20))
        self.remove.setToolTip("Remove this image from the query")
        self.remove.setAccessibleName(f"Remove {os.path.basename(term.path)}")
        self.remove.clicked.connect(lambda: self.remove_requested.emit(self.term.path))
        for w in (self.sign, self.thumb, self.name, self.remove):
            lay.addWidget(w)
        fm = self.name.fontMetrics()
        self.name.setText(fm.elidedText(os.path.basename(term.path), Qt.TextElideMode.ElideMiddle, 110))
        self.setToolTip(term.path)
        if loader is not None:
            loader.loaded.connect(self._on_loaded)
        self._update()

    def set_term(self, term: ImageTerm) -> None:
        self.term = term
        self._update()

    def _on_loaded(self, path: str) -> None:
        if path == self.term.path:
            self._update_thumb()

    def _update_thumb(self) -> None:
        if self.loader is None:
            return
        img = self.loader.get(self.term.path)
        if img is not None:
            from PySide6.QtGui import QPixmap

            dpr = self.devicePixelRatioF()
            pm = QPixmap.fromImage(img).scaled(
                QSize(round(26 * dpr), round(26 * dpr)),
                Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                Qt.TransformationMode.SmoothTransformation,
            )
            pm.setDevicePixelRatio(dpr)
            self.thumb.setPixmap(pm)

    def _update(self) -> None:
        positive = self.term.positive
        self.sign.setText("+" if positive else "−")
        self.sign.setToolTip(
            "More like this image (click for less like it)"
            if positive
            else "Less like this image (click for more like it)"
        )
        self.sign.setAccessibleName("more like this" if positive else "less like this")
        colour = QColor("#2e7d32") if positive else QColor("#c62828")
        self.setProperty("positive", positive)
        self.setStyleSheet(
            f"#QueryChip {{ border: 1px solid {colour.name()}; border-radius: 6px; }}"
            f"#QueryChip QToolButton {{ font-weight: bold; }}"
        )
        self.sign.setStyleSheet(f"color: {colour.name()}; font-weight: bold; font-size: 14px;")
        w = abs(self.term.weight)
        if abs(w - 1.0) > 1e-6:
            self.sign.setText(("+" if positive else "−") + f"{w:g}")
            self.sign.setFixedSize(QSize(34, 22))
        self._update_thumb()


class QueryBar(QWidget):
    """The search field, its history, the image chips and the inline error line."""

    submitted = Signal()  # Enter, or the chips changed
    images_changed = Signal()
    results_focus_requested = Signal()
    image_picker_requested = Signal()
    cleared = Signal()

    def __init__(self, loader: ThumbnailLoader | None = None, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self._images: list[ImageTerm] = []
        self._chips: dict[str, QueryChip] = {}

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(6)
        outer.addLayout(row)

        self.field = SearchField(self)
        self.field.setObjectName("SearchField")
        self.field.setPlaceholderText("Describe a photo (dog + beach, 2*sunset - people) or drop photos here…")
        self.field.setClearButtonEnabled(True)
        self.search_action = self.field.addAction(icons.icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.search_action.setProperty(icons.PROPERTY, "search")
        self.field.setMinimumHeight(32)
        self.field.setAccessibleName("Search")
        self.field.returnPressed.connect(self.submitted)
        self.field.down_requested.connect(self.results_focus_requested)
        self.field.escape_pressed.connect(self.clear_step)
        self.field.textEdited.connect(lambda _t: self.clear_error())
        self.history_model = QStringListModel(self)
        self.completer = QCompleter(self.history_model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.field.setCompleter(self.completer)
        row.addWidget(self.field, 1)

        self.chips_box = QWidget(self)
        self.chips_layout = QHBoxLayout(self.chips_box)
        self.chips_layout.setContentsMargins(0, 0, 0, 0)
        self.chips_layout.setSpacing(4)
        self.chips_box.hide()
        row.addWidget(self.chips_box, 0)

        self.history_button = QToolButton(self)
        icons.apply(self.history_button, "history")
        self.history_button.setToolTip("Recent searches")
        self.history_button.setAccessibleName("Recent searches")
        self.history_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.history_menu = QMenu(self)
        self.history_menu.aboutToShow.connect(self._fill_history_menu)
        self.history_button.setMenu(self.history_menu)
        self.history_button.setAutoRaise(True)
        row.addWidget(self.history_button)

        self.image_button = QToolButton(self)
        icons.apply(self.image_button, "image-search")
        self.image_button.setText("By image…")
        self.image_button.setToolTip("Search by image… (or drop / paste photos)")
        self.image_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.image_button.setAutoRaise(True)
        self.image_button.clicked.connect(self.image_picker_requested)
        row.addWidget(self.image_button)

        self.error_label = QLabel(self)
        self.error_label.setObjectName("QueryError")
        self.error_label.setTextFormat(Qt.TextFormat.RichText)
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        outer.addWidget(self.error_label)
        self._error: tuple[str, int] | None = None

    # -- text -----------------------------------------------------------------------------
    def text(self) -> str:
        return self.field.text()

    def set_text(self, text: str) -> None:
        self.field.setText(text)
        self.clear_error()

    def set_history(self, history: list[str]) -> None:
        self.history_model.setStringList(history)

    def history(self) -> list[str]:
        return self.history_model.stringList()

    def _fill_history_menu(self) -> None:
        self.history_menu.clear()
        hist = self.history()
        if not hist:
            a = self.history_menu.addAction("No searches yet")
            a.setEnabled(False)
            return
        for text in hist[:20]:
            act = self.history_menu.addAction(text)
            act.triggered.connect(lambda _c=False, t=text: self._use_history(t))

    def _use_history(self, text: str) -> None:
        self.set_text(text)
        self.submitted.emit()

    def query(self) -> Query | None:
        """The text and the image chips as one query (None when both are empty).

        Raises :class:`~lookalike.core.errors.QueryError` when the text does not parse.
        """
        text = self.text()
        if not text.strip() and not self._images:
            return None
        q = parse(text) if text.strip() else Query(())
        for img in self._images:
            q = q.with_term(Term("image", img.path, float(img.weight), len(text)))
        return q

    # -- images ---------------------------------------------------------------------------
    def images(self) -> list[ImageTerm]:
        return list(self._images)

    def add_image(self, path: str, weight: float = 1.0, *, submit: bool = True) -> None:
        path = os.path.abspath(path)
        term = ImageTerm(path, weight)
        if path in self._chips:  # the same photo again: take the new sign
            self._images = [term if t.path == path else t for t in self._images]
            self._chips[path].set_term(term)
        else:
            self._images.append(term)
            chip = QueryChip(term, self.loader, self.chips_box)
            chip.sign_toggled.connect(self.toggle_sign)
            chip.remove_requested.connect(self.remove_image)
            self._chips[path] = chip
            self.chips_layout.addWidget(chip)
        self.chips_box.setVisible(bool(self._images))
        self.images_changed.emit()
        if submit:
            self.submitted.emit()

    def toggle_sign(self, path: str) -> None:
        for i, t in enumerate(self._images):
            if t.path == path:
                nt = ImageTerm(path, -t.weight)
                self._images[i] = nt
                self._chips[path].set_term(nt)
                self.images_changed.emit()
                self.submitted.emit()
                return

    def remove_image(self, path: str, *, submit: bool = True) -> None:
        chip = self._chips.pop(path, None)
        if chip is None:
            return
        self._images = [t for t in self._images if t.path != path]
        chip.hide()
        chip.deleteLater()
        self.chips_box.setVisible(bool(self._images))
        self.images_changed.emit()
        if submit:
            self.submitted.emit()

    def clear_images(self) -> None:
        for path in list(self._chips):
            self.remove_image(path, submit=False)

    def chip(self, path: str) -> QueryChip | None:
        return self._chips.get(os.path.abspath(path))

    # -- errors ---------------------------------------------------------------------------
    def show_error(self, reason: str, column: int | None = None, query: str | None = None) -> None:
        """Show ``reason``; with a column, mark that place in the field and echo it below."""
        text = self.text() if query is None else query
        pal = self.palette()
        red = error_colour(pal).name()
        if column is None:
            self.field.clear_mark()
            body = f"<span style='color:{red}'>⚠ {html.escape(reason)}</span>"
            self._error = (reason, -1)
        else:
            column = max(0, min(column, len(text)))
            # Mark the offending word (up to the next space), or one character.
            end = column
            while end < len(text) and not text[end].isspace() and end - column < 40:
                end += 1
            length = max(1, end - column)
            if column < len(text):
                self.field.mark(column, length)
            else:
                self.field.clear_mark()
            before = html.escape(text[:column])
            bad = html.escape(text[column : column + length]) if column < len(text) else "&nbsp;"
            after = html.escape(text[column + length :])
            mono = "font-family: monospace;"
            body = (
                f"<span style='color:{red}'>⚠ {html.escape(reason)}</span>"
                f"&nbsp;&nbsp;<span style='{mono}'>{before}"
                f"<span style='color:{red}; text-decoration: underline; font-weight: bold;"
                f" background-color: rgba(255, 80, 80, 40);'>{bad}</span>{after}</span>"
                f"&nbsp;<span style='color:{pal.color(QPalette.ColorRole.PlaceholderText).name()}'>"
                f"(column {column + 1})</span>"
            )
            self._error = (reason, column)
        self.error_label.setText(body)
        self.error_label.show()
        self.field.setProperty("error", True)

    def clear_error(self) -> None:
        if self._error is None and not self.error_label.isVisible():
            return
        self._error = None
        self.error_label.hide()
        self.error_label.clear()
        self.field.clear_mark()
        self.field.setProperty("error", False)

    def error(self) -> tuple[str, int] | None:
        """(reason, column) of the error shown, column -1 for one without a place; or None."""
        return self._error

    # -- Esc --------------------------------------------------------------------------------
    def clear_step(self) -> None:
        """Esc: clear the text (and error) first, then the images."""
        if self.field.text() or self._error is not None:
            self.field.clear()
            self.clear_error()
        elif self._images:
            self.clear_images()
        self.cleared.emit()

    def focus_field(self) -> None:
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()
