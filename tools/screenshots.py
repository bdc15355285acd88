"""Take screenshots of the window's main states (for looking at it, and for the README).

    Xvfb :99 -screen 0 1400x900x24 &
    DISPLAY=:99 .venv/bin/python -m tools.screenshots OUT_DIR [--dark]

Runs the real app on a private LOOKALIKE_HOME with the sample photos and saves
PNGs: welcome (first run), indexing, text results, image query with chips,
preview, parse error, error banner. With ImageMagick's ``import`` on PATH the
whole X screen is captured (what a person sees); otherwise the window grabs
itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--dark", action="store_true", help="use a dark palette (as a dark desktop would)")
    ap.add_argument("--photos", type=int, default=60, help="extra photos, so indexing takes a moment")
    ap.add_argument("--readme", type=Path, help="only take the README picture (real photos), save it here")
    ap.add_argument("--text", action="store_true", help="only the text in photos: a text: search and the preview")
    ap.add_argument("--tags", action="store_true", help="only user tags: tagging a selection, reviewing suggestions")
    ap.add_argument(
        "--answers", metavar="WxH", help="only search answers (matches, weaker results, no match) at this window size"
    )
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    home = Path(tempfile.mkdtemp(prefix="lookalike-shots-"))
    os.environ["LOOKALIKE_HOME"] = str(home)
    os.environ["XDG_CACHE_HOME"] = str(home / "xdg-cache")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.photos import write_samples
    from tools.measure_stall import make_photos

    photos = home / "Pictures"
    if args.readme or args.tags or args.answers:
        write_real_photos(photos / "Camera")
    elif args.text:
        write_samples(photos / "Samples")
        write_text_photos(photos / "Scans")
    else:
        write_samples(photos / "Samples")
        make_photos(photos / "Holidays", args.photos, None)

    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    from lookalike import app as appmod

    appmod.tune_runtime()
    qapp = appmod.ensure_application()
    qapp.setStyle("Fusion")
    if args.dark:
        qapp.setPalette(dark_palette())
    services = appmod.build_services()
    window = appmod.build_window(services)
    window.resize(1280, 800)
    window.move(40, 30)
    window.show()
    window.start()

    def pump(seconds: float, until=None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            qapp.processEvents()
            time.sleep(0.01)
            if until is not None and until():
                return True
        return False

    suffix = "-dark" if args.dark else ""

    def shot(name: str, widget=None) -> None:
        pump(0.4)
        path = args.out / f"{name}{suffix}.png"
        if shutil.which("import") and os.environ.get("DISPLAY") and widget is None:
            subprocess.run(["import", "-window", "root", "-crop", "1360x860+0+0", str(path)], check=True)
        else:
            (widget or window).grab().save(str(path))
        print("saved", path)

    pump(30, lambda: window.service.is_open)
    pump(1)
    if args.readme:
        return readme_picture(window, photos / "Camera", args.readme, pump)
    if args.text:
        return text_pictures(window, photos, shot, pump)
    if args.tags:
        return tag_pictures(window, photos / "Camera", shot, pump)
    if args.answers:
        w, h = (int(v) for v in args.answers.lower().split("x"))
        return answer_pictures(window, photos / "Camera", (w, h), args.out / f"answers-{w}x{h}", pump)
    shot("1-welcome")

    window.add_folders([str(photos / "Samples"), str(photos / "Holidays")])
    pump(
        120,
        lambda: (
            window.indexing_bar.isVisible()
            and window.indexing_bar.bar.maximum() >= 20
            and window.indexing_bar.bar.value() > 5
        ),
    )
    shot("2-indexing")
    pump(300, lambda: not window.service.indexing and window.service.model_ready)
    pump(1)

    window.search_view.query_bar.set_text("a cat")
    window.search_view.run_search()
    pump(20, lambda: window.search_view.results_model.rowCount() > 0)
    pump(1.5)
    shot("3-text-results")

    # An image query: drop the motorcycle, mark the coffee "less like this".
    window.search_view.query_bar.set_text("")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photos / "Samples" / "motorcycle.jpg"))])
    for event in (
        QDragEnterEvent(
            QPoint(600, 400), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        ),
        QDropEvent(
            QPointF(600, 400), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        ),
    ):
        QApplication.sendEvent(window, event)
    pump(10, lambda: window.search_view.results_model.rowCount() > 0 and not window.service.searching)
    window.search_view.query_bar.set_text("a red car")
    window.search_view.query_bar.add_image(str(photos / "Samples" / "coffee.jpg"), -1.0)
    pump(10, lambda: not window.service.searching)
    pump(1.5)
    shot("4-image-query-chips")

    window.search_view.results_view.setCurrentIndex(window.search_view.results_model.index(0))
    window.search_view.open_preview(0)
    preview = window.search_view.preview
    preview.resize(1000, 720)
    preview.move(180, 60)
    pump(5, lambda: preview.canvas.image() is not None and preview.canvas.image().width() > 400)
    shot("5-preview", preview)
    preview.close()

    window.search_view.query_bar.clear_images()
    window.search_view.query_bar.set_text("dog + + cat")
    window.search_view.run_search()
    window.add_folders([str(home / "not-there")])
    pump(5, window.banner.isVisible)
    shot("6-errors")

    window.close()
    shutil.rmtree(home, ignore_errors=True)
    return 0


def answer_pictures(window, folder: Path, size: tuple[int, int], prefix: Path, pump) -> int:
    """a: a search's matches with the weaker results collapsed; b: expanded; c: no match."""
    window.setGeometry(0, 0, *size)
    window.add_folders([str(folder)])
    pump(5, lambda: window.service.indexing)
    pump(600, lambda: not window.service.indexing and window.service.model_ready)
    pump(1)
    sv = window.search_view

    def take(name: str) -> None:
        pump(1.5)
        path = Path(f"{prefix}-{name}.png")
        if shutil.which("import") and os.environ.get("DISPLAY"):
            subprocess.run(["import", "-window", "root", "-crop", f"{size[0]}x{size[1]}+0+0", str(path)], check=True)
        else:
            window.grab().save(str(path))
        print("saved", path)

    for name, text in (("a-matches", "a cat"), ("c-no-match", "a piano")):
        sv.results_model.set_weaker_shown(False)
        sv.query_bar.set_text(text)
        sv.run_search()
        pump(20, lambda: not window.service.searching and sv.results_model.rowCount() > 0)
        take(name)
        if name == "a-matches":
            sv.weaker_button.click()
            take("b-weaker-shown")
    window.close()
    return 0


def write_text_photos(folder: Path) -> None:
    """A receipt, a sign in a real photo, a photographed page and a screenshot (bench/textset.py)."""
    import random

    from lookalike.bench import textset

    rng = random.Random(5)
    folder.mkdir(parents=True, exist_ok=True)
    backs = textset.real_photos()
    textset.receipt(["bakery", "croissant", "espresso", "walnut"], rng).save(folder / "receipt.jpg", quality=88)
    textset.sign(backs["china"], ["luna", "bakery"], rng).save(folder / "sign.jpg", quality=88)
    textset.document(["invoice", "deadline", "meadow", "copper"], rng).save(folder / "page.jpg", quality=88)
    textset.screenshot(["confidential", "agenda", "meeting", "budget"], rng).save(folder / "screenshot.png")


def text_pictures(window, photos: Path, shot, pump) -> int:
    """7: a text: search, the matched lines; 8: the preview with the photo's text."""
    window.add_folders([str(photos / "Samples"), str(photos / "Scans")])
    pump(5, lambda: window.service.indexing)
    pump(600, lambda: not window.service.indexing and window.service.model_ready)
    pump(1)
    window.search_view.query_bar.set_text("text:bakery")
    window.search_view.run_search()
    pump(20, lambda: window.search_view.results_model.rowCount() > 0)
    pump(1.5)
    shot("7-text-search")
    window.search_view.open_preview(0)
    preview = window.search_view.preview
    preview.resize(1000, 760)
    preview.move(180, 40)
    pump(10, lambda: preview.text_panel.isVisible() and preview.canvas.image() is not None)
    shot("8-preview-text")
    preview.close()
    window.close()
    return 0


def write_real_photos(folder: Path) -> None:
    """Real photographs (scikit-image's samples) and a few edits of them, as a camera folder."""
    import numpy as np
    import skimage.data as data
    from PIL import Image, ImageEnhance, ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    names = {
        "chelsea": "IMG_0412",
        "coffee": "IMG_0418",
        "rocket": "IMG_0533",
        "astronaut": "IMG_0207",
        "stereo_motorcycle": "IMG_0730",
        "clock": "IMG_0311",
        "coins": "IMG_0102",
        "hubble_deep_field": "IMG_0871",
        "camera": "IMG_0015",
        "moon": "IMG_0660",
        "brick": "IMG_0901",
        "grass": "IMG_0902",
        "gravel": "IMG_0903",
        "immunohistochemistry": "IMG_0954",
        "retina": "IMG_0977",
    }
    for loader, stem in names.items():
        arr = getattr(data, loader)()
        if isinstance(arr, tuple):
            arr = arr[0]
        img = Image.fromarray(np.asarray(arr)).convert("RGB")
        img.save(folder / f"{stem}.jpg", quality=92)
        if loader in ("chelsea", "coffee", "stereo_motorcycle", "rocket"):
            w, h = img.size
            ImageOps.mirror(img.crop((w // 8, h // 10, w - w // 10, h - h // 12))).save(
                folder / f"{stem}-2.jpg", quality=90
            )
            ImageEnhance.Color(ImageEnhance.Brightness(img).enhance(1.15)).enhance(1.3).save(
                folder / f"{stem}-3.jpg", quality=90
            )


def readme_picture(window, folder: Path, out: Path, pump) -> int:
    """The picture at the top of the README: a text query mixed with a + photo."""
    window.add_folders([str(folder)])
    pump(
        300,
        lambda: (
            not window.service.indexing
            and window.service.model_ready
            and (window.service.last_status is not None and window.service.last_status.photos > 0)
        ),
    )
    pump(1)
    window.search_view.query_bar.set_text("a cat")
    window.search_view.query_bar.add_image(str(folder / "IMG_0412-2.jpg"), 1.0, submit=False)
    window.search_view.query_bar.add_image(str(folder / "IMG_0418.jpg"), -1.0)
    pump(20, lambda: window.search_view.results_model.rowCount() > 0 and not window.service.searching)
    window.search_view.results_view.setCurrentIndex(window.search_view.results_model.index(0))
    pump(2.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    print("saved", out)
    window.close()
    return 0


def tag_pictures(window, folder: Path, shot, pump) -> int:
    """User tags: two photos of the cat selected and tagged, the Tags view reviewing what the
    tag suggests, and the preview with its tag field."""
    window.add_folders([str(folder)])
    pump(300, lambda: not window.service.indexing and window.service.model_ready)
    pump(1)
    sv = window.search_view
    sv.query_bar.set_text("a cat")
    sv.run_search()
    pump(20, lambda: sv.results_model.rowCount() > 0 and not window.service.searching)
    model, sel = sv.results_model, sv.results_view.selectionModel()
    for r in range(model.rowCount()):
        item = model.item(r)
        if item is not None and Path(item.path).name in ("IMG_0412.jpg", "IMG_0412-3.jpg"):
            sel.select(model.index(r), sel.SelectionFlag.Select)
    pump(1)
    shot("tags-1-selection")
    view = next(v for v in window.views if v.key == "concepts")
    view.teach("Luna", sv._selected_paths())
    window.activate_view("concepts")
    pump(60, lambda: view.list.count() == 1 and view.offered.count() >= 1)
    pump(2)
    shot("tags-2-review")
    view.offered.item(0).setSelected(True)  # the nearest is not the cat: rejected, never suggested again
    view.mark_selected(False)
    pump(30, lambda: "1 not" in view.heading.text())
    pump(2)
    shot("tags-3-rejected")
    window.activate_view("search")
    sv.open_preview(0)
    preview = sv.preview
    preview.resize(1000, 720)
    preview.move(180, 60)
    pump(10, lambda: "Your tags" in preview.tags_label.text())
    pump(1)
    shot("tags-4-preview", preview)
    preview.close()
    window.close()
    return 0


def dark_palette():
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    base, window, text = QColor(37, 37, 40), QColor(48, 48, 52), QColor(230, 230, 230)
    for role, colour in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.ToolTipBase, base),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.PlaceholderText, QColor(150, 150, 150)),
        (QPalette.ColorRole.Highlight, QColor(61, 123, 224)),
        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
    ):
        p.setColor(role, colour)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor(120, 120, 120))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(120, 120, 120))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(120, 120, 120))
    return p


if __name__ == "__main__":
    raise SystemExit(main())
