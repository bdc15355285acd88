"""The built bundle, run as a user would: copied elsewhere, with no development environment in sight.

Runs under ``make package-test`` (after ``make package``), which sets
LOOKALIKE_BUNDLE to dist/lookalike; skipped otherwise, as building the bundle
takes minutes. The bundle is copied to a temporary folder and started with an
environment holding only PATH=/usr/bin:/bin, a fresh HOME and the test's
LOOKALIKE_HOME: no virtual environment, no PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))

import bundle_rules  # noqa: E402

pytestmark = pytest.mark.slow

ENV_VAR = "LOOKALIKE_BUNDLE"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The bundle's executable, in a copy of the bundle outside the source tree."""
    where = os.environ.get(ENV_VAR)
    if not where:
        pytest.skip(f"{ENV_VAR} is not set: `make package` then `make package-test` run this")
    source = Path(where)
    assert (source / "lookalike").is_file(), f"no bundle at {source}: run `make package` first"
    dest = tmp_path_factory.mktemp("installed") / "lookalike"
    shutil.copytree(source, dest, symlinks=True)
    return dest / "lookalike"


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("user")
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root / "home"),
        "LOOKALIKE_HOME": str(root / "lookalike-home"),
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "offscreen",
    }


def run(bundle: Path, env: dict, *args, timeout: int = 600, extra: dict | None = None):
    return subprocess.run(
        [str(bundle), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, **(extra or {})},
        stdin=subprocess.DEVNULL,
        cwd=env["HOME"] if os.path.isdir(env["HOME"]) else None,
    )


def test_version_comes_from_the_package(bundle, clean_env):
    from lookalike import __version__

    proc = run(bundle, clean_env, "--version", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"lookalike {__version__}"


def test_every_command_is_in_the_bundle(bundle, clean_env):
    """Feature commands are imported by name at run time: the bundle must hold them all."""
    import argparse

    from lookalike.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    proc = run(bundle, clean_env, "--help", timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = set(re.findall(r"^    (\w[\w-]*)", proc.stdout, flags=re.M))
    assert set(sub.choices) <= listed, set(sub.choices) - listed


@pytest.fixture(scope="module")
def indexed(bundle, clean_env, sample_dir, tmp_path_factory):
    photos = tmp_path_factory.mktemp("bundle-photos")
    shutil.copytree(sample_dir, photos, dirs_exist_ok=True)
    proc = run(bundle, clean_env, "index", photos)
    assert proc.returncode == 0, proc.stderr
    assert "8 added" in proc.stderr and "Traceback" not in proc.stderr
    return photos


@pytest.mark.parametrize(("query", "expected"), [("a cat", "cat.jpg"), ("a motorcycle", "motorcycle.jpg")])
def test_text_search_finds_the_photo_with_the_offline_model(bundle, clean_env, indexed, query, expected):
    proc = run(bundle, clean_env, "search", query, "-k", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert Path(rows[0]["path"]).name == expected, rows


def test_image_search_ranks_a_changed_copy_first(bundle, clean_env, indexed, tmp_path):
    from PIL import Image

    probe = tmp_path / "probe.jpg"  # not in the library: a smaller, re-encoded copy of the clock
    with Image.open(indexed / "clock.jpg") as img:
        img.convert("RGB").resize((img.width // 2, img.height // 2)).save(probe, quality=70)
    proc = run(bundle, clean_env, "search", probe, "-k", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert Path(json.loads(proc.stdout)[0]["path"]).name == "clock.jpg"


def test_clip_from_a_checkpoint_file_runs_in_the_bundle(bundle, clean_env, indexed, tiny_clip_checkpoint, tmp_path):
    """open_clip and torchvision's Python code work beside CPU torch (random weights: no ranking asserted)."""
    lib = tmp_path / "clip-library"
    proc = run(bundle, clean_env, "index", indexed, "--library", lib, "--model-file", tiny_clip_checkpoint)
    assert proc.returncode == 0, proc.stderr
    proc = run(bundle, clean_env, "search", "a cat", "--library", lib, "--model-file", tiny_clip_checkpoint, "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 8


def test_window_opens_and_paints_offscreen(bundle, clean_env):
    proc = run(bundle, clean_env, timeout=180, extra={"LOOKALIKE_QUIT_AFTER_PAINT": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_window_opens_with_a_photo_from_open_with(bundle, clean_env, indexed):
    proc = run(bundle, clean_env, indexed / "cat.jpg", timeout=180, extra={"LOOKALIKE_QUIT_AFTER_PAINT": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_what_was_left_out_is_not_in_the_bundle(bundle):
    root = bundle.parent / "_internal"
    files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    assert len(files) > 100
    assert [f for f in files if bundle_rules.dropped(f)] == []
    cuda = ("libcuda", "libcudart", "libcublas", "libcudnn", "libcufft", "libcurand", "libcusolver", "libcusparse")
    cuda += ("libnccl", "libnvrtc", "libnvjpeg", "libnvjitlink", "libnvtoolsext", "libtorch_cuda", "libc10_cuda")
    assert [f for f in files if Path(f).name.lower().startswith(cuda) or f.startswith("nvidia/")] == []
    # the offline model's weights are inside
    assert any(f.endswith("model.safetensors") for f in files)
    assert any(f.endswith(".pth") and "efficientnet" in f for f in files)


def test_appimage_appdir_starts_the_bundle(bundle, clean_env, tmp_path):
    """The AppImage's AppDir (packing it needs appimagetool, which is not here): AppRun runs the bundle."""
    appdir = tmp_path / "Lookalike.AppDir"
    proc = subprocess.run(
        ["bash", str(ROOT / "packaging" / "appimage" / "build-appimage.sh"), "--appdir-only"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BUNDLE": str(bundle.parent), "APPDIR": str(appdir)},
    )
    assert proc.returncode == 0, proc.stderr
    from lookalike import APP_ID, __version__

    assert (appdir / f"{APP_ID}.desktop").is_file() and (appdir / ".DirIcon").exists()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(appdir / f"{APP_ID}.desktop")], capture_output=True)
        assert check.returncode == 0, check.stdout
    out = run(appdir / "AppRun", clean_env, "--version", timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"lookalike {__version__}", out.stderr
    desktop_exec = subprocess.run(  # the desktop file's command is found in the AppDir's usr/bin
        [str(appdir / "usr" / "bin" / "lookalike-desktop"), "--version"], capture_output=True, text=True, env=clean_env
    )
    assert desktop_exec.stdout.strip() == f"lookalike {__version__}"


FACES = Path(__file__).resolve().parents[1] / "data" / "faces"


def test_people_found_and_searched_in_the_bundle(bundle, clean_env, tmp_path):
    """dlib and its face models inside the bundle: name one photo's face, find that person's photos."""
    if not (FACES / "labels.json").is_file():
        pytest.skip(f"the face photos are not at {FACES}")
    labels = json.loads((FACES / "labels.json").read_text())["photos"]
    photos = tmp_path / "faces"
    shutil.copytree(FACES, photos)
    lib = tmp_path / "faces-library"
    proc = run(bundle, clean_env, "index", photos, "--library", lib)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    proc = run(bundle, clean_env, "people", "name", photos / "obama" / "obama.jpg", "Obama", "--library", lib)
    assert proc.returncode == 0, proc.stderr
    obama = {name for name, people in labels.items() if "obama" in people}
    proc = run(bundle, clean_env, "search", "@Obama", "--library", lib, "-k", str(len(obama)), "--json")
    assert proc.returncode == 0, proc.stderr
    found = {Path(r["path"]).relative_to(photos).as_posix() for r in json.loads(proc.stdout)}
    assert found == obama
