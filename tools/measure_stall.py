"""Measure the window's longest event-loop stall while it indexes and searches.

    .venv/bin/python -m tools.measure_stall [--photos 300] [--out report.txt]

Opens the real window (offscreen unless DISPLAY is set) on a private
LOOKALIKE_HOME, adds a folder of a few hundred real-sized JPEGs, and while the
indexing runs types a search every half second and scrolls the grid (which
loads thumbnails). A QTimer-based meter records how long the event loop went
without running. Prints the figures; never a timed assertion in the suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def make_photos(folder: Path, n: int, samples: Path | None) -> None:
    from PIL import Image, ImageDraw, ImageFilter

    folder.mkdir(parents=True, exist_ok=True)
    if samples is not None:
        for p in samples.glob("*.jpg"):
            shutil.copy(p, folder / p.name)
    for i in range(n):
        img = Image.new("RGB", (1600, 1200), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
        d = ImageDraw.Draw(img)
        for j in range(12):
            x, y = (i * 97 + j * 131) % 1400, (i * 61 + j * 89) % 1000
            d.ellipse((x, y, x + 200, y + 180), fill=((j * 40 + i) % 256, (j * 70) % 256, (i * 3) % 256))
        img = img.filter(ImageFilter.GaussianBlur(1.5))
        img.save(folder / f"photo{i:04d}.jpg", quality=88)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--screenshot", type=Path, help="save a picture of the window mid-indexing")
    args = ap.parse_args(argv)

    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="lookalike-stall-"))
    os.environ["LOOKALIKE_HOME"] = str(home)
    os.environ["XDG_CACHE_HOME"] = str(home / "xdg-cache")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.photos import write_samples

    samples = home / "samples"
    write_samples(samples)
    photos = home / "photos"
    make_photos(photos, args.photos, samples)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from lookalike import app as appmod

    appmod.tune_runtime()  # as main() does
    if os.environ.get("STALL_SWITCH"):
        sys.setswitchinterval(float(os.environ["STALL_SWITCH"]))

    from tools.stallmeter import StallMeter

    qapp = appmod.ensure_application()
    t_start = time.perf_counter()
    services = appmod.build_services()
    window = appmod.build_window(services)
    if os.environ.get("STALL_NOWATCH"):
        window.service.watch = False
    window.show()
    QApplication.processEvents()
    t_shown = time.perf_counter() - t_start
    window.start()

    # Everything below runs from timers inside the real event loop (app.exec()).
    queries = ["a cat", "a cup of coffee", "a rocket", "a motorcycle", "a wall clock", "cat - coffee"]
    meter = StallMeter(5)
    startup_meter = StallMeter(5)
    startup_meter.start()  # while torch and the model load in the background
    state = {"searches": 0, "phase": "model", "t0": 0.0, "t_model": 0.0, "t_index": 0.0, "shot": False, "after": 0}
    driver = QTimer()
    driver.setInterval(250)

    def step() -> None:
        phase = state["phase"]
        if phase == "model":
            if window.service.model_ready:
                state["t_model"] = time.perf_counter() - t_start
                state["startup"] = startup_meter.stop()
                meter.start()
                window.add_folders([str(photos)])
                window.service.indexing_finished.connect(
                    lambda _o: state.setdefault("index_done_at", time.perf_counter() - state["t0"])
                )
                state["phase"] = "indexing"
                state["t0"] = time.perf_counter()
        elif phase == "indexing":
            n = state["searches"]
            if n % 2 == 0:
                window.search_view.query_bar.field.setText(queries[(n // 2) % len(queries)])
                window.search_view.run_search()
            else:
                bar = window.search_view.results_view.verticalScrollBar()
                bar.setValue(bar.maximum() if (n // 2) % 2 else 0)
            state["searches"] = n + 1
            if args.screenshot and not state["shot"] and n == 8:
                window.grab().save(str(args.screenshot))
                state["shot"] = True
            started = time.perf_counter() - state["t0"] > 3
            if started and not window.service.indexing:
                state["t_index"] = time.perf_counter() - state["t0"]
                state["phase"] = "after"
        elif phase == "after":  # searches on the full library, thumbnails loading
            k = state["after"]
            if k < len(queries):
                window.search_view.query_bar.field.setText(queries[k])
                window.search_view.run_search()
            state["after"] = k + 1
            if k > len(queries) + 4:
                driver.stop()
                w = window.service._watcher
                state["watcher"] = str(w.stats) if w is not None else "off"
                qapp.quit()  # (this closes the window too)

    driver.timeout.connect(step)
    driver.start()
    QTimer.singleShot(900_000, qapp.quit)
    qapp.exec()
    report = meter.stop()
    t_model = state["t_model"]
    t_index = state["t_index"]
    searches = state["searches"] // 2
    status = window.service.last_status
    lines = [
        f"window shown after {t_shown * 1000:.0f} ms; model ready after {t_model:.1f} s",
        f"indexed {status.photos if status is not None else '?'} photos in {t_index:.1f} s "
        f"with {searches} searches and {searches} grid scrolls meanwhile",
        f"last search took {window.search_view.last_search_seconds * 1000:.0f} ms",
        f"while the model loaded: {state.get('startup')}",
        f"while indexing and searching: {report}",
    ]
    lines.append(f"folder watcher: {state.get('watcher')}")
    worst = ", ".join(f"{ms:.0f} ms at {t:.1f} s" for ms, t in meter.worst(5))
    lines.append(
        f"longest stalls (seconds after the folder was added; indexing ended at "
        f"{state.get('index_done_at', 0):.1f} s): {worst}"
    )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    window.close()
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
