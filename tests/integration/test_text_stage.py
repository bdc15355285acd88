"""The text stage reading real photos with the real OCR models: signs on real photos, a
receipt, a screenshot, an EXIF-rotated and a huge document, a photo with no text; read
after the likeness indexing; SIGKILLed while reading and resumed."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from lookalike.bench import textset
from lookalike.core.progress import Stage
from lookalike.core.search import SearchEngine
from lookalike.core.text.ocr import available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="the OCR engine (rapidocr-onnxruntime) is not installed"),
]

REPO = Path(__file__).resolve().parents[2]


def _photos(folder: Path) -> dict[str, set[str]]:
    """A few labelled photos made as the bench makes its set; name -> words shown."""
    rng = random.Random(3)
    folder.mkdir(parents=True, exist_ok=True)
    backs = textset.real_photos()
    words = {}
    textset.sign(backs["coffee"], ["bakery", "luna"], rng).save(folder / "sign.jpg", quality=85)
    textset.sign(backs["china"], ["harbor"], rng, upright=False).save(folder / "sign_upwards.jpg", quality=85)
    textset.receipt(["pharmacy", "ginger", "pepper", "walnut"], rng).save(folder / "receipt.jpg", quality=85)
    doc = textset.document(["invoice", "deadline", "meadow", "copper"], rng, width=1400)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown upright
    doc.transpose(Image.Transpose.ROTATE_90).save(folder / "document_sideways.jpg", quality=85, exif=exif)
    huge = textset.document(["glacier", "summit", "lagoon", "compass"], rng, width=6000)
    huge.save(folder / "document_huge.jpg", quality=85)
    backs["chelsea"].save(folder / "cat.jpg", quality=90)
    words = {
        "sign.jpg": {"bakery", "luna"},
        "sign_upwards.jpg": {"harbor"},
        "receipt.jpg": {"pharmacy", "ginger", "pepper", "walnut"},
        "document_sideways.jpg": {"invoice", "deadline", "meadow", "copper"},
        "document_huge.jpg": {"glacier", "summit", "lagoon", "compass"},
        "cat.jpg": set(),
    }
    return words


@pytest.fixture
def reading(monkeypatch):
    monkeypatch.setenv("LOOKALIKE_TEXT", "1")


def test_text_is_read_after_the_likeness_indexing_and_found_by_its_words(tmp_path, reading):
    words = _photos(tmp_path / "photos")
    assert max(Image.open(tmp_path / "photos" / "document_huge.jpg").size) > 7000
    events = []
    with SearchEngine.open(tmp_path / "lib", writer=True) as engine:
        engine.index([tmp_path / "photos"], progress=lambda p: events.append((p.stage, p.done)))
        stages = [s for s, _ in events]
        assert Stage.TEXT in stages
        # every photo was committed, searchable by likeness, before the first was read
        assert events.index((Stage.ENCODE, len(words))) < stages.index(Stage.TEXT)
        assert all(d == 0 for s, d in events[stages.index(Stage.TEXT) :] if s == Stage.ENCODE)
        found = 0
        for name, shown in words.items():
            for word in shown:
                hits = {r.path.name for r in engine.search(f"text:{word}")}
                assert hits <= {name}, (word, hits)  # never another photo
                found += name in hits
        assert found >= 0.9 * sum(map(len, words.values()))
        assert engine.photo_text(tmp_path / "photos" / "cat.jpg").text == ""
        assert {r.path.name for r in engine.search("text:saffron")} == set()
        receipt = engine.photo_text(tmp_path / "photos" / "receipt.jpg")
        assert "pharmacy" in receipt.text.lower()
        assert all(len(line.box) == 4 for line in receipt.lines)


def _read(lib: Path) -> int:
    try:
        with sqlite3.connect(f"file:{lib / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM photo_text").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_while_reading_keeps_what_was_read_and_the_next_run_reads_the_rest(tmp_path, reading):
    words = _photos(tmp_path / "photos")
    lib = tmp_path / "lib"
    env = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))
    cmd = [sys.executable, "-m", "lookalike", "index", str(tmp_path / "photos"), "--library", str(lib)]
    proc = subprocess.Popen(
        [*cmd, "--batch-size", "1", "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and time.monotonic() < deadline and _read(lib) < 1:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode() if proc.stderr else ""
    before = _read(lib)
    assert 1 <= before < len(words)
    totals = []
    with SearchEngine.open(lib, writer=True) as engine:
        engine.index(progress=lambda p: totals.append(p.total) if p.stage == Stage.TEXT else None)
        # only the photos not read before the kill were read again
        assert max(t for t in totals if t) == len(words) - before
        assert engine.catalog.query("SELECT COUNT(*) FROM photo_text")[0][0] == len(words)
        assert {r.path.name for r in engine.search("text:pharmacy")} == {"receipt.jpg"}
