"""The command line writes the library while the window is open and idle; the window shows it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _lookalike(qtbot, *args: str) -> subprocess.CompletedProcess:
    """Run `lookalike ARGS` in another process while the window's event loop keeps turning."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "desktop"), str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "lookalike", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=300_000)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_command_line_indexes_and_teaches_while_the_window_is_open(
    qtbot, make_window, library_copy, photo_dir, gui_photos, tmp_path
):
    window = make_window()
    wait_idle(qtbot, window)
    assert window.status_bar.library_label.text().startswith("8 photos in 1 folder")
    assert not window.service.engine.library.writer  # idle: it holds no writer lock

    extra = photo_dir / "more"
    extra.mkdir()
    (photo_dir / "cat.jpg").rename(extra / "another-cat.jpg")
    for p in photo_dir.glob("*.jpg"):
        p.unlink()
    done = _lookalike(qtbot, "index", str(extra), "--quiet")
    assert done.returncode == 0, done.stderr
    # The window sees the command line's change without being told.
    qtbot.waitUntil(lambda: len(window.folders_panel.rows()) == 2, timeout=20_000)
    qtbot.waitUntil(lambda: window.status_bar.library_label.text().startswith("9 photos in 2 folders"), timeout=20_000)

    taught = _lookalike(qtbot, "teach", "kitty", str(gui_photos / "cat.jpg"), str(extra / "another-cat.jpg"))
    assert taught.returncode == 0, taught.stderr
    concepts = next(v for v in window.views if v.key == "concepts")
    window.activate_view(concepts.key)

    def listed() -> list[str]:
        return [concepts.list.item(i).text().split("\n")[0] for i in range(concepts.list.count())]

    qtbot.waitUntil(lambda: "kitty" in listed(), timeout=20_000)

    # And the window still writes after it: its own add takes the lock and lets it go.
    third = tmp_path / "third"
    third.mkdir()
    shutil.copy(gui_photos / "clock.jpg", third / "clock.jpg")
    window.add_folders([str(third)])
    qtbot.waitUntil(lambda: len(window.folders_panel.rows()) == 3, timeout=30_000)
    wait_idle(qtbot, window)
    assert not window.service.engine.library.writer
