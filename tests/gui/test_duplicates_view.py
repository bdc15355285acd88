"""The Duplicates view: groups with the keeper marked, trash and undo, keep all, from the window."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel

from tests.gui.conftest import search, wait_idle
from tests.integration.test_duplicates import exif_taken, skimage_photo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dup_photos(tmp_path_factory) -> Path:
    from lookalike.bench.dupset import Alteration, altered, jpeg_bytes

    folder = tmp_path_factory.mktemp("dup-gui") / "photos"
    folder.mkdir()
    cat = skimage_photo("chelsea")
    (folder / "cat.jpg").write_bytes(jpeg_bytes(cat, 95, exif_taken("2020:05:01 10:00:00")))
    for how, name in ((Alteration.RESIZE, "cat_small"), (Alteration.JPEG60, "cat_q60"), (Alteration.WEBP, "cat")):
        data, suffix = altered(cat, how, original_is_png=False)
        (folder / f"{name}{suffix}").write_bytes(data)
    (folder / "coffee.jpg").write_bytes(jpeg_bytes(skimage_photo("coffee"), 92))
    shutil.copy(folder / "coffee.jpg", folder / "coffee (1).jpg")
    (folder / "rocket.jpg").write_bytes(jpeg_bytes(skimage_photo("rocket"), 92))
    return folder


@pytest.fixture
def dup_library(home, dup_photos, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A copy of the photos indexed into this test's default library; the trash in tmp_path."""
    from send2trash import plat_other

    from lookalike.core.search import SearchEngine

    data = tmp_path / "userhome" / ".local" / "share"
    data.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data / "Trash"))
    photos = tmp_path / "photos"
    shutil.copytree(dup_photos, photos)
    with SearchEngine.open(home / "data" / "library", writer=True, create=True) as engine:
        engine.index([photos])
    return photos, data / "Trash"


def _open_view(qtbot, make_window):
    window = make_window()
    wait_idle(qtbot, window)
    window.activate_view("duplicates")
    view = next(v for v in window.views if v.key == "duplicates")
    assert window.content.currentWidget() is view
    qtbot.waitUntil(lambda: not view.busy and bool(view.cards), timeout=60_000)
    return window, view


def test_groups_show_the_keeper_with_its_reason_and_the_photos_facts(qtbot, make_window, dup_library):
    window, view = _open_view(qtbot, make_window)
    kinds = sorted((c.group.kind.value, len(c.tiles)) for c in view.cards)
    assert kinds == [("exact", 2), ("near", 4)]
    cat = next(c for c in view.cards if c.group.kind.value == "near")
    keeper = cat.tiles[0]
    assert keeper.member.path.name == "cat.jpg" and keeper.member is cat.group.keep
    texts = [lbl.text() for lbl in keeper.findChildren(QLabel)]
    assert "KEEP" in texts
    assert any("451×300" in t and "KB" in t and "JPEG" in t and "2020-05-01" in t and "EXIF" in t for t in texts)
    assert any(t == str(dup_library[0]) for t in texts)  # the folder
    reason = [lbl.text() for lbl in cat.findChildren(QLabel) if lbl.text().startswith("Suggested keeper")]
    assert reason and cat.group.reason in reason[0]
    assert {t.member.path.name for t in cat.tiles[1:]} == {"cat_small.jpg", "cat_q60.jpg", "cat.webp"}
    assert all("to trash" in [lbl.text() for lbl in t.findChildren(QLabel)] for t in cat.tiles[1:])
    assert "2 groups" in view.summary.text()


def test_trash_a_group_then_undo_from_the_window(qtbot, make_window, dup_library, monkeypatch):
    photos, trash = dup_library
    window, view = _open_view(qtbot, make_window)
    asked = []
    monkeypatch.setattr(view, "confirm_trash", lambda n, size: asked.append(n) or True)
    cat = next(c for c in view.cards if c.group.kind.value == "near")
    cat.trash_button.click()
    qtbot.waitUntil(lambda: not view.busy and len(view.cards) == 1, timeout=60_000)
    assert asked == [3]
    assert sorted(p.name for p in (trash / "files").iterdir()) == ["cat.webp", "cat_q60.jpg", "cat_small.jpg"]
    assert (photos / "cat.jpg").exists() and not (photos / "cat_small.jpg").exists()
    assert window.banner.isVisible() and "Moved 3 photos to the trash" in window.banner.text()
    assert view.undo_button.isEnabled()
    found = search(qtbot, window, str(photos / "cat.jpg"))
    assert "cat.jpg" in found and not {"cat.webp", "cat_q60.jpg", "cat_small.jpg"} & set(found)

    window.activate_view("duplicates")
    view.undo_button.click()
    qtbot.waitUntil(lambda: not view.busy and len(view.cards) == 2, timeout=60_000)
    assert not list((trash / "files").iterdir())
    assert (photos / "cat_small.jpg").exists()
    assert "Put back 3 photos" in window.banner.text()


def test_keep_all_hides_the_group_for_good(qtbot, make_window, dup_library):
    window, view = _open_view(qtbot, make_window)
    coffee = next(c for c in view.cards if c.group.kind.value == "exact")
    coffee.keep_button.click()
    qtbot.waitUntil(lambda: not view.busy and len(view.cards) == 1, timeout=60_000)
    view.refresh()
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    assert [c.group.kind.value for c in view.cards] == ["near"]
    assert (dup_library[0] / "coffee (1).jpg").exists()  # kept, not touched


def test_a_click_on_a_photo_makes_it_the_keeper_and_is_remembered(qtbot, make_window, dup_library, monkeypatch):
    from PySide6.QtCore import Qt

    photos, trash = dup_library
    window, view = _open_view(qtbot, make_window)
    cat = next(c for c in view.cards if c.group.kind.value == "near")
    small = next(t for t in cat.tiles if t.member.path.name == "cat_small.jpg")
    qtbot.mouseClick(small, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
    cat = next(c for c in view.cards if c.group.kind.value == "near")
    assert cat.group.keep.path.name == "cat_small.jpg" and cat.group.reason == "chosen by you"
    assert cat.tiles[0].member.path.name == "cat_small.jpg"
    assert "KEEP" in [lbl.text() for lbl in cat.tiles[0].findChildren(QLabel)]
    view.refresh()  # found again: still the user's keeper
    qtbot.waitUntil(lambda: not view.busy and bool(view.cards), timeout=60_000)
    cat = next(c for c in view.cards if c.group.kind.value == "near")
    assert cat.group.keep.path.name == "cat_small.jpg"
    monkeypatch.setattr(view, "confirm_trash", lambda n, size: True)
    cat.trash_button.click()
    qtbot.waitUntil(lambda: not view.busy and len(view.cards) == 1, timeout=60_000)
    assert (photos / "cat_small.jpg").exists() and not (photos / "cat.jpg").exists()
    assert "cat.jpg" in {p.name for p in (trash / "files").iterdir()}
