"""The offline model's torch-free text tower gives the same vectors, without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TEXTS = ["a cat", "a cup of coffee on a wooden table", "t-shirt", "galaxies in deep space, far away", "ünïcödé 🚀"]


def test_text_tower_matches_the_torch_encoder(offline_encoder):
    from lookalike.core.encoders.offline_text import OfflineTextEncoder

    tower = OfflineTextEncoder(np.asarray(offline_encoder._concept_mean), offline_encoder.weights_checksum)
    assert (tower.id, tower.weights_checksum, tower.dimension) == (
        offline_encoder.id,
        offline_encoder.weights_checksum,
        offline_encoder.dimension,
    )
    a = tower.encode_texts(TEXTS)
    b = offline_encoder.encode_texts(TEXTS)
    assert a.shape == b.shape and a.dtype == np.float32
    assert np.abs(a - b).max() < 1e-5


def test_cli_text_search_never_imports_torch(tmp_path, sample_dir):
    lib = tmp_path / "lib"
    code = f"""
import sys, json
from lookalike.cli import main
assert main(["index", {str(sample_dir)!r}, "--library", {str(lib)!r}, "-q"]) == 0
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=600)
    probe = f"""
import sys, io, contextlib, json
from lookalike.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    rc = main(["search", "a cat", "--library", {str(lib)!r}, "--json", "-k", "1"])
print(json.dumps({{"rc": rc, "out": buf.getvalue(), "torch": "torch" in sys.modules}}))
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0
    assert json.loads(result["out"])[0]["path"].endswith("cat.jpg")
    assert result["torch"] is False


def test_rescan_with_nothing_new_loads_no_model(tmp_path, sample_dir):
    import shutil

    photos = tmp_path / "photos"
    shutil.copytree(sample_dir, photos)
    lib = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "-m", "lookalike", "index", str(photos), "--library", str(lib), "-q"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    probe = f"""
import sys, json
from lookalike.core.engine import SearchEngine
with SearchEngine.open({str(lib)!r}, writer=True) as engine:
    report = engine.index()
print(json.dumps({{"unchanged": report.unchanged, "encoded": report.encoded, "torch": "torch" in sys.modules}}))
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"unchanged": 8, "encoded": 0, "torch": False}
