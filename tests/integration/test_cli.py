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
    assert set(rows[0]) == {"rank", "path", "score"}
    assert Path(rows[0]["path"]).is_absolute() and Path(rows[0]["path"]).name == "cat.jpg"
    assert rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]


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
    line = next(l for l in proc.stdout.splitlines() if l.startswith("offline"))
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
