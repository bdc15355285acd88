"""The main window: query bar, folders, the result grid, progress and status.

The window is a client of :class:`~lookalike.gui.engine.EngineService`, which
runs every engine call on pool threads; nothing here blocks on the engine.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMenu,
    QPushButton,
    QSlider,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lookalike import APP_NAME
from lookalike.gui import desktop, icons
from lookalike.gui.engine import (
    DEFAULT_K,
    EngineConfig,
    EngineService,
    IndexOutcome,
    OpenOutcome,
    OperationFailure,
    SearchFailure,
    SearchOutcome,
)
from lookalike.gui.modeldialog import CLIP_NOTE, OFFLINE_NOTE, ModelChoice, ModelDialog
from lookalike.gui.panels import Banner, FolderRow, FoldersPanel, IndexingBar, Level
from lookalike.gui.preview import PreviewDialog
from lookalike.gui.querybar import QueryBar
from lookalike.gui.results import ResultsModel, ResultsView, SortOrder, TileDelegate
from lookalike.gui.settings import Settings
from lookalike.gui.thumbnails import ThumbnailLoader
from lookalike.gui.workers import JobFailure, JobRunner

log = logging.getLogger(__name__)

EXAMPLES = ("a cat", "a cup of coffee", "dog + beach", "2*sunset - people", "a red car")


def library_for_model(data: Path, name: str, model_file: str = "") -> Path | None:
    """Where the library built with model ``name`` lives (None: the default library)."""
    if name in ("", "offline"):
        return None
    import hashlib

    suffix = name
    if model_file:
        suffix += "-" + hashlib.sha1(os.path.abspath(model_file).encode()).hexdigest()[:8]
    return data / f"library-{suffix}"


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
        column.setFixedWidth(600)
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


class MainWindow(QMainWindow):
    """The window a person lives in."""

    def __init__(self, service: EngineService, settings: Settings, thumbnails: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.service = service
        self.settings = settings
        self.thumbnails = thumbnails
        self.paths = service.paths
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(icons.app_icon())
        self.setAcceptDrops(True)
        self.runner = JobRunner(2, "lookalike-window", self)
        self._folders: list[FolderRow] = []
        self._opened = False
        self._pending_search = False
        self._last_search_text = ""
        self._status = None
        self._preview: PreviewDialog | None = None
        self._model_dialog: ModelDialog | None = None
        self._switching_to: ModelChoice | None = None
        self._closing = False
        self._start_requested = False
        self._open_failed = False
        self.last_search_seconds = 0.0

        self._build()
        self._build_actions()
        self._connect_service()
        self._restore()

    # -- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget(self)
        self.setCentralWidget(central)
        root = QVBoxLayout(central)
        root.setContentsMargins(10, 10, 10, 4)
        root.setSpacing(8)

        self.query_bar = QueryBar(self.thumbnails, central)
        self.query_bar.field.setAcceptDrops(False)  # drops become image queries, not text
        self.query_bar.field.paste_filter = self.paste_from_clipboard
        root.addWidget(self.query_bar)

        self.banner = Banner(central)
        root.addWidget(self.banner)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, central)
        self.splitter.setChildrenCollapsible(False)
        self.folders_panel = FoldersPanel(self.splitter)
        self.folders_panel.setMinimumWidth(180)
        self.splitter.addWidget(self.folders_panel)

        right = QWidget(self.splitter)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(4)
        self.results_header = QWidget(right)
        header = QHBoxLayout(self.results_header)
        header.setContentsMargins(0, 0, 0, 0)
        header.setSpacing(8)
        self.count_label = QLabel("", right)
        self.count_label.setObjectName("ResultCount")
        header.addWidget(self.count_label, 1)
        header.addWidget(QLabel("Min score", right))
        self.min_slider = QSlider(Qt.Orientation.Horizontal, right)
        self.min_slider.setObjectName("MinScore")
        self.min_slider.setRange(0, 100)
        self.min_slider.setFixedWidth(140)
        self.min_slider.setToolTip("Hide results scoring below this")
        self.min_slider.setAccessibleName("Minimum score")
        header.addWidget(self.min_slider)
        self.min_label = QLabel("any", right)
        self.min_label.setMinimumWidth(44)
        header.addWidget(self.min_label)
        header.addSpacing(8)
        header.addWidget(QLabel("Sort", right))
        self.sort_combo = QComboBox(right)
        self.sort_combo.setObjectName("SortOrder")
        self.sort_combo.addItem("Best match", SortOrder.SCORE.value)
        self.sort_combo.addItem("Date taken", SortOrder.DATE.value)
        self.sort_combo.setAccessibleName("Sort results by")
        header.addWidget(self.sort_combo)
        rl.addWidget(self.results_header)

        self.stack = QStackedWidget(right)
        self.welcome = WelcomePage(self.stack)
        self.message_page = MessagePage(self.stack)
        self.results_model = ResultsModel(self.thumbnails, self)
        self.results_view = ResultsView(self.stack)
        self.results_view.setObjectName("ResultsGrid")
        self.delegate = TileDelegate(self.thumbnails, parent=self.results_view)
        self.results_view.setItemDelegate(self.delegate)
        self.results_view.setModel(self.results_model)
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.message_page)
        self.stack.addWidget(self.results_view)
        rl.addWidget(self.stack, 1)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([230, 900])
        root.addWidget(self.splitter, 1)

        self.indexing_bar = IndexingBar(central)
        root.addWidget(self.indexing_bar)

        sb = self.statusBar()
        sb.setSizeGripEnabled(True)
        self.model_button = QToolButton(sb)
        self.model_button.setObjectName("ModelButton")
        self.model_button.setAutoRaise(True)
        self.model_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        icons.apply(self.model_button, "model")
        self.model_button.setText("Model: opening…")
        self.model_button.setToolTip("The model that reads your photos; click to change it")
        self.model_button.clicked.connect(self.show_model_dialog)
        self.library_label = QLabel("", sb)
        self.library_label.setObjectName("LibraryLabel")
        sb.addPermanentWidget(self.library_label)
        sb.addPermanentWidget(self.model_button)
        self.resize(1180, 780)
        self._show_page("message")
        self.message_page.show_message("Opening your library…")

    def _build_actions(self) -> None:
        def action(
            text: str,
            slot,
            shortcut=None,
            icon_name: str | None = None,
            context=Qt.ShortcutContext.WindowShortcut,
            widget: QWidget | None = None,
        ) -> QAction:
            a = QAction(text, widget or self)
            if icon_name:
                icons.apply(a, icon_name)
            if shortcut is not None:
                if isinstance(shortcut, (list, tuple)):
                    a.setShortcuts([QKeySequence(s) for s in shortcut])
                else:
                    a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(context)
            a.triggered.connect(lambda _c=False: slot())
            (widget or self).addAction(a)
            return a

        self.act_add_folder = action("&Add a folder…", self.choose_folder, QKeySequence.StandardKey.Open, "folder-add")
        self.act_by_image = action("Search by &image…", self.choose_images, "Ctrl+I", "image-search")
        self.act_paste = action("&Paste image", self.paste_from_clipboard, QKeySequence.StandardKey.Paste, "paste")
        self.act_focus = action("&Find", self.query_bar.focus_field, QKeySequence.StandardKey.Find, "search")
        self.act_clear = action("&Clear search", self.clear_search, "Esc", "close")
        self.act_rescan_all = action("&Re-scan all folders", lambda: self.service.index(None), "F5", "rescan")
        self.act_pause = action("&Pause / resume indexing", self.toggle_pause, "Ctrl+P", "pause")
        self.act_cancel = action("&Cancel indexing", self.service.cancel_indexing, None, "stop")
        self.act_failures = action("Show &unreadable files", lambda: self.show_failures(None), None, "warning")
        self.act_model = action("&Model…", self.show_model_dialog, None, "model")
        self.act_quit = action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_shortcuts = action("&Keyboard shortcuts", self.show_shortcuts, "F1")
        self.act_about = action("&About Lookalike", self.show_about)

        grid = self.results_view
        ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
        self.act_preview = action("Pre&view", self.preview_current, None, "image-search", ctx, grid)
        self.act_open = action("&Open with default app", self.open_selected, "Ctrl+Return", "open-external", ctx, grid)
        self.act_show = action(
            "&Show in folder", self.show_selected_in_folder, "Ctrl+Shift+O", "folder-open", ctx, grid
        )
        self.act_copy_path = action("Copy &path", self.copy_selected_paths, "Ctrl+Shift+C", "copy", ctx, grid)
        self.act_copy_image = action(
            "Copy &image", self.copy_selected_image, QKeySequence.StandardKey.Copy, "copy-image", ctx, grid
        )
        self.act_more = action(
            "&More like this", lambda: self.add_selected_as(+1.0), ["+", "="], "more-like", ctx, grid
        )
        self.act_less = action("&Less like this", lambda: self.add_selected_as(-1.0), ["-"], "less-like", ctx, grid)

        fl = self.folders_panel.list
        self.act_remove_folder = action(
            "&Remove folder", self._remove_selected_folder, QKeySequence.StandardKey.Delete, "folder-remove", ctx, fl
        )
        self.act_rescan_folder = action("Re-&scan folder", self._rescan_selected_folder, None, "rescan", ctx, fl)
        self.act_folder_failures = action(
            "Show &unreadable files",
            lambda: self.show_failures(self.folders_panel.selected()),
            None,
            "warning",
            ctx,
            fl,
        )
        fl.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in (self.act_add_folder, self.act_by_image, self.act_paste):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Search")
        for a in (self.act_focus, self.act_clear):
            m.addAction(a)
        m.addSeparator()
        for a in (
            self.act_preview,
            self.act_open,
            self.act_show,
            self.act_copy_path,
            self.act_copy_image,
            self.act_more,
            self.act_less,
        ):
            m.addAction(a)
        m = mb.addMenu("&Library")
        for a in (self.act_rescan_all, self.act_pause, self.act_cancel, self.act_failures):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_model)
        m = mb.addMenu("&Help")
        m.addAction(self.act_shortcuts)
        m.addAction(self.act_about)

        # Widgets.
        qb = self.query_bar
        qb.submitted.connect(self.run_search)
        qb.results_focus_requested.connect(self.focus_results)
        qb.image_picker_requested.connect(self.choose_images)
        qb.cleared.connect(self._on_query_cleared)
        self.folders_panel.add_requested.connect(self.choose_folder)
        self.folders_panel.remove_requested.connect(self.confirm_remove_folder)
        self.folders_panel.rescan_requested.connect(lambda p: self.service.index([p]))
        self.folders_panel.failures_requested.connect(self.show_failures)
        self.welcome.add_folder_requested.connect(self.choose_folder)
        self.welcome.model_requested.connect(self.show_model_dialog)
        self.welcome.checkpoint_requested.connect(self._pick_checkpoint)
        self.message_page.example_requested.connect(self._use_example)
        self.indexing_bar.pause_requested.connect(self.service.pause_indexing)
        self.indexing_bar.resume_requested.connect(self.service.resume_indexing)
        self.indexing_bar.cancel_requested.connect(self.cancel_indexing)
        self.results_view.open_requested.connect(self.open_preview)
        self.results_view.customContextMenuRequested.connect(self._results_menu)
        self.results_model.counts_changed.connect(self._on_counts_changed)
        self.min_slider.valueChanged.connect(self._on_min_score_changed)
        self.sort_combo.currentIndexChanged.connect(self._on_sort_changed)

    def _connect_service(self) -> None:
        s = self.service
        s.opened.connect(self._on_opened)
        s.open_failed.connect(self._on_open_failed)
        s.model_loading.connect(self._on_model_loading)
        s.model_loaded.connect(self._on_status)
        s.model_failed.connect(self._on_model_failed)
        s.status_changed.connect(self._on_status)
        s.folders_changed.connect(self._on_folders)
        s.search_finished.connect(self._on_search_finished)
        s.search_failed.connect(self._on_search_failed)
        s.indexing_started.connect(self._on_indexing_started)
        s.indexing_progressed.connect(self.indexing_bar.update_progress)
        s.indexing_paused.connect(self.indexing_bar.set_paused)
        s.indexing_finished.connect(self._on_indexing_finished)
        s.operation_failed.connect(self._on_operation_failed)
        s.model_switched.connect(self._on_model_switched)
        s.library_changed.connect(self._on_library_changed)

    def _restore(self) -> None:
        geo = self.settings.geometry()
        if geo is not None:
            self.restoreGeometry(geo)
        split = self.settings.splitter_state()
        if split is not None:
            self.splitter.restoreState(split)
        self.query_bar.set_history(self.settings.history())
        self.query_bar.set_text(self.settings.last_query())
        for path, weight in self.settings.last_images():
            if os.path.isfile(path):
                self.query_bar.add_image(path, weight, submit=False)
        order = self.settings.sort_order()
        i = self.sort_combo.findData(order)
        if i >= 0:
            self.sort_combo.setCurrentIndex(i)
        self.min_slider.setValue(self.settings.min_score())
        # Folders from the last run, shown before the library is open.
        self.folders_panel.set_folders([FolderRow(p) for p in self.settings.folders()])

    # -- pages ------------------------------------------------------------------------------
    def _show_page(self, name: str) -> None:
        page = {"welcome": self.welcome, "message": self.message_page, "results": self.results_view}[name]
        self.stack.setCurrentWidget(page)
        # The count, min-score and sort controls matter once a search has results.
        self.results_header.setVisible(name == "results" or self.results_model.total() > 0)

    def current_page(self) -> str:
        w = self.stack.currentWidget()
        return "welcome" if w is self.welcome else "results" if w is self.results_view else "message"

    def _show_idle_page(self) -> None:
        """What to show when there are no results to show."""
        if not self._opened:
            return
        if not self._folders:
            self._show_page("welcome")
            self.count_label.setText("")
            return
        photos = getattr(self._status, "photos", 0) or 0
        if photos == 0 and self.service.indexing:
            self.message_page.show_message(
                "Looking at your photos…", "You can search as soon as the first ones are indexed."
            )
        elif photos == 0:
            self.message_page.show_message(
                "No photos indexed yet",
                "The folders hold no photos Lookalike can read. Add another folder, "
                "or double-click a folder to see which files could not be read.",
            )
        else:
            links = " &nbsp;·&nbsp; ".join(f"<a href='q:{html.escape(e)}'>{html.escape(e)}</a>" for e in EXAMPLES)
            self.message_page.show_message(
                "What are you looking for?",
                "Type a description and press Enter, drop or paste a photo, or try: "
                + links
                + "<br><br><small>Ctrl+F search · Ctrl+V paste a photo · Ctrl+O add a folder · F1 all shortcuts</small>",
            )
        self._show_page("message")
        self.count_label.setText("")

    # -- opening --------------------------------------------------------------------------
    def start(self) -> None:
        """Open the library (call after the window is shown: the engine loads in the background)."""
        if self._start_requested and not self._open_failed:
            return
        self._start_requested = True
        self._open_failed = False
        self.service.open()

    def _on_opened(self, outcome: OpenOutcome) -> None:
        self._opened = True
        self._status = outcome.status
        self._on_status(outcome.status)
        if outcome.read_only:
            self.banner.show_message(
                outcome.message + " This window can search but not add or re-scan folders.", Level.WARNING, key="locked"
            )
            for a in (self.act_add_folder, self.act_rescan_all, self.act_remove_folder, self.act_rescan_folder):
                a.setEnabled(False)
            self.folders_panel.add_button.setEnabled(False)
            self.welcome.add_button.setEnabled(False)
        if not self.settings.first_run_seen() and outcome.folders and not outcome.read_only:
            # A library made elsewhere (the command line): say once what the model knows.
            self.settings.set_first_run_seen()
            if (getattr(outcome.status, "model_name", "") or "offline") == "offline":
                self.banner.show_message(
                    "Lookalike is using its built-in offline model, which knows about 1,000 everyday "
                    "concepts. CLIP understands far more.",
                    Level.INFO,
                    key="first-run",
                    actions=[("Get CLIP…", self.show_model_dialog)],
                )
        if self.query_bar.text().strip() or self.query_bar.images() or self._pending_search:
            self.run_search()
        else:
            self._show_idle_page()

    def _on_open_failed(self, failure: JobFailure) -> None:
        self._open_failed = True
        self.message_page.show_message("The library could not be opened", html.escape(failure.message))
        self._show_page("message")
        self.banner.show_message(
            self._failure_text(failure), Level.ERROR, key="open", actions=[("Try again", self.start)]
        )
        self.model_button.setText("Model: not loaded")

    def _on_model_loading(self) -> None:
        self.model_button.setText(self._model_text(self._status, loading=True))

    def _on_model_failed(self, failure: JobFailure) -> None:
        self.model_button.setText("Model: unavailable")
        self.banner.show_message(
            f"The model could not be loaded: {failure.message}",
            Level.ERROR,
            key="model",
            actions=[("Choose a model…", self.show_model_dialog), ("Try again", self.service.load_model)],
        )

    def _model_text(self, status, loading: bool = False) -> str:
        name = getattr(status, "model_name", "") or "offline"
        device = getattr(status, "device", "") or ""
        if loading or not device:
            return f"Model: {name} (loading…)"
        return f"Model: {name} · {device}"

    def _on_status(self, status) -> None:
        self._status = status
        self.model_button.setText(self._model_text(status, loading=not self.service.model_ready))
        tip = [f"Encoder: {getattr(status, 'model', '') or 'not chosen yet'}"]
        if getattr(status, "note", ""):
            tip.append(status.note)
        tip.append("Click to change the model")
        self.model_button.setToolTip("\n".join(tip))
        photos = int(getattr(status, "photos", 0) or 0)
        folders = int(getattr(status, "folders", 0) or 0)
        failures = int(getattr(status, "failures", 0) or 0)
        text = f"{photos:,} photo{'s' if photos != 1 else ''} in {folders} folder{'s' if folders != 1 else ''}"
        if failures:
            text += f" · {failures:,} unreadable"
        self.library_label.setText(text)
        self.library_label.setToolTip(f"Library: {getattr(status, 'path', '')}")
        if self.current_page() != "results" and not self.results_model.total():
            self._show_idle_page()

    def _on_folders(self, rows) -> None:
        self._folders = list(rows)
        self.folders_panel.set_folders(self._folders)
        self.folders_panel.set_busy(set(self.service.indexing_roots))
        self.settings.set_folders([r.path for r in self._folders])
        if self._folders:
            self.banner.clear("no-folders")
        if self.current_page() != "results":
            self._show_idle_page()

    # -- folders --------------------------------------------------------------------------
    def choose_folder(self) -> None:
        if self.service.read_only:
            return
        path = QFileDialog.getExistingDirectory(self, "Add a folder of photos", os.path.expanduser("~"))
        if path:
            self.add_folders([path])

    def add_folders(self, paths: list[str]) -> None:
        if self.service.read_only:
            self.banner.show_message(
                "This window opened the library for searching only; another Lookalike is updating it.",
                Level.WARNING,
                key="locked",
            )
            return
        if not self.service.is_open:
            self.banner.show_message("The library is still opening; try again in a moment.", Level.INFO)
            return
        self.settings.set_first_run_seen()
        self.service.add_folders([os.path.abspath(p) for p in paths])

    def confirm_remove_folder(self, path: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        row = next((r for r in self._folders if r.path == path), None)
        n = f"{row.photos:,} photos" if row is not None else "its photos"
        answer = QMessageBox.question(
            self,
            "Remove folder",
            f"Stop searching {path}?\n\nLookalike forgets its index ({n}); the photos themselves stay "
            "where they are. Adding the folder again re-indexes it.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_folder(path)

    def remove_folder(self, path: str) -> None:
        self.service.remove_folder(path)
        self.statusBar().showMessage(f"Removed {path} from the library (the photos are untouched)", 5000)
        if self.results_model.total():
            # Drop its photos from the grid now; the next search agrees.
            prefix = path.rstrip(os.sep) + os.sep
            self.results_model.set_results([i for i in self.results_model.all_items() if not i.path.startswith(prefix)])

    def _remove_selected_folder(self) -> None:
        p = self.folders_panel.selected()
        if p:
            self.confirm_remove_folder(p)

    def _rescan_selected_folder(self) -> None:
        p = self.folders_panel.selected()
        if p:
            self.service.index([p])

    def show_failures(self, folder: str | None) -> None:
        def show(rows) -> None:
            from PySide6.QtWidgets import QDialog, QDialogButtonBox

            dlg = QDialog(self)
            dlg.setObjectName("FailuresDialog")
            dlg.setWindowTitle("Unreadable files")
            lay = QVBoxLayout(dlg)
            where = f" in {folder}" if folder else ""
            lay.addWidget(
                QLabel(
                    f"{len(rows):,} file{'s' if len(rows) != 1 else ''}{where} could not be read:"
                    if rows
                    else f"Every photo{where} could be read.",
                    dlg,
                )
            )
            lst = QListWidget(dlg)
            for r in rows:
                lst.addItem(f"{r.path} — {r.reason}")
            lay.addWidget(lst, 1)
            bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dlg)
            bb.rejected.connect(dlg.reject)
            lay.addWidget(bb)
            dlg.resize(720, 360)
            dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dlg.show()
            self.failures_dialog = dlg

        self.service.failures(show, folder)

    # -- indexing -------------------------------------------------------------------------
    def _on_indexing_started(self, roots) -> None:
        label = roots[0] if roots else ""
        if label.startswith("model:"):
            title = f"Re-indexing with {label.split(':', 1)[1] or 'the new model'}…"
        elif roots == ("",):
            title = "Re-scanning…"
        else:
            title = "Indexing…"
        self.indexing_bar.start(title)
        self.folders_panel.set_busy({r for r in roots if r and not r.startswith("model:")})
        self._show_idle_page() if self.current_page() != "results" else None
        self._refresh_timer_start()

    def _refresh_timer_start(self) -> None:
        # While indexing, keep the library size current (and an empty search fresh).
        if not hasattr(self, "_index_refresh"):
            self._index_refresh = QTimer(self)
            self._index_refresh.setInterval(1500)
            self._index_refresh.timeout.connect(self._on_index_refresh)
        self._index_refresh.start()

    def _on_index_refresh(self) -> None:
        if not self.service.indexing:
            self._index_refresh.stop()
            return
        self.service.refresh_status()
        self.service.refresh_folders()

    def _on_indexing_finished(self, outcome: IndexOutcome) -> None:
        self.indexing_bar.hide()
        self.folders_panel.set_busy(set())
        report = outcome.report
        if outcome.cancelled:
            self.statusBar().showMessage("Indexing cancelled; the photos indexed so far are kept.", 8000)
        elif report is not None:
            parts = []
            for attr, word in (
                ("added", "added"),
                ("updated", "updated"),
                ("moved", "moved"),
                ("removed", "removed"),
                ("failed", "unreadable"),
            ):
                n = int(getattr(report, attr, 0) or 0)
                if n:
                    parts.append(f"{n:,} {word}")
            self.statusBar().showMessage(
                "Indexing done: " + (", ".join(parts) if parts else "nothing changed") + f" ({outcome.seconds:.1f} s)",
                8000,
            )
            offline = getattr(report, "offline_folders", ()) or ()
            if offline:
                self.banner.show_message(
                    "Not reachable, so left as they were: "
                    + ", ".join(map(str, offline))
                    + ". Plug the drive in (or mount it) and re-scan.",
                    Level.WARNING,
                    key="offline",
                )
        # Fresh results for the query on screen.
        if self.query_bar.text().strip() or self.query_bar.images():
            self.run_search(remember=False)

    def _on_library_changed(self, update) -> None:
        """The folder watcher indexed changes made on disk: keep the results current."""
        report = getattr(update, "report", None)
        changed = (
            sum(int(getattr(report, a, 0) or 0) for a in ("added", "updated", "moved", "removed"))
            if report is not None
            else 0
        )
        if getattr(update, "error", None):
            self.statusBar().showMessage(f"Could not follow a change on disk: {update.error}", 8000)
        for old, new in getattr(update, "renamed", ()) or ():
            self.statusBar().showMessage(f"Folder moved: {old} → {new}", 8000)
        if changed:
            self.statusBar().showMessage(
                f"Updated {changed:,} photo{'s' if changed != 1 else ''} changed on disk", 6000
            )
            if (self.query_bar.text().strip() or self.query_bar.images()) and not self.service.searching:
                self.run_search(remember=False)

    def toggle_pause(self) -> None:
        if not self.service.indexing:
            return
        if self.service.paused:
            self.service.resume_indexing()
        else:
            self.service.pause_indexing()

    def cancel_indexing(self) -> None:
        self.indexing_bar.stopping()
        self.service.cancel_indexing()

    # -- searching ------------------------------------------------------------------------
    def build_query(self):
        """The query in the bar as a core.query.Query (raises QueryError); None when empty."""
        from lookalike.core.query import Query, Term, parse

        text = self.query_bar.text()
        images = self.query_bar.images()
        if not text.strip() and not images:
            return None
        q = parse(text) if text.strip() else Query(())
        for img in images:
            q = q.with_term(Term("image", img.path, float(img.weight), len(text)))
        return q

    def run_search(self, remember: bool = True) -> None:
        from lookalike.core.errors import QueryError

        text = self.query_bar.text()
        try:
            q = self.build_query()
        except QueryError as exc:
            self.query_bar.show_error(exc.reason, exc.column, text)
            self.statusBar().showMessage("The query could not be understood", 4000)
            return
        self.query_bar.clear_error()
        self.settings.set_last_query(text)
        self.settings.set_last_images([(t.path, t.weight) for t in self.query_bar.images()])
        if q is None:
            self.results_model.clear()
            self._show_idle_page()
            return
        if remember and text.strip():
            self.query_bar.set_history(self.settings.remember_query(text))
        if not self.service.is_open:
            self._pending_search = True
            return
        self._pending_search = False
        if not self._folders and not (getattr(self._status, "photos", 0) or 0):
            self.banner.show_message(
                "There are no photos to search yet: add a folder of photos first.",
                Level.INFO,
                key="no-folders",
                actions=[("Add a folder…", self.choose_folder)],
            )
            return
        self._last_search_text = text
        self.count_label.setText("Searching…")
        self.service.search(q, text, k=DEFAULT_K)

    def _on_search_finished(self, outcome: SearchOutcome) -> None:
        if outcome.request.id != self.service.latest_search_id:
            return  # a newer search is on its way
        self.last_search_seconds = outcome.seconds
        self.banner.clear("search")
        self.banner.clear("no-folders")
        self.results_model.set_results(outcome.results)
        if self.results_model.rowCount():
            self._show_page("results")
            self.results_view.setCurrentIndex(self.results_model.index(0))
            self.results_view.scrollToTop()
        elif not self.results_model.total():
            photos = getattr(self._status, "photos", 0) or 0
            self.message_page.show_message(
                "No photos match" if photos else "No photos indexed yet",
                "Try other words, or lower the minimum score."
                if photos
                else "Results will appear as soon as photos are indexed.",
            )
            self._show_page("message")
        else:
            self._show_page("results")
        self.statusBar().showMessage(f"{self.results_model.total():,} results in {outcome.seconds * 1000:.0f} ms", 5000)
        if self._preview is not None and self._preview.isVisible():
            pass

    def _on_search_failed(self, failure: SearchFailure) -> None:
        if failure.request.id != self.service.latest_search_id:
            return
        err = failure.failure.error
        from lookalike.core.errors import QueryError

        self.count_label.setText("")
        if isinstance(err, QueryError):
            col = err.column if failure.request.text and err.column <= len(failure.request.text) else None
            if col is not None and failure.request.text == self.query_bar.text():
                self.query_bar.show_error(err.reason, col, failure.request.text)
            else:
                self.query_bar.show_error(err.reason)
            return
        self.banner.show_message(
            self._failure_text(failure.failure),
            Level.ERROR if not failure.failure.user_facing else Level.WARNING,
            key="search",
        )

    def _on_counts_changed(self, shown: int, total: int) -> None:
        if total == 0:
            self.count_label.setText("")
            return
        what = f"“{html.escape(self._last_search_text.strip())}”" if self._last_search_text.strip() else "your photos"
        n_img = len(self.query_bar.images())
        if n_img:
            what += (
                f" + {n_img} image{'s' if n_img != 1 else ''}"
                if self._last_search_text.strip()
                else f" {n_img} image{'s' if n_img != 1 else ''}"
            )
            if not self._last_search_text.strip():
                what = f"{n_img} query image{'s' if n_img != 1 else ''}"
        if shown == total:
            self.count_label.setText(f"<b>{total:,}</b> result{'s' if total != 1 else ''} for {what}")
        else:
            self.count_label.setText(f"<b>{shown:,}</b> of {total:,} results for {what} (min score)")
        if shown == 0 and total:
            self.message_page.show_message(
                "Every result scores below the minimum", "Move the Min score slider to the left to see them."
            )
            self._show_page("message")
        elif shown and self.current_page() != "results":
            self._show_page("results")

    def _on_min_score_changed(self, value: int) -> None:
        self.min_label.setText("any" if value == 0 else f"≥ {value / 100:.2f}")
        self.results_model.set_min_score(None if value == 0 else value / 100)
        self.settings.set_min_score(value)

    def _on_sort_changed(self, _index: int) -> None:
        order = SortOrder(self.sort_combo.currentData())
        self.results_model.set_order(order)
        self.settings.set_sort_order(order.value)
        if self.results_model.rowCount():
            self.results_view.setCurrentIndex(self.results_model.index(0))
            self.results_view.scrollToTop()

    def clear_search(self) -> None:
        if self._preview is not None and self._preview.isVisible():
            self._preview.close()
            return
        self.query_bar.clear_step()
        self.query_bar.focus_field()

    def _on_query_cleared(self) -> None:
        if not self.query_bar.text().strip() and not self.query_bar.images():
            self.results_model.clear()
            self._last_search_text = ""
            self.settings.set_last_query("")
            self.settings.set_last_images([])
            self._show_idle_page()
        elif not self.query_bar.text().strip():
            self.run_search(remember=False)

    def _use_example(self, text: str) -> None:
        self.query_bar.set_text(text)
        self.run_search()

    def focus_results(self) -> None:
        if self.results_model.rowCount():
            self.results_view.setFocus(Qt.FocusReason.ShortcutFocusReason)
            if not self.results_view.currentIndex().isValid():
                self.results_view.setCurrentIndex(self.results_model.index(0))

    # -- images in the query --------------------------------------------------------------
    def choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Search by image",
            os.path.expanduser("~"),
            "Images (*.jpg *.jpeg *.png *.webp *.tif *.tiff *.bmp *.gif *.heic *.heif *.avif);;All files (*)",
        )
        if files:
            self.add_query_images(files)

    def add_query_images(self, paths: list[str], weight: float = 1.0) -> None:
        for i, p in enumerate(paths):
            self.query_bar.add_image(p, weight, submit=(i == len(paths) - 1))

    def handle_mime(self, mime, *, source: str = "drop") -> bool:
        """Use what a drop or a paste carries: folders are added, photos join the query."""
        content = desktop.classify(mime)
        if content.empty:
            if source == "paste":
                self.statusBar().showMessage("The clipboard holds no photo or folder", 4000)
            return False
        if content.folders:
            self.add_folders(list(content.folders))
        images = list(content.images)
        if images:
            self.add_query_images(images)
        if content.image_data is not None:
            # Pixels (a screenshot, a copied image): stored as a PNG the query can name,
            # encoded on a pool thread.
            self.statusBar().showMessage("Adding the pasted image…", 3000)
            self.runner.submit(
                desktop.save_query_image,
                content.image_data,
                self.paths.cache / "query-images",
                name="save-pasted",
                on_success=lambda path: self.add_query_images([path]),
                on_failure=lambda f: self.banner.show_message(
                    f"Cannot use the pasted image: {f.message}", Level.WARNING, key="paste"
                ),
            )
        if content.ignored and not images and not content.folders:
            self.statusBar().showMessage("Those files are not photos Lookalike can read", 4000)
        return True

    def paste_from_clipboard(self) -> bool:
        mime = QApplication.clipboard().mimeData()
        content = desktop.classify(mime)
        if content.empty:
            if QApplication.focusWidget() is self.query_bar.field:
                return False  # let the field paste text
            if mime is not None and mime.hasText() and mime.text().strip():
                self.query_bar.field.insert(mime.text().strip())
                self.query_bar.field.setFocus()
                return True
            self.statusBar().showMessage("The clipboard holds no photo", 4000)
            return False
        return self.handle_mime(mime, source="paste")

    def dragEnterEvent(self, event) -> None:
        if desktop.accepts(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if desktop.accepts(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        if self.handle_mime(event.mimeData(), source="drop"):
            event.acceptProposedAction()
        else:
            event.ignore()

    # -- result actions -------------------------------------------------------------------
    def _selected_paths(self) -> list[str]:
        return [
            self.results_model.item(r).path
            for r in self.results_view.selected_rows()
            if self.results_model.item(r) is not None
        ]

    def _current_path(self) -> str | None:
        if self._preview is not None and self._preview.isActiveWindow():
            item = self._preview.current_item()
            return item.path if item else None
        row = self.results_view.current_row()
        item = self.results_model.item(row)
        return item.path if item else None

    def _results_menu(self, pos) -> None:
        idx = self.results_view.indexAt(pos)
        if not idx.isValid():
            return
        if not self.results_view.selectionModel().isSelected(idx):
            self.results_view.setCurrentIndex(idx)
        menu = QMenu(self)
        for a in (self.act_preview, self.act_open, self.act_show):
            menu.addAction(a)
        menu.addSeparator()
        for a in (self.act_copy_path, self.act_copy_image):
            menu.addAction(a)
        menu.addSeparator()
        for a in (self.act_more, self.act_less):
            menu.addAction(a)
        self._context_menu = menu
        menu.popup(self.results_view.viewport().mapToGlobal(pos))

    def preview_current(self) -> None:
        row = self.results_view.current_row()
        if row >= 0:
            self.open_preview(row)

    def open_preview(self, row: int) -> None:
        if self._preview is None:
            p = PreviewDialog(self.results_model, self.runner, self)
            p.row_changed.connect(self._on_preview_row)
            p.open_requested.connect(desktop.open_with_default_app)
            p.show_in_folder_requested.connect(desktop.show_in_folder)
            p.copy_path_requested.connect(lambda path: self._copy_paths([path]))
            p.more_like_requested.connect(lambda path: self.query_bar.add_image(path, +1.0))
            p.less_like_requested.connect(lambda path: self.query_bar.add_image(path, -1.0))
            self._preview = p
        self._preview.show_row(row)
        self._preview.show()
        self._preview.raise_()
        self._preview.activateWindow()

    @property
    def preview(self) -> PreviewDialog | None:
        return self._preview

    def _on_preview_row(self, row: int) -> None:
        idx = self.results_model.index(row)
        self.results_view.setCurrentIndex(idx)
        self.results_view.scrollTo(idx)

    def open_selected(self) -> None:
        for p in self._selected_paths()[:10]:
            if not desktop.open_with_default_app(p):
                self.statusBar().showMessage(f"No application could open {os.path.basename(p)}", 5000)

    def show_selected_in_folder(self) -> None:
        p = self._current_path()
        if p:
            desktop.show_in_folder(p)

    def copy_selected_paths(self) -> None:
        self._copy_paths(self._selected_paths())

    def _copy_paths(self, paths: list[str]) -> None:
        if paths:
            desktop.copy_paths(paths)
            self.statusBar().showMessage(
                f"Copied {paths[0]}" if len(paths) == 1 else f"Copied {len(paths)} paths", 4000
            )

    def copy_selected_image(self) -> None:
        p = self._current_path()
        if not p:
            return
        self.statusBar().showMessage("Copying the image…")
        self.runner.submit(
            desktop.load_full_image,
            p,
            name="copy-image",
            on_success=lambda img, path=p: self._on_image_copied(path, img),
            on_failure=lambda f: self.statusBar().showMessage(f"Cannot copy the image: {f.message}", 6000),
        )

    def _on_image_copied(self, path: str, img) -> None:
        desktop.copy_image(path, img)
        self.statusBar().showMessage(f"Copied the image {os.path.basename(path)}", 4000)

    def add_selected_as(self, weight: float) -> None:
        paths = self._selected_paths()
        if not paths:
            return
        self.add_query_images(paths, weight)

    # -- model ----------------------------------------------------------------------------
    def show_model_dialog(self) -> None:
        if self._model_dialog is not None and self._model_dialog.isVisible():
            self._model_dialog.raise_()
            return
        st = self._status
        dlg = ModelDialog(getattr(st, "model_name", "") or "offline", getattr(st, "device", "") or "", self)
        dlg.model_chosen.connect(self.switch_model)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.destroyed.connect(lambda: setattr(self, "_model_dialog", None))
        self._model_dialog = dlg
        self.settings.set_first_run_seen()
        dlg.show()

    @property
    def model_dialog(self) -> ModelDialog | None:
        return self._model_dialog

    def _pick_checkpoint(self) -> None:
        self.show_model_dialog()
        if self._model_dialog is not None:
            self._model_dialog.pick_checkpoint()

    def switch_model(self, choice: ModelChoice) -> None:
        if self.service.read_only:
            return
        library = library_for_model(self.paths.data, choice.name, choice.model_file)
        config = EngineConfig(
            library=library, model=choice.name, model_file=Path(choice.model_file) if choice.model_file else None
        )
        self._switching_to = choice
        self.banner.show_message(
            f"Re-indexing your photos with {choice.name}. Searches keep using the current model until it is done.",
            Level.INFO,
            key="switch",
        )
        self.service.switch_model(config, [r.path for r in self._folders])

    def _on_model_switched(self, status) -> None:
        choice = self._switching_to
        if choice is not None:
            self.settings.set_model(choice.name, choice.model_file)
        self._switching_to = None
        self.banner.show_message(
            f"Now searching with {getattr(status, 'model_name', '') or 'the new model'}.", Level.INFO, key="switch"
        )
        self._on_status(status)
        if self.query_bar.text().strip() or self.query_bar.images():
            self.run_search(remember=False)

    # -- errors ---------------------------------------------------------------------------
    def _failure_text(self, failure: JobFailure) -> str:
        if failure.user_facing:
            return failure.message
        return f"Something went wrong: {failure.message}. The details are in the log; please report them."

    def _on_operation_failed(self, op: OperationFailure) -> None:
        f = op.failure
        if op.what == "add":
            self.banner.show_message(
                f"Cannot add {op.subject}: {f.message}" if not f.user_facing else f.message, Level.ERROR, key="add"
            )
        elif op.what == "remove":
            self.banner.show_message(f"Cannot remove {op.subject}: {f.message}", Level.ERROR, key="remove")
        elif op.what == "index":
            self.banner.show_message(
                f"Indexing stopped: {self._failure_text(f)}",
                Level.ERROR,
                key="index",
                actions=[("Try again", lambda: self.service.index(None))],
            )
        elif op.what == "model":
            self._switching_to = None
            self.banner.show_message(
                f"Switching model failed: {self._failure_text(f)} The current model stays.", Level.ERROR, key="switch"
            )
        else:
            log.warning("%s failed: %s", op.what, f.message)

    # -- help -----------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        rows = [
            ("Ctrl+F", "focus the search field"),
            ("Enter", "search / open the preview"),
            ("Esc", "clear the search"),
            ("↓, arrows", "move through the results"),
            ("Ctrl+V", "paste a photo (or a copied file) into the query"),
            ("Ctrl+I", "search by image…"),
            ("Ctrl+O", "add a folder…"),
            ("+ / −", "more / less like the selected photo"),
            ("Ctrl+Return", "open with the default app"),
            ("Ctrl+Shift+O", "show in folder"),
            ("Ctrl+Shift+C", "copy path"),
            ("Ctrl+C", "copy image"),
            ("← / → (preview)", "previous / next result"),
            ("F5", "re-scan all folders"),
            ("Ctrl+P", "pause or resume indexing"),
        ]
        body = (
            "<table>"
            + "".join(
                f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>" for k, v in rows
            )
            + "</table>"
        )
        QMessageBox.information(self, "Keyboard shortcuts", body)

    def show_about(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        from lookalike import __version__

        QMessageBox.about(
            self,
            f"About {APP_NAME}",
            f"<b>{APP_NAME} {__version__}</b><p>Find photos by likeness.</p>"
            f"<p>Library: {html.escape(str(getattr(self._status, 'path', '')))}</p>",
        )

    # -- window events --------------------------------------------------------------------
    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            icons.retint(self)
        super().changeEvent(event)

    def closeEvent(self, event) -> None:
        self._closing = True
        self.settings.set_geometry(self.saveGeometry())
        self.settings.set_splitter_state(self.splitter.saveState())
        self.settings.set_last_query(self.query_bar.text())
        self.settings.set_last_images([(t.path, t.weight) for t in self.query_bar.images()])
        self.settings.sync()
        if self._preview is not None:
            self._preview.close()
        if self._model_dialog is not None:
            self._model_dialog.cancel()
        self.thumbnails.stop(2000)
        self.runner.wait(2000)
        self.service.shutdown()
        super().closeEvent(event)
