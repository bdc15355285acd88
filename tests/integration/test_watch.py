"""Live folder watching: the library follows the disk while the app is open.

Real watchdog observers on real folders, the tiny random CLIP for the vectors
(plumbing, not quality). Each test measures how long a change took to show
up in search and prints it (run with -s to see the figures).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike.core.engine import SearchEngine
from lookalike.core.index.watch import FolderWatcher, WatchUpdate
from tests.hostile import good_image, jpeg_bytes

REPO = Path(__file__).resolve().parents[2]
# How long a change may take to reach search: the debounce (0.3 s of quiet) plus
# a run; generous so that a loaded CI machine does not fail the test.
WITHIN = 20.0


def write_photos(folder: Path, n: int, start: int = 0, size: int = 96) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        p = folder / f"photo_{i:04d}.jpg"
        p.write_bytes(jpeg_bytes(good_image(i, size)))
        out.append(p)
    return out


def wait_for(cond, timeout: float = WITHIN, step: float = 0.05) -> float:
    """Seconds until ``cond()`` held; fails the test on timeout."""
    t0 = time.monotonic()
    while True:
        if cond():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"not reflected within {timeout} s")
        time.sleep(step)


def searchable(engine: SearchEngine, anchor: Path) -> set[Path]:
    """Every photo a search can return now (ranked against ``anchor``, a photo of the library)."""
    return {r.path for r in engine.search(str(anchor), k=100_000)}


class Updates:
    def __init__(self) -> None:
        self.items: list[WatchUpdate] = []
        self.lock = threading.Lock()

    def __call__(self, u: WatchUpdate) -> None:
        with self.lock:
            self.items.append(u)

    def since(self, n: int) -> list[WatchUpdate]:
        with self.lock:
            return self.items[n:]


@pytest.fixture
def engine(tmp_path, tiny_clip_checkpoint):
    eng = SearchEngine.open(tmp_path / "library", model_file=tiny_clip_checkpoint, writer=True, create=True)
    yield eng
    eng.close()


def start_watcher(engine, **kw) -> tuple[FolderWatcher, Updates]:
    updates = Updates()
    kw.setdefault("quiet", 0.3)
    kw.setdefault("max_delay", 2.0)
    kw.setdefault("recheck", 0.5)
    w = FolderWatcher(engine, updates, **kw)
    w.start()
    return w, updates


def test_new_changed_deleted_moved_renamed_photos_reach_search(tmp_path, engine):
    root = tmp_path / "photos"
    photos = write_photos(root, 6)
    engine.index([root])
    anchor = photos[0]
    watcher, updates = start_watcher(engine)
    figures = {}
    try:
        # New.
        new = root / "new_arrival.jpg"
        new.write_bytes(jpeg_bytes(good_image(50)))
        figures["new"] = wait_for(lambda: new in searchable(engine, anchor))
        assert engine.search(str(new), k=1)[0].path == new

        # Changed: new content under the same name gets a new vector.
        before = engine.catalog.photo_by_path(photos[1])
        photos[1].write_bytes(jpeg_bytes(good_image(51)))
        figures["changed"] = wait_for(
            lambda: (r := engine.catalog.photo_by_path(photos[1])) is not None and r.hash != before.hash
        )
        after = engine.catalog.photo_by_path(photos[1])
        enc = engine.encoder()
        from lookalike.core.index.imaging import decode_file

        fresh = enc.encode_images([decode_file(photos[1], enc.image_size).image])[0]
        assert float(np.dot(engine.catalog.vector(after.id), fresh)) > 0.999

        # Deleted.
        photos[2].unlink()
        figures["deleted"] = wait_for(lambda: photos[2] not in searchable(engine, anchor))
        assert engine.catalog.photo_by_path(photos[2]) is None

        # Moved into a new subfolder, and renamed in place: same photo, same vector, no encoding.
        n = len(updates.items)
        moved_id = engine.catalog.photo_by_path(photos[3]).id
        renamed_id = engine.catalog.photo_by_path(photos[4]).id
        (root / "sub").mkdir()
        moved_to = root / "sub" / photos[3].name
        photos[3].rename(moved_to)
        renamed_to = root / "renamed.jpg"
        photos[4].rename(renamed_to)
        figures["moved+renamed"] = wait_for(lambda: {moved_to, renamed_to} <= searchable(engine, anchor))
        assert engine.catalog.photo_by_path(moved_to).id == moved_id
        assert engine.catalog.photo_by_path(renamed_to).id == renamed_id
        assert not {photos[3], photos[4]} & searchable(engine, anchor)
        assert sum(u.report.encoded for u in updates.since(n) if u.report) == 0
    finally:
        watcher.stop()
    assert all(u.error is None for u in updates.items), [u.error for u in updates.items]
    print("\nFIGURE watch latency (s):", {k: round(v, 2) for k, v in figures.items()})
    for v in figures.values():
        assert v < WITHIN


def test_a_burst_of_5000_files_is_debounced_into_batches(tmp_path, engine):
    root = tmp_path / "photos"
    write_photos(root, 2)
    engine.index([root])
    # 5000 small real photos, prepared outside the watched folder, then copied in as fast as possible.
    staging = tmp_path / "staging"
    staging.mkdir()
    blobs = [jpeg_bytes(good_image(i, 48), quality=80) for i in range(40)]
    for i in range(5000):
        blob = blobs[i % len(blobs)]  # made unique by a JPEG comment segment
        (staging / f"burst_{i:05d}.jpg").write_bytes(blob[:2] + b"\xff\xfe\x00\x06" + i.to_bytes(4, "big") + blob[2:])
    watcher, updates = start_watcher(engine, quiet=0.5, max_delay=2.0, recheck=30.0)
    try:
        t0 = time.monotonic()
        dest = root / "card"
        dest.mkdir()
        files = sorted(staging.iterdir())
        seen_during_copy = 0
        for k in range(0, len(files), 500):  # a copy from a card: a steady stream for a few seconds
            for f in files[k : k + 500]:
                shutil.copy2(f, dest / f.name)
            time.sleep(0.5)
            seen_during_copy = engine.catalog.photo_count() - 2
        copied = time.monotonic() - t0
        total = wait_for(lambda: engine.catalog.photo_count() == 5002, timeout=300, step=0.25)
    finally:
        watcher.stop()
    runs = [u for u in updates.items if u.report is not None]
    events = sum(u.events for u in updates.items)
    print(
        f"\nFIGURE burst: 5000 files copied in {copied:.1f} s, {events} events -> {len(runs)} indexing runs "
        f"({seen_during_copy} photos searchable before the copy ended), all searchable {total:.1f} s after "
        f"the copy ended; longest wait before a run {watcher.stats.max_waited:.2f} s"
    )
    assert all(u.error is None for u in updates.items)
    assert 2 <= len(runs) <= 40, "events were not batched (or a long burst was held back)"
    assert seen_during_copy > 0
    assert events >= 5000
    assert engine.catalog.failure_count() == 0
    assert len(engine.vectors()) == 5002


def test_renamed_subfolder_and_renamed_library_folder_keep_their_vectors(tmp_path, engine):
    root = tmp_path / "holiday"
    write_photos(root / "day1", 4)
    write_photos(root / "day2", 3, start=10)
    engine.index([root])
    ids_before = {p.relative_to(root): engine.catalog.photo_by_path(p).id for p in root.rglob("*.jpg")}
    watcher, updates = start_watcher(engine)
    try:
        (root / "day1").rename(root / "Rome")
        wait_for(lambda: engine.catalog.photo_by_path(root / "Rome" / "photo_0000.jpg") is not None)
        # The library folder itself renamed: followed, not forgotten and re-encoded.
        new_root = tmp_path / "Italy 2024"
        root.rename(new_root)
        t = wait_for(lambda: engine.catalog.folder_by_path(new_root) is not None)
        watcher.wait_idle(WITHIN)
        # Still watched under its new name.
        extra = new_root / "Rome" / "late.jpg"
        extra.write_bytes(jpeg_bytes(good_image(77)))
        wait_for(lambda: engine.catalog.photo_by_path(extra) is not None)
    finally:
        watcher.stop()
    print(f"\nFIGURE renamed library folder followed after {t:.2f} s")
    for rel, pid in ids_before.items():
        parts = list(rel.parts)
        if parts[0] == "day1":
            parts[0] = "Rome"
        row = engine.catalog.photo_by_path(new_root.joinpath(*parts))
        assert row is not None and row.id == pid, rel
    assert engine.catalog.folder_by_path(root) is None
    assert [f.path for f in engine.folders()] == [new_root]
    assert sum(u.report.encoded for u in updates.items if u.report) == 1  # late.jpg only
    assert any(u.renamed == ((root, new_root),) for u in updates.items)


def _can_bind_mount(tmp_path: Path) -> str | None:
    if os.geteuid() != 0:
        return "bind mounts need root"
    src, dst = tmp_path / "probe_src", tmp_path / "probe_dst"
    src.mkdir()
    dst.mkdir()
    r = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot mount here: {r.stderr.strip() or r.returncode}"
    subprocess.run(["umount", str(dst)], check=True)
    return None


@pytest.mark.parametrize("how", ["unmounted", "folder removed"])
def test_a_drive_that_goes_away_is_offline_and_keeps_its_photos(tmp_path, engine, how):
    """A USB stick unplugged: the folder is marked offline, nothing is deleted; back, it is rescanned."""
    stick = tmp_path / "stick-contents"
    photos = write_photos(stick / "DCIM", 5)
    mount = tmp_path / "media" / "STICK"
    mount.mkdir(parents=True)
    if how == "unmounted":
        why = _can_bind_mount(tmp_path)
        if why:
            pytest.skip(why)
        subprocess.run(["mount", "--bind", str(stick), str(mount)], check=True)
    else:
        mount.rmdir()
        stick.rename(mount)
    try:
        report = engine.index([mount])
        assert report.added == 5
        ids = set(engine.catalog.all_ids().tolist())
        watcher, updates = start_watcher(engine)
        try:
            if how == "unmounted":
                subprocess.run(["umount", str(mount)], check=True)  # the mount point stays, empty
            else:
                mount.rename(stick)
            t_off = wait_for(lambda: not engine.folders()[0].online)
            time.sleep(1.5)  # several periodic checks later: still nothing deleted
            assert set(engine.catalog.all_ids().tolist()) == ids
            assert engine.folders()[0].photos == 5
            assert engine.search(str(stick / "DCIM" / photos[0].name), k=10)  # searching still works
            if how == "unmounted":
                subprocess.run(["mount", "--bind", str(stick), str(mount)], check=True)
            else:
                stick.rename(mount)
            t_on = wait_for(lambda: engine.folders()[0].online)
            watcher.wait_idle(WITHIN)
            assert set(engine.catalog.all_ids().tolist()) == ids  # same photos, same vectors
            # Watched again once back.
            late = mount / "DCIM" / "after_replug.jpg"
            late.write_bytes(jpeg_bytes(good_image(60)))
            wait_for(lambda: engine.catalog.photo_by_path(late) is not None)
        finally:
            watcher.stop()
        print(f"\nFIGURE {how}: offline noticed after {t_off:.2f} s, back after {t_on:.2f} s")
        assert sum(u.report.encoded for u in updates.items if u.report) == 1
        assert any(mount in u.offline for u in updates.items)
    finally:
        if how == "unmounted":
            subprocess.run(["umount", str(mount)], capture_output=True)


def test_cli_index_marks_a_missing_folder_offline_and_keeps_it(tmp_path, tiny_clip_checkpoint):
    a, b = tmp_path / "a", tmp_path / "b"
    write_photos(a, 3)
    write_photos(b, 2, start=20)
    lib = tmp_path / "lib"
    env = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "lookalike", *args, "--library", str(lib)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    r = cli("index", str(a), str(b), "--model-file", str(tiny_clip_checkpoint), "-q")
    assert r.returncode == 0, r.stderr
    b.rename(tmp_path / "b-unplugged")
    write_photos(a, 1, start=40)
    r = cli("index", "-q")
    assert r.returncode == 0, r.stderr
    assert f"{b} is offline; its photos are kept" in r.stderr
    assert "1 added" in r.stderr and "0 removed" in r.stderr
    st = cli("status")
    assert "[offline]" in st.stdout and "6" in st.stdout.split("Photos")[1].split("\n")[0]
    (tmp_path / "b-unplugged").rename(b)
    r = cli("index", "-q")
    assert r.returncode == 0, r.stderr
    assert "0 added" in r.stderr and "0 removed" in r.stderr and "offline" not in r.stderr
    assert "[offline]" not in cli("status").stdout


def test_a_library_inside_a_watched_folder_does_not_wake_the_watcher(tmp_path, tiny_clip_checkpoint):
    root = tmp_path / "home"
    write_photos(root, 3)
    eng = SearchEngine.open(root / "Lookalike library", model_file=tiny_clip_checkpoint, writer=True, create=True)
    try:
        eng.index([root])
        watcher, updates = start_watcher(eng)
        try:
            (root / "one_more.jpg").write_bytes(jpeg_bytes(good_image(30)))
            wait_for(lambda: eng.catalog.photo_count() == 4)
            watcher.wait_idle(WITHIN)
            time.sleep(1.5)  # the run's own writes (catalog, graph) must not start another run
            runs = len(updates.items)
            time.sleep(1.5)
            assert len(updates.items) == runs
            assert runs <= 2
        finally:
            watcher.stop()
    finally:
        eng.close()


def test_a_read_only_engine_reports_why_it_cannot_follow_changes(tmp_path, tiny_clip_checkpoint):
    root = tmp_path / "photos"
    write_photos(root, 2)
    lib = tmp_path / "library"
    with SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True, create=True) as w:
        w.index([root])
        reader = SearchEngine.open(lib, writer=False)  # the second window: the first holds the lock
        try:
            watcher, updates = start_watcher(reader)
            try:
                (root / "x.jpg").write_bytes(jpeg_bytes(good_image(9)))
                wait_for(lambda: updates.items)
            finally:
                watcher.stop()
        finally:
            reader.close()
    err = updates.items[0].error
    assert err and "being updated by another Lookalike" in err and "Searching still works" in err


def test_a_watcher_can_be_stopped_and_started_again(tmp_path, engine):
    root = tmp_path / "photos"
    write_photos(root, 2)
    engine.index([root])
    watcher, updates = start_watcher(engine)
    watcher.stop()
    assert not watcher.running
    (root / "while_stopped.jpg").write_bytes(jpeg_bytes(good_image(40)))
    time.sleep(1.0)
    assert engine.catalog.photo_by_path(root / "while_stopped.jpg") is None  # not watching
    watcher.start()
    watcher.request()  # catch up with what changed while stopped
    try:
        wait_for(lambda: engine.catalog.photo_by_path(root / "while_stopped.jpg") is not None)
        later = root / "after_restart.jpg"
        later.write_bytes(jpeg_bytes(good_image(41)))
        wait_for(lambda: engine.catalog.photo_by_path(later) is not None)
    finally:
        watcher.stop()
