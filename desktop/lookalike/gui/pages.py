"""Pages shown in place of content: the welcome page of an empty library and a centred message."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from lookalike.gui import icons
from lookalike.gui.modeldialog import CLIP_NOTE, OFFLINE_NOTE


class WelcomePage(QWidget):
    """Shown while the library has no folders: what to do first, and the model notice."""

    add_folder_requested = Signal()
    model_requested = Signal()
    checkpoint_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("WelcomePage")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        column = QWidget(self)
        column.setMaximumWidth(600)  # (at most: a fixed 600 made the window wider than 800 px)
        column.setMinimumWidth(420)
        box = QVBoxLayout(column)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(14)
        logo = QLabel(self)
        logo.setPixmap(icons.app_icon().pixmap(QSize(96, 96)))
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        box.addWidget(logo)
        title = QLabel("Find your photos by what they show", self)
        f = title.font()
        f.setPointSizeF(f.pointSizeF() * 1.6)
        f.setBold(True)
        title.setFont(f)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        box.addWidget(title)
        text = QLabel(
            "Add a folder of photos. Lookalike looks at each one in the background, and you can "
            "search while it works: describe a photo in words, drop in one that looks alike, or mix "
            "both (<i>dog + beach</i>, <i>2*sunset - people</i>). Everything stays on this computer.",
            self,
        )
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        box.addWidget(text)
        self.add_button = QPushButton("Add a folder of photos…", self)
        icons.apply(self.add_button, "folder-add")
        self.add_button.setDefault(True)
        self.add_button.setMinimumHeight(36)
        self.add_button.setIconSize(QSize(20, 20))
        self.add_button.clicked.connect(self.add_folder_requested)
        box.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignHCenter)
        hint = QLabel("or drop a folder onto this window  ·  Ctrl+O", self)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setEnabled(False)
        box.addWidget(hint)

        self.notice = QFrame(self)
        self.notice.setObjectName("ModelNotice")
        nl = QVBoxLayout(self.notice)
        nl.setContentsMargins(14, 10, 14, 10)
        head = QHBoxLayout()
        ic = QLabel(self.notice)
        ic.setPixmap(icons.pixmap("model", 22))
        head.addWidget(ic, 0, Qt.AlignmentFlag.AlignTop)
        nt = QLabel(f"<b>About the model</b><br>{OFFLINE_NOTE} {CLIP_NOTE}", self.notice)
        nt.setWordWrap(True)
        nt.setTextFormat(Qt.TextFormat.RichText)
        head.addWidget(nt, 1)
        nl.addLayout(head)
        nb = QHBoxLayout()
        nb.addStretch(1)
        self.clip_button = QPushButton("Get CLIP…", self.notice)
        icons.apply(self.clip_button, "download")
        self.clip_button.clicked.connect(self.model_requested)
        self.ckpt_button = QPushButton("Use a CLIP checkpoint…", self.notice)
        icons.apply(self.ckpt_button, "folder-open")
        self.ckpt_button.clicked.connect(self.checkpoint_requested)
        nb.addWidget(self.clip_button)
        nb.addWidget(self.ckpt_button)
        nl.addLayout(nb)
        box.addSpacing(10)
        box.addWidget(self.notice)

        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(column)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self._style()

    def _style(self) -> None:
        pal = self.palette()
        bg = pal.color(QPalette.ColorRole.Highlight)
        self.notice.setStyleSheet(
            f"#ModelNotice {{ border: 1px solid rgba({bg.red()},{bg.green()},{bg.blue()},120);"
            f" border-radius: 8px; background: rgba({bg.red()},{bg.green()},{bg.blue()},22); }}"
        )

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._style()
        super().changeEvent(event)


class MessagePage(QWidget):
    """A centred message in place of the grid (no query yet, no results, still opening)."""

    example_requested = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        self.title = QLabel(self)
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        self.title.setFont(f)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        self.body = QLabel(self)
        self.body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.linkActivated.connect(lambda link: self.example_requested.emit(link.removeprefix("q:")))
        lay.addWidget(self.body)
        lay.addStretch(2)

    def show_message(self, title: str, body: str = "") -> None:
        self.title.setText(title)
        self.body.setText(body)
