"""One window: `lookalike PHOTO` while the window runs hands the photo to it and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _second_start(*args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "desktop"), str(REPO), env.get("PYTHONPATH", "")])
    # Should the hand-over fail, the second start would open a window of its own: make it
    # quit after its first paint, so the test fails on the assertions instead of hanging.
    env["LOOKALIKE_QUIT_AFTER_PAINT"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "lookalike", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _listen(window, home: Path):
    from lookalike.core.paths import app_paths
    from lookalike.gui.instance import InstanceServer, server_name

    assert app_paths().data.is_relative_to(home)
    server = InstanceServer(server_name(app_paths().data), window)
    server.photos_received.connect(window.take_from_another_start)
    assert server.listen()
    return server


def test_a_second_start_hands_its_photo_to_the_running_window(qtbot, make_window, library_copy, gui_photos, home):
    window = make_window()
    wait_idle(qtbot, window)
    server = _listen(window, home)
    bar = window.search_view.query_bar
    bar.set_text("a car")  # what the window was searching before
    bar.add_image(str(gui_photos / "coffee.jpg"), submit=False)
    received: list[list[str]] = []
    server.photos_received.connect(received.append)

    photo = gui_photos / "cat.jpg"
    proc = _second_start(str(photo))
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=60_000)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert received == [[str(photo)]]
    # The running window searches that photo alone: the old text and image are gone.
    assert bar.text() == ""
    assert [t.path for t in bar.images()] == [str(photo)]
    qtbot.waitUntil(lambda: window.search_view.results_model.rowCount() > 0 and not window.service.searching)
    m = window.search_view.results_model
    assert m.item(0).name == "cat.jpg"


def test_a_second_start_without_photos_opens_no_second_window(qtbot, make_window, library_copy, home):
    window = make_window()
    server = _listen(window, home)
    received: list[list[str]] = []
    server.photos_received.connect(received.append)
    proc = _second_start()
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=60_000)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert received == [[]]  # it asked the running window to come forward, nothing else


def test_a_socket_left_by_a_crashed_window_does_not_stop_the_next(qtbot, tmp_path):
    from PySide6.QtNetwork import QLocalServer

    from lookalike.gui.instance import InstanceServer, hand_over, server_name

    name = server_name(tmp_path)
    # A crashed window leaves its socket file behind: nobody answers on it.
    dead = QLocalServer()
    dead.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
    assert dead.listen(name)
    dead.close()
    assert hand_over(name, []) is False  # no window runs: this start opens one
    server = InstanceServer(name)
    assert server.listen()
    server.close()
