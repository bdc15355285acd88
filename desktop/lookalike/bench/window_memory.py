"""The window's memory: resident and peak, idle and after a search, by library size.

The real window (offscreen) is started as a new process on a private
LOOKALIKE_HOME whose library is a synthetic one of N photos (the same
libraries as the cold-query section: real catalogs, embedding-like vectors in
the offline model's dimension). The child reports its own memory from
/proc/self at fixed points:

- painted: the first paint;
- idle: the library open, the model loaded, the catch-up scan done, quiet;
- search: after the first text search and its grid have settled (the peak is
  the search's own: the high-water mark is reset just before it);
- again: after a second, different search.

Each point carries what the memory is made of (resident pages of shared
libraries by package, of memory-mapped data files, and anonymous memory: the
heaps of Python, numpy, Qt and the model runtimes) and which heavy modules
were imported by then. Figures of memory are reliable on a busy machine;
times are not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

SIZES = (37, 20_000, 100_000)
QUERIES = ("a cat", "a red car")
POINTS = ("painted", "idle", "search", "again")

# Runs in the window's process: opens the window as app.main() does, then searches from a timer.
CHILD = r"""
import json, os, sys, time
t_start = time.perf_counter()
HEAVY = ("torch", "onnxruntime", "open_clip", "hnswlib", "transformers", "dlib", "scipy", "sklearn")

def status():
    out = {}
    for line in open("/proc/self/status"):
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(line.split()[1]) * 1024
    return out

def breakdown():
    parts = {}
    name = "anonymous"
    try:
        fh = open("/proc/self/smaps")
    except OSError:
        return parts
    for line in fh:
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:
            path = head[5].strip() if len(head) > 5 else ""
            if not path or path.startswith("["):
                name = "anonymous"
            elif "/site-packages/" in path or "/dist-packages/" in path:
                pkg = path.split("-packages/", 1)[1].split("/", 1)[0]
                name = pkg.split(".libs")[0].split("-")[0] if ".so" in path else "data: " + os.path.basename(path)
            elif ".so" in path:
                name = "system libraries"
            else:
                name = "data: " + os.path.basename(path)
        elif line.startswith("Rss:"):
            parts[name] = parts.get(name, 0) + int(line.split()[1]) * 1024
    return parts

def mark(point, **extra):
    print("MARK " + json.dumps({
        "point": point,
        "t": round(time.perf_counter() - t_start, 2),
        **status(),
        "parts": {k: v for k, v in breakdown().items() if v >= 2**20},  # (1 MiB and more)
        "modules": [m for m in HEAVY if m in sys.modules],
        **extra,
    }), flush=True)

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from lookalike import app as appmod

queries = json.loads(os.environ["_WM_QUERIES"])
appmod.tune_runtime()
qapp = appmod.ensure_application()
services = appmod.build_services()
window = appmod.build_window(services)
window.show()
service = window.service
state = {"phase": "open", "quiet": 0, "done": None, "n": 0}

def on_done(outcome):
    state["done"] = (time.perf_counter(), len(outcome.results), outcome.seconds)
service.search_finished.connect(on_done)
service.search_failed.connect(lambda f: (print("FAILED " + str(f.failure.error), flush=True), os._exit(3)))
service.open_failed.connect(lambda f: (print("FAILED " + str(f.error), flush=True), os._exit(3)))

def painted():
    mark("painted")
    window.start()
appmod._FirstPaint(window, painted)

def search(text):
    reset_peak()
    state["done"] = None
    view = window.search_view
    view.query_bar.field.setText(text)
    view.run_search()

def step():
    phase = state["phase"]
    if phase == "open":
        ready = service.is_open and service.model_ready and not service.indexing and not service.busy
        state["quiet"] = state["quiet"] + 1 if ready else 0
        if state["quiet"] >= 15:  # 1.5 s with nothing running
            mark("idle")
            state["phase"] = "search"
            search(queries[0])
    elif state["done"] is not None and time.perf_counter() - state["done"][0] > 2.0:
        _, n, secs = state["done"]
        mark(POINT[state["n"]], results=n, search_s=round(secs, 3))
        state["n"] += 1
        if state["n"] < len(queries):
            search(queries[state["n"]])
        else:
            os._exit(0)

POINT = ("search", "again")
timer = QTimer()
timer.timeout.connect(step)
timer.start(100)
QTimer.singleShot(1000, window.start)
qapp.exec()
"""


def prepare_library(library: Path) -> None:
    """Bring a synthetic library to where a user's would be after indexing: tags and
    concepts learned for every photo, the model caches a first load builds (the offline
    text tower's concepts, the tagger's classifier) in the shared model folder. Otherwise
    the window's first open would do that one-time work and it would count as its own."""
    from lookalike.core.engine import SearchEngine

    with SearchEngine.open(library, writer=True) as engine:
        engine.query_encoder()
        engine.learner().update()


def window_env(library: Path, home: Path, **extra: str) -> dict[str, str]:
    """A fresh home whose default library is ``library`` (a link), and the environment of a
    window started offscreen in it (model files shared with this process)."""
    from lookalike.core.runtime import models as runtime

    shutil.rmtree(home, ignore_errors=True)
    (home / "data").mkdir(parents=True)
    os.symlink(Path(library).resolve(), home / "data" / "library")
    return dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        LOOKALIKE_HOME=os.fspath(home),
        XDG_CACHE_HOME=os.fspath(home / "xdg-cache"),
        LOOKALIKE_MODELS=os.fspath(runtime.models_dir()),
        **extra,
    )


def measure_window(library: Path, home: Path, timeout: float = 900) -> dict:
    """Open the window on ``library`` (as the default library of a fresh LOOKALIKE_HOME,
    the model files shared with this process), search twice, and return the memory at
    each point."""
    env = window_env(library, home, _WM_QUERIES=json.dumps(QUERIES))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, timeout=timeout, cwd=os.fspath(home)
    )
    out = proc.stdout.decode(errors="replace")
    marks = {}
    for line in out.splitlines():
        if line.startswith("MARK "):
            m = json.loads(line[5:])
            marks[m.pop("point")] = m
        elif line.startswith("FAILED "):
            raise RuntimeError(f"the window failed: {line[7:]}")
    if proc.returncode != 0 or set(marks) != set(POINTS):
        err = proc.stderr.decode(errors="replace").strip()[-400:]
        raise RuntimeError(f"the window did not finish ({proc.returncode}; got {sorted(marks)}): {err}")
    return marks


def window_memory_by_size(
    work: Path, encoder, sizes: list[int], say: Callable[[str], None], anchors=None, keep: bool = False
) -> dict:
    """Build each library (the cold-query section's, reused when kept) and measure the window on it."""
    from lookalike.bench.queries import build_synthetic_library
    from lookalike.core.store.library import ModelRecord

    record = ModelRecord("offline", encoder.id, encoder.weights_checksum, int(encoder.dimension))
    runs = []
    for n in sizes:
        lib = work / f"lib-cold-{n}"
        if not (keep and (lib / "vectors.json").exists()):
            build_synthetic_library(lib, encoder, record, n, anchors, say)
        prepare_library(lib)
        marks = measure_window(lib, work / f"home-window-{n}")
        runs.append({"n": n, "graph_mib": (lib / "vectors.hnsw").stat().st_size / 2**20, "points": marks})
        say("  " + line_for(n, marks))
        if not keep:
            shutil.rmtree(lib, ignore_errors=True)
        shutil.rmtree(work / f"home-window-{n}", ignore_errors=True)
    return {"queries": list(QUERIES), "runs": runs}


def _mib(v: float) -> str:
    return f"{v / 2**20:,.0f} MiB"


def line_for(n: int, marks: dict) -> str:
    idle, s = marks["idle"], marks["search"]
    return (
        f"window at {n:>7,} photos: idle {_mib(idle['VmRSS'])}, search peak {_mib(s['VmHWM'])}, "
        f"after {_mib(s['VmRSS'])}, after a second {_mib(marks['again']['VmRSS'])}"
    )


def _parts(point: dict, top: int = 6) -> str:
    parts = sorted(point.get("parts", {}).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v / 2**20:.0f}" for k, v in parts[:top] if v >= 2**20)


def render(mem: dict | None) -> list[str]:
    """The report's table of the window's memory by library size."""
    if not mem or not mem.get("runs"):
        return []
    lines = [
        "### The window's memory by library size",
        "",
        "The window opened offscreen on a synthetic library (offline model), as a new process; "
        f"idle = library open, model loaded, catch-up scan done; then a search ({mem['queries'][0]!r}, "
        "its grid shown) and a second one. A search's peak is the process's resident "
        "high-water mark, reset just before it; the opening's peak is the mark at idle. "
        "Memory is reliable on a busy machine; the search times beside it are not.",
        "",
        "| photos | first paint | opening's peak | idle | search peak | after search | 2nd search peak "
        "| after a 2nd | first search | graph file |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in mem["runs"]:
        p = r["points"]
        lines.append(
            f"| {r['n']:,} | {_mib(p['painted']['VmRSS'])} | {_mib(p['idle']['VmHWM'])} | "
            f"{_mib(p['idle']['VmRSS'])} | {_mib(p['search']['VmHWM'])} | {_mib(p['search']['VmRSS'])} | "
            f"{_mib(p['again']['VmHWM'])} | {_mib(p['again']['VmRSS'])} | {p['search'].get('search_s', 0):.2f} s | "
            f"{r['graph_mib']:,.0f} MiB |"
        )
    lines += ["", "What it holds after the search (resident MiB by mapping; anonymous = the heaps):", ""]
    for r in mem["runs"]:
        s = r["points"]["search"]
        lines.append(f"- {r['n']:,} photos: {_parts(s)}; modules loaded: {', '.join(s['modules']) or 'none'}")
    return lines
