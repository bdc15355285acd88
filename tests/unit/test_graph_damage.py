"""Bit rot in the saved graphs: random bytes changed in ``vectors.hnsw`` or ``faces.hnsw``,
the file's size and modification time kept (so nothing but its content tells).

Each damaged library is opened by a victim in a process of its own, so that a crash
inside hnswlib (a segmentation fault) is seen as a failure, not the end of the test
run. The victim searches with every photo's (every face's) own vector, through the
graph on disk, then loads the graph into hnswlib and adds to it as indexing does
(where a damaged link used to crash), and reports what it saw; the test asserts no
crash, no absurd score, every photo found first by itself, and damage said in one line.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.core.catalog import Catalog, NewPhoto

REPO = Path(__file__).resolve().parents[2]
DIM = 32

_VICTIM = r"""
import json, logging, sys
from pathlib import Path
import numpy as np
from lookalike.core import vectors
from lookalike.core.catalog import Catalog

folder, kind, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
warnings = []
class Catch(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            warnings.append(record.getMessage())
logging.getLogger().addHandler(Catch())
cat = Catalog(folder / "catalog.sqlite3", readonly=True)
out = {"worst": 0.0, "lost": 0, "searched": 0}
if kind == "vectors":
    if mode == "graph":
        vectors.EXACT_LIMIT = 0  # a 300-photo library searched as a large one is: through the graph
    ids, vecs = cat.vectors_of(cat.all_ids())
    index = vectors.VectorIndex.open(folder, cat, vecs.shape[1])
    for i, v in zip(ids.tolist(), vecs):
        hits = index.search(v, 5)
        out["searched"] += 1
        out["worst"] = max(out["worst"], float(np.max(np.abs(hits.scores))) if len(hits.ids) else 0.0)
        out["lost"] += int(not len(hits.ids) or int(hits.ids[0]) != i)
    index.load()  # the whole graph in hnswlib, then an addition: what `index` does
    index.add(np.asarray([int(ids.max()) + 1]), vecs[:1])
    hits = index.search(vecs[1], 2, exact=False)
    out["after_load"] = int(hits.ids[0]) == int(ids[1])
else:
    from lookalike.core.faces.index import FaceIndex
    live = {int(i): bytes(b) for i, b in cat.query("SELECT id, vector FROM photos")}
    index = FaceIndex.open(folder, len(next(iter(live.values()))) // 4, "m", live)
    for fid, b in live.items():
        got, dist = index.search(np.frombuffer(b, np.float32), 3)
        out["searched"] += 1
        out["worst"] = max(out["worst"], float(np.max(dist)) if dist.size else 0.0)
        out["lost"] += int(not got.size or int(got[0, 0]) != fid or float(dist[0, 0]) > 1e-3)
    index.add([max(live) + 1], np.frombuffer(live[min(live)], np.float32)[None, :])
out["warnings"] = warnings
print(json.dumps(out))
"""


def _unit(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 8, n)] + rng.normal(0, 0.5, size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A catalog of 300 photos (whose vectors double as the faces'), and both graphs saved."""
    from lookalike.core.faces.index import FaceIndex
    from lookalike.core.vectors import VectorIndex

    folder = tmp_path_factory.mktemp("graphs")
    vecs = _unit(300, 3)
    cat = Catalog(folder / "catalog.sqlite3")
    f = cat.add_folder(folder / "photos")
    ids = np.asarray(
        cat.commit_batch(
            added=[
                NewPhoto(folder / "photos" / f"p{i}.jpg", f.id, 1, 1, f"h{i}", 1, 1, None, v)
                for i, v in enumerate(vecs)
            ]
        )
    )
    index = VectorIndex(DIM, M=8, ef_construction=64)
    index.add(ids, vecs, num_threads=1)
    index.save(folder, cat.generation())
    faces = FaceIndex(DIM, "m")
    faces.add(ids.tolist(), vecs)
    faces.save(folder)
    cat.close()
    return folder


def _copy(src: Path, dst: Path) -> Path:
    """A copy of the library, times kept (the sidecar's recorded size and time still hold)."""
    dst.mkdir(exist_ok=True)
    for p in src.iterdir():
        if p.is_file():
            shutil.copy2(p, dst / p.name)
    return dst


def rot(path: Path, seed: int, n: int = 100) -> None:
    """Change ``n`` random bytes of ``path`` (each to another value), keeping its size and times."""
    st_ = path.stat()
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for at in rng.sample(range(len(data)), n):
        data[at] = (data[at] + rng.randrange(1, 256)) % 256
    with open(path, "r+b") as fh:
        fh.write(bytes(data))
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert path.stat().st_size == st_.st_size and path.stat().st_mtime_ns == st_.st_mtime_ns


def victim(folder: Path, kind: str, mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "desktop"), str(REPO)])}
    run = subprocess.run(
        [sys.executable, "-c", _VICTIM, str(folder), kind, mode], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, f"the victim died ({run.returncode}): {run.stderr[-2000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


def _held(out: dict, kind: str) -> None:
    assert out["searched"] == 300
    assert out["lost"] == 0  # every photo (face) finds itself first
    if kind == "vectors":
        assert out["worst"] <= 1.0 + 1e-3 and out.get("after_load") is True  # cosines, nothing absurd
    else:
        assert out["worst"] < 10.0  # distances between unit vectors are at most 2
    damage = [w for w in out["warnings"] if "damaged" in w or "Rebuilding" in w]
    assert damage, out["warnings"]  # the user is told, in one line each
    assert all("\n" not in w for w in damage)


FUZZ = settings(
    max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["graph", "exact"]))
def test_random_bytes_changed_in_the_vector_graph_are_caught_and_repaired(pristine, tmp_path_factory, seed, mode):
    lib = _copy(pristine, tmp_path_factory.mktemp("rot"))
    rot(lib / "vectors.hnsw", seed)
    _held(victim(lib, "vectors", mode), "vectors")


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_random_bytes_changed_in_the_face_graph_are_caught_and_repaired(pristine, tmp_path_factory, seed):
    lib = _copy(pristine, tmp_path_factory.mktemp("rot"))
    rot(lib / "faces.hnsw", seed)
    _held(victim(lib, "faces", "graph"), "faces")


@pytest.mark.parametrize("seed", range(3))
def test_a_single_changed_byte_in_one_record_is_caught_by_the_search_that_reads_it(pristine, tmp_path, seed):
    """One byte of one vector's mantissa: a change no structural check can see, which only
    the record's checksum tells; the search that reads the record rebuilds the graph."""
    from lookalike.core import hnswfile

    lib = _copy(pristine, tmp_path / "lib")
    graph = lib / "vectors.hnsw"
    h = hnswfile.Header.read(graph)
    st_ = graph.stat()
    at = hnswfile.HEADER_SIZE + (37 + 50 * seed) * h.record_size + h.data_offset + 4 * (seed + 1) + 1
    with open(graph, "r+b") as fh:
        fh.seek(at)
        b = fh.read(1)
        fh.seek(at)
        fh.write(bytes([b[0] ^ 0x01]))
    os.utime(graph, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    _held(victim(lib, "vectors", "graph"), "vectors")
