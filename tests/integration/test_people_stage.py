"""The faces stage under stress: SIGKILL in the middle of it, a crowd in one photo,
photos with nothing to find."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.core.engine import SearchEngine
from lookalike.core.faces.loading import load_face_model
from lookalike.core.faces.model import MIN_CLUSTER_QUALITY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FACES = REPO / "tests" / "data" / "faces"


def _labels() -> dict[str, list[str]]:
    if not (FACES / "labels.json").exists():
        pytest.skip(f"the face test photos are not at {FACES}")
    return json.loads((FACES / "labels.json").read_text())["photos"]


def _copy(dst: Path) -> Path:
    import shutil

    for rel in _labels():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(FACES / rel, dst / rel)
    return dst


def _scans(lib: Path) -> int:
    try:
        with sqlite3.connect(f"file:{lib / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM face_scans").fetchone()[0]
    except sqlite3.Error:
        return 0


def _index_and_kill(photos: Path, lib: Path, after_scans: int) -> int:
    """`lookalike index` in a process of its own, SIGKILLed once at least ``after_scans``
    photos have their faces committed. Returns the photos scanned when it died."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))
    cmd = [sys.executable, "-m", "lookalike", "index", str(photos), "--library", str(lib), "--batch-size", "2", "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if _scans(lib) >= after_scans:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode() if proc.stderr else ""
    return _scans(lib)


def test_sigkill_during_the_face_stage_loses_nothing_and_finds_nothing_twice(tmp_path, offline_encoder):
    photos = _copy(tmp_path / "photos")
    lib = tmp_path / "lib"
    first = _index_and_kill(photos, lib, 3)
    second = _index_and_kill(photos, lib, first + 4)
    assert 3 <= first < second < 18
    with SearchEngine.open(lib, writer=True) as engine:
        engine.index()
        cat = engine.catalog
        assert cat.photo_count() == 18
        assert cat.query("SELECT COUNT(*), COUNT(DISTINCT photo_id) FROM face_scans")[0] == (18, 18)
        # the same faces a single clean run finds (21), none twice, all grouped
        assert cat.query("SELECT COUNT(*) FROM faces")[0][0] == 21
        assert cat.query("SELECT COUNT(*) FROM faces WHERE grouped = 0")[0][0] == 0
        people = engine.people()
        assert [p.faces for p in people.people(include_hidden=True)] == [6, 4, 3, 3, 3, 1]
        assert len(people.index()) == 21


def test_a_crowd_of_more_than_a_hundred_faces_in_one_photo(tmp_path, offline_encoder):
    """Tiles of the test faces (about 20 people, each five or six times) in one photo:
    every face found, and no two of them grouped together (they share a photo)."""
    model = load_face_model()
    crops = []
    for rel in _labels():
        img = ImageOps.exif_transpose(Image.open(FACES / rel)).convert("RGB")
        w, h = img.size
        for f in model.analyse(img):
            if f.quality >= MIN_CLUSTER_QUALITY:
                x0, y0, x1, y1 = f.box
                cx, cy, half = (x0 + x1) / 2 * w, (y0 + y1) / 2 * h, (x1 - x0) * w * 0.75
                crops.append(img.crop((int(cx - half), int(cy - half * 1.1), int(cx + half), int(cy + half * 0.9))))
    cols, rows, tile = 11, 10, 112
    crowd = Image.new("RGB", (cols * tile, rows * tile), (90, 90, 90))
    for i in range(cols * rows):
        crowd.paste(crops[i % len(crops)].resize((tile, tile)), ((i % cols) * tile, (i // cols) * tile))
    photos = tmp_path / "photos"
    photos.mkdir()
    crowd.save(photos / "crowd.jpg", quality=92)
    Image.new("RGB", (1, 1), (255, 0, 0)).save(photos / "dot.png")
    Image.new("RGB", (3000, 2000), (128, 128, 128)).save(photos / "grey.jpg")
    with SearchEngine.open(tmp_path / "lib", writer=True, create=True, model="offline") as engine:
        report = engine.index([photos])
        assert report.added == 3 and report.failed == 0
        people = engine.people()
        faces = people.faces_in_photo(photos / "crowd.jpg")
        assert len(faces) >= 100
        grouped = [f.person_id for f in faces if f.person_id is not None]
        assert len(grouped) == len(set(grouped))  # never two faces of one photo in one person
        assert people.faces_in_photo(photos / "dot.png") == []
        assert people.faces_in_photo(photos / "grey.jpg") == []
        scanned = engine.catalog.query("SELECT COUNT(*) FROM face_scans")[0][0]
        assert scanned == 3
        boxes = np.array([f.box for f in faces])
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
