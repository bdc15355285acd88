"""The People view: faces of the test photos grouped, named, merged, shown; face boxes in the preview."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.gui.conftest import names, search, wait_idle
from tests.photos import FACES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def people_source(tmp_path_factory, offline_encoder) -> tuple[Path, Path]:
    """The face test photos indexed once: (photos, library) to copy."""
    from lookalike.core.search import SearchEngine

    if not (FACES / "labels.json").exists():
        pytest.skip(f"the face test photos are not at {FACES}")
    root = tmp_path_factory.mktemp("people-gui")
    photos = root / "photos"
    for rel in json.loads((FACES / "labels.json").read_text())["photos"]:
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(FACES / rel, photos / rel)
    with SearchEngine.open(root / "lib", writer=True, create=True) as engine:
        engine.index([photos])
    return photos, root / "lib"


@pytest.fixture
def people_library(home, people_source) -> Path:
    photos, lib = people_source
    dst = home / "data" / "library"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(lib, dst, ignore=shutil.ignore_patterns("writer.*"))
    return photos


def _open(qtbot, make_window):
    window = make_window()
    wait_idle(qtbot, window)
    window.activate_view("people")
    view = next(v for v in window.views if v.key == "people")
    qtbot.waitUntil(lambda: view.list.count() > 0 and not view.busy, timeout=60_000)
    return window, view


def _labels(view) -> list[str]:
    return [view.list.item(r).text().split("\n")[0] for r in range(view.list.count())]


def test_people_show_as_faces_and_a_click_shows_their_photos(qtbot, make_window, people_library):
    window, view = _open(qtbot, make_window)
    assert view.list.count() == 5  # six people, one of them seen once (hidden until asked)
    first = view.list.item(0)
    assert first.text().endswith("6 photos")
    qtbot.waitUntil(lambda: len(view.crops) >= 5, timeout=60_000)
    assert not first.icon().isNull()
    window.search_view.query_bar.set_text("a car")  # what was searched before
    view._on_person_clicked(first)
    qtbot.waitUntil(lambda: window.content.currentWidget() is window.search_view, timeout=10_000)
    # The person replaces the query: the field says whose photos these are, not "a car".
    person = view.people[0]
    assert window.search_view.query_bar.text() == f"@{person.name or person.id}"
    shown = set(names(window))
    assert shown == {
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "obama4.jpg",
        "obama_partial_face.jpg",
        "obama_and_biden.jpg",
    }
    qtbot.waitUntil(lambda: view.faces.count() == 6, timeout=30_000)
    view.show_all.setChecked(True)
    qtbot.waitUntil(lambda: view.list.count() == 6, timeout=30_000)


def test_rename_inline_names_come_first_and_drag_merges(qtbot, make_window, people_library, home):
    window, view = _open(qtbot, make_window)
    # the group of three Biden faces (unnamed now, so after the larger groups)
    biden = next(p for p in view.people if any(x.name == "biden.jpg" for x in p.photos))
    view.start_rename(biden.id)
    editor_item = view.item_of(biden.id)
    editor_item.setText("Joe Biden")  # what the inline editor commits
    qtbot.waitUntil(lambda: _labels(view)[:1] == ["Joe Biden"], timeout=30_000)
    kit = next(p for p in view.people if any(x.name == "kit1.jpg" for x in p.photos))
    rose = next(p for p in view.people if any(x.name == "rose1.jpg" for x in p.photos))
    view.confirm_merge = lambda s, t: True
    view.list.merge_requested.emit(kit.id, rose.id)  # what dropping Kit onto Rose asks for
    qtbot.waitUntil(lambda: view.list.count() == 4 and not view.busy, timeout=30_000)
    merged = view.person_info(rose.id)
    assert merged is not None and merged.faces == 7
    view.hide_person(rose.id)
    qtbot.waitUntil(lambda: view.list.count() == 3 and not view.busy, timeout=30_000)
    from lookalike.core.search import SearchEngine

    window.close()
    with SearchEngine.open(home / "data" / "library") as engine:
        listed = {p.name: p.faces for p in engine.people().people(include_hidden=True) if p.name}
    assert listed == {"Joe Biden": 3}


def test_not_this_person_and_this_is(qtbot, make_window, people_library):
    window, view = _open(qtbot, make_window)
    obama = view.people[0]
    view._on_person_clicked(view.item_of(obama.id))
    qtbot.waitUntil(lambda: view.faces.count() == 6, timeout=30_000)
    face_id, kind, person = (
        view.faces.item(5).data(view.faces.item(5).data.__self__ and 0 or 0)
        if False
        else (view.faces.item(5).data(__import__("lookalike.gui.views.people", fromlist=["FaceRole"]).FaceRole))
    )
    assert kind == "face" and person == obama.id
    view.reject_face(face_id, obama.id)
    qtbot.waitUntil(lambda: view.person_info(obama.id) and view.person_info(obama.id).faces == 5, timeout=30_000)
    view.ask_name = lambda title, current="": "Barack Obama"
    view.name_face(face_id)
    qtbot.waitUntil(
        lambda: any(p.name == "Barack Obama" and p.faces == 6 for p in view.people) and not view.busy, timeout=30_000
    )


def test_preview_draws_face_boxes_and_a_click_names_the_face(qtbot, make_window, people_library):
    window, view = _open(qtbot, make_window)
    window.activate_view("search")
    got = search(qtbot, window, "a man in a suit")
    row = got.index("obama_and_biden.jpg")
    sv = window.search_view
    sv.open_preview(row)
    preview = sv.preview
    qtbot.waitUntil(lambda: preview is not None and len(preview.canvas.faces()) == 3, timeout=30_000)
    left = preview.canvas.faces()[0]
    assert left.name is None
    preview.ask_face_name = lambda current: "Joe Biden"
    qtbot.waitUntil(lambda: not preview.canvas.face_rect(left).isEmpty(), timeout=10_000)
    from PySide6.QtCore import Qt

    qtbot.mouseClick(preview.canvas, Qt.MouseButton.LeftButton, pos=preview.canvas.face_rect(left).center().toPoint())
    qtbot.waitUntil(lambda: preview.canvas.faces() and preview.canvas.faces()[0].name == "Joe Biden", timeout=30_000)
    window.activate_view("people")
    qtbot.waitUntil(lambda: "Joe Biden" in _labels(view), timeout=30_000)
