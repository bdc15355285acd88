"""Write (or check) packaging/requirements.lock: every package the bundle holds, pinned by hash.

The lock is made from pyproject.toml's own dependencies, so a dependency added
there reaches the bundle, the Flatpak manifest and the installers through one
file. Two things differ from the development environment, on purpose:

* torch is the CPU build (the generic bundle has no CUDA) and torchvision the
  release that matches it;
* the build tool (PyInstaller) is pinned beside the runtime packages.

Usage::

    python packaging/lock.py            # resolve with pip and write the lock
    python packaging/lock.py --check    # exit 1 if pyproject.toml changed since

Resolution runs ``pip install --dry-run --report`` with the interpreter that
runs this script (the lock is for its Python version and platform: the
committed one is CPython 3.11 on Linux x86_64). pip reads torch's CPU build
from its usual places: a find-links folder, or ``--torch-index`` (PyTorch's
CPU index by default).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent


def lock_path(platform: str = sys.platform) -> Path:
    """The lock of a platform: the committed one is Linux's; Windows and macOS make theirs where they build."""
    if platform.startswith("linux"):
        return ROOT / "packaging" / "requirements.lock"
    return ROOT / "packaging" / f"requirements-{'macos' if platform == 'darwin' else 'windows'}.lock"


LOCK = lock_path()

# The generic bundle's torch: the CPU build, and the torchvision released with it. (macOS
# wheels have no CUDA and no "+cpu" variant.)
CPU_TORCH = {
    "torch": "torch==2.13.0" if sys.platform == "darwin" else "torch==2.13.0+cpu",
    "torchvision": "torchvision==0.28.0",
}
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# Packages that build the bundle, or build a locked sdist (hnswlib needs pybind11), but
# are not part of the app. Locked too, so an offline build (Flatpak) can verify them.
BUILD_TOOLS = ("pyinstaller==6.22.3", "pyinstaller-hooks-contrib==2026.9", "pybind11>=2.0", "wheel")
BUILD_TOOL_NAMES = frozenset(
    {"pyinstaller", "pyinstaller-hooks-contrib", "altgraph", "setuptools", "pybind11", "wheel"}
)

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    m = _NAME.match(line)
    if not m:
        raise ValueError(f"not a requirement: {line!r}")
    return canonical(m.group(1))


def input_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """What the lock is resolved from: the app's declared dependencies, CPU torch, the build tools."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        out.append(CPU_TORCH.get(requirement_name(dep), dep))
    return out + list(BUILD_TOOLS)


def input_digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class Pin:
    name: str  # as the package spells it
    version: str
    sha256: str
    filename: str

    @property
    def is_build_tool(self) -> bool:
        return canonical(self.name) in BUILD_TOOL_NAMES

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


def _sha256_of_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise RuntimeError(f"pip reported no hash for {url}")
    h = hashlib.sha256()
    with open(unquote(parsed.path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve(lines: list[str], python: str, torch_index: str | None) -> list[Pin]:
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "in.txt"
        req.write_text("\n".join(lines) + "\n")
        report = Path(tmp) / "report.json"
        cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        cmd += ["--report", str(report), "-r", str(req)]
        if torch_index:
            cmd += ["--extra-index-url", torch_index]
        subprocess.run(cmd, check=True)
        data = json.loads(report.read_text())
    pins = []
    for item in data["install"]:
        info = item["download_info"]
        url = info["url"]
        sha = (info.get("archive_info") or {}).get("hashes", {}).get("sha256") or _sha256_of_url(url)
        filename = unquote(urlparse(url).path.rsplit("/", 1)[-1])
        meta = item["metadata"]
        pins.append(Pin(meta["name"], meta["version"], sha, filename))
    return sorted(pins, key=lambda p: canonical(p.name))


def render(pins: list[Pin], digest: str) -> str:
    head = [
        f"# The bundle's packages, pinned by hash: CPython {sys.version_info[0]}.{sys.version_info[1]}, "
        f"{sys.platform} {platform.machine()}, CPU torch.",
        "# Written by packaging/lock.py from pyproject.toml's dependencies; do not edit by hand.",
        f"# input-sha256: {digest}",
        f"# torch's CPU build comes from {TORCH_INDEX} (or a find-links folder holding it).",
        "",
    ]
    body = []
    for p in pins:
        tag = "  (build tool)" if p.is_build_tool else ""
        body.append(f"# file: {p.filename}{tag}")
        body.append(f"{p.name}=={p.version} --hash=sha256:{p.sha256}")
    return "\n".join(head + body) + "\n"


def read_lock(path: Path = LOCK) -> tuple[str, list[Pin]]:
    """The input digest and the pins of a lock file."""
    digest = ""
    pins: list[Pin] = []
    filename = ""
    for line in path.read_text().splitlines():
        if line.startswith("# input-sha256:"):
            digest = line.split(":", 1)[1].strip()
        elif line.startswith("# file:"):
            filename = line.split(":", 1)[1].split()[0]
        elif line and not line.startswith("#"):
            spec, _, hashpart = line.partition(" --hash=sha256:")
            name, _, version = spec.partition("==")
            pins.append(Pin(name.strip(), version.strip(), hashpart.strip(), filename))
            filename = ""
    return digest, pins


def check(path: Path = LOCK) -> list[str]:
    """Why the lock no longer serves pyproject.toml (empty when every declared requirement is met).

    A requirement of pyproject.toml (for the lock's Python and platform) that has
    no pin, or a pin outside its version range, makes the lock stale. A change
    that the lock already satisfies (a comment, a wider range) does not.
    """
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - an interpreter without `packaging`: pip carries it
        from pip._vendor.packaging.requirements import Requirement

    if not path.is_file():
        return [f"{path} is missing: run `make lock`"]
    _, pins = read_lock(path)
    locked = {canonical(p.name): p for p in pins}
    problems = []
    for line in input_requirements():
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue  # for another Python or platform than the lock's
        pin = locked.get(canonical(req.name))
        if pin is None:
            problems.append(f"{req.name} is declared in pyproject.toml but not in the lock: run `make lock`")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"the lock has {pin.name} {pin.version}, pyproject.toml asks for {req}: run `make lock`")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check that the lock matches pyproject.toml")
    ap.add_argument("--python", default=sys.executable, help="the interpreter to resolve for (default: this one)")
    ap.add_argument("--torch-index", default=None, help=f"an index holding torch's CPU build (e.g. {TORCH_INDEX})")
    args = ap.parse_args(argv)
    if args.check:
        problems = check()
        for p in problems:
            print(f"lock: {p}", file=sys.stderr)
        return 1 if problems else 0
    lines = input_requirements()
    pins = resolve(lines, args.python, args.torch_index)
    LOCK.write_text(render(pins, input_digest(lines)))
    print(f"wrote {LOCK.relative_to(ROOT)}: {len(pins)} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
