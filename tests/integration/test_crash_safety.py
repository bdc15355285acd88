"""Crash safety: SIGKILL at random moments, damaged graph and catalog, a full disk.

The kill test runs the real command line (`lookalike index`) in real processes
and kills them with SIGKILL. So that 20+ restarts do not each pay for
importing torch and open_clip (~6 s here), the processes are forked from a
small server that has done those imports once; each run is still a process of
its own, loading the model, opening the library, scanning and indexing from
scratch, and nothing of it survives the kill but what it wrote to disk. The
last run is a plain `python -m lookalike index`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lookalike.core.errors import DiskFullError, LibraryCorruptError
from lookalike.core.search import SearchEngine
from lookalike.core.stages import CpuShare
from tests.hostile import good_image, jpeg_bytes

REPO = Path(__file__).resolve().parents[2]
KILLS = 24
BATCH = 4

# Forks a fresh process per request, after the heavy imports were done once.
_FORK_SERVER = r"""
import json, os, sys, traceback
import numpy, torch, open_clip, hnswlib, PIL.Image
import lookalike.cli, lookalike.core.search, lookalike.core.indexer, lookalike.core.vectors
import lookalike.core.encoders, lookalike.core.encoders.clip
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    if req["cmd"] == "run":
        pid = os.fork()
        if pid == 0:
            rc = 1
            try:
                fd = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.environ.update(req["env"])
                rc = lookalike.cli.main(req["argv"])
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
                rc = 99
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
        print(json.dumps({"pid": pid}), flush=True)
    elif req["cmd"] == "poll":
        pid, status = os.waitpid(req["pid"], os.WNOHANG if not req.get("block") else 0)
        print(json.dumps({"done": bool(pid), "code": os.waitstatus_to_exitcode(status) if pid else None}),
              flush=True)
"""


class ForkServer:
    def __init__(self, env: dict) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _FORK_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert json.loads(self.proc.stdout.readline()).get("ready")

    def _ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def run(self, argv: list[str], env: dict, out: Path) -> int:
        return self._ask(cmd="run", argv=argv, env=env, out=str(out))["pid"]

    def poll(self, pid: int, block: bool = False) -> int | None:
        r = self._ask(cmd="poll", pid=pid, block=block)
        return r["code"] if r["done"] else None

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def read_log(log: Path) -> list[tuple[str, int, str]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_bytes().split(b"\n"):
        parts = line.split(b"\t")
        if len(parts) == 3:  # a line cut by a kill is ignored
            out.append((parts[0].decode(), int(parts[1]), os.fsdecode(parts[2])))
    return out


def fresh_vectors(engine, paths: list[Path]) -> np.ndarray:
    from lookalike.core.imaging import decode_file

    enc = engine.encoder()
    return enc.encode_images([decode_file(p, enc.image_size).image for p in paths])


def check_library_matches_disk(lib: Path, folder: Path, model_file: Path) -> int:
    """The library holds exactly the photos on disk, each with its own vector; returns the count."""
    on_disk = {p for p in folder.rglob("*.jpg")}
    with SearchEngine.open(lib, model_file=model_file, writer=False) as eng:
        cat = eng.catalog
        assert cat._q("PRAGMA integrity_check")[0][0] == "ok"
        rows = cat.photos_by_ids(cat.all_ids().tolist())
        in_lib = {r.path for r in rows.values()}
        assert in_lib == on_disk, (sorted(in_lib - on_disk)[:5], sorted(on_disk - in_lib)[:5])
        assert eng.failures() == []
        ids = sorted(rows)
        paths = [rows[i].path for i in ids]
        stored = np.stack([cat.vector(i) for i in ids])
        fresh = fresh_vectors(eng, paths)
        cos = np.sum(stored * fresh, axis=1)
        assert cos.min() > 0.999, [paths[i] for i in np.where(cos <= 0.999)[0][:5]]
        vectors = eng.vectors()
        assert sorted(vectors.ids().tolist()) == ids
        # Every photo finds itself first.
        for p in paths[:: max(1, len(paths) // 10)]:
            assert eng.search(str(p), k=1)[0].path == p
        return len(ids)


def lost_by_run(events: list[tuple[str, int, str]], pids: set[int]) -> dict[int, int]:
    """For each run (pid): the photos it started encoding and did not commit."""
    out = {}
    for pid in pids:
        mine = [(e, p) for e, p_, p in events if p_ == pid]
        out[pid] = len({p for e, p in mine if e == "start"} - {p for e, p in mine if e == "commit"})
    return out


def test_sigkill_at_random_moments_loses_nothing(tmp_path, tiny_clip_checkpoint):  # noqa: C901 - one long scenario
    rng = random.Random(20240605)
    photos = tmp_path / "photos"
    lib = tmp_path / "library"
    log = tmp_path / "encodes.log"
    serial = iter(range(10_000))

    def add_photos(n: int, sub: str = "") -> None:
        d = photos / sub if sub else photos
        d.mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            i = next(serial)
            (d / f"p{i:04d}.jpg").write_bytes(jpeg_bytes(good_image(i, 128)))

    add_photos(40)
    add_photos(20, "trip")
    add_photos(20, "trip/day2")
    origin: dict[str, str] = {os.fspath(p): p.name for p in photos.rglob("*.jpg")}  # path -> content name

    env = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))
    argv = [
        "index",
        str(photos),
        "--library",
        str(lib),
        "--model-file",
        str(tiny_clip_checkpoint),
        "-q",
        "--batch-size",
        str(BATCH),
        "--workers",
        "2",
    ]
    run_env = {"LOOKALIKE_ENCODE_LOG": str(log)}
    server = ForkServer(env)
    kills, completed, phases, killed = 0, 0, Counter(), set()
    try:
        finished_last = False
        for attempt in range(KILLS * 6):
            if kills >= KILLS:
                break
            # Between runs the folder keeps changing: new photos, deletions, renames, a moved folder
            # (always after a run that finished, so that the next one has work to be killed in).
            if attempt % 3 == 2 or finished_last:
                add_photos(rng.randint(3, 8), rng.choice(["", "trip", "new"]))
                for p in list(photos.rglob("*.jpg")):
                    if os.fspath(p) not in origin:
                        origin[os.fspath(p)] = p.name
                files = sorted(photos.rglob("*.jpg"))
                for p in rng.sample(files, 2):
                    p.unlink()
                for p in rng.sample(sorted(photos.rglob("*.jpg")), 2):
                    dst = p.with_name("r" + p.name)
                    p.rename(dst)
                    origin[os.fspath(dst)] = origin[os.fspath(p)]
            if attempt == 7:
                (photos / "trip" / "day2").rename(photos / "day2-moved")
                for p in (photos / "day2-moved").rglob("*.jpg"):
                    origin[os.fspath(p)] = origin[os.fspath(photos / "trip" / "day2" / p.name)]
            before = len(read_log(log))
            pid = server.run(argv, run_env, tmp_path / "runs.log")
            t0 = time.monotonic()
            if rng.random() < 0.25:
                phase, trigger_at, lines_wanted = "start-up", t0 + rng.uniform(0.0, 0.8), None
            else:
                phase, trigger_at, lines_wanted = "indexing", None, rng.randint(1, 3 * BATCH)
            code = None
            while code is None:
                if trigger_at is None and lines_wanted is not None:
                    mine = sum(1 for e, p_, _ in read_log(log)[before:] if e == "start" and p_ == pid)
                    if mine >= lines_wanted:
                        trigger_at = time.monotonic() + rng.uniform(0.0, 0.04)
                if trigger_at is not None and time.monotonic() >= trigger_at:
                    os.kill(pid, signal.SIGKILL)
                    code = server.poll(pid, block=True)
                    break
                code = server.poll(pid)
                if time.monotonic() - t0 > 120:
                    os.kill(pid, signal.SIGKILL)
                    pytest.fail("an indexing run hung")
                time.sleep(0.005)
            finished_last = code != -signal.SIGKILL
            if code == -signal.SIGKILL:
                kills += 1
                phases[phase] += 1
                killed.add(pid)
            else:
                assert code == 0, (tmp_path / "runs.log").read_text()[-3000:]
                completed += 1
    finally:
        server.close()
    assert kills >= KILLS

    # The last run: a plain `python -m lookalike index` in a fresh interpreter, uninterrupted.
    r = subprocess.run(
        [sys.executable, "-m", "lookalike", *argv],
        env=dict(env, **run_env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    n = check_library_matches_disk(lib, photos, tiny_clip_checkpoint)
    leftovers = [p.name for p in lib.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], leftovers

    events = read_log(log)
    started = Counter(origin[p] for e, _, p in events if e == "start")
    done = Counter(origin[p] for e, _, p in events if e == "done")
    committed = Counter(origin[p] for e, _, p in events if e == "commit")
    # Each kill costs at most the batch in flight: the photos whose encoding had started and
    # whose batch was not committed. While the encoder runs calls side by side (on CPU) those
    # are the oldest uncommitted batch and the ones right beside it, `calls_at_once` batches
    # at most, however many batches the indexer gathered (lookalike.core.indexer).
    in_flight = BATCH * CpuShare.for_encoder(None, BATCH, 2).calls_at_once
    lost = lost_by_run(events, killed)
    print(
        f"\nFIGURE kill test: {kills} SIGKILLs survived ({dict(phases)}), {completed} runs finished between "
        f"them, {n} photos at the end; encodes per photo: max {max(done.values())} completed, "
        f"max {max(started.values())} started; {sum(started.values()) - len(committed)} encodes lost to kills, "
        f"at most {max(lost.values(), default=0)} by one kill (bound {in_flight})"
    )
    assert max(committed.values()) == 1, "a photo was encoded again after it was committed"
    assert max(done.values()) <= 2, done.most_common(3)
    assert max(lost.values(), default=0) <= in_flight, lost
    assert sum(started.values()) <= len(started) + kills * in_flight


# -- a damaged graph or catalog ------------------------------------------------------


@pytest.fixture
def built(tmp_path, tiny_clip_checkpoint):
    """A small library, closed: (library folder, photos folder, search results before damage)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(30):
        (photos / f"p{i:02d}.jpg").write_bytes(jpeg_bytes(good_image(i, 96)))
    lib = tmp_path / "library"
    with SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True, create=True) as eng:
        eng.index([photos])
        probe = photos / "p07.jpg"
        before = [(r.path, round(r.score, 5)) for r in eng.search(str(probe), k=10)]
    return lib, photos, before


def _damage_graph(lib: Path, how: str) -> None:
    graph, side = lib / "vectors.hnsw", lib / "vectors.json"
    if how == "truncated":
        data = graph.read_bytes()
        graph.write_bytes(data[: len(data) // 3])
    elif how == "garbage inside":
        data = bytearray(graph.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 512] = os.urandom(512)
        graph.write_bytes(bytes(data))
    elif how == "empty file":
        graph.write_bytes(b"")
    elif how == "sidecar garbage":
        side.write_bytes(b"{\x00\xff not json")
    elif how == "sidecar missing":
        side.unlink()
    elif how == "graph missing":
        graph.unlink()
    elif how == "stale (older generation)":
        meta = json.loads(side.read_text())
        meta["generation"] = int(meta["generation"]) - 1
        side.write_text(json.dumps(meta))
    else:  # pragma: no cover
        raise ValueError(how)


@pytest.mark.parametrize(
    "how",
    [
        "truncated",
        "garbage inside",
        "empty file",
        "sidecar garbage",
        "sidecar missing",
        "graph missing",
        "stale (older generation)",
    ],
)
def test_a_damaged_graph_is_rebuilt_from_the_catalog(built, tiny_clip_checkpoint, how, caplog):
    lib, photos, before = built
    _damage_graph(lib, how)
    probe = photos / "p07.jpg"
    # A reader rebuilds it in memory; a writer rebuilds it and saves it sound.
    with SearchEngine.open(lib, writer=False) as eng:
        assert [(r.path, round(r.score, 5)) for r in eng.search(str(probe), k=10)] == before
    with SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True) as eng:
        assert [(r.path, round(r.score, 5)) for r in eng.search(str(probe), k=10)] == before
        assert len(eng.vectors()) == 30
    from lookalike.core.vectors import VectorIndex, _file_digest

    meta = json.loads((lib / "vectors.json").read_text())
    assert meta["digest"] == _file_digest(lib / "vectors.hnsw") and meta["count"] == 30
    with SearchEngine.open(lib, writer=False) as eng:
        cat = eng.catalog
        idx = VectorIndex.open(lib, cat, meta["dim"])
        assert sorted(idx.ids().tolist()) == sorted(cat.all_ids().tolist())


_FINDS_ITSELF = r"""
import json, logging, sys
from pathlib import Path
from lookalike.core import vectors
from lookalike.core.search import SearchEngine

lib, photos = Path(sys.argv[1]), Path(sys.argv[2])
vectors.EXACT_LIMIT = int(sys.argv[3])  # 0: through the graph, as a large library is searched
said = []
class Catch(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            said.append(record.getMessage())
logging.getLogger().addHandler(Catch())
out = {"lost": [], "worst": 0.0}
with SearchEngine.open(lib, writer=False) as eng:
    for p in sorted(photos.glob("*.jpg")):
        rs = eng.search(str(p), k=5)
        out["worst"] = max([out["worst"]] + [abs(r.score) for r in rs])
        if not rs or rs[0].path != p:
            out["lost"].append(p.name)
out["said"] = said
print(json.dumps(out))
"""


def _rot(path: Path, seed: int, n: int = 100) -> None:
    """Bit rot: ``n`` random bytes changed, the file's size and modification time kept."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for at in rng.sample(range(len(data)), n):
        data[at] = (data[at] + rng.randrange(1, 256)) % 256
    with open(path, "r+b") as fh:
        fh.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _finds_itself(lib: Path, photos: Path, exact_limit: int) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", _FINDS_ITSELF, str(lib), str(photos), str(exact_limit)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "desktop")),
        timeout=300,
    )
    assert r.returncode == 0, f"the search died ({r.returncode}): {r.stderr[-2000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("seed", range(4))
def test_bit_rot_in_the_graph_is_caught_repaired_and_never_crashes(built, tiny_clip_checkpoint, seed):
    """100 random bytes of vectors.hnsw changed, size and time kept (what bit rot looks
    like): searches (each in a process of its own, so that a crash is seen) give sane
    scores and every photo finds itself; the next index says so in one line, rebuilds the
    graph from the catalog and saves it sound, and nothing is said about it again."""
    lib, photos, _ = built
    _rot(lib / "vectors.hnsw", seed)
    for exact_limit in (0, 20_000):  # through the graph, and the exact scan a small library gets
        out = _finds_itself(lib, photos, exact_limit)
        assert out["lost"] == [] and out["worst"] <= 1.0 + 1e-3, out
        assert any("damaged" in w for w in out["said"]), out["said"]
    r = subprocess.run(
        [sys.executable, "-m", "lookalike", "index", str(photos), "--library", str(lib)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "desktop")),
        timeout=300,
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    said = [line for line in r.stderr.splitlines() if "damaged" in line]
    assert len(said) == 1 and "rebuilding it from the catalog" in said[0], r.stderr
    from lookalike.core.vectors import _file_digest

    meta = json.loads((lib / "vectors.json").read_text())
    assert meta["digest"] == _file_digest(lib / "vectors.hnsw") and meta["count"] == 30
    out = _finds_itself(lib, photos, 0)
    assert out["lost"] == [] and out["said"] == [], out


def _damage_catalog(lib: Path, how: str) -> None:
    cat = lib / "catalog.sqlite3"
    data = bytearray(cat.read_bytes())
    if how == "truncated":
        cat.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "header overwritten":
        data[0:100] = os.urandom(100)
        cat.write_bytes(bytes(data))
    elif how == "pages overwritten":
        page = int.from_bytes(data[16:18], "big") or 65536
        for start in range(2 * page, len(data), 3 * page):
            data[start : start + page] = os.urandom(page)
        cat.write_bytes(bytes(data))
    elif how == "zero bytes":
        cat.write_bytes(b"")
    else:  # pragma: no cover
        raise ValueError(how)


@pytest.mark.parametrize("how", ["truncated", "header overwritten", "pages overwritten", "zero bytes"])
def test_a_damaged_catalog_is_reported_clearly_and_never_overwritten(built, tiny_clip_checkpoint, how):
    lib, photos, _ = built
    _damage_catalog(lib, how)
    damaged = (lib / "catalog.sqlite3").read_bytes()
    for writer in (False, True):
        with pytest.raises(LibraryCorruptError) as err:
            SearchEngine.open(lib, model_file=tiny_clip_checkpoint if writer else None, writer=writer)
        msg = str(err.value)
        assert "damaged" in msg and "catalog.sqlite3" in msg and "index your folders again" in msg
    # The command line says the same in one line, no traceback.
    r = subprocess.run(
        [sys.executable, "-m", "lookalike", "search", "a cat", "--library", str(lib)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "desktop")),
        timeout=120,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("lookalike: The catalog") and "damaged" in r.stderr
    # Nothing wrote over the damaged file: what was left stays there for recovery tools.
    assert (lib / "catalog.sqlite3").read_bytes() == damaged


def test_a_torn_write_ahead_log_is_ignored(built, tiny_clip_checkpoint):
    """Garbage at the end of the WAL (a write cut by power loss) is discarded by its checksums."""
    lib, photos, before = built
    with SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True) as eng:
        conn = sqlite3.connect(lib / "catalog.sqlite3")  # keep the WAL around: a second connection
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        eng.catalog._db.execute("PRAGMA wal_autocheckpoint = 0")
        (photos / "late.jpg").write_bytes(jpeg_bytes(good_image(99, 96)))
        eng.index([photos])
        wal = lib / "catalog.sqlite3-wal"
        assert wal.exists() and wal.stat().st_size > 0
        saved_wal = wal.read_bytes()
        conn.close()
    # Simulate the crash: the WAL with a torn last frame is back, as a crash would leave it.
    wal.write_bytes(saved_wal + os.urandom(3000))
    with SearchEngine.open(lib, writer=False) as eng:
        assert eng.catalog.photo_count() == 31
        assert eng.search(str(photos / "p07.jpg"), k=10)[0].path == photos / "p07.jpg"


# -- a full disk ---------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 16 MiB tmpfs mounted for the test (root only); skipped with the reason otherwise."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(mnt: Path, leave: int) -> Path:
    """Fill the file system to ``leave`` bytes free; returns the filler file."""
    filler = mnt / "filler"
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as fh:
        try:
            fh.write(b"\0" * max(0, free - leave))
        except OSError:
            pass
    return filler


def test_a_full_disk_during_indexing_keeps_the_previous_library_and_says_so(tmp_path, tiny_disk, tiny_clip_checkpoint):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(20):
        (photos / f"p{i:03d}.jpg").write_bytes(jpeg_bytes(good_image(i, 96)))
    lib = tiny_disk / "library"
    env = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))
    cmd = [
        sys.executable,
        "-m",
        "lookalike",
        "index",
        str(photos),
        "--library",
        str(lib),
        "--model-file",
        str(tiny_clip_checkpoint),
        "-q",
        "--batch-size",
        "8",
    ]
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=300).returncode == 0
    with SearchEngine.open(lib, writer=False) as eng:
        first = {r.path for r in eng.search(str(photos / "p003.jpg"), k=100)}
    assert len(first) == 20
    # Many more photos, with long names (bigger rows).
    for i in range(20, 600):
        (photos / (f"p{i:03d}_" + "x" * 150 + ".jpg")).write_bytes(jpeg_bytes(good_image(i, 64)))
    # No room even to open the catalog for writing (its WAL index needs 32 KB).
    filler = _fill(tiny_disk, 16 * 1024)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("lookalike: The disk holding the library"), r.stderr
    assert "damaged" not in r.stderr and "free some space" in r.stderr
    filler.unlink()
    # Room to open and start, not to finish: the disk fills up while batches are saved.
    filler = _fill(tiny_disk, 160 * 1024)
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("lookalike: The disk is full") and "free some space" in line.lower(), r.stderr
    # The previous library is intact: it opens, holds at least what it held, and searches.
    with SearchEngine.open(lib, writer=False) as eng:
        assert eng.catalog._q("PRAGMA integrity_check")[0][0] == "ok"
        now = {r.path for r in eng.search(str(photos / "p003.jpg"), k=1000)}
        assert first <= now
        kept = eng.catalog.photo_count()
    # Space again: the next run finishes the job.
    filler.unlink()
    r2 = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr
    n = check_library_matches_disk(lib, photos, tiny_clip_checkpoint)
    print(
        f"\nFIGURE full disk: failed cleanly after {took:.1f} s with {kept} photos kept: {line!r}; "
        f"after freeing space {n} photos"
    )


def test_a_full_disk_while_saving_the_graph_keeps_the_previous_graph(tmp_path, tiny_disk, tiny_clip_checkpoint):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(40):
        (photos / f"p{i:02d}.jpg").write_bytes(jpeg_bytes(good_image(i, 96)))
    (photos / "other").mkdir()
    for i in range(40, 50):
        (photos / "other" / f"p{i:02d}.jpg").write_bytes(jpeg_bytes(good_image(i, 96)))
    lib = tiny_disk / "library"
    eng = SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True, create=True)
    try:
        eng.index([photos])
        # A checkpoint lets the next commit reuse the WAL's space: the catalog can still
        # take a small change when the disk is full, the graph's new copy cannot be written.
        eng.catalog._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        graph_before = (lib / "vectors.hnsw").read_bytes()
        filler = _fill(tiny_disk, 0)
        (photos / "other" / "p40.jpg").unlink()  # a change whose graph save will not fit
        with pytest.raises(DiskFullError) as err:
            eng.index([photos])
        assert "disk is full" in str(err.value).lower()
        assert "vectors.hnsw" in str(err.value) and "previous copy is intact" in str(err.value)
        assert (lib / "vectors.hnsw").read_bytes() == graph_before
        assert not [p for p in lib.iterdir() if p.name.endswith(".tmp")]
        filler.unlink()
    finally:
        try:
            eng.close()
        except DiskFullError:
            pass
    n = check_library_matches_disk(lib, photos, tiny_clip_checkpoint)
    assert n == 49
