"""The window's parts on their own: thumbnails, the result model and grid, the query bar."""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image

from lookalike.gui.results import ResultItem, ResultsModel, ResultsView, SortOrder, TileDelegate
from lookalike.gui.thumbnails import ThumbnailLoader, ThumbnailStore, file_uri, thumbnail_name, thumbnails_root


def _photo(path: Path, size=(640, 480), colour=(200, 40, 40)) -> Path:
    Image.new("RGB", size, colour).save(path, quality=90)
    return path


# -- thumbnails: the freedesktop.org cache ------------------------------------------------


def test_thumbnail_written_where_file_managers_look(qapp, tmp_path):
    photo = _photo(tmp_path / "my photo #1.jpg")
    store = ThumbnailStore()
    img = store.make(photo, 256)
    assert img is not None and max(img.width(), img.height()) == 256
    # $XDG_CACHE_HOME/thumbnails/large/md5(uri).png, with the spec's keys.
    import hashlib

    uri = file_uri(photo)
    assert uri.startswith("file:///") and "my%20photo%20%231.jpg" in uri
    target = thumbnails_root() / "large" / (hashlib.md5(uri.encode()).hexdigest() + ".png")
    assert target.is_file()
    png = Image.open(target)
    assert png.text["Thumb::URI"] == uri
    assert int(png.text["Thumb::MTime"]) == int(photo.stat().st_mtime)
    assert target.stat().st_mode & 0o777 == 0o600


def test_thumbnail_from_a_file_manager_is_reused_and_stale_one_ignored(qapp, tmp_path):
    photo = _photo(tmp_path / "a.jpg")
    # A file manager's thumbnail: a blue square, tagged for this file.
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Thumb::URI", file_uri(photo))
    info.add_text("Thumb::MTime", str(int(photo.stat().st_mtime)))
    target = thumbnails_root() / "normal" / thumbnail_name(photo)
    target.parent.mkdir(parents=True)
    Image.new("RGB", (128, 96), (0, 0, 255)).save(target, pnginfo=info)
    store = ThumbnailStore()
    img = store.lookup(photo, 100)
    assert img is not None and img.pixelColor(5, 5).blue() == 255
    # The photo changes: the old thumbnail no longer counts.
    import os

    os.utime(photo, (time.time() + 100, time.time() + 100))
    assert store.lookup(photo, 100) is None


def test_unreadable_photo_gets_a_failure_marker(qapp, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    store = ThumbnailStore()
    assert store.make(bad, 128) is None
    assert store.failed_before(bad)


def test_loader_loads_in_the_background(qtbot, tmp_path):
    photos = [_photo(tmp_path / f"p{i}.jpg", colour=(i * 20, 100, 50)) for i in range(6)]
    loader = ThumbnailLoader(pixels=128)
    try:
        for p in photos:
            assert loader.get(str(p)) is None  # queued, not decoded on this thread
        qtbot.waitUntil(lambda: all(loader.peek(str(p)) is not None for p in photos), timeout=10_000)
        assert loader.get(str(photos[0])).width() == 128
    finally:
        loader.stop()


# -- the result model and grid --------------------------------------------------------------


def _items(n: int) -> list[ResultItem]:
    return [
        ResultItem(
            rank=i + 1,
            path=f"/photos/{i:05d}.jpg",
            score=1.0 - i / (n + 1),
            taken=(None if i % 7 == 0 else 1_600_000_000 + (i * 7919) % 100_000),
            width=640,
            height=480,
        )
        for i in range(n)
    ]


def test_model_sorts_and_filters(qapp):
    model = ResultsModel()
    model.set_results(_items(50))
    assert model.rowCount() == 50
    assert [model.item(i).rank for i in range(3)] == [1, 2, 3]
    model.set_min_score(0.9)
    assert model.rowCount() == sum(1 for i in _items(50) if i.score >= 0.9)
    assert all(model.item(r).score >= 0.9 for r in range(model.rowCount()))
    model.set_min_score(None)
    model.set_order(SortOrder.DATE)
    dates = [model.item(r).taken for r in range(model.rowCount())]
    dated = [d for d in dates if d is not None]
    assert dated == sorted(dated, reverse=True)
    assert dates[-1] is None  # undated photos last


class _CountingLoader(ThumbnailLoader):
    """A loader that remembers which photos a paint asked it for."""

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.asked: set[str] = set()

    def get(self, path: str):
        self.asked.add(path)
        return super().get(path)


def test_grid_with_ten_thousand_results_paints_only_the_tiles_on_screen(qtbot, tmp_path):
    # (How fast it paints is measured by `lookalike bench`, not here.)
    loader = _CountingLoader(pixels=128, threads=1)
    model = ResultsModel(loader)
    view = ResultsView()
    view.setItemDelegate(TileDelegate(loader, parent=view))
    view.setModel(model)
    view.resize(1000, 700)
    qtbot.addWidget(view)
    view.show()
    model.set_results(_items(10_000))
    qtbot.wait(10)
    view.repaint()
    first_screen = set(loader.asked)
    assert "/photos/00000.jpg" in first_screen and 0 < len(first_screen) < 200
    # Scrolling to the end paints only the tiles on screen on the way.
    for frac in (0.25, 0.5, 0.75, 1.0):
        bar = view.verticalScrollBar()
        bar.setValue(int(bar.maximum() * frac))
        view.viewport().repaint()
    loader.stop()
    assert "/photos/09999.jpg" in loader.asked
    assert len(loader.asked) < 1000, len(loader.asked)  # a non-virtualised grid asks for all 10,000
    assert model.rowCount() == 10_000


def test_model_drags_file_urls(qapp):
    model = ResultsModel()
    model.set_results(_items(3))
    mime = model.mimeData([model.index(1)])
    assert [u.toLocalFile() for u in mime.urls()] == ["/photos/00001.jpg"]


# -- the query bar ----------------------------------------------------------------------------


def test_error_marks_the_offending_place(qtbot):
    from lookalike.gui.querybar import QueryBar

    bar = QueryBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.set_text("dog + + cat")
    bar.show_error("expected a term after '+'", 6)
    assert bar.error() == ("expected a term after '+'", 6)
    assert bar.error_label.isVisible()
    assert "column 7" in bar.error_label.text()
    assert bar.field.marked() == (6, 1)
    # Typing clears it.
    qtbot.keyClicks(bar.field, "x")
    assert bar.error() is None and not bar.error_label.isVisible()


def test_chips_toggle_and_remove(qtbot, tmp_path):
    from lookalike.gui.querybar import QueryBar

    a = _photo(tmp_path / "a.jpg")
    b = _photo(tmp_path / "b.jpg")
    bar = QueryBar()
    qtbot.addWidget(bar)
    bar.show()
    with qtbot.waitSignal(bar.submitted):
        bar.add_image(str(a))
    bar.add_image(str(b), -1.0)
    assert [(t.path, t.weight) for t in bar.images()] == [(str(a), 1.0), (str(b), -1.0)]
    assert bar.chip(str(b)).sign.text() == "−"
    bar.chip(str(a)).sign.click()
    assert bar.images()[0].weight == -1.0
    bar.chip(str(b)).remove.click()
    assert [t.path for t in bar.images()] == [str(a)]


def test_escape_clears_text_then_images(qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from lookalike.gui.querybar import QueryBar

    bar = QueryBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.add_image(str(_photo(tmp_path / "a.jpg")), submit=False)
    bar.set_text("a cat")
    qtbot.keyClick(bar.field, Qt.Key.Key_Escape)
    assert bar.text() == "" and len(bar.images()) == 1
    qtbot.keyClick(bar.field, Qt.Key.Key_Escape)
    assert bar.images() == []


def test_throttle_passes_about_ten_a_second(qtbot):
    from lookalike.gui.workers import Throttle

    seen = []
    t = Throttle(100)
    t.fired.connect(seen.append)
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 0.5:
        t.push(i)
        i += 1
        qtbot.wait(1)
    t.flush()
    assert i > 50
    assert 3 <= len(seen) <= 9
    assert seen[-1] == i - 1  # the newest value always arrives


# -- resources ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_packaged_icons_render_crisp(qapp):
    from PySide6.QtCore import QSize

    from lookalike.gui import icons

    folder = ROOT / "desktop" / "lookalike" / "resources" / "icons"
    names = sorted(p.stem for p in folder.glob("*.svg"))
    assert "app" in names and len(names) > 20
    for name in names:
        ic = icons.icon(name)
        assert not ic.isNull(), name
        pm = ic.pixmap(QSize(24, 24), 2.0)  # a HiDPI screen gets twice the pixels, not a blow-up
        assert pm.width() == 48, name


def test_every_icon_the_code_names_exists():
    import re

    folder = ROOT / "desktop" / "lookalike" / "resources" / "icons"
    have = {p.stem for p in folder.glob("*.svg")}
    code = "\n".join(p.read_text() for p in (ROOT / "desktop" / "lookalike" / "gui").glob("*.py"))
    used = set(re.findall(r'icons\.(?:apply\([^,]+,|icon\(|pixmap\()\s*"([\w-]+)"', code))
    assert used and used <= have, used - have


def test_app_icon_desktop_file_and_metainfo_agree():
    import configparser
    import xml.etree.ElementTree as ET

    from lookalike import APP_ID

    packaged = ROOT / "desktop" / "lookalike" / "resources" / "icons" / "app.svg"
    installed = ROOT / "resources" / "icons" / f"{APP_ID}.svg"
    assert packaged.read_bytes() == installed.read_bytes()
    desktop = configparser.ConfigParser(interpolation=None)
    desktop.optionxform = str
    desktop.read(ROOT / "resources" / f"{APP_ID}.desktop")
    entry = desktop["Desktop Entry"]
    assert entry["Icon"] == APP_ID and entry["Exec"].startswith("lookalike-desktop")
    meta = ET.parse(ROOT / "resources" / f"{APP_ID}.metainfo.xml").getroot()
    assert meta.findtext("id") == APP_ID
    assert meta.find("launchable").text == f"{APP_ID}.desktop"
