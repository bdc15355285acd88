"""End-to-end queries (text -> ranked paths) and start-up times."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lookalike.bench.util import summary

TEXTS = [
    "a cat",
    "a dog on a beach",
    "a cup of coffee",
    "a red car in the city",
    "mountains at sunset",
    "a bowl of fruit",
    "a rocket launch",
    "children playing football",
    "a wall clock",
    "old coins",
    "a bicycle",
    "snow on trees",
    "a plate of pasta",
    "a sailing boat",
    "an astronaut",
    "cat + snow",
    "beach - people",
    "2*sunset + city",
    "a motorcycle",
    "a birthday cake",
]


def build_synthetic_library(
    library: Path, encoder, record, n: int, anchors: np.ndarray | None, say: Callable[[str], None]
) -> dict:
    """A library of ``n`` photos whose vectors are embedding-like, in the encoder's dimension.

    The rows go through the catalog's own commit path; the graph is then built
    by the engine the way it is on first open (from the catalog), and its ef tuned.
    """
    import shutil

    from lookalike.bench.scale import EmbeddingModel
    from lookalike.core.engine import SearchEngine
    from lookalike.core.store.catalog import NewPhoto

    shutil.rmtree(library, ignore_errors=True)
    engine = SearchEngine.open(library, writer=True, create=True)
    dim = int(encoder.dimension)
    with engine:
        engine.library.bind_model(record)
        root = library / "photos"  # never read: the rows stand for photos there
        folder = engine.catalog.add_folder(root)
        model = EmbeddingModel(dim, clusters=max(50, n // 200), seed=21, anchors=anchors)
        t0 = time.perf_counter()
        for s in range(0, n, 5000):
            m = min(5000, n - s)
            vecs = model.sample(m, seed=1000 + s)
            engine.catalog.commit_batch(
                added=[
                    NewPhoto(
                        root / f"{(s + i) // 1000:04d}" / f"IMG_{s + i:07d}.jpg",
                        folder.id,
                        3_000_000 + i,
                        1_600_000_000_000_000_000 + i,
                        f"{s + i:032x}",
                        4032,
                        3024,
                        1.6e9 + i,
                        v,
                    )
                    for i, v in enumerate(vecs)
                ]
            )
        commit_s = time.perf_counter() - t0
        engine._encoder = encoder
        t0 = time.perf_counter()
        vectors = engine.vectors()
        graph_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ef, rec = vectors.tune_ef(k=50) if n > 20_000 else (vectors.ef, 1.0)
        engine.catalog.set_meta({"hnsw_ef": ef})
        engine._save_graph()
        tune_s = time.perf_counter() - t0
    say(
        f"  library of {n:,} x {dim}: catalog {commit_s:.0f} s, graph {graph_s:.0f} s, ef tuned to {ef} "
        f"(recall@50 {rec:.3f}) in {tune_s:.0f} s"
    )
    return {"n": n, "dim": dim, "commit_s": commit_s, "graph_s": graph_s, "ef": ef, "tuned_recall50": rec}


def measure_query(library: Path, encoder, record, repeats: int, say: Callable[[str], None]) -> dict:
    """Text -> ranked paths through SearchEngine.search, and each stage on its own."""
    from lookalike.core.engine import SearchEngine

    engine = SearchEngine.open(library, writer=False)
    with engine:
        engine._encoder = encoder
        engine.library.check_model(record)
        t0 = time.perf_counter()
        vectors = engine.vectors()
        open_s = time.perf_counter() - t0
        engine.search(TEXTS[0], k=50)  # warm
        total, parse, encode, search, lookup = [], [], [], [], []
        for _ in range(repeats):
            for text in TEXTS:
                t0 = time.perf_counter()
                res = engine.search(text, k=50)
                total.append((time.perf_counter() - t0) * 1000)
                assert len(res) == 50
                t0 = time.perf_counter()
                q = engine.parse(text)
                t1 = time.perf_counter()
                vec = engine.embed(q)
                t2 = time.perf_counter()
                hits = vectors.search(vec, 66)
                t3 = time.perf_counter()
                engine.catalog.photos_by_ids(hits.ids.tolist())
                t4 = time.perf_counter()
                parse.append((t1 - t0) * 1000)
                encode.append((t2 - t1) * 1000)
                search.append((t3 - t2) * 1000)
                lookup.append((t4 - t3) * 1000)
    out = {
        "open_s": open_s,
        "total_ms": summary(total),
        "parse_ms": summary(parse),
        "text_encode_ms": summary(encode),
        "search_ms": summary(search),
        "lookup_ms": summary(lookup),
        "queries": len(total),
    }
    say(
        f"  text -> ranked paths: p50 {out['total_ms']['median']:.1f} ms, p95 {out['total_ms']['p95']:.1f} ms "
        f"(parse {out['parse_ms']['median']:.2f}, text encode {out['text_encode_ms']['median']:.1f}, "
        f"search {out['search_ms']['median']:.2f}, lookup {out['lookup_ms']['median']:.2f})"
    )
    return out


def _wall(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed: {proc.stderr.decode(errors='replace')[-300:]}")
    return wall


def measure_startup(library: Path | None, repeats: int, say: Callable[[str], None], floor: bool = True) -> dict:
    """New-process wall times: the floor (Python, + numpy, + torch) and the CLI's first answer."""
    py = sys.executable
    env = dict(os.environ)
    rows: list[tuple[str, list[str]]] = [
        ("python -c pass", [py, "-c", "pass"]),
        ("python -c 'import numpy'", [py, "-c", "import numpy"]),
        ("python -c 'import torch' (the floor for any model)", [py, "-c", "import torch"]),
        ("lookalike --help", [py, "-m", "lookalike", "--help"]),
    ]
    if not floor:
        rows = [rows[0], rows[3]]
    if library is not None:
        rows.append(
            (
                'lookalike search "cat" (offline model)',
                [py, "-m", "lookalike", "search", "a cat", "--library", os.fspath(library), "-k", "20"],
            )
        )
    out = []
    for label, cmd in rows:
        _wall(cmd, env)  # warm the page cache
        walls = [_wall(cmd, env) for _ in range(repeats)]
        out.append({"what": label, "s": summary(walls)})
        say(f"  start-up {label:<52} {out[-1]['s']['median']:.2f} s")
    return {"rows": out}


FIRST_PAINT = r"""
import os, sys, time
t0 = float(sys.argv[1])
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import lookalike.app as appmod
app = QApplication.instance() or QApplication(sys.argv[:1])
def painted():
    print(f"FIRST_PAINT {time.time() - t0:.4f}", flush=True)
    os._exit(0)
orig_exec = QApplication.exec
def exec_(*_a, **_k):
    QTimer.singleShot(0, painted)
    return orig_exec()
QApplication.exec = exec_
QApplication.exec_ = exec_
sys.exit(appmod.main())
"""


def measure_first_paint(library: Path | None, repeats: int, say: Callable[[str], None]) -> dict | None:
    """Time from process start to the window's first event-loop turn after show(), offscreen."""
    try:
        import importlib.util

        if importlib.util.find_spec("lookalike.app") is None or importlib.util.find_spec("PySide6") is None:
            say("  first paint: not measured (no window module here)")
            return None
    except Exception:
        return None
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    if library is not None:
        env["LOOKALIKE_LIBRARY"] = os.fspath(library)
    vals = []
    for _ in range(repeats + 1):
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-c", FIRST_PAINT, repr(t0)], capture_output=True, env=env, timeout=120)
        line = [ln for ln in proc.stdout.decode(errors="replace").splitlines() if ln.startswith("FIRST_PAINT")]
        if not line:
            say(f"  first paint: not measured ({proc.stderr.decode(errors='replace')[-200:].strip()})")
            return None
        vals.append(float(line[0].split()[1]))
    vals = vals[1:]  # the first run warms the page cache
    out = {"s": summary(vals)}
    say(f"  first paint: {out['s']['median']:.2f} s")
    return out
