"""The code paths the Windows and macOS packages rely on, run here with the platform switched.

Opening a photo with the system's app, "show in folder" and the data folders
go through Qt and platformdirs; the branches for each platform are checked by
calling them with ``sys.platform`` set to that platform and the system call
recorded instead of made.
"""

from __future__ import annotations

import os
import sys
from pathlib import PureWindowsPath

import pytest
from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices

from lookalike.gui import desktop


@pytest.fixture
def recorded(monkeypatch, qapp):
    calls: list[tuple] = []

    def start_detached(program, arguments=(), *rest):
        calls.append(("start", program, list(arguments)))
        return True

    def open_url(url: QUrl):
        calls.append(("open", url.toLocalFile()))
        return True

    monkeypatch.setattr(QProcess, "startDetached", staticmethod(start_detached))
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(open_url))
    return calls


def test_open_with_the_default_app_hands_qt_a_file_url(recorded, tmp_path):
    photo = tmp_path / "a photo #1.jpg"
    photo.write_bytes(b"x")
    assert desktop.open_with_default_app(str(photo))
    assert recorded == [("open", str(photo))]


def test_show_in_folder_on_macos_reveals_the_file_in_finder(recorded, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "darwin")
    photo = tmp_path / "cat.jpg"
    assert desktop.show_in_folder(str(photo))
    assert recorded == [("start", "open", ["-R", str(photo)])]


def test_show_in_folder_on_windows_selects_the_file_in_explorer(recorded, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "win32")
    photo = tmp_path / "cat.jpg"
    assert desktop.show_in_folder(str(photo))
    assert recorded == [("start", "explorer.exe", ["/select,", os.path.normpath(str(photo))])]


def test_show_in_folder_without_a_file_manager_opens_the_folder(recorded, monkeypatch, tmp_path):
    """Linux with no session bus (as in a bare sandbox): the folder opens instead."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    photo = tmp_path / "cat.jpg"
    assert desktop.show_in_folder(str(photo))
    assert recorded == [("open", str(tmp_path))]


def test_data_folders_on_macos(monkeypatch, tmp_path):
    import platformdirs
    import platformdirs.macos

    from lookalike.core.store.paths import AppPaths

    monkeypatch.delenv("LOOKALIKE_HOME", raising=False)
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)  # platformdirs honours them on macOS too
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(platformdirs, "PlatformDirs", platformdirs.macos.MacOS)
    paths = AppPaths.from_env()
    support = tmp_path / "Library" / "Application Support" / "Lookalike"
    assert paths.data == support and paths.config == support
    assert paths.cache == tmp_path / "Library" / "Caches" / "Lookalike"
    # settings and libraries share the folder on macOS: their names must not meet
    assert paths.default_library.name != "window.ini"


def test_data_folders_on_windows(monkeypatch):
    import platformdirs
    import platformdirs.windows

    from lookalike.core.store.paths import AppPaths

    folders = {"CSIDL_APPDATA": r"C:\Users\ann\AppData\Roaming", "CSIDL_LOCAL_APPDATA": r"C:\Users\ann\AppData\Local"}
    monkeypatch.delenv("LOOKALIKE_HOME", raising=False)
    monkeypatch.setattr(platformdirs.windows, "get_win_folder", lambda name: folders[name])
    monkeypatch.setattr(platformdirs, "PlatformDirs", platformdirs.windows.Windows)
    paths = AppPaths.from_env()
    # appauthor=False: no publisher folder between AppData\Local and Lookalike
    assert PureWindowsPath(paths.data).parts[-2:] == ("Local", "Lookalike")
    assert str(paths.data).startswith(folders["CSIDL_LOCAL_APPDATA"])
    assert str(paths.cache).startswith(folders["CSIDL_LOCAL_APPDATA"]) and "Cache" in str(paths.cache)


def test_data_folders_on_linux_follow_xdg(monkeypatch, tmp_path):
    from lookalike.core.store.paths import AppPaths

    monkeypatch.delenv("LOOKALIKE_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    paths = AppPaths.from_env()
    assert (paths.data, paths.cache, paths.config) == (
        tmp_path / "data" / "Lookalike",
        tmp_path / "cache" / "Lookalike",
        tmp_path / "config" / "Lookalike",
    )
