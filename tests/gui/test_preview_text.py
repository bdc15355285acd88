"""The preview shows the text read in a photo, selectable, with "Copy text"; a text:
search shows the lines it matched. The text rows are written as the text stage writes
them (tests/integration/test_text_stage.py reads real photos with the OCR)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from lookalike.core.search import SearchEngine
from lookalike.core.text import store
from lookalike.core.text.ocr import Line, TextRead
from tests.gui.conftest import search, wait_idle

pytestmark = pytest.mark.slow


def _write_text(library, photo, lines) -> None:
    with SearchEngine.open(library, writer=True) as engine:
        pid = engine.catalog.photo_by_path(photo).id
        with engine.catalog.transaction() as conn:
            store.write(conn, [pid], [TextRead(tuple(Line(t, 0.9) for t in lines))])


def test_preview_shows_the_photos_text_and_what_a_text_search_matched(qtbot, make_window, library_copy, gui_photos):
    _write_text(library_copy, gui_photos / "coffee.jpg", ["LUNA BAKERY", "Espresso 2.40"])
    window = make_window()
    wait_idle(qtbot, window)
    assert search(qtbot, window, "text:bakery") == ["coffee.jpg"]
    model = window.search_view.results_model
    assert model.data(model.index(0), Qt.ItemDataRole.ToolTipRole).endswith("Text: LUNA BAKERY")  # the tile
    window.search_view.open_preview(0)
    panel = window.search_view.preview.text_panel
    qtbot.waitUntil(panel.isVisible, timeout=10_000)
    assert panel.text() == "LUNA BAKERY\nEspresso 2.40"
    assert panel.matched_label.text() == "Matched: LUNA BAKERY"
    assert panel.text_view.isReadOnly()
    assert panel.text_view.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    qtbot.mouseClick(panel.copy_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == "LUNA BAKERY\nEspresso 2.40"
    window.search_view.preview.close()
    # a photo with no text read: no panel
    assert "cat.jpg" in search(qtbot, window, "a cat")
    row = window.search_view.results_model.row_of(str(gui_photos / "cat.jpg"))
    window.search_view.open_preview(row)
    panel = window.search_view.preview.text_panel
    qtbot.waitUntil(lambda: panel.answered == str(gui_photos / "cat.jpg"), timeout=10_000)
    assert not panel.isVisible()
    window.search_view.preview.close()
