"""The window answers a search: how many photos match, the weaker results collapsed under
them, and a plain sentence with the closest few when none matches (real offline model,
real photos)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from lookalike.core.search.answer import OFFLINE_UNKNOWN
from lookalike.gui.results import CLOSEST, MatchRole
from tests.gui.conftest import TAKEN, names, search, wait_idle

pytestmark = pytest.mark.slow


def _verdicts(window) -> list[bool | None]:
    m = window.search_view.results_model
    return [m.data(m.index(r), MatchRole) for r in range(m.rowCount())]


def test_match_count_and_weaker_results_expand_in_place(qtbot, make_window, library_copy):
    window = make_window(weaker_shown=False)
    wait_idle(qtbot, window)
    sv = window.search_view
    shown = search(qtbot, window, "a cat")
    matches = sv.results_model.matches()
    assert 1 <= matches < 8 and shown[0] == "cat.jpg"
    assert len(shown) == matches and all(v is True for v in _verdicts(window))  # only the matches
    label = sv.count_label.text()
    assert f"<b>{matches}</b> match" in label and "“a cat”" in label
    assert not sv.note_label.isVisible()  # matches need no excuse
    weaker = 8 - matches
    assert sv.weaker_button.isVisible()
    assert sv.weaker_button.text() == f"Show {weaker} weaker result{'s' if weaker != 1 else ''}"

    qtbot.mouseClick(sv.weaker_button, Qt.MouseButton.LeftButton)
    expanded = names(window)
    assert len(expanded) == 8 and expanded[:matches] == shown  # the rest follow the matches in place
    assert _verdicts(window) == [True] * matches + [False] * weaker
    assert sv.weaker_button.text() == "Hide the weaker results"
    m = sv.results_model
    assert "\na match, confidence" in m.data(m.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "\nnot a match" in m.data(m.index(matches), Qt.ItemDataRole.ToolTipRole)
    assert f"<b>{matches}</b> match" in sv.count_label.text()  # the count is still the matches'

    qtbot.mouseClick(sv.weaker_button, Qt.MouseButton.LeftButton)
    assert names(window) == shown


def test_no_match_is_a_sentence_with_the_closest_few(qtbot, make_window, library_copy):
    window = make_window(weaker_shown=False)
    wait_idle(qtbot, window)
    sv = window.search_view
    closest = search(qtbot, window, "a sunset")  # a word the offline model has no kind for: it says so
    assert sv.results_model.matches() == 0
    assert "No matches for “a sunset”" in sv.count_label.text()
    note = sv.note_label.text()
    assert sv.note_label.isVisible() and OFFLINE_UNKNOWN[1:] in note and "they are not matches" in note
    assert len(closest) == CLOSEST and window.current_page() == "results"
    assert _verdicts(window) == [False] * CLOSEST  # marked as not matches
    assert sv.weaker_button.text() == f"Show {8 - CLOSEST} more weaker results"
    qtbot.mouseClick(sv.weaker_button, Qt.MouseButton.LeftButton)
    assert names(window)[:CLOSEST] == closest and len(names(window)) == 8


def test_confidence_control_moves_the_line_and_date_sorts_the_matches(qtbot, make_window, library_copy):
    window = make_window(weaker_shown=False)
    wait_idle(qtbot, window)
    sv, model = window.search_view, window.search_view.results_model
    search(qtbot, window, "a cat")
    at_line = model.matches()
    confidences = [i.confidence for i in model.all_items()]
    assert all(c is None or 0.0 <= c <= 1.0 for c in confidences)
    sv.min_slider.setValue(5)  # "more matches": everything the answer is at least 5% sure of
    assert sv.min_label.text() == "≥ 0.05"
    loose = model.matches()
    assert loose == sum(1 for c in confidences if c is not None and c >= 0.05) and loose >= at_line
    sv.min_slider.setValue(95)
    assert model.matches() == sum(1 for c in confidences if c is not None and c >= 0.95) <= at_line
    sv.min_slider.setValue(5)

    sv.sort_combo.setCurrentIndex(sv.sort_combo.findData("date"))
    taken = [TAKEN[n.removesuffix(".jpg")] for n in names(window)]
    assert len(taken) == loose and taken == sorted(taken, reverse=True)  # the matches, newest first
    qtbot.mouseClick(sv.weaker_button, Qt.MouseButton.LeftButton)
    ranks = [model.item(r).rank for r in range(loose, model.rowCount())]
    assert ranks == sorted(ranks)  # the weaker results keep the search's order after them
