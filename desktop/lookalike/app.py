"""The composition root of the window: builds the services and hands them to the widgets.

``main()`` shows the window first and opens the library after the first
paint; the engine (and torch with it) loads on a pool thread, so the window
appears at once.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from lookalike import APP_ID, APP_NAME, __version__
from lookalike.core.paths import DEFAULT_MODEL, AppPaths, ModelChoice, app_paths

if TYPE_CHECKING:
    from lookalike.core.search import SearchEngine
    from lookalike.gui.mainwindow import MainWindow
    from lookalike.gui.service import EngineConfig, LibraryService
    from lookalike.gui.settings import Settings
    from lookalike.gui.thumbnails import ThumbnailLoader

log = logging.getLogger("lookalike.app")


@dataclass(frozen=True)
class Services:
    """What the window is built from (tests build their own)."""

    paths: AppPaths
    settings: Settings
    library: LibraryService
    thumbnails: ThumbnailLoader


def _route_qt_messages() -> None:
    qt_log = logging.getLogger("lookalike.qt")
    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }

    def handler(mode, context, message) -> None:
        qt_log.log(levels.get(mode, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


def tune_runtime() -> None:
    """Settings of the interpreter that keep the window responsive while workers run."""
    # Hand the GIL to the GUI thread sooner when workers run Python code (default 5 ms).
    sys.setswitchinterval(0.001)
    # OpenMP threads (torch's) sleep when idle instead of spinning on cores the GUI needs.
    # Must be set before torch is imported (it is imported later, on a worker thread).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # dlib holds the GIL while it loads and finds faces: the face model runs in a child process.
    os.environ.setdefault("LOOKALIKE_FACE_PROCESS", "1")


def ensure_application(argv: Sequence[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        app = existing
    else:
        QGuiApplication.setDesktopFileName(APP_ID)
        app = QApplication(list(argv) if argv is not None else [sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName(APP_NAME)
    app.setOrganizationDomain("lookalike.github.io")
    from lookalike.gui import icons

    app.setWindowIcon(icons.app_icon())
    return app


def build_services(
    paths: AppPaths | None = None,
    *,
    open_engine: Callable[[EngineConfig, bool], SearchEngine] | None = None,
    config: EngineConfig | None = None,
) -> Services:
    from lookalike.gui.service import EngineConfig, LibraryService, default_open
    from lookalike.gui.settings import Settings
    from lookalike.gui.thumbnails import ThumbnailLoader

    paths = paths or app_paths()
    settings = Settings(paths)
    if config is None:
        # The current model is recorded in the data folder (the command line reads it too);
        # the window's own setting counts only until one is recorded.
        choice = paths.current_model(default=ModelChoice.of(*settings.model()))
        if choice.name == DEFAULT_MODEL:
            config = EngineConfig()  # the default library, with the model it was built with
        else:
            config = EngineConfig(
                library=paths.library_for(choice),
                model=choice.name,
                model_file=Path(choice.model_file) if choice.model_file else None,
            )
    library = LibraryService(paths, config, open_engine=open_engine or default_open)
    screen = QGuiApplication.primaryScreen()
    dpr = screen.devicePixelRatio() if screen is not None else 1.0
    thumbnails = ThumbnailLoader(pixels=int(round(168 * max(1.0, dpr))))
    return Services(paths, settings, library, thumbnails)


def build_window(services: Services) -> MainWindow:
    from lookalike.gui.mainwindow import MainWindow

    window = MainWindow(services.library, services.settings, services.thumbnails)
    services.library.setParent(window)
    services.thumbnails.setParent(window)
    return window


class _FirstPaint(QObject):
    """Calls ``then`` once, after the window has painted for the first time."""

    def __init__(self, window, then: Callable[[], None]) -> None:
        super().__init__(window)
        self.then = then
        self.done = False
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if not self.done and event.type() in (QEvent.Type.Paint, QEvent.Type.UpdateRequest, QEvent.Type.Expose):
            self.done = True
            obj.removeEventFilter(self)
            QTimer.singleShot(0, self.then)
        return False


def photos_from_arguments(args: Sequence[str]) -> list[str]:
    """Photo paths (or file:// URLs) given on the command line, as a file manager passes them."""
    from urllib.parse import unquote, urlparse

    from lookalike.core.imaging import is_photo_name

    out = []
    for a in args:
        if a.startswith("file://"):
            a = unquote(urlparse(a).path)
        if os.path.isfile(a) and is_photo_name(a):
            out.append(os.path.abspath(a))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window on the library under AppPaths (the embedded offline model by default).

    Photos named on the command line (``lookalike-desktop IMG.jpg``, or "Open
    with Lookalike" in a file manager) start an image search.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.DEBUG if os.environ.get("LOOKALIKE_DEBUG") else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
    _route_qt_messages()
    tune_runtime()
    app = ensure_application(argv)
    photos = photos_from_arguments(args)
    paths = app_paths()
    from lookalike.gui.instance import InstanceServer, hand_over, server_name

    name = server_name(paths.data)
    if not os.environ.get("LOOKALIKE_NO_SINGLE_INSTANCE") and hand_over(name, photos):
        # A window already runs on this data folder: it took the photos (and came to the front).
        return 0
    services = build_services(paths)
    window = build_window(services)
    server = InstanceServer(name, window)
    server.photos_received.connect(window.take_from_another_start)
    server.listen()
    window.show()
    if photos:
        window.search_photos(photos)  # searched as soon as the library is open
    _FirstPaint(window, window.start)
    if os.environ.get("LOOKALIKE_QUIT_AFTER_PAINT"):  # a smoke test (packaging): paint once, then quit
        _FirstPaint(window, app.quit)
    QTimer.singleShot(1000, window.start)  # in case no paint event arrives (e.g. minimised)
    rc = app.exec()
    # Let Qt tear down while Python is still alive: the clipboard may hold data we put there
    # (a copied path or image), and deleting it from Qt's static destructors after the
    # interpreter is gone crashes the binding. On X11 the clipboard manager takes it over here.
    if QGuiApplication.platformName() in ("offscreen", "minimal"):
        app.clipboard().clear()  # no desktop to hand it to; Qt would free it too late
    window.deleteLater()
    QApplication.sendPostedEvents()
    if hasattr(app, "shutdown"):
        app.shutdown()
    return rc
