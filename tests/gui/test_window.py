"""The window, end to end, on the real offline model and real photos."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.gui.conftest import TAKEN, names, search, wait_idle, wait_results

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Function.*QDrag.*deprecated:DeprecationWarning")]


def _tile_center(window, row: int) -> QPoint:
    view = window.search_view.results_view
    return view.visualRect(window.search_view.results_model.index(row)).center()


def _no_message_boxes() -> bool:
    return not any(isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets())


def test_add_folder_index_and_search_by_text(qtbot, make_window, gui_photos, tmp_path):
    photos = tmp_path / "my photos"
    import shutil

    shutil.copytree(gui_photos, photos)
    window = make_window()
    assert window.current_page() == "welcome"
    window.add_folders([str(photos)])
    qtbot.waitUntil(lambda: window.indexing_bar.isVisible(), timeout=10_000)
    wait_idle(qtbot, window)
    qtbot.waitUntil(
        lambda: bool(window.folders_panel.rows()) and window.folders_panel.rows()[0].photos == 8, timeout=10_000
    )
    assert not window.indexing_bar.isVisible()
    qtbot.waitUntil(lambda: "8 photos in 1 folder" in window.library_label.text(), timeout=10_000)
    assert "offline" in window.model_button.text() and "cpu" in window.model_button.text()

    result = search(qtbot, window, "a cat")
    assert result[0] == "cat.jpg"
    assert window.current_page() == "results"
    assert "match" in window.search_view.count_label.text() and "“a cat”" in window.search_view.count_label.text()
    assert search(qtbot, window, "a cup of coffee")[0] == "coffee.jpg"
    # Arithmetic in the field: the cat minus coffee still finds the cat, coffee falls to the end.
    ranked = search(qtbot, window, "a cat - a cup of coffee")
    assert ranked[0] == "cat.jpg" and ranked.index("coffee.jpg") >= 6


def _drop(window, mime: QMimeData) -> None:
    pos = QPointF(window.width() / 2, window.height() / 2)
    actions = Qt.DropAction.CopyAction | Qt.DropAction.LinkAction
    enter = QDragEnterEvent(pos.toPoint(), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    move = QDragMoveEvent(pos.toPoint(), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, move)
    drop = QDropEvent(pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert drop.isAccepted()


def test_drop_a_photo_runs_an_image_query(qtbot, make_window, library_copy, gui_photos):
    window = make_window()
    wait_idle(qtbot, window)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(gui_photos / "motorcycle.jpg"))])  # text/uri-list
    assert "text/uri-list" in mime.formats()
    _drop(window, mime)
    chips = window.search_view.query_bar.images()
    assert [Path(c.path).name for c in chips] == ["motorcycle.jpg"] and chips[0].weight == 1.0
    assert wait_results(qtbot, window)[0] == "motorcycle.jpg"
    assert window.search_view.results_model.item(0).score > 0.95  # the same photo


def test_drag_from_the_grid_onto_the_window(qtbot, make_window, library_copy):
    window = make_window()
    wait_idle(qtbot, window)
    ranked = search(qtbot, window, "a cat")
    coins = ranked.index("coins.jpg")
    mime = window.search_view.results_model.mimeData(
        [window.search_view.results_model.index(coins)]
    )  # what a drag carries
    _drop(window, mime)
    assert [Path(c.path).name for c in window.search_view.query_bar.images()] == ["coins.jpg"]
    qtbot.waitUntil(lambda: not window.service.searching and names(window)[:1] == ["coins.jpg"], timeout=30_000)


def test_drop_a_folder_adds_it(qtbot, make_window, gui_photos, tmp_path):
    import shutil

    folder = tmp_path / "dropped"
    shutil.copytree(gui_photos, folder)
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    _drop(window, mime)
    qtbot.waitUntil(lambda: [r.path for r in window.folders_panel.rows()] == [str(folder)], timeout=10_000)
    wait_idle(qtbot, window)


def test_paste_an_image_from_the_clipboard(qtbot, make_window, library_copy, gui_photos):
    window = make_window()
    wait_idle(qtbot, window)
    img = QImage(str(gui_photos / "rocket.jpg")).scaledToWidth(300, Qt.TransformationMode.SmoothTransformation)
    QGuiApplication.clipboard().setImage(img)
    window.search_view.query_bar.focus_field()
    qtbot.keyClick(window.search_view.query_bar.field, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(window.search_view.query_bar.images()) == 1, timeout=10_000)
    chips = window.search_view.query_bar.images()
    assert len(chips) == 1 and Path(chips[0].path).name.startswith("pasted-")
    assert window.search_view.query_bar.text() == ""  # the image went into the query, not text into the field
    assert wait_results(qtbot, window)[0] == "rocket.jpg"


def test_paste_a_copied_file(qtbot, make_window, library_copy, gui_photos):
    window = make_window()
    wait_idle(qtbot, window)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(gui_photos / "clock.jpg"))])
    QGuiApplication.clipboard().setMimeData(mime)
    window.search_view.results_view.setFocus()
    qtbot.keyClick(window.search_view.results_view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert wait_results(qtbot, window)[0] == "clock.jpg"


def _context_action(qtbot, window, row: int, text: str):
    view = window.search_view.results_view
    pos = _tile_center(window, row)
    view.customContextMenuRequested.emit(pos)
    menu = window.search_view._context_menu
    assert menu is not None and menu.isVisible()
    action = next(a for a in menu.actions() if a.text().replace("&", "") == text)
    menu.close()
    return action


def test_more_and_less_like_this_change_the_ranking(qtbot, make_window, library_copy):
    window = make_window()
    wait_idle(qtbot, window)
    ranked = search(qtbot, window, "a cat")
    assert ranked[0] == "cat.jpg"
    low = ranked[-1]
    low_rank = ranked.index(low)
    # "More like this" on the last photo: it becomes a + chip and climbs.
    _context_action(qtbot, window, low_rank, "More like this").trigger()
    assert [(Path(c.path).name, c.weight) for c in window.search_view.query_bar.images()] == [(low, 1.0)]
    qtbot.waitUntil(
        lambda: not window.service.searching and names(window) and names(window).index(low) < low_rank, timeout=30_000
    )
    assert names(window)[0] == low  # the photo itself is the best match for text + itself
    # "Less like this" on the cat: it becomes a - chip and falls.
    cat_row = names(window).index("cat.jpg")
    _context_action(qtbot, window, cat_row, "Less like this").trigger()
    chips = {Path(c.path).name: c.weight for c in window.search_view.query_bar.images()}
    assert chips == {low: 1.0, "cat.jpg": -1.0}
    qtbot.waitUntil(
        lambda: not window.service.searching and names(window) and names(window)[-1] == "cat.jpg", timeout=30_000
    )
    # Removing the chips gives the text query back.
    for path in [c.path for c in window.search_view.query_bar.images()]:
        window.search_view.query_bar.chip(path).remove.click()
    qtbot.waitUntil(lambda: not window.service.searching and names(window)[:1] == ["cat.jpg"], timeout=30_000)


def test_preview_opens_on_double_click_and_moves(qtbot, make_window, library_copy, gui_photos):
    window = make_window()
    wait_idle(qtbot, window)
    ranked = search(qtbot, window, "a cat")
    view = window.search_view.results_view
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_tile_center(window, 0))
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=_tile_center(window, 0))
    preview = window.search_view.preview
    assert preview is not None and preview.isVisible()
    assert preview.name_label.text() == "cat.jpg"
    assert preview.path_label.text() == str(gui_photos / "cat.jpg")
    details = preview.details_label.text()
    assert "451 × 300" in details or "×" in details
    assert "2021-05-01" in details and "score 0." in details
    assert preview.position_label.text() == "1 of 8"
    qtbot.waitUntil(lambda: preview.canvas.image() is not None and preview.canvas.image().width() > 300, timeout=10_000)
    qtbot.keyClick(preview, Qt.Key.Key_Right)
    assert preview.name_label.text() == ranked[1] and preview.position_label.text() == "2 of 8"
    assert view.currentIndex().row() == 1  # the grid follows
    qtbot.keyClick(preview, Qt.Key.Key_Left)
    assert preview.name_label.text() == "cat.jpg"
    assert not preview.prev_button.isEnabled()


def test_keyboard_first(qtbot, make_window, library_copy):
    window = make_window()
    wait_idle(qtbot, window)
    window.activateWindow()
    window.search_view.results_view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is window.search_view.query_bar.field
    ranked = search(qtbot, window, "a cat")
    qtbot.keyClick(window.search_view.query_bar.field, Qt.Key.Key_Down)  # into the grid
    assert QApplication.focusWidget() is window.search_view.results_view
    assert window.search_view.results_view.currentIndex().row() == 0
    qtbot.keyClick(window.search_view.results_view, Qt.Key.Key_Right)
    assert window.search_view.results_view.currentIndex().row() == 1
    qtbot.keyClick(window.search_view.results_view, Qt.Key.Key_Return)
    assert window.search_view.preview.isVisible() and window.search_view.preview.name_label.text() == ranked[1]
    window.search_view.preview.close()
    window.search_view.query_bar.focus_field()
    qtbot.keyClick(window.search_view.query_bar.field, Qt.Key.Key_Escape)
    assert window.search_view.query_bar.text() == ""
    assert window.search_view.results_model.rowCount() == 0 and window.current_page() == "message"


def test_copy_path_and_image(qtbot, make_window, library_copy, gui_photos):
    window = make_window()
    wait_idle(qtbot, window)
    search(qtbot, window, "a cat")
    window.search_view.results_view.setFocus()
    window.search_view.results_view.setCurrentIndex(window.search_view.results_model.index(0))
    _context_action(qtbot, window, 0, "Copy path").trigger()
    assert QGuiApplication.clipboard().text() == str(gui_photos / "cat.jpg")
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(window.search_view.results_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)  # copy image
    qtbot.waitUntil(lambda: not QGuiApplication.clipboard().image().isNull(), timeout=10_000)
    assert QGuiApplication.clipboard().image().width() == QImage(str(gui_photos / "cat.jpg")).width()


def test_sort_by_date_and_back(qtbot, make_window, library_copy):
    window = make_window()
    wait_idle(qtbot, window)
    search(qtbot, window, "after:2000")  # filters alone: every photo is a match
    assert window.search_view.results_model.matches() == 8
    window.search_view.sort_combo.setCurrentIndex(window.search_view.sort_combo.findData("date"))
    expected = [f"{k}.jpg" for k, _ in sorted(TAKEN.items(), key=lambda kv: kv[1], reverse=True)]
    assert names(window) == expected
    search(qtbot, window, "a cat")
    window.search_view.sort_combo.setCurrentIndex(window.search_view.sort_combo.findData("score"))
    assert names(window)[0] == "cat.jpg"


def test_parse_error_is_shown_inline(qtbot, make_window, library_copy):
    window = make_window()
    wait_idle(qtbot, window)
    field = window.search_view.query_bar.field
    qtbot.keyClicks(field, "dog + + cat")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    err = window.search_view.query_bar.error()
    assert err is not None
    reason, column = err
    assert column == 6 and "+" in reason
    assert window.search_view.query_bar.error_label.isVisible()
    assert "column 7" in window.search_view.query_bar.error_label.text()
    assert field.marked() == (6, 1)  # the offending '+' is underlined in the field
    assert window.banner.key == "first-run" or not window.banner.isVisible()  # no error banner
    assert _no_message_boxes()
    # A weight out of range points at the weight.
    field.clear()
    qtbot.keyClicks(field, "500*dog")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert window.search_view.query_bar.error()[1] == 0
    # Fixing the query clears the error and searches.
    field.clear()
    assert search(qtbot, window, "a cat")[0] == "cat.jpg"
    assert window.search_view.query_bar.error() is None and not window.search_view.query_bar.error_label.isVisible()


def _many_photos(folder: Path, n: int) -> Path:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True)
    for i in range(n):
        img = Image.new("RGB", (640, 480), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
        d = ImageDraw.Draw(img)
        d.ellipse((50 + i % 200, 60, 300 + i % 200, 400), fill=((i * 13) % 256, 200, 100))
        img.save(folder / f"shot{i:04d}.jpg", quality=85)
    return folder


def test_pause_and_cancel_indexing(qtbot, make_window, tmp_path):
    folder = _many_photos(tmp_path / "many", 300)
    window = make_window()
    wait_idle(qtbot, window)
    outcomes = []
    window.service.indexing_finished.connect(outcomes.append)
    window.add_folders([str(folder)])
    qtbot.waitUntil(lambda: window.service.indexing, timeout=10_000)
    window.indexing_bar.pause_button.click()
    assert window.service.paused and window.indexing_bar.paused
    assert window.indexing_bar.title.text() == "Paused"
    qtbot.wait(300)
    window.indexing_bar.cancel_button.click()
    qtbot.waitUntil(lambda: bool(outcomes), timeout=60_000)
    assert outcomes[0].cancelled
    qtbot.waitUntil(lambda: not window.service.indexing, timeout=10_000)
    assert not window.indexing_bar.isVisible()
    assert "cancelled" in window.statusBar().currentMessage().lower()
    qtbot.waitUntil(lambda: bool(window.folders_panel.rows()), timeout=10_000)
    assert window.folders_panel.rows()[0].photos < 300


def test_search_while_indexing(qtbot, make_window, library_copy, tmp_path):
    folder = _many_photos(tmp_path / "more", 40)
    window = make_window()
    wait_idle(qtbot, window)
    window.add_folders([str(folder)])
    qtbot.waitUntil(lambda: window.service.indexing, timeout=10_000)
    window.service.pause_indexing()  # hold it mid-run: the search must still answer
    ranked = search(qtbot, window, "a cat")
    assert window.service.indexing and ranked[0] == "cat.jpg"
    window.service.resume_indexing()
    wait_idle(qtbot, window)


def test_reopening_restores_folders_query_and_geometry(qtbot, make_window, library_copy, gui_photos):
    window = make_window()
    wait_idle(qtbot, window)
    search(qtbot, window, "a cup of coffee")
    window.resize(720, 520)  # within the offscreen screen (800×600)
    qtbot.wait(50)
    size = window.size()
    window.close()

    again = make_window()
    assert again.search_view.query_bar.text() == "a cup of coffee"
    assert [r.path for r in again.folders_panel.rows()] == [str(gui_photos)]
    assert again.size() == size
    assert "a cup of coffee" in again.search_view.query_bar.history()
    assert wait_results(qtbot, again)[0] == "coffee.jpg"  # the query runs again on its own


def test_library_from_elsewhere_gets_the_model_notice_once(qtbot, make_window, library_copy):
    window = make_window()
    assert window.banner.isVisible() and "1,000 everyday concepts" in window.banner.text()
    window.close()
    again = make_window()
    assert not (again.banner.isVisible() and again.banner.key == "first-run")


def test_query_before_any_folder_says_so(qtbot, make_window):
    window = make_window()
    qtbot.keyClicks(window.search_view.query_bar.field, "a cat")
    qtbot.keyClick(window.search_view.query_bar.field, Qt.Key.Key_Return)
    assert window.banner.isVisible() and "add a folder" in window.banner.text().lower()
    assert _no_message_boxes()


def test_missing_folder_is_a_message_not_a_traceback(qtbot, make_window, tmp_path):
    window = make_window()
    window.add_folders([str(tmp_path / "not here")])
    qtbot.waitUntil(window.banner.isVisible, timeout=10_000)
    assert "no folder" in window.banner.text().lower() and "Traceback" not in window.banner.text()
    assert window.banner.level.value == "error"
    assert _no_message_boxes()


def test_unreadable_photos_are_counted_per_folder(qtbot, make_window, gui_photos, tmp_path):
    import shutil

    folder = tmp_path / "mixed"
    shutil.copytree(gui_photos, folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    window = make_window()
    window.add_folders([str(folder)])
    wait_idle(qtbot, window)
    qtbot.waitUntil(
        lambda: bool(window.folders_panel.rows()) and window.folders_panel.rows()[0].failures == 1, timeout=10_000
    )
    assert "1 unreadable" in window.folders_panel.list.item(0).text()
    window.folders.show_failures(str(folder))
    qtbot.waitUntil(lambda: window.folders.failures_dialog is not None, timeout=10_000)
    from PySide6.QtWidgets import QListWidget

    lst = window.folders.failures_dialog.findChild(QListWidget)
    assert lst.count() == 1 and "broken.jpg" in lst.item(0).text()
    window.folders.failures_dialog.close()


def test_window_opened_while_the_command_line_writes_searches_and_writes_after(
    qtbot, make_window, library_copy, photo_dir
):
    from lookalike.core.store.library import Library

    holder = Library(library_copy, writer=True)  # `lookalike index` updating the library
    try:
        window = make_window()
        assert not window.service.read_only  # it writes when its turn comes
        assert window.banner.isVisible() and "searching still works" in window.banner.text().lower()
        assert window.window_actions.add_folder.isEnabled()
        wait_idle(qtbot, window)
        assert search(qtbot, window, "a cat")[0] == "cat.jpg"
        assert not window.service.engine.library.writer
    finally:
        holder.close()
    # The command line is done: the window's own write takes the lock and lets it go again.
    window.add_folders([str(photo_dir)])
    qtbot.waitUntil(lambda: len(window.folders_panel.rows()) == 2, timeout=30_000)
    wait_idle(qtbot, window)
    assert not window.service.engine.library.writer
    Library(library_copy, writer=True).close()  # nobody holds it now


def test_missing_model_is_a_banner(qtbot, make_window, tmp_path):
    from lookalike.gui.service import EngineConfig

    window = make_window(
        config=EngineConfig(library=tmp_path / "lib", model="clip", model_file=tmp_path / "nowhere.pt")
    )
    qtbot.waitUntil(window.banner.isVisible, timeout=30_000)
    assert "nowhere.pt" in window.banner.text() and "Traceback" not in window.banner.text()
    assert "unavailable" in window.model_button.text()


def test_model_dialog_reports_a_bad_checkpoint(qtbot, make_window, tmp_path):
    window = make_window()
    window.models.show_dialog()
    dlg = window.models.dialog
    assert dlg is not None and dlg.isVisible()
    bad = tmp_path / "clip.pt"
    bad.write_text("this is not a checkpoint")
    dlg.use_checkpoint(str(bad))
    qtbot.waitUntil(dlg.error_label.isVisible, timeout=30_000)
    assert "clip.pt" in dlg.error_label.text()
    assert dlg.isVisible() and dlg.fetch_button.isEnabled()
    dlg.close()


def test_model_dialog_fetch_failure_is_clear(qtbot, make_window, monkeypatch):
    from lookalike.core import encoders
    from lookalike.core.errors import ModelUnavailableError

    def offline(*_a, **_k):
        raise ModelUnavailableError("Cannot download CLIP: no DNS answer; is this machine offline?")

    monkeypatch.setattr(encoders, "load_encoder", offline)
    window = make_window()
    window.models.show_dialog()
    dlg = window.models.dialog
    dlg.fetch_button.click()
    qtbot.waitUntil(dlg.error_label.isVisible, timeout=10_000)
    assert "offline" in dlg.error_label.text()
    dlg.close()


def test_switching_model_reindexes_in_the_background(qtbot, make_window, library_copy, tiny_clip_checkpoint):
    from lookalike.gui.modeldialog import ModelChoice

    window = make_window()
    wait_idle(qtbot, window)
    switched = []
    window.service.model_switched.connect(switched.append)
    window.models.switch(ModelChoice("clip", str(tiny_clip_checkpoint)))
    qtbot.waitUntil(lambda: window.service.indexing, timeout=10_000)
    window.service.pause_indexing()
    # The old index keeps answering while the new one is built.
    assert search(qtbot, window, "a cat")[0] == "cat.jpg"
    assert window.banner.isVisible() and "clip" in window.banner.text().lower()
    window.service.resume_indexing()
    qtbot.waitUntil(lambda: bool(switched), timeout=120_000)
    assert switched[0].model_name == "clip" and switched[0].photos == 8
    qtbot.waitUntil(lambda: "clip" in window.model_button.text(), timeout=10_000)
    assert window.settings.model() == ("clip", str(tiny_clip_checkpoint))
    qtbot.waitUntil(
        lambda: not window.service.searching and window.search_view.results_model.rowCount() == 8, timeout=30_000
    )
    window.close()
    # The next start opens the library built with the new model.
    again = make_window()
    wait_idle(qtbot, again)
    assert "clip" in again.model_button.text()
    assert len(search(qtbot, again, "a cat")) == 8


def test_remove_and_rescan_a_folder(qtbot, make_window, gui_photos, tmp_path):
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(gui_photos, a)
    b.mkdir()
    shutil.copy(gui_photos / "cat.jpg", b / "kitty.jpg")
    window = make_window()
    window.add_folders([str(a), str(b)])
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: sorted(r.photos for r in window.folders_panel.rows()) == [1, 8], timeout=20_000)
    assert set(search(qtbot, window, "a cat")[:2]) == {"cat.jpg", "kitty.jpg"}
    window.folders.remove(str(b))
    qtbot.waitUntil(lambda: [r.path for r in window.folders_panel.rows()] == [str(a)], timeout=10_000)
    assert "kitty.jpg" not in names(window)
    assert "kitty.jpg" not in search(qtbot, window, "a cat")
    # A new photo appears in a; re-scanning that folder finds it.
    shutil.copy(gui_photos / "rocket.jpg", a / "rocket-2.jpg")
    window.folders_panel.select(str(a))
    window.folders_panel.rescan_button.click()
    assert window.service.indexing  # started at once, in the background
    wait_idle(qtbot, window)
    qtbot.waitUntil(
        lambda: bool(window.folders_panel.rows()) and window.folders_panel.rows()[0].photos == 9, timeout=10_000
    )
    assert set(search(qtbot, window, "a rocket on the launch pad")[:2]) == {"rocket.jpg", "rocket-2.jpg"}


def test_photos_given_at_start_are_searched(qtbot, make_window, library_copy, gui_photos):
    from lookalike.app import photos_from_arguments

    args = [QUrl.fromLocalFile(str(gui_photos / "clock.jpg")).toString(), str(gui_photos / "nope.jpg"), "--x"]
    photos = photos_from_arguments(args)
    assert photos == [str(gui_photos / "clock.jpg")]
    window = make_window(wait_open=False)
    window.add_query_images(photos)  # before the library is open, as main() does
    assert wait_results(qtbot, window)[0] == "clock.jpg"


def test_photos_added_on_disk_appear_without_a_rescan(qtbot, make_window, gui_photos, tmp_path):
    import shutil

    folder = tmp_path / "live"
    folder.mkdir()
    shutil.copy(gui_photos / "coffee.jpg", folder / "coffee.jpg")
    window = make_window()
    window.add_folders([str(folder)])
    wait_idle(qtbot, window)
    qtbot.waitUntil(
        lambda: window.service._watcher is not None and window.service._watcher.watched().get(folder) is True,
        timeout=20_000,
    )
    search(qtbot, window, "a cat")
    assert names(window) == ["coffee.jpg"]
    shutil.copy(gui_photos / "cat.jpg", folder / "new cat.jpg")  # e.g. a camera import
    qtbot.waitUntil(lambda: names(window)[:1] == ["new cat.jpg"], timeout=30_000)
    assert window.folders_panel.rows()[0].photos == 2
