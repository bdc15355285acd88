"""A reader that meets a catalog of an older schema (a search right after Lookalike was
updated) upgrades it when no one is writing the library, and says why it cannot otherwise."""

from __future__ import annotations

import re
import sqlite3

import pytest

from lookalike.core.errors import LibraryNeedsUpgradeError
from lookalike.core.store.catalog import MIGRATIONS, SCHEMA_VERSION, Catalog
from lookalike.core.store.library import Library


def _last_step_objects() -> list[tuple[str, str]]:
    """The tables and indexes the newest migration step creates: (kind, name)."""
    found = re.findall(r"CREATE\s+(TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", MIGRATIONS[SCHEMA_VERSION], re.IGNORECASE)
    assert found, "the newest migration step creates no table or index to undo"
    return [(kind.upper(), name) for kind, name in found]


def _older(path) -> None:
    """Make the library's catalog look one schema step older (the last step undone)."""
    db = sqlite3.connect(path / Catalog.FILENAME)
    for kind, name in _last_step_objects():
        db.execute(f"DROP {kind} IF EXISTS {name}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    db.commit()
    db.close()


def _version(path) -> int:
    db = sqlite3.connect(path / Catalog.FILENAME)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_a_reader_upgrades_an_older_catalog_when_no_one_writes(tmp_path):
    Library(tmp_path / "lib", writer=True, create=True).close()
    _older(tmp_path / "lib")
    reader = Library(tmp_path / "lib")
    try:
        assert reader.catalog.readonly
        for _, name in _last_step_objects():  # the step ran again
            assert reader.catalog.query("SELECT 1 FROM sqlite_master WHERE name = ?", (name,))
    finally:
        reader.close()
    assert _version(tmp_path / "lib") == SCHEMA_VERSION
    Library(tmp_path / "lib", writer=True).close()  # the lock was given back


def test_a_reader_cannot_upgrade_a_library_being_written(tmp_path):
    Library(tmp_path / "lib", writer=True, create=True).close()
    _older(tmp_path / "lib")
    writer_lock = Library.__new__(Library)  # hold the writer lock as another Lookalike would
    writer_lock.path = (tmp_path / "lib").resolve()
    writer_lock._lock = None
    writer_lock._acquire()
    try:
        with pytest.raises(LibraryNeedsUpgradeError, match="needs an upgrade"):
            Library(tmp_path / "lib")
    finally:
        writer_lock.release()
    assert _version(tmp_path / "lib") == SCHEMA_VERSION - 1
