"""The frame's actions and its menu bar (each view brings a menu of its own actions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenuBar, QWidget

from lookalike.gui import icons

if TYPE_CHECKING:
    from lookalike.gui.mainwindow import MainWindow
    from lookalike.gui.views import View

Shortcut = QKeySequence.StandardKey | str | None


def make_action(
    owner: QWidget,
    text: str,
    slot: Callable[[], object],
    shortcut: Shortcut = None,
    icon_name: str | None = None,
    context: Qt.ShortcutContext = Qt.ShortcutContext.WindowShortcut,
) -> QAction:
    """An action added to ``owner`` (its shortcut works where ``context`` says)."""
    a = QAction(text, owner)
    if icon_name:
        icons.apply(a, icon_name)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
        a.setShortcutContext(context)
    a.triggered.connect(lambda _c=False: slot())
    owner.addAction(a)
    return a


class WindowActions:
    """What the frame itself can do: folders, indexing, model, help."""

    def __init__(self, w: MainWindow) -> None:
        folders, models = w.folders, w.models
        self.add_folder = make_action(w, "&Add a folder…", folders.choose, QKeySequence.StandardKey.Open, "folder-add")
        self.paste = make_action(w, "&Paste image", w.paste_from_clipboard, QKeySequence.StandardKey.Paste, "paste")
        self.rescan_all = make_action(w, "&Re-scan all folders", folders.rescan_all, "F5", "rescan")
        self.pause = make_action(w, "&Pause / resume indexing", w.toggle_pause, "Ctrl+P", "pause")
        self.cancel = make_action(w, "&Cancel indexing", w.indexing_bar.cancel_requested.emit, None, "stop")
        self.failures = make_action(w, "Show &unreadable files", lambda: folders.show_failures(None), None, "warning")
        self.model = make_action(w, "&Model…", models.show_dialog, None, "model")
        self.quit = make_action(w, "&Quit", w.close, QKeySequence.StandardKey.Quit)
        self.shortcuts = make_action(w, "&Keyboard shortcuts", w.show_shortcuts, "F1")
        self.about = make_action(w, "&About Lookalike", w.show_about)

        # On the folder list: its context menu and its keys.
        fl = w.folders_panel.list
        ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
        self.remove_folder = make_action(
            fl, "&Remove folder", folders.remove_selected, QKeySequence.StandardKey.Delete, "folder-remove", ctx
        )
        self.rescan_folder = make_action(fl, "Re-&scan folder", folders.rescan_selected, None, "rescan", ctx)
        self.folder_failures = make_action(
            fl,
            "Show &unreadable files",
            lambda: folders.show_failures(w.folders_panel.selected()),
            None,
            "warning",
            ctx,
        )
        fl.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    @property
    def writes(self) -> tuple[QAction, ...]:
        """The actions that change the library (off in a read-only window)."""
        return (self.add_folder, self.rescan_all, self.remove_folder, self.rescan_folder)

    def fill_menus(self, bar: QMenuBar, views: Sequence[View]) -> None:
        m = bar.addMenu("&File")
        m.addAction(self.add_folder)
        m.addAction(self.paste)
        m.addSeparator()
        m.addAction(self.quit)
        for view in views:
            actions = view.menu_actions()
            if actions:
                vm = bar.addMenu(f"&{view.title}")
                for a in actions:
                    if a is None:
                        vm.addSeparator()
                    else:
                        vm.addAction(a)
        m = bar.addMenu("&Library")
        for a in (self.rescan_all, self.pause, self.cancel, self.failures):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.model)
        m = bar.addMenu("&Help")
        m.addAction(self.shortcuts)
        m.addAction(self.about)
