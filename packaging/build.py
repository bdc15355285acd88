"""Build the one-folder bundle: ``python packaging/build.py`` (what ``make package`` runs).

Steps, each skipped when its result is already there and still current:

1. a build environment, ``build/bundle-venv``, with exactly the packages of
   ``packaging/requirements.lock`` (hash-checked; torch's CPU build from a
   find-links folder if pip has one, else from PyTorch's CPU index);
2. Lookalike itself installed into it from this source tree;
3. the platform icons (.ico, .icns, PNGs) rendered from the SVG into build/icons;
4. PyInstaller with ``packaging/lookalike.spec`` into ``dist/lookalike``.

It prints the bundle's size and the build time, and writes them to
``build/bundle-report.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(PACKAGING))

import lock  # noqa: E402

BUILD = ROOT / "build"
VENV = BUILD / "bundle-venv"
DIST = ROOT / "dist"
BUNDLE = DIST / "lookalike"
REPORT = BUILD / "bundle-report.json"
SHIM = "_lookalike_torchvision_cpu"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list, **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def site_packages() -> Path:
    out = subprocess.run(
        [str(venv_python()), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def make_environment(torch_index: str) -> None:
    """The build environment with exactly the locked packages (rebuilt when the lock changes)."""
    stamp = VENV / ".lock-sha256"
    want = hashlib.sha256(lock.LOCK.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want and venv_python().exists():
        print(f"build environment {VENV.relative_to(ROOT)} matches the lock")
        return
    if VENV.exists():
        shutil.rmtree(VENV)
    venv.create(VENV, with_pip=True)
    py = venv_python()
    install = [py, "-m", "pip", "install", "--quiet", "--require-hashes", "--no-deps", "-r", lock.LOCK]
    try:
        run(install)
    except subprocess.CalledProcessError:
        # torch's CPU build is not on PyPI: ask PyTorch's index too (only now, as an
        # unreachable index costs seconds per package).
        run(install + ["--extra-index-url", torch_index])
    # torchvision's Python code beside CPU torch, for PyInstaller's analysis (see the hook's text).
    sp = site_packages()
    shutil.copy(PACKAGING / "hooks" / "rthook_torchvision_cpu.py", sp / f"{SHIM}.py")
    (sp / f"{SHIM}.pth").write_text(f"import {SHIM}\n")
    stamp.write_text(want)


def install_lookalike() -> None:
    # setuptools builds in build/lib: a module deleted from the source would linger there.
    for leftover in (BUILD / "lib", *BUILD.glob("bdist.*")):
        shutil.rmtree(leftover, ignore_errors=True)
    run(
        [
            venv_python(),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--force-reinstall",
            ".",
        ]
    )


def make_icons() -> None:
    run([venv_python(), PACKAGING / "icons.py", BUILD / "icons"], env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def run_pyinstaller() -> None:
    run(
        [
            venv_python(),
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            DIST,
            "--workpath",
            BUILD / "pyinstaller",
            PACKAGING / "lookalike.spec",
        ]
    )


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build Lookalike's one-folder bundle into dist/lookalike.")
    ap.add_argument("--torch-index", default=lock.TORCH_INDEX, help="where torch's CPU build is, if not on PyPI")
    args = ap.parse_args(argv)
    problems = lock.check()
    if problems:
        for p in problems:
            print(f"package: {p}", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    make_environment(args.torch_index)
    t_env = time.monotonic() - t0
    install_lookalike()
    make_icons()
    run_pyinstaller()
    elapsed = time.monotonic() - t0
    size = folder_size(BUNDLE)
    files = sum(1 for p in BUNDLE.rglob("*") if p.is_file())
    report = {
        "bundle": str(BUNDLE.relative_to(ROOT)),
        "bytes": size,
        "files": files,
        "build_seconds": round(elapsed, 1),
        "environment_seconds": round(t_env, 1),
    }
    BUILD.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"bundle {report['bundle']}: {size / 2**20:.0f} MiB in {files} files, "
        f"built in {elapsed:.0f} s (of which {t_env:.0f} s making the build environment)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
