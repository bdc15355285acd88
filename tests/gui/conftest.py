"""Fixtures for the window's tests: real photos, a library indexed once, windows that close."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

# Dates written into the test photos' EXIF (so "sort by date" has something to sort).
TAKEN = {
    "cat": datetime(2021, 5, 1, 10, 0, 0),
    "coffee": datetime(2023, 1, 2, 8, 30, 0),
    "rocket": datetime(2019, 7, 16, 13, 32, 0),
    "astronaut": datetime(2018, 3, 3, 9, 0, 0),
    "motorcycle": datetime(2022, 9, 9, 17, 45, 0),
    "clock": datetime(2020, 12, 24, 23, 59, 0),
    "coins": datetime(2017, 6, 6, 6, 6, 6),
    "galaxies": datetime(2024, 2, 29, 22, 0, 0),
}


@pytest.fixture(scope="session")
def gui_photos(tmp_path_factory, sample_dir) -> Path:
    """The sample photos, each with an EXIF DateTime of its own (read-only by convention)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("gui-photos") / "photos"
    folder.mkdir()
    for src in sorted(sample_dir.glob("*.jpg")):
        img = Image.open(src)
        exif = Image.Exif()
        exif[0x0132] = TAKEN[src.stem].strftime("%Y:%m:%d %H:%M:%S")
        img.save(folder / src.name, quality=92, exif=exif.tobytes())
    return folder


@pytest.fixture(scope="session")
def indexed_library(tmp_path_factory, gui_photos) -> Path:
    """A library holding ``gui_photos``, built once with the offline model (through the engine)."""
    from lookalike.core.engine import SearchEngine

    lib = tmp_path_factory.mktemp("gui-library") / "library"
    with SearchEngine.open(lib, writer=True, create=True) as engine:
        engine.index([gui_photos])
    return lib


@pytest.fixture
def home(_private_home) -> Path:
    return _private_home


@pytest.fixture
def library_copy(home, indexed_library) -> Path:
    """This test's default library: a copy of the indexed one."""
    dst = home / "data" / "library"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(indexed_library, dst, ignore=shutil.ignore_patterns("writer.*"))
    return dst


@pytest.fixture
def make_window(qtbot):
    """Open the window the way ``lookalike`` does (services, window, start); closed after the test."""
    windows = []

    def make(wait_open: bool = True, weaker_shown: bool = True, **kwargs):
        """``weaker_shown``: the grid shows every ranked result, not only the answer's matches
        (the user's "Show weaker results"; the tests of ranking look at the whole list)."""
        from lookalike import app as appmod

        appmod.ensure_application()
        services = appmod.build_services(**kwargs)
        window = appmod.build_window(services)
        window.search_view.results_model.set_weaker_shown(weaker_shown)
        qtbot.addWidget(window)
        window.show()
        window.start()
        if wait_open:
            qtbot.waitUntil(lambda: window.service.is_open, timeout=30_000)
        windows.append(window)
        return window

    yield make
    for w in windows:
        if w.isVisible():
            w.close()


def wait_idle(qtbot, window, timeout: int = 120_000) -> None:
    """Until the model is loaded, nothing is indexing and no search is running."""
    qtbot.waitUntil(
        lambda: window.service.model_ready and not window.service.busy and not window.service.searching, timeout=timeout
    )


def search(qtbot, window, text: str, timeout: int = 60_000) -> list[str]:
    """Type ``text`` into the field, press Enter, wait for the grid; the file names, best first."""
    from PySide6.QtCore import Qt

    field = window.search_view.query_bar.field
    field.clear()
    qtbot.keyClicks(field, text)
    before = window.service.latest_search_id
    qtbot.keyClick(field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.service.latest_search_id > before and not window.service.searching, timeout=timeout)
    qtbot.wait(20)
    return names(window)


def names(window) -> list[str]:
    m = window.search_view.results_model
    return [m.item(r).name for r in range(m.rowCount())]


def wait_results(qtbot, window, timeout: int = 60_000) -> list[str]:
    qtbot.waitUntil(
        lambda: not window.service.searching and window.search_view.results_model.rowCount() > 0, timeout=timeout
    )
    qtbot.wait(20)
    return names(window)
