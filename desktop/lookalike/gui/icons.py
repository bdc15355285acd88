"""Icons: SVG files shipped in the package, tinted for the current palette.

The SVGs are drawn in a placeholder ink (``#333333``); at load time the ink is
replaced by the palette's text colour (so icons follow a light or dark theme)
and each icon is rendered at several sizes times the screen's device pixel
ratio, so it stays crisp on HiDPI screens.
"""

from __future__ import annotations

import functools
from importlib import resources

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

INK = "#333333"
SIZES = (16, 20, 24, 32, 48, 64)


def _icon_bytes(name: str) -> bytes:
    return resources.files("lookalike").joinpath("resources", "icons", f"{name}.svg").read_bytes()


def _render(svg: bytes, size: int, dpr: float) -> QPixmap:
    renderer = QSvgRenderer(QByteArray(svg))
    px = max(1, round(size * dpr))
    pm = QPixmap(px, px)
    pm.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pm)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, px, px))
    painter.end()
    pm.setDevicePixelRatio(dpr)
    return pm


def _dpr() -> float:
    app = QGuiApplication.instance()
    screens = QGuiApplication.screens() if app else []
    return max([s.devicePixelRatio() for s in screens] + [1.0])


@functools.lru_cache(maxsize=256)
def _cached(name: str, ink: str, disabled_ink: str, dpr: float) -> QIcon:
    raw = _icon_bytes(name)
    icon = QIcon()
    for ink_colour, mode in ((ink, QIcon.Mode.Normal), (disabled_ink, QIcon.Mode.Disabled)):
        svg = raw.replace(INK.encode(), ink_colour.encode())
        for size in SIZES:
            for ratio in sorted({1.0, dpr, 2.0}):
                icon.addPixmap(_render(svg, size, ratio), mode)
    return icon


def icon(name: str, colour: QColor | str | None = None) -> QIcon:
    """The packaged icon ``name`` (file stem), tinted for the palette or ``colour``."""
    pal = QGuiApplication.palette() if QGuiApplication.instance() else QPalette()
    ink = QColor(colour) if colour is not None else pal.color(QPalette.ColorRole.WindowText)
    disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    return _cached(name, ink.name(), disabled.name(), _dpr())


def app_icon() -> QIcon:
    """The application icon (full colour)."""
    raw = _icon_bytes("app")
    icon_ = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        icon_.addPixmap(_render(raw, size, 1.0))
    return icon_


def pixmap(name: str, size: int, colour: QColor | str | None = None) -> QPixmap:
    return icon(name, colour).pixmap(QSize(size, size))


def clear_cache() -> None:
    """Forget tinted icons (after a palette change)."""
    _cached.cache_clear()


PROPERTY = "lookalikeIcon"


def apply(target, name: str, colour: QColor | str | None = None) -> None:
    """Set a packaged icon on a button or action, and remember its name for re-tinting."""
    target.setIcon(icon(name, colour))
    target.setProperty(PROPERTY, name)
    target.setProperty(PROPERTY + "Colour", QColor(colour).name() if colour is not None else "")


def retint(root) -> None:
    """Re-apply every remembered icon under ``root`` (after the palette changed)."""
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QAbstractButton

    clear_cache()
    for obj in [root, *root.findChildren(QAbstractButton), *root.findChildren(QAction)]:
        name = obj.property(PROPERTY)
        if name:
            colour = obj.property(PROPERTY + "Colour") or None
            obj.setIcon(icon(str(name), colour))
