"""Scrolling in the window: the Browse grid over the whole library, and the search grid.

The real window (offscreen) is started as a new process on a private LOOKALIKE_HOME
whose library is a given one (the concepts section's 100,000 synthetic photos). The
child opens Browse, waits for the whole library to be listed, and scrolls the grid
from top to bottom in steps of about a screen, one step every 16 ms (a fast flick
with the wheel), then jumps to 40 random places (dragging the scroll bar); then runs
a text search (2,000 results) and does the same in its grid, back and forth until it
has made as many steps as Browse did. Meanwhile a precise
5 ms timer records every gap in the event loop (its longest stall is the freeze a
person feels), and the grid's viewport records each paint (frame times).

Times on a busy machine are pessimistic; the CPU time of the child is given beside.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

# Runs in the window's process.
CHILD = r"""
import json, os, random, time
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from lookalike import app as appmod

QUERY = os.environ["_WS_QUERY"]
appmod.tune_runtime()
qapp = appmod.ensure_application()
services = appmod.build_services()
window = appmod.build_window(services)
window.resize(1280, 860)
window.show()
service = window.service
out = {}

def report(key, value):
    out[key] = value

class Ticks(QObject):
    # gaps between runs of a precise 5 ms timer: the event loop's stalls
    def __init__(self):
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self.tick)
        self.gaps = []
        self.last = None
    def start(self):
        self.gaps, self.last = [], time.perf_counter()
        self.timer.start()
    def tick(self):
        now = time.perf_counter()
        self.gaps.append(max(0.0, now - self.last - 0.005))
        self.last = now
    def stop(self):
        self.timer.stop()
        return self.gaps

class Frames(QObject):
    def __init__(self, widget):
        super().__init__()
        self.times = []
        widget.installEventFilter(self)
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            self.times.append(time.perf_counter())
        return False

ticks = Ticks()

def summary(gaps, frames, seconds, cpu):
    g = sorted(gaps)
    intervals = sorted(b - a for a, b in zip(frames, frames[1:]))
    pick = lambda xs, q: xs[min(len(xs) - 1, int(len(xs) * q))] * 1000 if xs else 0.0
    return dict(
        longest_stall_ms=round(g[-1] * 1000 if g else 0.0, 1), p99_stall_ms=round(pick(g, 0.99), 1),
        stalls_over_50ms=sum(1 for x in g if x > 0.05), frames=len(frames),
        frame_median_ms=round(pick(intervals, 0.5), 1), frame_p95_ms=round(pick(intervals, 0.95), 1),
        frame_longest_ms=round(intervals[-1] * 1000 if intervals else 0.0, 1),
        seconds=round(seconds, 2), cpu_s=round(cpu, 2),
    )

def scroll(grid, key, then, at_least=0):
    bar = grid.verticalScrollBar()
    frames = Frames(grid.viewport())
    one_pass = list(range(0, bar.maximum() + 1, max(1, grid.viewport().height())))
    steps = list(one_pass)
    while len(steps) < at_least:  # a short grid is scrolled through again, back and forth
        one_pass.reverse()
        steps += one_pass
    rng = random.Random(3)
    steps += [rng.randint(0, bar.maximum()) for _ in range(40)]
    state = {"i": 0}
    t0, c0 = time.perf_counter(), time.process_time()
    ticks.start()
    def step():
        if state["i"] < len(steps):
            bar.setValue(steps[state["i"]])
            state["i"] += 1
            QTimer.singleShot(16, step)
            return
        gaps = ticks.stop()
        frames.times.append(time.perf_counter())
        report(key, dict(summary(gaps, frames.times, time.perf_counter() - t0, time.process_time() - c0),
                         rows=grid.model().rowCount(), positions=len(steps), range_px=bar.maximum()))
        then()
    QTimer.singleShot(16, step)

def wait_for(cond, then, timeout=600):
    t0 = time.perf_counter()
    def poll():
        if cond():
            then()
        elif time.perf_counter() - t0 > timeout:
            print("FAILED timeout", flush=True); os._exit(3)
        else:
            QTimer.singleShot(50, poll)
    poll()

def ready():
    return service.is_open and service.model_ready and not service.indexing and not service.busy

def open_browse():
    view = next(v for v in window.views if v.key == "browse")
    t0, c0 = time.perf_counter(), time.process_time()
    ticks.start()
    window.activate_view("browse")
    def listed():
        return view.model.photos > 0 and not view.panel.count_label.text().startswith("Loading")
    def shown():
        gaps = ticks.stop()
        report("browse_open", dict(seconds=round(time.perf_counter() - t0, 2), cpu_s=round(time.process_time() - c0, 2),
                                   photos=view.model.photos, rows=view.model.rowCount(),
                                   longest_stall_ms=round(max(gaps, default=0) * 1000, 1)))
        QTimer.singleShot(500, lambda: scroll(view.grid, "browse_scroll", search))
    wait_for(listed, shown)

def search():
    window.activate_view("search")
    view = window.search_view
    done = {}
    service.search_finished.connect(lambda o: done.setdefault("n", len(o.results)))
    view.query_bar.field.setText(QUERY)
    view.run_search()
    def settled():
        positions = out["browse_scroll"]["positions"]  # as many steps as Browse took
        QTimer.singleShot(1000, lambda: scroll(view.results_view, "search_scroll", finish, positions))
    wait_for(lambda: "n" in done, settled)

def finish():
    print("RESULT " + json.dumps(out), flush=True)
    os._exit(0)

service.open_failed.connect(lambda f: (print("FAILED " + str(f.error), flush=True), os._exit(3)))
QTimer.singleShot(1000, window.start)
QTimer.singleShot(1500, lambda: wait_for(ready, lambda: QTimer.singleShot(1500, open_browse)))
qapp.exec()
"""


def measure_scroll(library: Path, home: Path, query: str = "a cat", timeout: float = 900) -> dict:
    """Open the window on ``library`` (the default library of a fresh LOOKALIKE_HOME, the
    model files shared with this process), browse and scroll, search and scroll."""
    from lookalike.bench.window_memory import window_env

    env = window_env(Path(library), home, _WS_QUERY=query)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, timeout=timeout, cwd=os.fspath(home)
    )
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith("RESULT "):
            shutil.rmtree(home, ignore_errors=True)
            return json.loads(line[7:])
        if line.startswith("FAILED "):
            raise RuntimeError(f"the window failed: {line[7:]}")
    err = proc.stderr.decode(errors="replace").strip()[-600:]
    raise RuntimeError(f"the window did not finish ({proc.returncode}): {err}")


def run(bench, library: Path, say: Callable[[str], None]) -> dict:
    res = measure_scroll(library, bench.work / "home-scroll")
    for key in ("browse_scroll", "search_scroll"):
        r = res[key]
        say(
            f"  {key}: longest stall {r['longest_stall_ms']} ms, frames median {r['frame_median_ms']} ms "
            f"p95 {r['frame_p95_ms']} ms over {r['rows']:,} rows"
        )
    return res


def render(res: dict | None) -> list[str]:
    if not res:
        return []
    o = res["browse_open"]
    lines = [
        "### Scrolling in the window",
        "",
        f"The real window offscreen on {o['photos']:,} photos: Browse listed the whole library in "
        f"{o['seconds']:.2f} s ({o['cpu_s']:.2f} s CPU of the window's process; longest event-loop stall "
        f"meanwhile {o['longest_stall_ms']} ms). Each grid scrolled top to bottom a screen at a time every "
        "16 ms (the search grid back and forth, as many steps), then to 40 random places:",
        "",
        "| grid | rows | longest stall | p99 stall | stalls > 50 ms | frame median | frame p95 | longest frame "
        "| wall / CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, name in (("browse_scroll", "Browse"), ("search_scroll", "search results")):
        r = res[key]
        lines.append(
            f"| {name} | {r['rows']:,} | {r['longest_stall_ms']} ms | {r['p99_stall_ms']} ms | "
            f"{r['stalls_over_50ms']} | {r['frame_median_ms']} ms | {r['frame_p95_ms']} ms | "
            f"{r['frame_longest_ms']} ms | {r['seconds']:.1f} / {r['cpu_s']:.1f} |"
        )
    return [*lines, ""]
