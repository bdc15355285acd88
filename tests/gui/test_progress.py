"""The indexing bar names each stage the indexer reports; the library reports commits as they land."""

from __future__ import annotations

import shutil

import pytest

from lookalike.core.progress import Progress, Stage
from lookalike.gui.panels import IndexingBar
from lookalike.gui.service import IndexJob, IndexKind


@pytest.fixture
def bar(qtbot) -> IndexingBar:
    b = IndexingBar()
    qtbot.addWidget(b)
    b.start("Indexing…")
    return b


def test_each_stage_is_shown_by_name(bar):
    bar.update_progress(Progress(Stage.SCAN, 12, None))
    assert bar.title.text() == "Looking for photos…"
    assert bar.detail.text() == "12 files found"
    assert bar.bar.maximum() == 0  # busy: nothing to measure against yet

    bar.update_progress(Progress(Stage.ENCODE, 5, 10, rate=2.5))
    assert bar.title.text() == "Indexing…"
    assert bar.detail.text() == "5 / 10 photos · 2.5/s · ETA 2s"
    assert (bar.bar.value(), bar.bar.maximum()) == (5, 10)

    bar.update_progress(Progress(Stage.FACES, 3, 40))
    assert bar.title.text() == "Finding faces…"
    assert bar.detail.text() == "3 / 40 photos"


def test_a_download_is_counted_in_megabytes(bar):
    bar.update_progress(Progress(Stage.DOWNLOAD, 150_000_000, 600_000_000, rate=10_000_000))
    assert bar.title.text() == "Downloading the model…"
    detail = bar.detail.text()
    assert detail.startswith("150.0 / 600.0 MB · 10.0 MB/s")
    assert "photos" not in detail
    bar.update_progress(Progress(Stage.DOWNLOAD, 2_500_000, None))
    assert bar.detail.text() == "2.5 MB"


def test_paused_wins_over_the_stage(bar):
    bar.set_paused(True)
    bar.update_progress(Progress(Stage.ENCODE, 1, 10))
    assert bar.title.text() == "Paused" and bar.detail.text().endswith("paused")
    bar.set_paused(False)
    bar.update_progress(Progress(Stage.ENCODE, 2, 10))
    assert bar.title.text() == "Indexing…"


def test_a_model_switch_keeps_its_name_while_it_encodes(bar):
    job = IndexJob.switch("clip")
    bar.start(job.title, encode_title=job.title)
    bar.update_progress(Progress(Stage.SCAN, 3, None))
    assert bar.title.text() == "Looking for photos…"
    bar.update_progress(Progress(Stage.ENCODE, 1, 8))
    assert bar.title.text() == "Re-indexing with clip…"


def test_a_stage_the_bar_does_not_know_is_shown_by_its_own_name(bar):
    bar.update_progress(Progress("tagging", 1, 4))
    assert bar.title.text() == "Tagging…"


def test_a_real_run_shows_scanning_then_indexing(qtbot, bar, gui_photos, tmp_path):
    """What the indexer reports, shown by the bar: the scan first, then the photos."""
    from lookalike.core.engine import SearchEngine

    seen: list[Progress] = []
    with SearchEngine.open(tmp_path / "lib", writer=True, create=True) as engine:
        engine.index([gui_photos], progress=seen.append)
    titles = []
    for p in seen:
        bar.update_progress(p)
        if not titles or titles[-1] != bar.title.text():
            titles.append(bar.title.text())
    assert titles[0] == "Looking for photos…"
    assert "Indexing…" in titles
    assert bar.detail.text().startswith("8 / 8 photos")


def test_index_jobs_merge_in_the_queue():
    a, b = IndexJob.of(["/p/a"]), IndexJob.of(["/p/b", "/p/a"])
    assert a.merged(b) == IndexJob.of(["/p/a", "/p/b"])
    assert a.merged(IndexJob.all()).kind is IndexKind.ALL
    assert IndexJob.all().covers("/anything") and not a.covers("/p/b")
    assert b.without("/p/b") == a and a.without("/p/a") is None
    assert IndexJob.switch("clip").title == "Re-indexing with clip…"
    assert IndexJob.all().title == "Re-scanning…" and a.title == "Indexing…"


@pytest.mark.slow
def test_library_size_follows_each_commit(qtbot, make_window, gui_photos, tmp_path):
    """The status bar counts photos while the run goes on (told by the indexer's commits, not polled)."""
    from tests.gui.test_window import _many_photos

    folder = _many_photos(tmp_path / "many", 200)
    shutil.copy(gui_photos / "cat.jpg", folder / "cat.jpg")
    window = make_window()
    during: list[tuple[int, str]] = []  # photos counted mid-run, and what the status bar said then

    def on_status(status) -> None:  # runs after the window's own slot (connected later)
        if window.service.indexing and status.photos > 0:
            during.append((status.photos, window.library_label.text()))

    window.service.status_changed.connect(on_status)
    window.add_folders([str(folder)])
    qtbot.waitUntil(lambda: bool(during), timeout=60_000)
    assert window.service.indexing  # still running: the count came from a commit
    photos, label = during[0]
    assert 0 < photos < 201 and label.startswith(f"{photos:,} photo")
    window.service.cancel_indexing()
    qtbot.waitUntil(lambda: not window.service.indexing, timeout=60_000)
