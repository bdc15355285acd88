"""Browse (the search view with no query, and the Browse view), filter chips, and the Concepts view."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from lookalike.core.search.browse import BrowseItem
from lookalike.core.search.model import Filter, FilterKey
from tests.gui.conftest import names, search, wait_idle

pytestmark = pytest.mark.slow

# gui_photos' EXIF dates, newest first (tests/gui/conftest.py TAKEN)
BY_DATE = ["galaxies", "coffee", "motorcycle", "cat", "clock", "rocket", "astronaut", "coins"]


def _rows(model) -> list[str]:
    out = []
    for r in range(model.rowCount()):
        row = model.row(r)
        out.append(row.path.stem if isinstance(row, BrowseItem) else f"[{row}]")
    return out


def test_search_view_browses_by_month_with_filter_chips_and_tags(qtbot, make_window, library_copy):
    """One window (opening one costs a model load): browse, chips, typed filters, the preview's tags."""
    window = make_window()
    wait_idle(qtbot, window)
    sv = window.search_view
    sv.query_bar.set_text("")
    sv.run_search()
    qtbot.waitUntil(lambda: "8 photos from 2017 to 2024" in sv.browse_panel.count_label.text(), timeout=30_000)
    assert sv.stack.currentWidget() is sv.browse_panel
    assert _rows(sv.browse_panel.model) == [
        "[February 2024]", "galaxies", "[January 2023]", "coffee", "[September 2022]", "motorcycle",
        "[May 2021]", "cat", "[December 2020]", "clock", "[July 2019]", "rocket", "[March 2018]", "astronaut",
        "[June 2017]", "coins",
    ]  # fmt: skip

    # a filter typed in the field shows as a chip, and a filter alone lists photos newest first
    got = search(qtbot, window, "after:2021")
    assert got == ["galaxies.jpg", "coffee.jpg", "motorcycle.jpg", "cat.jpg"]
    assert sv.filter_bar.filters() == [Filter(FilterKey.AFTER, "2021")]
    # a chip added to a text query narrows it: the same ranking, only photos of 2019 on
    search(qtbot, window, "a rocket")
    before = window.service.latest_search_id
    sv.filter_bar.add(Filter(FilterKey.AFTER, "2019"))
    qtbot.waitUntil(lambda: window.service.latest_search_id > before and not window.service.searching, timeout=30_000)
    qtbot.wait(50)
    assert sv.query_bar.text() == "a rocket after:2019"
    assert names(window)[0] == "rocket.jpg" and set(names(window)) == {f"{n}.jpg" for n in BY_DATE[:6]}
    # removing the chip takes the filter out of the query
    before = window.service.latest_search_id
    sv.filter_bar.remove(Filter(FilterKey.AFTER, "2019"))
    qtbot.waitUntil(lambda: window.service.latest_search_id > before and not window.service.searching, timeout=30_000)
    assert sv.query_bar.text() == "a rocket" and len(names(window)) == 8
    # a malformed filter points at its column in the field
    sv.query_bar.set_text("a cat year:20x1")
    sv.run_search()
    assert sv.query_bar.error() is not None and sv.query_bar.error()[1] == 11

    # the preview shows a photo's tags
    assert search(qtbot, window, "a cat")[0] == "cat.jpg"
    sv.open_preview(0)
    qtbot.waitUntil(lambda: "Suggested tags:" in sv.preview.tags_label.text(), timeout=30_000)
    assert "cat" in sv.preview.tags_label.text().split("Suggested tags: ")[1].split(", ")
    # the tag field: the photo carries the tag typed, shown as the user's, apart
    sv.preview.tag_field.setText("Chelsea")
    sv.preview.tag_field.returnPressed.emit()
    qtbot.waitUntil(lambda: "Your tags: Chelsea" in sv.preview.tags_label.text(), timeout=30_000)
    assert "cat" in sv.preview.tags_label.text().split("Suggested tags: ")[1].split(", ")
    sv.preview.close()
    search(qtbot, window, "year:2021")
    assert names(window) == ["cat.jpg"] and not sv.delegate.show_scores


def test_browse_and_concepts_views(qtbot, make_window, library_copy, gui_photos, monkeypatch):
    window = make_window()
    wait_idle(qtbot, window)
    window.activate_view("browse")
    view = next(v for v in window.views if v.key == "browse")
    qtbot.waitUntil(lambda: view.model.photos == 8, timeout=30_000)
    view.filter_bar.add(Filter(FilterKey.YEAR, "2022"))
    qtbot.waitUntil(lambda: view.model.photos == 1, timeout=30_000)
    assert _rows(view.model) == ["[September 2022]", "motorcycle"]

    window.activate_view("concepts")
    view = next(v for v in window.views if v.key == "concepts")
    view.teach("space", [str(gui_photos / "galaxies.jpg"), str(gui_photos / "rocket.jpg")])
    # the examples, and the photos it is least sure about, to mark (a refresh may show the
    # examples a moment before the concept is learned: wait for both)
    qtbot.waitUntil(
        lambda: view.list.count() == 1 and view.examples.count() == 2 and view.offered.count() >= 1, timeout=60_000
    )
    assert view.list.item(0).text().startswith("space\n")
    # mark one offered photo wrong: it becomes a counter-example at once
    view.offered.item(0).setSelected(True)
    wrong = view.offered.selected_paths()[0]
    view.mark_selected(False)
    qtbot.waitUntil(lambda: "1 not" in view.heading.text(), timeout=60_000)
    assert any(view.examples.item(i).toolTip() == wrong for i in range(view.examples.count()))
    assert wrong not in [view.offered.item(i).toolTip() for i in range(view.offered.count())]
    # accept a suggestion: it carries the tag (tag:space lists exactly the three)
    view.offered.item(0).setSelected(True)
    view.mark_selected(True)
    qtbot.waitUntil(lambda: "3 photos tagged" in view.heading.text(), timeout=60_000)
    assert "review" in view.ask_label.text() or "nearest" in view.ask_label.text()
    assert len(search(qtbot, window, "tag:space")) == 3
    # the concept is a query term in the search view
    assert search(qtbot, window, "#space")[0] in ("galaxies.jpg", "rocket.jpg")
    window.activate_view("concepts")
    monkeypatch.setattr("lookalike.gui.views.concepts.QInputDialog.getText", lambda *a, **k: ("outer space", True))
    view.rename_current()
    qtbot.waitUntil(
        lambda: view.list.count() == 1 and view.list.item(0).text().startswith("outer space"), timeout=30_000
    )
    monkeypatch.setattr(
        "lookalike.gui.views.concepts.QMessageBox.question", lambda *a, **k: QMessageBox.StandardButton.Yes
    )
    view.delete_current()
    qtbot.waitUntil(lambda: view.list.count() == 0, timeout=30_000)
    # "Teach a concept from these..." on photos selected in the search grid
    window.activate_view("search")
    got = search(qtbot, window, "a cup of coffee")
    sv = window.search_view
    sv.results_view.selectionModel().clearSelection()
    for r in (0, 1):
        sv.results_view.selectionModel().select(
            sv.results_model.index(r), sv.results_view.selectionModel().SelectionFlag.Select
        )
    monkeypatch.setattr("lookalike.gui.views.concepts.QInputDialog.getText", lambda *a, **k: ("mornings", True))
    sv._teach_concept()
    qtbot.waitUntil(lambda: view.list.count() == 1 and view.examples.count() == 2, timeout=60_000)
    assert sorted(view.examples.item(i).text() for i in range(2)) == sorted(got[:2])
    assert all((gui_photos / f"{n}.jpg").exists() for n in BY_DATE)

    # "the selected photos" are those of the grid looked at last: here Browse's one photo,
    # not the two still selected in the search grid behind it
    window.activate_view("browse")
    browse = next(v for v in window.views if v.key == "browse")
    qtbot.waitUntil(lambda: browse.model.photos == 1, timeout=30_000)  # the year:2022 chip is still on
    flag = browse.grid.selectionModel().SelectionFlag.ClearAndSelect
    browse.grid.selectionModel().select(browse.grid.model().index(1, 0), flag)  # row 0 is its month
    assert [p.rsplit("/", 1)[-1] for p in browse.grid.selected_paths()] == ["motorcycle.jpg"]
    assert len(sv.results_view.selected_rows()) == 2
    monkeypatch.setattr("lookalike.gui.views.concepts.QInputDialog.getText", lambda *a, **k: ("rides", True))
    window.activate_view("concepts")
    view.teach_from_selection()
    qtbot.waitUntil(
        lambda: view.list.count() == 2 and view.examples.count() == 1 and "rides" in view.heading.text(),
        timeout=60_000,
    )
    assert view.examples.item(0).text() == "motorcycle.jpg"
