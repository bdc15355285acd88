"""Render the app icon (resources/icons/io.github.lookalike.Lookalike.svg) for each platform.

``python packaging/icons.py OUT`` writes into OUT:

* ``lookalike.ico`` (Windows: 16-256 px in one file),
* ``lookalike.icns`` (macOS),
* ``hicolor/<N>x<N>/apps/io.github.lookalike.Lookalike.png`` (Linux menus that want bitmaps).

Qt's SVG renderer draws the pixels (PySide6 is in the build environment);
Pillow writes the .ico and .icns containers.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "io.github.lookalike.Lookalike"
SVG = ROOT / "resources" / "icons" / f"{APP_ID}.svg"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_png(svg: Path, size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841  (Qt needs one)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"icons: cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def write_icons(out: Path, svg: Path = SVG) -> list[Path]:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    images = {size: Image.open(io.BytesIO(render_png(svg, size))).convert("RGBA") for size in PNG_SIZES}
    written = []
    for size, img in images.items():
        path = out / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        written.append(path)
    ico = out / "lookalike.ico"
    images[256].save(ico, sizes=[(s, s) for s in ICO_SIZES])
    icns = out / "lookalike.icns"
    big = Image.open(io.BytesIO(render_png(svg, 1024))).convert("RGBA")  # 512 px at 2x, drawn, not enlarged
    big.save(icns, append_images=[images[s] for s in (16, 32, 64, 128, 256, 512)])
    return written + [ico, icns]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "icons"
    for p in write_icons(target):
        print(p.relative_to(target))
