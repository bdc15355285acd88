"""Install Lookalike into the current user's application menu, or take it out again.

``python packaging/desktop_integration.py install [--exec PATH]`` copies into
the user's XDG data folder (``$XDG_DATA_HOME``, by default ``~/.local/share``):

* ``applications/io.github.lookalike.Lookalike.desktop``, its ``Exec`` pointing
  at the bundle (``dist/lookalike/lookalike``) when it is built, else at the
  development environment's ``.venv/bin/lookalike-desktop``;
* ``icons/hicolor/scalable/apps/io.github.lookalike.Lookalike.svg``;
* ``metainfo/io.github.lookalike.Lookalike.metainfo.xml``;

and records what it wrote, with checksums, in
``lookalike-desktop-files.json`` there. ``uninstall`` removes exactly those
files (one changed since is left in place, and said so) and the record.
The desktop file lists image types, so a file manager's "Open with" offers
Lookalike and starts an image search with the photo.

Standard library only: it runs with any Python 3.11.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "io.github.lookalike.Lookalike"
RESOURCES = ROOT / "resources"
RECORD = "lookalike-desktop-files.json"


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_executable() -> Path:
    """The bundle's executable when built, else the development environment's window launcher."""
    bundle = ROOT / "dist" / "lookalike" / "lookalike"
    if bundle.is_file() and os.access(bundle, os.X_OK):
        return bundle
    return ROOT / ".venv" / "bin" / "lookalike-desktop"


def _exec_quote(path: str) -> str:
    """A path as the Desktop Entry spec wants it in Exec (quoted when it has reserved characters)."""
    if all(c.isalnum() or c in "/._-+" for c in path):
        return path
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in path)
    return f'"{escaped}"'


def desktop_entry(executable: Path) -> str:
    """resources' desktop file with Exec and TryExec pointing at ``executable``."""
    out = []
    for line in (RESOURCES / f"{APP_ID}.desktop").read_text().splitlines():
        if line.startswith("Exec="):
            args = shlex.split(line[len("Exec=") :])[1:]  # keep the field codes (%F)
            line = "Exec=" + " ".join([_exec_quote(str(executable)), *args])
        elif line.startswith("TryExec="):
            line = f"TryExec={executable}"
        out.append(line)
    return "\n".join(out) + "\n"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refresh_caches(home: Path) -> None:
    """Tell the desktop about the change, where its tools are installed (none is required)."""
    for cmd in (
        ["update-desktop-database", "-q", str(home / "applications")],
        ["gtk-update-icon-cache", "-q", "-t", "-f", str(home / "icons" / "hicolor")],
    ):
        if shutil.which(cmd[0]):
            subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def install(executable: Path | None = None, home: Path | None = None) -> list[Path]:
    home = home or data_home()
    executable = (executable or default_executable()).resolve()
    if not executable.is_file():
        raise SystemExit(f"install-desktop: {executable} does not exist: run `make package` or `make run` first")
    files = {
        home / "applications" / f"{APP_ID}.desktop": desktop_entry(executable).encode(),
        home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg": (
            RESOURCES / "icons" / f"{APP_ID}.svg"
        ).read_bytes(),
        home / "metainfo" / f"{APP_ID}.metainfo.xml": (RESOURCES / f"{APP_ID}.metainfo.xml").read_bytes(),
    }
    record = {}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        record[str(path)] = hashlib.sha256(data).hexdigest()
    (home / RECORD).write_text(json.dumps({"executable": str(executable), "files": record}, indent=2) + "\n")
    _refresh_caches(home)
    return list(files)


def uninstall(home: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Remove what ``install`` wrote; returns (removed, kept because changed since)."""
    home = home or data_home()
    record_file = home / RECORD
    if not record_file.is_file():
        return [], []
    record = json.loads(record_file.read_text())
    removed, kept = [], []
    for name, digest in record["files"].items():
        path = Path(name)
        if not path.is_file():
            continue
        if _sha256(path) == digest:
            path.unlink()
            removed.append(path)
        else:
            kept.append(path)
    record_file.unlink()
    _refresh_caches(home)
    return removed, kept


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Add Lookalike to this user's application menu, or remove it.")
    sub = ap.add_subparsers(dest="action", required=True)
    sp = sub.add_parser("install")
    sp.add_argument("--exec", dest="executable", type=Path, help="the program the menu starts")
    sub.add_parser("uninstall")
    args = ap.parse_args(argv)
    if args.action == "install":
        for p in install(args.executable):
            print(f"installed {p}")
        return 0
    removed, kept = uninstall()
    for p in removed:
        print(f"removed {p}")
    for p in kept:
        print(f"kept {p}: changed since it was installed", file=sys.stderr)
    if not removed and not kept:
        print("nothing to remove: Lookalike's desktop files were not installed by install-desktop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
