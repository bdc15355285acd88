"""Attacks a new user stumbles on: a byte that is not UTF-8 in a query, a folder where the
writer lock belongs, numbers that are not numbers, an unknown or unloadable model, a data
folder others can read, a killed teach, and two threads asking for People or the Learner
at once. Each must end in one clear line (or be repaired), never a traceback."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lookalike.cli import main
from lookalike.core.engine import SearchEngine
from tests.hostile import good_image, jpeg_bytes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def small(tmp_path, tiny_clip_checkpoint):
    """A small library (12 photos), closed: (library folder, photos folder)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(12):
        (photos / f"p{i:02d}.jpg").write_bytes(jpeg_bytes(good_image(i, 96)))
    lib = tmp_path / "library"
    with SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True, create=True) as eng:
        eng.index([photos])
    return lib, photos


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_a_query_argument_that_is_not_utf8_is_one_clear_error_with_its_column(small):
    lib, _ = small
    r = subprocess.run(
        [sys.executable, "-m", "lookalike", "search", b"dog \xff", "--library", str(lib)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "desktop")),
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("lookalike: bad query:") and "UTF-8" in first and "(column 5)" in first


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "NaN"])
def test_min_score_must_be_a_finite_number(small, capsys, value):
    lib, _ = small
    assert main(["search", "a cat", "--library", str(lib), f"--min-score={value}"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--min-score" in line and "not a finite number" in line


def test_a_folder_in_place_of_the_writer_lock_is_one_clear_error(small, capsys):
    lib, photos = small
    lock = lib / "writer.lock"
    if lock.exists():
        lock.unlink()
    lock.mkdir()
    assert main(["index", str(photos), "--library", str(lib), "-q"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "writer lock" in line and "a folder is in its place" in line
    # searching still works, and the folder is left alone
    assert main(["search", "a cat", "--library", str(lib), "-k", "3"]) == 0
    assert lock.is_dir()


def test_the_data_folder_is_private(tmp_path, monkeypatch, tiny_clip_checkpoint):
    """It holds current-model.json, which names the user's model file: 0700, like the
    libraries, from the first library made in it on (the default model's, no switch yet)."""
    monkeypatch.setenv("LOOKALIKE_HOME", str(tmp_path / "home"))
    with SearchEngine.open(writer=True, create=True):
        pass
    data = tmp_path / "home" / "data"
    assert (data / "library").is_dir()
    assert data.stat().st_mode & 0o777 == 0o700 and (data / "library").stat().st_mode & 0o777 == 0o700
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(jpeg_bytes(good_image(1, 64)))
    assert main(["index", str(photos), "--model-file", str(tiny_clip_checkpoint), "-q"]) == 0
    assert (data / "current-model.json").exists()
    for folder in [data, *(p for p in data.iterdir() if p.is_dir())]:
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_an_unknown_model_in_current_model_json_is_said_and_the_default_used(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LOOKALIKE_HOME", str(tmp_path / "home"))
    data = tmp_path / "home" / "data"
    data.mkdir(parents=True)
    (data / "current-model.json").write_text(json.dumps({"name": "vit-h-14-typo", "model_file": ""}))
    from lookalike.core.store.paths import app_paths

    with caplog.at_level(logging.WARNING):
        choice = app_paths().current_model()
    assert choice.name == "offline"
    said = [r.getMessage() for r in caplog.records if "vit-h-14-typo" in r.getMessage()]
    assert len(said) == 1 and "not one Lookalike knows" in said[0] and "offline" in said[0]
    assert app_paths().default_library == data / "library"
    assert not (data / "library-vit-h-14-typo").exists()


def test_a_model_that_cannot_be_loaded_leaves_no_empty_library(tmp_path, monkeypatch, capsys):
    """`--model resnet50` offline: its weights cannot be fetched; nothing is left behind."""
    from lookalike.core import encoders
    from lookalike.core.errors import ModelUnavailableError

    def offline(name, **kw):
        raise ModelUnavailableError(f"The {name} model's weights are not here and cannot be downloaded (offline)")

    monkeypatch.setattr(encoders, "load_encoder", offline)
    monkeypatch.setenv("LOOKALIKE_HOME", str(tmp_path / "home"))
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(jpeg_bytes(good_image(1, 64)))
    assert main(["index", str(photos), "--model", "resnet50", "-q"]) == 1
    assert "cannot be downloaded" in _one_line(capsys.readouterr().err)
    data = tmp_path / "home" / "data"
    assert not (data / "library-resnet50").exists()
    # a library that holds something is never removed that way
    lib = tmp_path / "kept"
    lib.mkdir()
    (lib / "notes.txt").write_text("mine")
    assert main(["index", str(photos), "--model", "resnet50", "--library", str(lib), "-q"]) == 1
    assert (lib / "notes.txt").read_text() == "mine"


def test_a_killed_teach_is_learned_again_when_the_library_is_opened(small, monkeypatch):
    lib, photos = small
    from lookalike.core.learning.concepts import Concepts

    with SearchEngine.open(lib, writer=True) as eng:
        eng.learner().concepts.teach("round", [photos / "p00.jpg"])
        before = eng.learner().concepts.get("round").threshold

        def killed(self, name, *, choose=True):
            raise KeyboardInterrupt

        monkeypatch.setattr(Concepts, "learn", killed)
        with pytest.raises(KeyboardInterrupt):
            eng.learner().concepts.teach("round", [photos / "p03.jpg", photos / "p05.jpg", photos / "p07.jpg"])
        monkeypatch.undo()
    with SearchEngine.open(lib, writer=True) as eng:
        concepts = eng.learner().concepts  # opening it learns what the killed run did not
        relearned = concepts.get("round")
        assert relearned.examples == 4 and relearned.threshold != before
        assert concepts.learn("round").concept.threshold == relearned.threshold


@pytest.mark.parametrize("what", ["people", "learner"])
def test_two_threads_asking_at_once_share_one(small, monkeypatch, what):
    """An index could take its face stage from one People and finish on another (faces not
    waited for, the face graph not saved): both threads get the one object."""
    lib, _ = small
    import lookalike.core.faces as faces_mod
    import lookalike.core.learning.learner as learner_mod

    module, name = (faces_mod, "People") if what == "people" else (learner_mod, "Learner")
    base = getattr(module, name)
    both_inside = threading.Barrier(2)

    class Slow(base):  # type: ignore[misc, valid-type]
        def __init__(self, *a, **kw):
            try:  # wait for the other thread to be building one too (it never is, under the lock)
                both_inside.wait(timeout=2)
            except threading.BrokenBarrierError:
                pass
            super().__init__(*a, **kw)

    monkeypatch.setattr(module, name, Slow)
    with SearchEngine.open(lib, writer=True) as eng:
        got: list = []
        threads = [threading.Thread(target=lambda: got.append(getattr(eng, what)())) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == 2 and got[0] is got[1]
