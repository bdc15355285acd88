"""The search view: the query bar over a grid of ranked thumbnails, with a preview.

It reads the query from its :class:`~lookalike.gui.querybar.QueryBar`, asks the
service for results and shows them; it also shows any :class:`PhotoSet` another
view hands the frame. What it says while there is nothing to show (still
opening, still indexing, no results) is on its message page.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from lookalike.core.errors import QueryError
from lookalike.core.search.parse import parse
from lookalike.core.words import counted
from lookalike.gui import desktop, icons
from lookalike.gui.messages import Level, failure_text
from lookalike.gui.pages import MessagePage
from lookalike.gui.preview import PreviewDialog
from lookalike.gui.querybar import QueryBar
from lookalike.gui.records import FolderRow
from lookalike.gui.results import CLOSEST, ResultsModel, ResultsView, SortOrder, TileDelegate
from lookalike.gui.service import DEFAULT_K, IndexJob, IndexOutcome, OpenOutcome, SearchFailure, SearchOutcome
from lookalike.gui.views.base import PhotoSet, View, ViewContext
from lookalike.gui.views.browse import BrowsePanel, FilterBar, query_text_with

if TYPE_CHECKING:
    from lookalike.core.engine import LibraryStatus
    from lookalike.core.index.watch import WatchUpdate

log = logging.getLogger(__name__)

#: The confidence slider's range, in hundredths, and where it starts: the answer's own line.
MIN_CONFIDENCE_STEPS = (5, 95)
ANSWER_LINE = 50

EXAMPLES = ("a cat", "a cup of coffee", "dog + beach", "2*sunset - people", "a red car")

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.webp *.tif *.tiff *.bmp *.gif *.heic *.heif *.avif);;All files (*)"


class SearchView(View):
    """Find photos by words, by other photos, or both."""

    key = "search"
    title = "Search"
    icon = "search"

    def __init__(self, context: ViewContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.settings = context.settings
        self._opened = False
        self._pending_search = False
        self._last_search_text = ""
        self._folders: list[FolderRow] = []
        self._photos = 0
        self._preview: PreviewDialog | None = None
        self._context_menu: QMenu | None = None
        self.last_search_seconds = 0.0
        self._build()
        self._build_actions()
        self._connect()
        self._restore()

    # -- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(6)
        self.query_bar = QueryBar(self.context.thumbnails, self)
        self.query_bar.field.setAcceptDrops(False)  # drops become image queries, not text
        root.addWidget(self.query_bar)
        self.filter_bar = FilterBar(self.context, self)  # chips for the query's key:value filters
        root.addWidget(self.filter_bar)

        self.results_header = QWidget(self)
        header = QHBoxLayout(self.results_header)
        header.setContentsMargins(0, 0, 0, 0)
        header.setSpacing(8)
        self.count_label = QLabel("", self.results_header)
        self.count_label.setObjectName("ResultCount")
        self.count_label.setWordWrap(True)  # "No matches for ..." and its note wrap in a narrow window
        header.addWidget(self.count_label, 1)
        self.min_title = QLabel("Sureness", self.results_header)
        header.addWidget(self.min_title)
        # A match is a result the answer is at least this sure of (0-1; 0.50: the answer's own line).
        self.min_slider = QSlider(Qt.Orientation.Horizontal, self.results_header)
        self.min_slider.setObjectName("MinConfidence")
        self.min_slider.setRange(MIN_CONFIDENCE_STEPS[0], MIN_CONFIDENCE_STEPS[1])
        self.min_slider.setSingleStep(5)
        self.min_slider.setPageStep(10)
        self.min_slider.setValue(ANSWER_LINE)
        self.min_slider.setFixedWidth(140)
        self.min_slider.setToolTip(
            "How sure a result must be to count as a match (0 to 1).\n"
            "0.50 is the answer's own line; move right for fewer, surer matches, left for more."
        )
        self.min_slider.setAccessibleName("Minimum confidence of a match")
        header.addWidget(self.min_slider)
        self.min_label = QLabel("≥ 0.50", self.results_header)
        self.min_label.setMinimumWidth(44)
        header.addWidget(self.min_label)
        header.addSpacing(8)
        header.addWidget(QLabel("Sort", self.results_header))
        self.sort_combo = QComboBox(self.results_header)
        self.sort_combo.setObjectName("SortOrder")
        self.sort_combo.addItem("Best match", SortOrder.SCORE.value)
        self.sort_combo.addItem("Date taken", SortOrder.DATE.value)
        self.sort_combo.setAccessibleName("Sort results by")
        header.addWidget(self.sort_combo)
        root.addWidget(self.results_header)
        # Why nothing matches, and that the photos below are only the closest (full width, wrapped).
        self.note_label = QLabel("", self)
        self.note_label.setObjectName("AnswerNote")
        self.note_label.setWordWrap(True)
        self.note_label.setVisible(False)
        root.addWidget(self.note_label)

        self.stack = QStackedWidget(self)
        self.message_page = MessagePage(self.stack)
        self.results_model = ResultsModel(self.context.thumbnails, self)
        self.results_view = ResultsView(self.stack)
        self.results_view.setObjectName("ResultsGrid")
        self.delegate = TileDelegate(self.context.thumbnails, parent=self.results_view)
        self.results_view.setItemDelegate(self.delegate)
        self.results_view.setModel(self.results_model)
        self.stack.addWidget(self.message_page)
        self.stack.addWidget(self.results_view)
        self.browse_panel = BrowsePanel(self.context, self.stack)  # no query: the library by month
        self.stack.addWidget(self.browse_panel)
        root.addWidget(self.stack, 1)
        # The results that are not matches: collapsed under this button, expanded in place.
        self.weaker_button = QPushButton("", self)
        self.weaker_button.setObjectName("WeakerResults")
        self.weaker_button.setFlat(True)
        self.weaker_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.weaker_button.clicked.connect(self.toggle_weaker)
        self.weaker_button.setVisible(False)
        root.addWidget(self.weaker_button, 0, Qt.AlignmentFlag.AlignHCenter)
        self._note = ""
        self._show_page("message")
        self.message_page.show_message("Opening your library…")

    def _action(
        self,
        text: str,
        slot,
        shortcut: QKeySequence.StandardKey | str | Sequence[str] | None = None,
        icon_name: str | None = None,
        *,
        grid: bool = False,
    ) -> QAction:
        """An action of this view; ``grid``: it acts on the selected results (its shortcut only there)."""
        owner: QWidget = self.results_view if grid else self
        a = QAction(text, owner)
        if icon_name:
            icons.apply(a, icon_name)
        if shortcut is not None:
            if isinstance(shortcut, QKeySequence.StandardKey | str):
                a.setShortcut(QKeySequence(shortcut))
            else:
                a.setShortcuts([QKeySequence(s) for s in shortcut])
            a.setShortcutContext(
                Qt.ShortcutContext.WidgetWithChildrenShortcut if grid else Qt.ShortcutContext.WindowShortcut
            )
        a.triggered.connect(lambda _c=False: slot())
        owner.addAction(a)
        return a

    def _build_actions(self) -> None:
        a = self._action
        self.act_focus = a("&Find", self.focus_field, QKeySequence.StandardKey.Find, "search")
        self.act_by_image = a("Search by &image…", self.choose_images, "Ctrl+I", "image-search")
        self.act_clear = a("&Clear search", self.clear_search, "Esc", "close")
        self.act_preview = a("Pre&view", self.preview_current, "Space", "image-search", grid=True)
        self.act_open = a("&Open with default app", self.open_selected, "Ctrl+Return", "open-external", grid=True)
        self.act_show = a("&Show in folder", self.show_selected_in_folder, "Ctrl+Shift+O", "folder-open", grid=True)
        self.act_copy_path = a("Copy &path", self.copy_selected_paths, "Ctrl+Shift+C", "copy", grid=True)
        self.act_copy_image = a(
            "Copy &image", self.copy_selected_image, QKeySequence.StandardKey.Copy, "copy-image", grid=True
        )
        self.act_more = a("&More like this", lambda: self.add_selected_as(+1.0), ["+", "="], "more-like", grid=True)
        self.act_less = a("&Less like this", lambda: self.add_selected_as(-1.0), ["-"], "less-like", grid=True)

    def menu_actions(self) -> Sequence[QAction | None]:
        return (
            self.act_focus,
            self.act_by_image,
            self.act_clear,
            None,
            self.act_preview,
            self.act_open,
            self.act_show,
            self.act_copy_path,
            self.act_copy_image,
            self.act_more,
            self.act_less,
        )

    def _connect(self) -> None:
        qb = self.query_bar
        qb.submitted.connect(self.run_search)
        qb.results_focus_requested.connect(self.focus_results)
        qb.field.tab_to = self._tab_to_results  # Tab from the query goes to the grid, not through the filters
        qb.image_picker_requested.connect(self.choose_images)
        qb.cleared.connect(self._on_query_cleared)
        self.filter_bar.filters_changed.connect(self._on_filter_chips)
        self.filter_bar.concept_requested.connect(self._on_concept_chip)
        self.browse_panel.choices_loaded.connect(lambda c: self.filter_bar.set_choices(*c))
        self.message_page.example_requested.connect(self._use_example)
        self.results_view.open_requested.connect(self.open_preview)
        self.results_view.customContextMenuRequested.connect(self._results_menu)
        self.results_model.counts_changed.connect(self._on_counts_changed)
        self.min_slider.valueChanged.connect(self._on_min_score_changed)
        self.sort_combo.currentIndexChanged.connect(self._on_sort_changed)
        s = self.service
        s.opened.connect(self._on_opened)
        s.status_changed.connect(self._on_status)
        s.model_loaded.connect(self._on_status)
        s.folders_changed.connect(self._on_folders)
        s.search_finished.connect(self._on_search_finished)
        s.search_failed.connect(self._on_search_failed)
        s.indexing_started.connect(self._on_indexing_started)
        s.indexing_finished.connect(self._on_indexing_finished)
        s.disk_changed.connect(self._on_disk_changed)
        s.model_switched.connect(self._on_model_switched)

    def _restore(self) -> None:
        self.query_bar.set_history(self.settings.history())
        self.query_bar.set_text(self.settings.last_query())
        for path, weight in self.settings.last_images():
            if os.path.isfile(path):
                self.query_bar.add_image(path, weight, submit=False)
        i = self.sort_combo.findData(self.settings.sort_order())
        if i >= 0:
            self.sort_combo.setCurrentIndex(i)

    def closing(self) -> None:
        self.settings.set_last_query(self.query_bar.text())
        self.settings.set_last_images([(t.path, t.weight) for t in self.query_bar.images()])
        if self._preview is not None:
            self._preview.close()

    # -- pages ------------------------------------------------------------------------------
    def _show_page(self, name: str) -> None:
        page = {"message": self.message_page, "results": self.results_view}[name]
        self.stack.setCurrentWidget(page)
        # The count, min-score and sort controls matter once a search has results.
        self.results_header.setVisible(name == "results" or self.results_model.total() > 0)
        self._update_weaker_button()

    def current_page(self) -> str:
        return "results" if self.stack.currentWidget() is self.results_view else "message"

    def _has_query(self) -> bool:
        return bool(self.query_bar.text().strip() or self.query_bar.images())

    def _show_idle_page(self) -> None:
        """What to show when there are no results to show."""
        if not self._opened:
            return
        if self._photos == 0 and self.service.indexing:
            self.message_page.show_message(
                "Looking at your photos…", "You can search as soon as the first ones are indexed."
            )
        elif self._photos == 0 and self._folders:
            self.message_page.show_message(
                "No photos indexed yet",
                "The folders hold no photos Lookalike can read. Add another folder, "
                "or double-click a folder to see which files could not be read.",
            )
        elif self._photos == 0:
            self.message_page.show_message("No photos yet", "Add a folder of photos to search them.")
        else:  # no query: the whole library, newest first, grouped by month
            self.browse_panel.show_query(None)
            self.stack.setCurrentWidget(self.browse_panel)
            self.results_header.setVisible(False)
            self.count_label.setText("")
            return
        self._show_page("message")
        self.count_label.setText("")

    # -- the library ------------------------------------------------------------------------
    def _on_opened(self, outcome: OpenOutcome) -> None:
        self._opened = True
        self._folders = list(outcome.folders)
        self._photos = int(outcome.status.photos)
        if self._has_query() or self._pending_search:
            self.run_search()
        else:
            self._show_idle_page()

    def _on_status(self, status: LibraryStatus) -> None:
        self._photos = int(status.photos)
        if self.current_page() != "results" and not self.results_model.total():
            self._show_idle_page()

    def _on_folders(self, rows: Sequence[FolderRow]) -> None:
        self._folders = list(rows)
        if self.results_model.total():
            # Drop the photos of a removed folder from the grid now; the next search agrees.
            prefixes = tuple(r.path.rstrip(os.sep) + os.sep for r in self._folders)
            kept = [i for i in self.results_model.all_items() if i.path.startswith(prefixes)]
            if len(kept) != self.results_model.total():
                self.results_model.set_results(kept)
        if self.current_page() != "results":
            self._show_idle_page()

    def _on_indexing_started(self, _job: IndexJob) -> None:
        if self.current_page() != "results":
            self._show_idle_page()

    def _on_indexing_finished(self, _outcome: IndexOutcome) -> None:
        if self._has_query():  # fresh results for the query on screen
            self.run_search(remember=False)

    def _on_disk_changed(self, update: WatchUpdate) -> None:
        report = update.report
        changed = report.added + report.updated + report.moved + report.removed if report is not None else 0
        if changed and self._has_query() and not self.service.searching:
            self.run_search(remember=False)

    def _on_model_switched(self, _status: LibraryStatus) -> None:
        if self._has_query():
            self.run_search(remember=False)

    # -- searching ------------------------------------------------------------------------
    def run_search(self, remember: bool = True) -> None:
        text = self.query_bar.text()
        try:
            q = self.query_bar.query()
        except QueryError as exc:
            self.query_bar.show_error(exc.reason, exc.column, text)
            self.context.notify(Level.STATUS, "The query could not be understood")
            return
        self.query_bar.clear_error()
        self.filter_bar.set_filters(q.filters if q is not None else ())
        self.settings.set_last_query(text)
        self.settings.set_last_images([(t.path, t.weight) for t in self.query_bar.images()])
        self.delegate.show_scores = True
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
        if not self._folders and not self._photos:
            self.context.notify(
                Level.INFO,
                "There are no photos to search yet: add a folder of photos first.",
                key="no-folders",
                actions=[("Add a folder…", self.context.choose_folder)],
            )
            return
        self._last_search_text = text
        self.count_label.setText("Searching…")
        self.service.search(q, text, k=DEFAULT_K)

    def _on_search_finished(self, outcome: SearchOutcome) -> None:
        if outcome.request.id != self.service.latest_search_id:
            return  # a newer search is on its way
        self.last_search_seconds = outcome.seconds
        self.context.dismiss("search")
        self.context.dismiss("no-folders")
        self._note = outcome.note
        self.results_model.set_results(outcome.results)
        self.delegate.show_scores = any(r.score == r.score for r in outcome.results)  # filters alone: no scores
        if self.results_model.rowCount():
            self._show_page("results")
            self.results_view.setCurrentIndex(self.results_model.index(0))
            self.results_view.scrollToTop()
        elif not self.results_model.total():
            self.message_page.show_message(
                "No photos match" if self._photos else "No photos indexed yet",
                "Try other words, or fewer filters."
                if self._photos
                else "Results will appear as soon as photos are indexed.",
            )
            self._show_page("message")
        else:
            self._show_page("results")
        found = f"{counted(outcome.matches, 'match')}, " if outcome.matches >= 0 else ""
        self.context.notify(
            Level.STATUS, f"{found}{self.results_model.total():,} results in {outcome.seconds * 1000:.0f} ms"
        )

    def _on_search_failed(self, failure: SearchFailure) -> None:
        if failure.request.id != self.service.latest_search_id:
            return
        err = failure.failure.error
        self.count_label.setText("")
        if isinstance(err, QueryError):
            text = failure.request.text
            col = err.column if text and err.column <= len(text) else None
            if col is not None and text == self.query_bar.text():
                self.query_bar.show_error(err.reason, col, text)
            else:
                self.query_bar.show_error(err.reason)
            return
        level = Level.WARNING if failure.failure.user_facing else Level.ERROR
        self.context.notify(level, failure_text(failure.failure), key="search")

    def show_photos(self, photos: PhotoSet) -> None:
        """Show a set of photos another view picked (a person, a group) in the grid. The query
        that was there does not describe them: it is replaced by theirs (or emptied)."""
        self.query_bar.set_text(photos.query)
        self.query_bar.clear_images()
        self._last_search_text = ""
        self._note = ""
        self.delegate.show_scores = photos.scored
        self.results_model.set_results(photos.photos)
        self._show_page("results")
        if self.results_model.rowCount():
            self.results_view.setCurrentIndex(self.results_model.index(0))
            self.results_view.scrollToTop()
        self.count_label.setText(f"<b>{html.escape(photos.title)}</b> · {counted(len(photos.photos), 'photo')}")
        self._update_weaker_button()

    def _on_counts_changed(self, shown: int, total: int) -> None:
        self._update_weaker_button()
        if total == 0:
            self.count_label.setText("")
            return
        text = self._last_search_text.strip()
        what = f"“{html.escape(text)}”" if text else "your photos"
        n_img = len(self.query_bar.images())
        if n_img:
            images = f"{n_img} image{'s' if n_img != 1 else ''}"
            what = f"{what} + {images}" if text else f"{n_img} query image{'s' if n_img != 1 else ''}"
        model = self.results_model
        if model.answered():
            matches = model.matches()
            if matches:
                self.count_label.setText(f"<b>{matches:,}</b> match{'es' if matches != 1 else ''} for {what}")
            else:
                note = f"{self._note[:1].upper()}{self._note[1:]}." if self._note else ""
                closest = "The closest photos are below; they are not matches." if shown else ""
                self.count_label.setText(f"<b>No matches for {what}</b>")
                self.note_label.setText(html.escape(f"{note} {closest}".strip()))
        elif shown == total:
            self.count_label.setText(f"<b>{total:,}</b> result{'s' if total != 1 else ''} for {what}")
        else:
            self.count_label.setText(f"<b>{shown:,}</b> of {total:,} results for {what}")
        if shown and self.current_page() != "results":
            self._show_page("results")

    def _update_weaker_button(self) -> None:
        model = self.results_model
        self.note_label.setVisible(
            model.answered() and not model.matches() and model.total() > 0 and self.current_page() == "results"
        )
        weaker = model.weaker() if model.answered() and self.current_page() == "results" else 0
        hidden = weaker - (0 if model.matches() else min(weaker, CLOSEST))
        if not weaker or (not model.weaker_shown() and hidden <= 0):
            self.weaker_button.setVisible(False)
            return
        if model.weaker_shown():
            self.weaker_button.setText("Hide the weaker results")
        elif model.matches():
            self.weaker_button.setText(f"Show {weaker:,} weaker result{'s' if weaker != 1 else ''}")
        else:
            self.weaker_button.setText(f"Show {hidden:,} more weaker result{'s' if hidden != 1 else ''}")
        self.weaker_button.setVisible(True)

    def toggle_weaker(self) -> None:
        """Expand the weaker results in place under the matches, or collapse them again."""
        model = self.results_model
        model.set_weaker_shown(not model.weaker_shown())

    def _on_min_score_changed(self, value: int) -> None:
        self.min_label.setText(f"≥ {value / 100:.2f}")
        self.results_model.set_min_confidence(None if value == ANSWER_LINE else value / 100)

    def _on_sort_changed(self, _index: int) -> None:
        order = SortOrder(self.sort_combo.currentData())
        self.results_model.set_order(order)
        self.settings.set_sort_order(order.value)
        if self.results_model.rowCount():
            self.results_view.setCurrentIndex(self.results_model.index(0))
            self.results_view.scrollToTop()

    def focus_field(self) -> None:
        self.activation_requested.emit()
        self.query_bar.focus_field()

    def clear_search(self) -> None:
        if self._preview is not None and self._preview.isVisible():
            self._preview.close()
            return
        self.query_bar.clear_step()
        self.query_bar.focus_field()

    def _on_query_cleared(self) -> None:
        if not self._has_query():
            self.results_model.clear()
            self._last_search_text = ""
            self.settings.set_last_query("")
            self.settings.set_last_images([])
            self._show_idle_page()
        elif not self.query_bar.text().strip():
            self.run_search(remember=False)

    def _on_filter_chips(self, filters) -> None:
        """The chips changed: the query text gets exactly those filters, and runs."""
        text = self.query_bar.text()
        try:
            base = parse(text) if text.strip() else None
        except QueryError:
            return  # the field shows what is wrong; the chips wait for a text that parses
        self.query_bar.set_text(query_text_with(text, filters, base))
        self.run_search()

    def _on_concept_chip(self, term: str) -> None:
        text = self.query_bar.text().strip()
        self.query_bar.set_text(f"{text} + {term}" if text else term)
        self.run_search()

    def _use_example(self, text: str) -> None:
        self.query_bar.set_text(text)
        self.run_search()

    def _tab_to_results(self) -> bool:
        if self.stack.currentWidget() is not self.results_view or not self.results_model.rowCount():
            return False
        self.focus_results()
        return True

    def focus_results(self) -> None:
        if self.results_model.rowCount():
            self.results_view.setFocus(Qt.FocusReason.ShortcutFocusReason)
            if not self.results_view.currentIndex().isValid():
                self.results_view.setCurrentIndex(self.results_model.index(0))

    # -- images in the query --------------------------------------------------------------
    def choose_images(self) -> None:
        self.activation_requested.emit()
        files, _ = QFileDialog.getOpenFileNames(self, "Search by image", os.path.expanduser("~"), IMAGE_FILTER)
        if files:
            self.add_query_images(files)

    def add_query_images(self, paths: Sequence[str], weight: float = 1.0) -> None:
        for i, p in enumerate(paths):
            self.query_bar.add_image(p, weight, submit=(i == len(paths) - 1))

    # -- result actions -------------------------------------------------------------------
    def selected_photos(self) -> list[str]:
        return self._selected_paths()

    def _selected_paths(self) -> list[str]:
        items = (self.results_model.item(r) for r in self.results_view.selected_rows())
        return [i.path for i in items if i is not None]

    def _current_path(self) -> str | None:
        if self._preview is not None and self._preview.isActiveWindow():
            item = self._preview.current_item()
        else:
            item = self.results_model.item(self.results_view.current_row())
        return item.path if item else None

    def _results_menu(self, pos: QPoint) -> None:
        idx = self.results_view.indexAt(pos)
        if not idx.isValid():
            return
        if not self.results_view.selectionModel().isSelected(idx):
            self.results_view.setCurrentIndex(idx)
        menu = QMenu(self)
        for group in (
            (self.act_preview, self.act_open, self.act_show),
            (self.act_copy_path, self.act_copy_image),
            (self.act_more, self.act_less),
        ):
            if not menu.isEmpty():
                menu.addSeparator()
            menu.addActions(list(group))
        menu.addSeparator()
        menu.addAction("Add Tag\u2026").triggered.connect(self._teach_concept)
        self._context_menu = menu
        menu.popup(self.results_view.viewport().mapToGlobal(pos))

    def _teach_concept(self) -> None:
        """Tag the selected photos (the Tags view asks the tag; it learns from them)."""
        self.context.teach(self._selected_paths())

    def searched_text(self) -> str:
        """The query text of the results shown (the preview shows what a text: search matched)."""
        return self._last_search_text

    def preview_current(self) -> None:
        row = self.results_view.current_row()
        if row >= 0:
            self.open_preview(row)

    def open_preview(self, row: int) -> None:
        if self._preview is None:
            p = PreviewDialog(self.results_model, self.context.runner, self)
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
                self.context.notify(Level.STATUS, f"No application could open {os.path.basename(p)}")

    def show_selected_in_folder(self) -> None:
        p = self._current_path()
        if p:
            desktop.show_in_folder(p)

    def copy_selected_paths(self) -> None:
        self._copy_paths(self._selected_paths())

    def _copy_paths(self, paths: list[str]) -> None:
        if paths:
            desktop.copy_paths(paths)
            self.context.notify(Level.STATUS, f"Copied {paths[0]}" if len(paths) == 1 else f"Copied {len(paths)} paths")

    def copy_selected_image(self) -> None:
        p = self._current_path()
        if not p:
            return
        self.context.notify(Level.STATUS, "Copying the image…")
        self.context.runner.submit(
            desktop.load_full_image,
            p,
            name="copy-image",
            on_success=lambda img: self._on_image_copied(p, img),
            on_failure=lambda f: self.context.notify(Level.STATUS, f"Cannot copy the image: {f.message}"),
        )

    def _on_image_copied(self, path: str, img: QImage) -> None:
        desktop.copy_image(path, img)
        self.context.notify(Level.STATUS, f"Copied the image {os.path.basename(path)}")

    def add_selected_as(self, weight: float) -> None:
        paths = self._selected_paths()
        if paths:
            self.add_query_images(paths, weight)
