"""The main window: a frame that composes the views, the sidebar, the banner and the bars.

The window is a client of :class:`~lookalike.gui.service.LibraryService`, which
runs every engine call on pool threads; nothing here blocks on the engine.
Views live in :mod:`lookalike.gui.views`; the frame lists them in ``VIEWS``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from lookalike import APP_NAME
from lookalike.core.words import counted
from lookalike.gui import desktop, dialogs, icons
from lookalike.gui.actions import WindowActions
from lookalike.gui.folders import Folders
from lookalike.gui.messages import Action, Level, failure_text
from lookalike.gui.modeldialog import ModelSwitch
from lookalike.gui.pages import WelcomePage
from lookalike.gui.panels import Banner, IndexingBar
from lookalike.gui.records import FolderRow
from lookalike.gui.service import (
    IndexOutcome,
    LibraryService,
    OpenOutcome,
    Operation,
    OperationFailure,
)
from lookalike.gui.settings import Settings
from lookalike.gui.sidebar import Sidebar
from lookalike.gui.statusbar import StatusBar
from lookalike.gui.thumbnails import ThumbnailLoader
from lookalike.gui.views import PhotoSet, View, ViewContext
from lookalike.gui.views.browse import BrowseView
from lookalike.gui.views.concepts import ConceptsView
from lookalike.gui.views.duplicates import DuplicatesView
from lookalike.gui.views.people import PeopleView
from lookalike.gui.views.search import SearchView
from lookalike.gui.workers import JobFailure, JobRunner

if TYPE_CHECKING:
    from lookalike.core.engine import LibraryStatus
    from lookalike.core.index.watch import WatchUpdate

log = logging.getLogger(__name__)

#: Views with a grid of photos one can select.
GRID_VIEWS = ("search", "browse")

# The views, in sidebar order; the first is the home view. Adding a view is adding it here.
VIEWS: tuple[type[View], ...] = (SearchView, BrowseView, PeopleView, ConceptsView, DuplicatesView)


class MainWindow(QMainWindow):
    """The window a person lives in."""

    def __init__(
        self, service: LibraryService, settings: Settings, thumbnails: ThumbnailLoader, parent: QWidget | None = None
    ) -> None:
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
        self._opened = False
        self._start_requested = False
        self._open_failed = False

        self._build()
        self.window_actions = WindowActions(self)
        self.window_actions.fill_menus(self.menuBar(), self.views)
        self._connect()
        self._restore()

    # -- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget(self)
        self.setCentralWidget(central)
        root = QVBoxLayout(central)
        root.setContentsMargins(10, 10, 10, 4)
        root.setSpacing(8)
        self.banner = Banner(central)
        root.addWidget(self.banner)

        context = ViewContext(
            service=self.service,
            settings=self.settings,
            thumbnails=self.thumbnails,
            runner=self.runner,
            notify=self.notify,
            dismiss=self.banner.clear,
            show_photos=self.show_photos,
            choose_folder=lambda: self.folders.choose(),
            selected_photos=self.selected_photos,
            open_view=self.activate_view,
            teach=self.teach,
        )
        self.splitter = QSplitter(Qt.Orientation.Horizontal, central)
        self.splitter.setChildrenCollapsible(False)
        self.content = QStackedWidget(self.splitter)
        self.welcome = WelcomePage(self.content)
        self.content.addWidget(self.welcome)
        self.views: list[View] = [cls(context, self.content) for cls in VIEWS]
        for view in self.views:
            self.content.addWidget(view.widget)
        self.search_view = next(v for v in self.views if isinstance(v, SearchView))
        self.search_view.query_bar.field.paste_filter = self.paste_from_clipboard
        self._current: View = self.views[0]
        self._last_grid = self._current.key  # the photo grid looked at last (search or browse)

        self.sidebar = Sidebar(self.views, self.splitter)
        self.sidebar.setMinimumWidth(180)
        self.folders_panel = self.sidebar.folders
        self.folders = Folders(self, self.service, self.settings, self.folders_panel, self.notify)
        self.models = ModelSwitch(self, self.service, self.settings, self.notify, lambda: self.folders_panel.paths())
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.content)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([230, 900])
        root.addWidget(self.splitter, 1)

        self.indexing_bar = IndexingBar(central)
        self.indexing_bar.follow(self.service)
        root.addWidget(self.indexing_bar)
        self.status_bar = StatusBar(self)
        self.setStatusBar(self.status_bar)
        self.model_button = self.status_bar.model_button
        self.library_label = self.status_bar.library_label
        self.resize(1180, 780)
        self.sidebar.select(self._current.key)
        self.content.setCurrentWidget(self._current.widget)

    def _connect(self) -> None:
        self.sidebar.view_selected.connect(self.activate_view)
        for view in self.views:
            view.activation_requested.connect(lambda v=view: self.activate_view(v.key))
        self.welcome.add_folder_requested.connect(self.folders.choose)
        self.welcome.model_requested.connect(self.models.show_dialog)
        self.welcome.checkpoint_requested.connect(self.models.pick_checkpoint)
        self.status_bar.model_button.clicked.connect(self.models.show_dialog)

        s = self.service
        s.opened.connect(self._on_opened)
        s.open_failed.connect(self._on_open_failed)
        s.model_loading.connect(lambda: self.status_bar.show_loading(s.last_status))
        s.model_loaded.connect(self._on_status)
        s.model_failed.connect(self._on_model_failed)
        s.status_changed.connect(self._on_status)
        s.model_switched.connect(self._on_status)
        s.folders_changed.connect(self._on_folders)
        s.indexing_finished.connect(self._on_indexing_finished)
        s.operation_failed.connect(self._on_operation_failed)
        s.disk_changed.connect(self._on_disk_changed)
        s.changed_elsewhere.connect(self._on_changed_elsewhere)

    def _restore(self) -> None:
        geo = self.settings.geometry()
        if geo is not None:
            self.restoreGeometry(geo)
        split = self.settings.splitter_state()
        if split is not None:
            self.splitter.restoreState(split)

    # -- messages -------------------------------------------------------------------------
    def notify(self, level: Level, text: str, *, key: str = "", actions: Sequence[Action] = ()) -> None:
        """The one place messages reach the person: passing notes in the status bar, the rest in the banner."""
        if level is Level.STATUS:
            self.status_bar.showMessage(text, 6000)
        else:
            self.banner.show_message(text, level, key=key, actions=list(actions))

    def _on_operation_failed(self, op: OperationFailure) -> None:
        f = op.failure
        if op.what is Operation.ADD:
            text = f.message if f.user_facing else f"Cannot add {op.subject}: {f.message}"
            self.notify(Level.ERROR, text, key="add")
        elif op.what is Operation.REMOVE:
            self.notify(Level.ERROR, f"Cannot remove {op.subject}: {f.message}", key="remove")
        elif op.what is Operation.INDEX:
            self.notify(
                Level.ERROR,
                f"Indexing stopped: {failure_text(f)}",
                key="index",
                actions=[("Try again", self.folders.rescan_all)],
            )
        elif op.what is Operation.MODEL:
            self.notify(
                Level.ERROR, f"Switching model failed: {failure_text(f)} The current model stays.", key="switch"
            )
        else:
            log.warning("%s failed: %s", op.what, f.message)

    # -- views ----------------------------------------------------------------------------
    def activate_view(self, key: str) -> None:
        view = next((v for v in self.views if v.key == key), None)
        if view is None:
            return
        if view is not self._current:
            self._current.deactivated()
            self._current = view
            self.sidebar.select(key)
            view.activated()
        if key in GRID_VIEWS:
            self._last_grid = key
        self._show_content()

    @property
    def last_grid(self) -> str:
        """The photo grid the user looked at last ("search" or "browse"): the one whose
        selection "the selected photos" means, also from another view (Concepts)."""
        return self._last_grid

    def selected_photos(self) -> list[str]:
        """The photos selected in the grid looked at last (see :attr:`last_grid`)."""
        view = next((v for v in self.views if v.key == self._last_grid), None)
        return view.selected_photos() if view is not None else []

    def teach(self, paths: Sequence[str]) -> None:
        """Teach a concept from ``paths`` in the Concepts view, and show it."""
        view = next((v for v in self.views if isinstance(v, ConceptsView)), None)
        if view is not None:
            view.teach_from_selection(paths)
            self.activate_view(view.key)

    def _show_content(self) -> None:
        """The current view; the welcome page in place of the home view while the library has no folders."""
        home = self._current is self.views[0]
        if home and self._opened and not self.folders.rows and not self.service.read_only:
            self.content.setCurrentWidget(self.welcome)
        else:
            self.content.setCurrentWidget(self._current.widget)

    def show_photos(self, photos: PhotoSet) -> None:
        """Show ``photos`` in the search view's grid (asked for by another view)."""
        self.activate_view(self.search_view.key)
        self.search_view.show_photos(photos)

    def current_page(self) -> str:
        """``welcome``, or the search view's page (``message``, ``results``)."""
        if self.content.currentWidget() is self.welcome:
            return "welcome"
        return self.search_view.current_page()

    def add_query_images(self, paths: Sequence[str], weight: float = 1.0) -> None:
        self.activate_view(self.search_view.key)
        self.search_view.add_query_images(paths, weight)

    def search_photos(self, paths: Sequence[str]) -> None:
        """Search by ``paths`` alone (photos given on the command line or by "Open with"):
        the text and images of the query before are replaced."""
        bar = self.search_view.query_bar
        bar.set_text("")
        bar.clear_images()
        self.add_query_images(paths)

    def take_from_another_start(self, photos: Sequence[str]) -> None:
        """Another ``lookalike`` start handed its photos over: come to the front and search them."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()
        if photos:
            self.search_photos(photos)

    # -- the library ----------------------------------------------------------------------
    def start(self) -> None:
        """Open the library (call after the window is shown: the engine loads in the background)."""
        if self._start_requested and not self._open_failed:
            return
        self._start_requested = True
        self._open_failed = False
        self.service.open()

    def _on_opened(self, outcome: OpenOutcome) -> None:
        self._opened = True
        self._on_status(outcome.status)
        if outcome.read_only:
            self.notify(
                Level.WARNING,
                outcome.message + " This window can search but not add or re-scan folders.",
                key="locked",
            )
            for a in self.window_actions.writes:
                a.setEnabled(False)
            self.folders_panel.add_button.setEnabled(False)
            self.welcome.add_button.setEnabled(False)
        elif outcome.message:  # the command line is writing the library: this window waits its turn
            self.notify(Level.INFO, outcome.message, key="locked")
        if not self.settings.first_run_seen() and outcome.folders and not (outcome.read_only or outcome.message):
            # A library made elsewhere (the command line): say once what the model knows.
            self.settings.set_first_run_seen()
            if (outcome.status.model_name or "offline") == "offline":
                self.notify(
                    Level.INFO,
                    "Lookalike is using its built-in offline model, which knows about 1,000 everyday "
                    "concepts. CLIP understands far more.",
                    key="first-run",
                    actions=[("Get CLIP…", self.models.show_dialog)],
                )
        self._show_content()

    def _on_open_failed(self, failure: JobFailure) -> None:
        self._open_failed = True
        self.search_view.message_page.show_message("The library could not be opened", failure.message)
        self.notify(Level.ERROR, failure_text(failure), key="open", actions=[("Try again", self.start)])
        self.status_bar.show_model_state("not loaded")

    def _on_model_failed(self, failure: JobFailure) -> None:
        self.status_bar.show_model_state("unavailable")
        self.notify(
            Level.ERROR,
            f"The model could not be loaded: {failure.message}",
            key="model",
            actions=[("Choose a model…", self.models.show_dialog), ("Try again", self.service.load_model)],
        )

    def _on_status(self, status: LibraryStatus) -> None:
        self.status_bar.show_status(status, loading=not self.service.model_ready)

    def _on_folders(self, rows: Sequence[FolderRow]) -> None:
        if rows:
            self.banner.clear("no-folders")
        self._show_content()

    def add_folders(self, paths: Sequence[str]) -> None:
        self.folders.add(paths)

    def _on_indexing_finished(self, outcome: IndexOutcome) -> None:
        report = outcome.report
        if outcome.cancelled:
            self.notify(Level.STATUS, "Indexing cancelled; the photos indexed so far are kept.")
        elif report is not None:
            counts = (
                (report.added, "added"),
                (report.updated, "updated"),
                (report.moved, "moved"),
                (report.removed, "removed"),
                (report.failed, "unreadable"),
            )
            parts = [f"{n:,} {word}" for n, word in counts if n]
            done = ", ".join(parts) if parts else "nothing changed"
            self.notify(Level.STATUS, f"Indexing done: {done} ({outcome.seconds:.1f} s)")
            if report.offline_folders:
                self.notify(
                    Level.WARNING,
                    "Not reachable, so left as they were: "
                    + ", ".join(map(str, report.offline_folders))
                    + ". Plug the drive in (or mount it) and re-scan.",
                    key="offline",
                )

    def _on_changed_elsewhere(self) -> None:
        """The command line (or another Lookalike) wrote the library: show it now. The view in
        front reads again; the others do when they are next shown."""
        for view in self.views:
            if view is not self._current and hasattr(view, "_stale"):
                view._stale = True
        current = self._current
        if current is self.search_view:
            if self.search_view._has_query() and not self.service.searching:
                self.search_view.run_search(remember=False)
        else:
            refresh = getattr(current, "refresh", None)
            if callable(refresh):
                refresh()

    def _on_disk_changed(self, update: WatchUpdate) -> None:
        """The folder watcher indexed changes made on disk."""
        report = update.report
        changed = report.added + report.updated + report.moved + report.removed if report is not None else 0
        if update.error:
            self.notify(Level.STATUS, f"Could not follow a change on disk: {update.error}")
        for old, new in update.renamed:
            self.notify(Level.STATUS, f"Folder moved: {old} → {new}")
        if changed:
            self.notify(Level.STATUS, f"Updated {counted(changed, 'photo')} changed on disk")

    def toggle_pause(self) -> None:
        if self.service.paused:
            self.service.resume_indexing()
        else:
            self.service.pause_indexing()

    # -- drops and pastes -----------------------------------------------------------------
    def handle_mime(self, mime, *, source: str = "drop") -> bool:
        """Use what a drop or a paste carries: folders are added, photos join the query."""
        content = desktop.classify(mime)
        if content.empty:
            if source == "paste":
                self.notify(Level.STATUS, "The clipboard holds no photo or folder")
            return False
        if content.folders:
            self.add_folders(list(content.folders))
        images = list(content.images)
        if images:
            self.add_query_images(images)
        if content.image_data is not None:
            # Pixels (a screenshot, a copied image): stored as a PNG the query can name,
            # encoded on a pool thread.
            self.notify(Level.STATUS, "Adding the pasted image…")
            self.runner.submit(
                desktop.save_query_image,
                content.image_data,
                self.paths.cache / "query-images",
                name="save-pasted",
                on_success=lambda path: self.add_query_images([path]),
                on_failure=lambda f: self.notify(
                    Level.WARNING, f"Cannot use the pasted image: {f.message}", key="paste"
                ),
            )
        if content.ignored and not images and not content.folders:
            self.notify(Level.STATUS, "Those files are not photos Lookalike can read")
        return True

    def paste_from_clipboard(self) -> bool:
        mime = QApplication.clipboard().mimeData()
        if desktop.classify(mime).empty:
            field = self.search_view.query_bar.field
            if QApplication.focusWidget() is field:
                return False  # let the field paste text
            if mime is not None and mime.hasText() and mime.text().strip():
                field.insert(mime.text().strip())
                field.setFocus()
                return True
            self.notify(Level.STATUS, "The clipboard holds no photo")
            return False
        return self.handle_mime(mime, source="paste")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if desktop.accepts(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if desktop.accepts(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self.handle_mime(event.mimeData(), source="drop"):
            event.acceptProposedAction()
        else:
            event.ignore()

    # -- help -----------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        dialogs.show_shortcuts(self)

    def show_about(self) -> None:
        st = self.service.last_status
        dialogs.show_about(self, str(st.path) if st is not None else "")

    # -- window events --------------------------------------------------------------------
    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            icons.retint(self)
        super().changeEvent(event)

    def closeEvent(self, event) -> None:
        self.settings.set_geometry(self.saveGeometry())
        self.settings.set_splitter_state(self.splitter.saveState())
        for view in self.views:
            view.closing()
        self.settings.sync()
        if self.models.dialog is not None:
            self.models.dialog.cancel()
        self.thumbnails.stop(2000)
        self.runner.wait(2000)
        self.service.shutdown()
        super().closeEvent(event)
