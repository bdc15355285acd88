"""The library's folders as a person handles them: add, remove, re-scan, see what could not be read.

:class:`Folders` drives the sidebar's :class:`~lookalike.gui.panels.FoldersPanel`
from the service's signals and turns the panel's requests into service calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from lookalike.core.words import counted
from lookalike.gui.dialogs import FailuresDialog
from lookalike.gui.messages import Level, Notify
from lookalike.gui.panels import FoldersPanel
from lookalike.gui.records import FolderRow
from lookalike.gui.service import IndexJob, IndexKind, IndexOutcome, LibraryService

if TYPE_CHECKING:
    from lookalike.core.engine import Failure
    from lookalike.gui.settings import Settings


class Folders(QObject):
    """The folders of the open library and what can be done with them."""

    def __init__(
        self,
        window: QWidget,
        service: LibraryService,
        settings: Settings,
        panel: FoldersPanel,
        notify: Notify,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.service = service
        self.settings = settings
        self.panel = panel
        self.notify = notify
        self.rows: list[FolderRow] = []
        self.failures_dialog: FailuresDialog | None = None
        # The folders of the last run, shown until the library is open.
        panel.set_folders([FolderRow(p) for p in settings.folders()])
        panel.add_requested.connect(self.choose)
        panel.remove_requested.connect(self.confirm_remove)
        panel.rescan_requested.connect(self.rescan)
        panel.failures_requested.connect(self.show_failures)
        service.folders_changed.connect(self._on_folders_changed)
        service.indexing_started.connect(lambda job: panel.set_busy(self._busy(job)))
        service.indexing_finished.connect(self._on_indexing_finished)

    def _busy(self, job: IndexJob | None) -> set[str]:
        if job is None or job.kind is IndexKind.MODEL:
            return set()
        return {r.path for r in self.rows if job.covers(r.path)}

    def _on_folders_changed(self, rows: Sequence[FolderRow]) -> None:
        self.rows = list(rows)
        self.panel.set_folders(self.rows)
        self.panel.set_busy(self._busy(self.service.current_job))
        self.settings.set_folders([r.path for r in self.rows])

    def _on_indexing_finished(self, _outcome: IndexOutcome) -> None:
        self.panel.set_busy(set())

    # -- requests -------------------------------------------------------------------------
    def choose(self) -> None:
        """Ask for a folder and add it."""
        if self.service.read_only:
            return
        path = QFileDialog.getExistingDirectory(self.window, "Add a folder of photos", os.path.expanduser("~"))
        if path:
            self.add([path])

    def add(self, paths: Sequence[str]) -> None:
        if self.service.read_only:
            self.notify(
                Level.WARNING,
                "This window opened the library for searching only; another Lookalike is updating it.",
                key="locked",
            )
            return
        if not self.service.is_open:
            self.notify(Level.INFO, "The library is still opening; try again in a moment.")
            return
        self.settings.set_first_run_seen()
        self.service.add_folders([os.path.abspath(p) for p in paths])

    def confirm_remove(self, path: str) -> None:
        row = next((r for r in self.rows if r.path == path), None)
        n = counted(row.photos, "photo") if row is not None else "its photos"
        answer = QMessageBox.question(
            self.window,
            "Remove folder",
            f"Stop searching {path}?\n\nLookalike forgets its index ({n}); the photos themselves stay "
            "where they are. Adding the folder again re-indexes it.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.remove(path)

    def remove(self, path: str) -> None:
        self.service.remove_folder(path)
        self.notify(Level.STATUS, f"Removed {path} from the library (the photos are untouched)")

    def remove_selected(self) -> None:
        p = self.panel.selected()
        if p:
            self.confirm_remove(p)

    def rescan(self, path: str) -> None:
        self.service.index(IndexJob.of([path]))

    def rescan_selected(self) -> None:
        p = self.panel.selected()
        if p:
            self.rescan(p)

    def rescan_all(self) -> None:
        self.service.index(IndexJob.all())

    def show_failures(self, folder: str | None) -> None:
        """List the files that could not be read (in ``folder``, else in the library)."""

        def show(rows: list[Failure]) -> None:
            self.failures_dialog = FailuresDialog(rows, folder, self.window)
            self.failures_dialog.show()

        self.service.failures(show, folder)
