"""The command line as other tools script against it: real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def lookalike(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lookalike", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, sample_dir):
    import shutil

    root = tmp_path_factory.mktemp("cli")
    photos = root / "photos"
    shutil.copytree(sample_dir, photos)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not finished")
    lib = root / "lib"
    proc = lookalike("index", photos, "--library", lib)
    assert proc.returncode == 0, proc.stderr
    return photos, lib, proc


def test_index_reports_what_it_did(indexed):
    _, _, proc = indexed
    assert "8 added" in proc.stderr and "1 unreadable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_search_json_contract(indexed):
    photos, lib, _ = indexed
    proc = lookalike("search", "a cat", "--library", lib, "-k", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"rank", "path", "score", "match", "confidence"}
    assert Path(rows[0]["path"]).is_absolute() and Path(rows[0]["path"]).name == "cat.jpg"
    assert rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]
    assert all(isinstance(r["match"], bool) and 0 <= r["confidence"] <= 1 for r in rows)
    assert rows[0]["match"] and not rows[1]["match"]  # one cat among the eight photos


def test_search_prints_the_matches_only(indexed):
    _, lib, _ = indexed
    proc = lookalike("search", "a cat", "--library", lib)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("cat.jpg")
    rows = json.loads(lookalike("search", "a cat", "--library", lib, "--json").stdout)
    assert [Path(r["path"]).name for r in rows] == ["cat.jpg"] and rows[0]["match"] is True
    ranked = lookalike("search", "a cat", "--library", lib, "--all").stdout.strip().splitlines()
    assert len(ranked) == 8 and ranked[0].endswith("cat.jpg")


def test_an_absent_subject_says_so_and_shows_the_closest_few(indexed):
    _, lib, _ = indexed
    for query in ("a piano", "a sunset"):
        proc = lookalike("search", query, "--library", lib)
        assert proc.returncode == 0, proc.stderr
        first, *rest = proc.stdout.strip().splitlines()
        assert first.startswith(f"No matches for '{query}'")
        assert rest and len(rest) <= 5 and all(line.endswith("(closest, not a match)") for line in rest)
    assert "CLIP knows this" in lookalike("search", "a sunset", "--library", lib).stdout
    rows = json.loads(lookalike("search", "a piano", "--library", lib, "--json").stdout)
    assert rows and not any(r["match"] for r in rows)


def test_search_by_image_and_folder_and_min_score(indexed):
    photos, lib, _ = indexed
    proc = lookalike("search", str(photos / "clock.jpg"), "--library", lib, "--json", "--min-score", "0.99")
    rows = json.loads(proc.stdout)
    assert [Path(r["path"]).name for r in rows] == ["clock.jpg"]
    proc = lookalike("search", "a rocket", "--library", lib, "--json", "--in", photos)
    assert json.loads(proc.stdout)[0]["path"].endswith("rocket.jpg")


def test_query_error_is_one_clear_message_exit_2(indexed):
    _, lib, _ = indexed
    proc = lookalike("search", "cat + ", "--library", lib)
    assert proc.returncode == 2
    assert "column" in proc.stderr and "Traceback" not in proc.stderr


def test_usage_error_exit_2_and_other_errors_exit_1(tmp_path, indexed):
    assert lookalike("search").returncode == 2
    assert lookalike("frobnicate").returncode == 2
    proc = lookalike("search", "cat", "--library", tmp_path / "nothing-here")
    assert proc.returncode == 1 and "no library" in proc.stderr.lower()
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    proc = lookalike("index", tmp_path / "missing-folder", "--library", tmp_path / "lib2")
    assert proc.returncode == 1 and "no folder" in proc.stderr.lower()


def test_status_and_errors(indexed):
    photos, lib, _ = indexed
    proc = lookalike("status", "--library", lib, "--errors", "--json")
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)
    assert st["photos"] == 8 and st["failures"] == 1 and st["model"].startswith("offline")
    assert st["folders"][0]["path"] == str(photos)
    assert st["errors"][0]["path"].endswith("broken.jpg") and st["errors"][0]["reason"]
    text = lookalike("status", "--library", lib, "--errors")
    assert "broken.jpg" in text.stdout and "Photos" in text.stdout


def test_models_lists_the_offline_encoder():
    proc = lookalike("models")
    assert proc.returncode == 0
    line = next(row for row in proc.stdout.splitlines() if row.startswith("offline"))
    assert "offline" in line and "text+image" in line


def test_second_writer_is_told_who_holds_the_library(indexed):
    from lookalike.core.library import Library

    photos, lib, _ = indexed
    holder = Library(lib, writer=True)
    try:
        proc = lookalike("index", "--library", lib)
        assert proc.returncode == 1
        assert "being updated by another Lookalike" in proc.stderr and f"pid {os.getpid()}" in proc.stderr
        # Readers keep working meanwhile.
        assert lookalike("search", "a cat", "--library", lib, "--json").returncode == 0
    finally:
        holder.close()


def test_the_command_line_follows_a_model_switch(tmp_path, sample_dir, tiny_clip_checkpoint):
    """The window switches model through AppPaths; `lookalike search` and `status` then use
    the new model's library (design rule 10), and an explicit --model/--library still wins."""
    import shutil

    from lookalike.core.paths import ModelChoice, app_paths
    from lookalike.core.search import SearchEngine

    paths = app_paths()
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(sample_dir, first)
    shutil.copytree(sample_dir, second)
    proc = lookalike("index", first, "-q")  # the current (offline) model's library
    assert proc.returncode == 0, proc.stderr
    clip = ModelChoice.of("clip", tiny_clip_checkpoint)
    assert paths.library_for(clip) != paths.library_for(ModelChoice())
    # What the window does when a switch has re-indexed every folder with the new model:
    with SearchEngine.open(paths.library_for(clip), model_file=tiny_clip_checkpoint, writer=True) as eng:
        eng.index([second])
    before = json.loads(lookalike("search", "a cat", "--json", "-k", "3").stdout)
    assert before and all(Path(r["path"]).parent == first for r in before)
    paths.set_current_model(clip)

    after = json.loads(lookalike("search", "a cat", "--json", "-k", "3").stdout)
    assert after and all(Path(r["path"]).parent == second for r in after)
    st = json.loads(lookalike("status", "--json").stdout)
    assert st["library"] == str(paths.library_for(clip)) and st["model_name"] == "clip"
    assert st["current"] == {
        "library": str(paths.library_for(clip)),
        "model_name": "clip",
        "model_file": str(tiny_clip_checkpoint),
        "is_this_library": True,
    }
    assert "(current)" in lookalike("status").stdout.splitlines()[0]
    # Named explicitly, the offline library is still searched, and status says it is not the current one.
    named = json.loads(lookalike("search", "a cat", "--json", "-k", "3", "--model", "offline").stdout)
    assert all(Path(r["path"]).parent == first for r in named)
    st = json.loads(lookalike("status", "--json", "--model", "offline").stdout)
    assert st["library"] == str(paths.library_for(ModelChoice())) and st["current"]["is_this_library"] is False
    text = lookalike("status", "--model", "offline").stdout
    assert f"Current   clip ({tiny_clip_checkpoint}), library {paths.library_for(clip)}" in text
    # An index run that names a model makes it the current one, as a switch in the window does.
    proc = lookalike("index", "--model", "offline", "-q")
    assert proc.returncode == 0 and "searches now use the offline model" in proc.stderr
    assert paths.current_model() == ModelChoice()


def test_search_json_is_utf8_for_any_file_name(tmp_path, sample_dir, tiny_clip_checkpoint):
    """A file name that is not UTF-8 (Latin-1 from an old camera or disk) keeps the JSON
    valid: "path" with replacement characters, "path_bytes" its exact bytes in base64."""
    import base64
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    odd = os.fsencode(folder) + b"/caf\xe9_\xff.jpg"
    shutil.copyfile(sample_dir / "cat.jpg", odd)
    shutil.copyfile(sample_dir / "clock.jpg", folder / "clock.jpg")
    lib = tmp_path / "lib"
    assert lookalike("index", folder, "--library", lib, "--model-file", tiny_clip_checkpoint, "-q").returncode == 0
    for locale in ("C.UTF-8", "C"):
        proc = subprocess.run(
            [sys.executable, "-m", "lookalike", "search", "a cat", "--library", str(lib), "--json"],
            capture_output=True,
            env={**os.environ, "LC_ALL": locale, "PYTHONIOENCODING": ""},
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout.decode("utf-8"))  # strict: raises on anything not UTF-8
        by_name = {Path(r["path"]).name: r for r in rows}
        assert set(by_name) == {"clock.jpg", "caf\ufffd_\ufffd.jpg"}
        assert "path_bytes" not in by_name["clock.jpg"]
        assert base64.b64decode(by_name["caf\ufffd_\ufffd.jpg"]["path_bytes"]) == odd
    # The plain listing prints the name's own bytes, as ls does.
    proc = subprocess.run(
        [sys.executable, "-m", "lookalike", "search", "a cat", "--library", str(lib)], capture_output=True, timeout=300
    )
    assert proc.returncode == 0 and odd in proc.stdout


def test_status_reports_the_device_the_model_uses(tmp_path, sample_dir, tiny_clip_checkpoint, monkeypatch, capsys):
    """Where a GPU is present but the model runs on the CPU, status says CPU."""
    import torch

    from lookalike.cli import main
    from lookalike.core.search import SearchEngine

    lib = tmp_path / "lib"
    with SearchEngine.open(lib, model_file=tiny_clip_checkpoint, writer=True, create=True) as eng:
        eng.index([sample_dir])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert main(["status", "--json", "--library", str(lib), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["device"] == "cpu"
    with SearchEngine.open(lib, device="cpu") as eng:
        eng.encoder()
        assert eng.device() == "cpu" == eng.status().device
