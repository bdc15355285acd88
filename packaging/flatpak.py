"""Write the Flatpak manifest from the lock: ``python packaging/flatpak.py``.

The manifest (packaging/flatpak/io.github.lookalike.Lookalike.json) installs
the same packages, at the same versions and hashes, as the bundle: each file
of packaging/requirements.lock (but the build tools) is a source of the
manifest with its sha256, and pip installs them offline inside the sandbox
build with ``--require-hashes`` against the lock itself. A test checks that
the committed manifest is what this script makes from the current lock.

The runtime is org.freedesktop.Platform 23.08, whose Python is 3.11, the
version the lock is resolved for. (24.08 and later carry Python 3.12 or newer:
moving there means a lock resolved for that Python, `lock.py --python`.)

Not built on the project's machines (flatpak-builder fetches runtimes and
sources from the network); see packaging/README.md.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lock  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "io.github.lookalike.Lookalike"
MANIFEST = ROOT / "packaging" / "flatpak" / f"{APP_ID}.json"
RUNTIME_VERSION = "23.08"

# Packages the sdists in the lock (hnswlib, the face models) and Lookalike itself need to
# build: installed first, as pip runs offline without build isolation.
SDIST_BUILD_NEEDS = ("setuptools", "wheel", "numpy", "pybind11")
TORCH_FILES = "https://download.pytorch.org/whl/cpu/"


def _wheel_python_tag(filename: str) -> str:
    # name-version(-build)?-pytag-abitag-platform.whl
    return filename[: -len(".whl")].split("-")[-3]


def file_url(pin: lock.Pin) -> str:
    """Where the file can be fetched: PyPI's per-file address, or PyTorch's CPU index for torch."""
    if "+cpu" in pin.filename:
        return TORCH_FILES + quote(pin.filename)
    project = pin.filename.split("-")[0]
    pytag = _wheel_python_tag(pin.filename) if pin.is_wheel else "source"
    return f"https://files.pythonhosted.org/packages/{pytag}/{project[0]}/{project}/{quote(pin.filename)}"


def python_sources(pins: list[lock.Pin]) -> list[dict]:
    return [
        {"type": "file", "url": file_url(p), "sha256": p.sha256, "dest-filename": p.filename}
        for p in pins
        if not p.is_build_tool or lock.canonical(p.name) in SDIST_BUILD_NEEDS
    ]


def manifest() -> dict:
    _, pins = lock.read_lock()
    pip = 'pip3 install --no-index --find-links="file://${PWD}" --prefix=${FLATPAK_DEST} --no-build-isolation --no-deps'
    needs = "|".join(SDIST_BUILD_NEEDS)
    # Parts of the lock: each pin follows its "# file: NAME-VERSION... [(build tool)]" line.
    build_needs_lock = f"grep -A1 -E '^# file: ({needs})-' requirements.lock | grep -v -e '^#' -e '^--' > needs.lock"
    runtime_lock = "sed '/(build tool)/{N;d}' requirements.lock > runtime.lock"
    lock_file = {"type": "file", "path": "../requirements.lock"}
    return {
        "id": APP_ID,
        "runtime": "org.freedesktop.Platform",
        "runtime-version": RUNTIME_VERSION,
        "sdk": "org.freedesktop.Sdk",
        "command": "lookalike",
        "finish-args": [
            "--share=ipc",
            "--socket=wayland",
            "--socket=fallback-x11",
            "--device=dri",
            # photo folders anywhere in the home folder; duplicates go to the trash from there
            "--filesystem=home",
            "--filesystem=/media",
            "--filesystem=/run/media",
            # CLIP weights are downloaded on request
            "--share=network",
            # "Show in folder"
            "--talk-name=org.freedesktop.FileManager1",
        ],
        "cleanup": ["/include", "/lib/pkgconfig", "*.a", "/share/man"],
        "modules": [
            {
                "name": "python-build-needs",
                "buildsystem": "simple",
                "build-commands": [build_needs_lock, f"{pip} --require-hashes -r needs.lock"],
                "sources": [
                    lock_file,
                    *(
                        s
                        for s in python_sources(pins)
                        if lock.canonical(re.split(r"-\d", s["dest-filename"], maxsplit=1)[0]) in SDIST_BUILD_NEEDS
                    ),
                ],
            },
            {
                "name": "python-dependencies",
                "buildsystem": "simple",
                "build-commands": [runtime_lock, f"{pip} --require-hashes -r runtime.lock"],
                "sources": [lock_file, *python_sources(pins)],
            },
            {
                "name": "lookalike",
                "buildsystem": "simple",
                "build-commands": [
                    f"{pip} .",  # this source tree: no hash to check
                    f"install -Dm644 resources/{APP_ID}.desktop ${{FLATPAK_DEST}}/share/applications/{APP_ID}.desktop",
                    f"install -Dm644 resources/{APP_ID}.metainfo.xml "
                    f"${{FLATPAK_DEST}}/share/metainfo/{APP_ID}.metainfo.xml",
                    f"install -Dm644 resources/icons/{APP_ID}.svg "
                    f"${{FLATPAK_DEST}}/share/icons/hicolor/scalable/apps/{APP_ID}.svg",
                ],
                "sources": [{"type": "dir", "path": "../.."}],
            },
        ],
    }


def main() -> int:
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    MANIFEST.write_text(json.dumps(manifest(), indent=2) + "\n")
    print(f"wrote {MANIFEST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
