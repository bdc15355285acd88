"""The frame holds views: a view is one class in VIEWS, listed in the sidebar, and can fill the grid."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel, QVBoxLayout

from lookalike.gui import mainwindow
from lookalike.gui.messages import Level
from lookalike.gui.views import PhotoSet, View, ViewContext
from lookalike.gui.views.search import SearchView
from tests.gui.conftest import names, search, wait_idle

pytestmark = pytest.mark.slow


class AlbumView(View):
    """A made-up view, written the way the package docstring says."""

    key = "albums"
    title = "Albums"
    icon = "folder-open"

    def __init__(self, context: ViewContext, parent=None) -> None:
        super().__init__(context, parent)
        QVBoxLayout(self).addWidget(QLabel("Albums", self))
        self.calls: list[str] = []

    def activated(self) -> None:
        self.calls.append("activated")

    def deactivated(self) -> None:
        self.calls.append("deactivated")


def _sidebar_titles(window) -> list[str]:
    lst = window.sidebar.views
    return [lst.item(i).text() for i in range(lst.count())]


def test_a_view_is_one_line_in_the_frame(qtbot, make_window, library_copy, gui_photos, monkeypatch):
    monkeypatch.setattr(mainwindow, "VIEWS", (SearchView, AlbumView))
    window = make_window()
    wait_idle(qtbot, window)
    assert _sidebar_titles(window) == ["Search", "Albums"]
    albums = next(v for v in window.views if isinstance(v, AlbumView))
    assert "&Search" in [a.text() for a in window.menuBar().actions()]

    window.sidebar.select("albums")  # as a click in the sidebar does
    assert window.content.currentWidget() is albums and albums.calls == ["activated"]

    # The view asks the frame to show photos: the grid shows them, under the view's title, without scores.
    paths = [str(gui_photos / "cat.jpg"), str(gui_photos / "clock.jpg")]
    albums.context.show_photos(PhotoSet.of_paths("Summer 2021", paths))
    assert albums.calls == ["activated", "deactivated"]
    assert window.content.currentWidget() is window.search_view
    assert window.sidebar.views.currentItem().text() == "Search"
    assert names(window) == ["cat.jpg", "clock.jpg"]
    assert "Summer 2021" in window.search_view.count_label.text()
    assert not window.search_view.delegate.show_scores

    # Messages go through the frame's one funnel.
    albums.context.notify(Level.WARNING, "That album is empty", key="albums")
    assert window.banner.isVisible() and window.banner.text() == "That album is empty"
    albums.context.dismiss("albums")
    assert not window.banner.isVisible()
    albums.context.notify(Level.STATUS, "3 albums")
    assert window.statusBar().currentMessage() == "3 albums"

    # A view's own work on the core API runs off the GUI thread, reads and writes.
    got: list[tuple[str, int]] = []
    failed: list = []
    service = albums.context.service
    assert service.submit(lambda engine: ("read", engine.status().photos), got.append, failed.append)
    assert service.submit(lambda engine: ("write", len(engine.folders())), got.append, failed.append, write=True)
    qtbot.waitUntil(lambda: len(got) == 2, timeout=10_000)
    assert sorted(got) == [("read", 8), ("write", 1)] and not failed

    # Find (Ctrl+F) from another view brings the search view back, its field focused.
    window.sidebar.select("albums")
    assert window.content.currentWidget() is albums
    window.search_view.act_focus.trigger()
    assert window.content.currentWidget() is window.search_view

    # A search afterwards shows scores again.
    assert search(qtbot, window, "a cat")[0] == "cat.jpg"
    assert window.search_view.delegate.show_scores
