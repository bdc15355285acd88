"""Test set-up shared by every test.

Rule 7: tests never touch the network and never the developer's own library,
so an autouse fixture points LOOKALIKE_HOME at a temporary folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Reading text (OCR, seconds a photo) is off unless a test turns it on: tests/*/test_text*.py do.
os.environ.setdefault("LOOKALIKE_TEXT", "0")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.photos etc.

pytest_plugins = ["tests.fixtures_models"]


@pytest.fixture(scope="session")
def _shared_models(tmp_path_factory) -> Path:
    """One model cache for the session (derived files such as the offline model's
    concept vectors), so each test's fresh home does not recompute them."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch, _shared_models):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LOOKALIKE_HOME", str(home))
    monkeypatch.setenv("LOOKALIKE_MODELS", str(_shared_models))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg-data"))
    yield home


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """A folder of real photos (read-only by convention: copy before changing)."""
    from tests.photos import write_samples

    folder = tmp_path_factory.mktemp("samples")
    write_samples(folder)
    return folder


@pytest.fixture
def photo_dir(tmp_path, sample_dir) -> Path:
    """A private, writable copy of the sample photos."""
    import shutil

    dst = tmp_path / "photos"
    shutil.copytree(sample_dir, dst)
    return dst


def pytest_sessionfinish(session, exitstatus):
    """Leave Qt nothing that points back into Python when the process exits.

    The clipboard keeps the QMimeData a test put there; Qt's own static
    destructors delete it after the interpreter is gone, and the binding then
    calls into a finalised Python (a segfault after every test passed).
    """
    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is None:
        return
    app = widgets.QApplication.instance()
    if app is not None:
        app.clipboard().clear()
        app.processEvents()
