"""Rules 1 and 2: core/ never imports Qt, and the command line starts without torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_core_imports_with_qt_blocked():
    proc = _run("""
        import sys, importlib, pkgutil
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6'):
                    raise ImportError('Qt is blocked in core/')
        sys.meta_path.insert(0, Block())
        import lookalike.core
        for m in pkgutil.walk_packages(lookalike.core.__path__, 'lookalike.core.'):
            importlib.import_module(m.name)
        from lookalike.core.engine import SearchEngine
        print('ok')
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_cli_and_core_modules_do_not_import_torch_eagerly():
    proc = _run("""
        import sys
        import lookalike.cli, lookalike.core.engine, lookalike.core.encoders, lookalike.core.search.parse
        heavy = [m for m in ('torch', 'open_clip', 'hnswlib', 'torchvision', 'PySide6') if m in sys.modules]
        print(','.join(heavy))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_help_lists_every_command():
    proc = subprocess.run([sys.executable, "-m", "lookalike", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for cmd in ("index", "search", "status", "models", "bench"):
        assert cmd in proc.stdout
