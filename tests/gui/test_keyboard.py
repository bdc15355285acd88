"""The keyboard in the photo grid: Tab from the query reaches the grid, Space opens and closes the preview."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.gui.conftest import search, wait_idle

pytestmark = pytest.mark.slow


def test_tab_space_and_arrows(qtbot, make_window, library_copy):
    window = make_window()
    wait_idle(qtbot, window)
    view = window.search_view
    found = search(qtbot, window, "a cat")
    assert found[0] == "cat.jpg"
    field = view.query_bar.field
    field.setFocus()
    qtbot.waitUntil(field.hasFocus)
    # Tab goes straight to the results, past the filter buttons.
    qtbot.keyClick(field, Qt.Key.Key_Tab)
    qtbot.waitUntil(view.results_view.hasFocus)
    assert view.results_view.current_row() == 0
    # Space opens the preview on the photo in focus...
    qtbot.keyClick(view.results_view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: view.preview is not None and view.preview.isVisible())
    preview = view.preview
    assert preview.current_item().name == "cat.jpg"
    preview.activateWindow()  # (a window manager gives it the keyboard; the offscreen platform is told)
    qtbot.waitUntil(preview.isActiveWindow)
    # ...the arrows go to the next photo and back...
    qtbot.keyClick(preview, Qt.Key.Key_Right)
    assert preview.current_item().name == found[1]
    qtbot.keyClick(preview, Qt.Key.Key_Left)
    assert preview.current_item().name == "cat.jpg"
    # ...and Space closes it again.
    qtbot.keyClick(preview, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not preview.isVisible())
