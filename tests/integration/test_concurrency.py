"""One writer, many readers, real processes: two app instances, the CLI indexing while the
window searches, searches while the graph is being saved. No corruption, no search held
up by a writer, and a clear message for the one that has to wait. The latencies are
printed as figures (run with -s), not asserted: speed belongs in `lookalike bench`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike.core.engine import SearchEngine
from lookalike.core.errors import LibraryLockedError, LookalikeError
from tests.hostile import good_image, jpeg_bytes

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))


def write_photos(folder: Path, n: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        p = folder / f"p{i:04d}.jpg"
        p.write_bytes(jpeg_bytes(good_image(i, 64), quality=85))
        out.append(p)
    return out


def summary(lat: list[float]) -> str:
    a = np.asarray(lat) * 1000
    return f"{len(a)} searches, median {np.median(a):.1f} ms, p95 {np.percentile(a, 95):.1f} ms, max {a.max():.1f} ms"


# A reader in a process of its own: opens the library afresh for every search (so it reads
# the graph file while the writer replaces it), until told to stop; prints what it saw.
_READER = r"""
import json, logging, os, sys, time
from pathlib import Path
from lookalike.core.engine import SearchEngine
lib, anchor, stop = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
rebuilds = []
class Count(logging.Handler):
    def emit(self, record):
        if "Rebuilding" in record.getMessage():
            rebuilds.append(record.getMessage())
logging.getLogger("lookalike.core.store.vectors").addHandler(Count())
lat, errors, sizes, bad = [], [], [], 0
SearchEngine.open(lib, writer=False).encoder()  # load the model once (cached per process)
print("ready", flush=True)
deadline = time.monotonic() + 120
while not stop.exists() and time.monotonic() < deadline:
    t0 = time.perf_counter()
    try:
        with SearchEngine.open(lib, writer=False) as eng:
            res = eng.search(anchor, k=100000)
        lat.append(time.perf_counter() - t0)
        sizes.append(len(res))
        bad += sum(1 for r in res if not r.path.exists())
        if not res or res[0].path != Path(anchor):
            errors.append(f"anchor not first: {res[:1]}")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"lat": lat, "errors": errors[:20], "n_errors": len(errors), "sizes": sizes,
                  "rebuilds": len(rebuilds), "missing_paths": bad}))
"""


def start_reader(lib: Path, anchor: Path, stop: Path) -> subprocess.Popen:
    """A reader process, returned once it has loaded its model and is about to search."""
    p = subprocess.Popen(
        [sys.executable, "-c", _READER, str(lib), str(anchor), str(stop)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    if line != "ready":
        p.kill()
        raise AssertionError(f"the reader did not start: {line!r} {p.stderr.read()[-3000:] if p.stderr else ''}")
    return p


def reader_result(p: subprocess.Popen) -> dict:
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def base_library(tmp_path, tiny_clip_checkpoint):
    photos = tmp_path / "photos"
    base = write_photos(photos / "base", 20)
    lib = tmp_path / "library"
    with SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True, create=True) as eng:
        eng.index([photos])
    return lib, photos, base[0]


def test_the_cli_indexes_while_the_window_and_another_reader_search(base_library, tiny_clip_checkpoint, tmp_path):
    lib, photos, anchor = base_library
    write_photos(photos / "new", 400, start=100)
    stop = tmp_path / "stop"
    reader = start_reader(lib, anchor, stop)
    window = SearchEngine.open(lib, writer=False)  # the window: one engine, kept open
    window.encoder()
    cli = subprocess.Popen(
        [sys.executable, "-m", "lookalike", "index", "--library", str(lib), "-q", "--batch-size", "16"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lat, sizes, refusals = [], [], []
    try:
        # While the CLI holds the writer lock, a second writer is told why, at once.
        while True:
            holder = window.library.holder()
            if holder or cli.poll() is not None:
                break
            time.sleep(0.01)
        t0 = time.perf_counter()
        with pytest.raises(LibraryLockedError) as locked:
            SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True)
        refusals.append(time.perf_counter() - t0)
        msg = str(locked.value)
        assert f"pid {cli.pid}" in msg and "lookalike index" in msg and "Searching still works" in msg, msg
        with pytest.raises(LookalikeError, match="being updated by another Lookalike"):
            window.index()
        while cli.poll() is None:
            t0 = time.perf_counter()
            res = window.search(str(anchor), k=100_000)
            lat.append(time.perf_counter() - t0)
            sizes.append(len(res))
            assert res[0].path == anchor
            assert all(r.path.exists() for r in res)
            time.sleep(0.01)
    finally:
        stop.touch()
        out, err = cli.communicate(timeout=300)
        other = reader_result(reader)
    assert cli.returncode == 0, err
    final = window.search(str(anchor), k=100_000)
    window.close()
    assert len(final) == 420
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0], "the window saw the index grow"
    assert other["n_errors"] == 0, other["errors"]
    assert other["missing_paths"] == 0
    assert len(lat) >= 10 and len(other["lat"]) >= 3
    print(f"\nFIGURE window while the CLI indexed 400 photos: {summary(lat)}; saw {sizes[0]} -> {sizes[-1]} photos")
    print(
        f"FIGURE second reader process (fresh open each time): {summary(other['lat'])}, "
        f"{other['rebuilds']} graph rebuilds"
    )
    print(f"FIGURE second writer refused in {refusals[0] * 1000:.1f} ms: {msg}")


# A writer in a process of its own: adds a photo and indexes, over and over; every run
# commits and saves the graph (temp, fsync, rename).
_WRITER = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from lookalike.core.engine import SearchEngine
from tests.hostile import good_image, jpeg_bytes
lib, folder, ckpt = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
saves = []
with SearchEngine.open(lib, model_file=ckpt, writer=True) as eng:
    eng.encoder()  # the model's load is not part of what is measured
    eng.vectors()
    for i in range(int(sys.argv[5])):
        (folder / f"w{i:03d}.jpg").write_bytes(jpeg_bytes(good_image(500 + i, 64)))
        t0 = time.perf_counter()
        eng.index([folder])
        saves.append(time.perf_counter() - t0)
print(json.dumps({"runs": len(saves), "max": max(saves)}))
"""


def test_searches_during_graph_saves_never_see_a_torn_graph(base_library, tiny_clip_checkpoint, tmp_path):
    lib, photos, anchor = base_library
    # A library big enough that a save takes a moment.
    with SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True) as eng:
        write_photos(photos / "bulk", 600, start=1000)
        eng.index([photos])
    stop = tmp_path / "stop"
    readers = [start_reader(lib, anchor, stop) for _ in range(2)]
    writer = subprocess.run(
        [sys.executable, "-c", _WRITER, str(lib), str(photos), str(tiny_clip_checkpoint), str(REPO), "25"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    stop.touch()
    results = [reader_result(r) for r in readers]
    assert writer.returncode == 0, writer.stderr[-3000:]
    w = json.loads(writer.stdout.strip().splitlines()[-1])
    for r in results:
        assert r["n_errors"] == 0, r["errors"]
        assert r["missing_paths"] == 0
        assert r["lat"], "the reader searched while the writer saved"
    lat = [x for r in results for x in r["lat"]]
    rebuilds = sum(r["rebuilds"] for r in results)
    print(
        f"\nFIGURE {w['runs']} index+save runs (slowest {w['max'] * 1000:.0f} ms) under 2 reader processes: "
        f"{summary(lat)}, {rebuilds} graph rebuilds by readers"
    )
    with SearchEngine.open(lib, writer=False) as eng:
        assert eng.catalog._q("PRAGMA integrity_check")[0][0] == "ok"
        assert len(eng.search(str(anchor), k=100_000)) == 620 + 25


_HOLDER = r"""
import sys, time
from pathlib import Path
from lookalike.core.engine import SearchEngine
eng = SearchEngine.open(Path(sys.argv[1]), model_file=Path(sys.argv[2]), writer=True)
print("ready", flush=True)
sys.stdin.read()  # hold the library until told to go (or killed)
eng.close()
"""


def test_two_app_instances_one_writer_and_a_crashed_writer_frees_the_library(base_library, tiny_clip_checkpoint):
    lib, photos, anchor = base_library
    first = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lib), str(tiny_clip_checkpoint)],
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout.readline().strip() == "ready"
        # The second instance: refused as writer at once, with who and since when; works as a reader.
        t0 = time.perf_counter()
        with pytest.raises(LibraryLockedError) as err:
            SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True)
        refused = time.perf_counter() - t0
        assert f"pid {first.pid}" in str(err.value) and "Searching still works" in str(err.value)
        with SearchEngine.open(lib, writer=False) as second:
            assert second.search(str(anchor), k=1)[0].path == anchor
            assert second.status().holder and f"pid {first.pid}" in second.status().holder
            # The first instance is killed outright: the lock goes with the process, so the
            # library is writable as soon as the process is gone (no retry, no waiting).
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            t0 = time.perf_counter()
            eng = SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True)
            freed = time.perf_counter() - t0
            with eng:
                write_photos(photos / "after", 2, start=900)
                assert eng.index().added == 2
            assert second.search(str(anchor), k=100)[0].path == anchor
            assert len(second.search(str(anchor), k=100)) == 22  # the reader sees the new photos
    finally:
        if first.poll() is None:
            first.kill()
    print(
        f"\nFIGURE second instance refused as writer in {refused * 1000:.1f} ms; "
        f"library writable {freed * 1000:.1f} ms after the first was SIGKILLed"
    )


def test_a_window_indexing_while_it_searches_in_threads(base_library, tiny_clip_checkpoint):
    """One process, the window's way: indexing on one thread, searches on others."""
    lib, photos, anchor = base_library
    write_photos(photos / "more", 150, start=300)
    eng = SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True)
    errors, lat = [], []
    done = threading.Event()

    def searcher():
        while not done.is_set():
            t0 = time.perf_counter()
            try:
                res = eng.search(str(anchor), k=1000)
                assert res[0].path == anchor
            except Exception as exc:  # collected and reported
                errors.append(repr(exc))
            lat.append(time.perf_counter() - t0)
            time.sleep(0.005)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        report = eng.index([photos])
    finally:
        done.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert report.added == 150
    assert len(eng.search(str(anchor), k=1000)) == 170
    eng.close()
    assert lat, "the searches ran during the index run"
    print(f"\nFIGURE 3 search threads during an index run in the same process: {summary(lat)}")


def test_removing_a_folder_while_it_is_being_indexed(base_library, tiny_clip_checkpoint):
    """The window removes a folder while an indexing run (its own, or the watcher's) works on it."""
    lib, photos, anchor = base_library
    other = photos.parent / "other"
    write_photos(other, 300, start=2000)
    eng = SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True)
    outcome: list = []
    committed = threading.Event()  # the run has put photos of the folder in the library

    def run():
        try:
            outcome.append(eng.index([other], batch_size=8, on_commit=committed.set))
        except Exception as exc:  # reported below
            outcome.append(exc)

    t = threading.Thread(target=run)
    t.start()
    try:
        assert committed.wait(60), "the run committed nothing"
        assert other in {f.path for f in eng.folders()}
        t0 = time.perf_counter()
        eng.remove_folder(other)
        waited = time.perf_counter() - t0
        t.join(60)
        assert not isinstance(outcome[0], Exception), repr(outcome[0])
        assert other not in {f.path for f in eng.folders()}
        assert eng.catalog.ids_in_folder(other).size == 0
        assert len(eng.search(str(anchor), k=1000)) == 20
        assert eng.catalog._q("PRAGMA foreign_key_check") == []
    finally:
        t.join(60)
        eng.close()
    print(f"\nFIGURE removing a folder during its indexing run waited {waited * 1000:.0f} ms for the run")


def test_searches_go_on_while_the_graph_is_saved(tmp_path):
    """In one process (the window): a save, however long, does not hold up searches,
    while a change to the graph waits for the save so the file stays whole."""
    from lookalike.core.store.hnswfile import whole_graph_levels
    from lookalike.core.store.vectors import VectorIndex

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    v = VectorIndex(64, capacity=4000)
    v.add(np.arange(1, 2001), x[:2000])

    started, release = threading.Event(), threading.Event()

    class HeldDisk:  # the graph's own save, held open for as long as the test needs (a slow disk)
        def __init__(self, graph):
            self.__dict__["_graph"] = graph

        def __getattr__(self, name):
            return getattr(self._graph, name)

        def save_index(self, path):
            started.set()
            assert release.wait(60), "the test never let the save finish"
            self._graph.save_index(path)

    v._graph = HeldDisk(v._graph)
    saver = threading.Thread(target=v.save, args=(tmp_path, 1))
    saver.start()
    assert started.wait(60), "the save did not start"
    added = threading.Thread(target=v.add, args=(np.arange(2001, 3001), x[2000:]))
    added.start()  # must wait for the save
    lat: list[float] = []
    wrong: list[object] = []
    searched = threading.Event()

    def searcher():
        try:
            for i in range(50):
                t0 = time.perf_counter()
                hits = v.search(x[i], 5, exact=False)
                lat.append(time.perf_counter() - t0)
                if hits.ids[0] != i + 1:
                    wrong.append((i, hits.ids[:1]))
        finally:
            searched.set()

    s = threading.Thread(target=searcher)
    s.start()
    # 50 searches answer while the save is still held: a save does not hold up searches.
    assert searched.wait(60), "searches were held up by the graph save"
    assert len(lat) == 50 and wrong == []
    assert saver.is_alive() and len(v) == 2000  # the change still waits for the save
    release.set()
    saver.join(60)
    added.join(60)
    s.join(60)
    assert whole_graph_levels(tmp_path / "vectors.hnsw", 2000) is not None
    assert len(v) == 3000
    print(f"\nFIGURE searches during a held graph save: {summary(lat)}")
