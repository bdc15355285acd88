"""The model notice and dialog (what the offline model knows, getting CLIP), and switching to another model."""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lookalike.core.progress import Progress, Stage
from lookalike.core.store.paths import ModelChoice
from lookalike.gui import icons
from lookalike.gui.messages import Level, Notify
from lookalike.gui.panels import progress_counts, stage_title
from lookalike.gui.service import EngineConfig, LibraryService, Operation, OperationFailure
from lookalike.gui.workers import JobFailure, JobRunner

if TYPE_CHECKING:
    from lookalike.core.engine import LibraryStatus
    from lookalike.core.progress import CancelToken
    from lookalike.gui.settings import Settings

OFFLINE_NOTE = (
    "Lookalike starts with a built-in model that works with no network at all. "
    "It recognises about <b>1,000 everyday concepts</b> (animals, vehicles, food, objects, "
    "some places) and finds photos that look alike."
)
CLIP_NOTE = (
    "<b>CLIP</b> understands far more: almost anything you can describe in words. "
    "It is a one-time download of about 600 MB, or a checkpoint file you already have."
)


def _load(name: str, model_file: str | None, progress=None, cancel=None):
    from lookalike.core.encoders import load_encoder

    enc = load_encoder(name, model_file=Path(model_file) if model_file else None, progress=progress, cancel=cancel)
    return f"{enc.id} on {enc.device}"


class ModelDialog(QDialog):
    """Explains the models and fetches or loads CLIP, with progress, cancel and clear failures."""

    model_chosen = Signal(object)  # ModelChoice

    def __init__(self, current: str = "offline", device: str = "", parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("ModelDialog")
        self.setWindowTitle("Model")
        self.setMinimumWidth(520)
        self.runner = JobRunner(1, "lookalike-model", self)
        self._token: CancelToken | None = None
        self._choice: ModelChoice | None = None

        lay = QVBoxLayout(self)
        lay.setSpacing(10)
        head = QHBoxLayout()
        ic = QLabel(self)
        ic.setPixmap(icons.pixmap("model", 32))
        head.addWidget(ic, 0, Qt.AlignmentFlag.AlignTop)
        intro = QLabel(f"<p>{OFFLINE_NOTE}</p><p>{CLIP_NOTE}</p>", self)
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        head.addWidget(intro, 1)
        lay.addLayout(head)

        where = f"In use now: <b>{html.escape(current)}</b>" + (f" on {html.escape(device)}" if device else "")
        self.current_label = QLabel(where, self)
        lay.addWidget(self.current_label)

        buttons = QHBoxLayout()
        self.fetch_button = QPushButton(icons.icon("download"), "Get CLIP", self)
        self.fetch_button.setToolTip("Download CLIP into the model cache, then re-index with it")
        self.fetch_button.clicked.connect(self.fetch_clip)
        self.file_button = QPushButton(icons.icon("folder-open"), "Use a CLIP checkpoint file…", self)
        self.file_button.clicked.connect(self.pick_checkpoint)
        self.keep_button = QPushButton("Keep the offline model", self)
        self.keep_button.clicked.connect(self.reject)
        self.keep_button.setDefault(True)
        buttons.addWidget(self.fetch_button)
        buttons.addWidget(self.file_button)
        buttons.addStretch(1)
        buttons.addWidget(self.keep_button)
        lay.addLayout(buttons)

        prog = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(10)
        self.progress_label = QLabel(self)
        self.cancel_button = QPushButton(icons.icon("stop"), "Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.progress_label)
        prog.addWidget(self.cancel_button)
        lay.addLayout(prog)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("ModelError")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet("color: #d33a3a;")
        lay.addWidget(self.error_label)
        self._set_busy(False)
        self.error_label.hide()

    def _set_busy(self, busy: bool) -> None:
        for w in (self.progress, self.progress_label, self.cancel_button):
            w.setVisible(busy)
        self.fetch_button.setEnabled(not busy)
        self.file_button.setEnabled(not busy)

    @property
    def busy(self) -> bool:
        return self._token is not None

    def fetch_clip(self) -> None:
        self._start(ModelChoice("clip"), "Getting CLIP…")

    def pick_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a CLIP checkpoint",
            os.path.expanduser("~"),
            "Checkpoints (*.pt *.pth *.bin *.safetensors *.ckpt);;All files (*)",
        )
        if path:
            self.use_checkpoint(path)

    def use_checkpoint(self, path: str) -> None:
        self._start(ModelChoice("clip", path), f"Loading {os.path.basename(path)}…")

    def _start(self, choice: ModelChoice, title: str) -> None:
        from lookalike.core.progress import CancelToken

        self.error_label.hide()
        self._token = CancelToken()
        self._choice = choice
        self.progress.setRange(0, 0)
        self.progress_label.setText(title)
        self._set_busy(True)
        self.runner.submit(
            _load,
            choice.name,
            choice.model_file or None,
            cancel=self._token,
            name="load-model",
            on_progress=self._on_progress,
            on_success=self._on_loaded,
            on_failure=self._on_failed,
        )

    def _on_progress(self, p: Progress) -> None:
        if p.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * min(p.done, p.total) / p.total))
        else:
            self.progress.setRange(0, 0)
        text = progress_counts(p) if p.stage == Stage.DOWNLOAD or p.total else ""
        self.progress_label.setText(
            f"{stage_title(p.stage)} {text}".strip() if text else p.note or stage_title(p.stage)
        )

    def _on_loaded(self, description: str) -> None:
        self._token = None
        self._set_busy(False)
        if self._choice is not None:
            self.current_label.setText(
                f"Ready: <b>{html.escape(description)}</b>. "
                "Re-indexing with it now; searches keep using the old index until it is done."
            )
            self.model_chosen.emit(self._choice)
        self.accept()

    def _on_failed(self, failure: JobFailure) -> None:
        cancelled = self._token is not None and self._token.cancelled
        self._token = None
        self._set_busy(False)
        if cancelled or failure.error.__class__.__name__ == "Cancelled":
            self.error_label.setText("Cancelled. Nothing was changed.")
        elif failure.user_facing:
            self.error_label.setText(failure.message)
        else:
            self.error_label.setText(f"The model could not be loaded: {failure.message}")
        self.error_label.show()

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()
            self.progress_label.setText("Cancelling…")

    def reject(self) -> None:
        self.cancel()
        super().reject()

    def closeEvent(self, event) -> None:
        self.cancel()
        super().closeEvent(event)


class ModelSwitch(QObject):
    """Choosing another model: the dialog, then a re-index in the background, then the swap.

    Searches keep using the current model until the new library is built; the
    choice is recorded in the data folder so the command line opens the same library.
    """

    def __init__(
        self,
        window: QWidget,
        service: LibraryService,
        settings: Settings,
        notify: Notify,
        folders: Callable[[], Sequence[str]],
    ) -> None:
        super().__init__(window)
        self.window = window
        self.service = service
        self.settings = settings
        self.notify = notify
        self.folders = folders  # the library's folders, to index with the new model
        self.dialog: ModelDialog | None = None
        self._switching_to: ModelChoice | None = None
        service.model_switched.connect(self._on_switched)
        service.operation_failed.connect(self._on_failed)

    def show_dialog(self) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return
        st = self.service.last_status
        name = (st.model_name if st is not None else "") or "offline"
        dlg = ModelDialog(name, st.device if st is not None else "", self.window)
        dlg.model_chosen.connect(self.switch)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.destroyed.connect(lambda: setattr(self, "dialog", None))
        self.dialog = dlg
        self.settings.set_first_run_seen()
        dlg.show()

    def pick_checkpoint(self) -> None:
        self.show_dialog()
        if self.dialog is not None:
            self.dialog.pick_checkpoint()

    def switch(self, choice: ModelChoice) -> None:
        """Re-index the library's folders with ``choice``; searches go on meanwhile."""
        if self.service.read_only:
            return
        self._switching_to = choice
        self.notify(
            Level.INFO,
            f"Re-indexing your photos with {choice.name}. Searches keep using the current model until it is done.",
            key="switch",
        )
        model_file = Path(choice.model_file) if choice.model_file else None
        config = EngineConfig(library=self.service.paths.library_for(choice), model=choice.name, model_file=model_file)
        self.service.switch_model(config, list(self.folders()))

    def _on_switched(self, status: LibraryStatus) -> None:
        choice, self._switching_to = self._switching_to, None
        if choice is not None:
            self.service.paths.set_current_model(choice)
            self.settings.set_model(choice.name, choice.model_file)
        self.notify(Level.INFO, f"Now searching with {status.model_name or 'the new model'}.", key="switch")

    def _on_failed(self, op: OperationFailure) -> None:
        if op.what is Operation.MODEL:
            self._switching_to = None
