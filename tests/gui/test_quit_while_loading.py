"""Closing the window while the model still loads ends quietly: the load that finishes
after the library closed reports nothing (no "closed database" error in the log)."""

from __future__ import annotations

import logging
import sqlite3
import threading

from lookalike.core.engine import SearchEngine


def test_quitting_while_the_model_loads_logs_no_error(qtbot, make_window, library_copy, monkeypatch, caplog):
    started, release = threading.Event(), threading.Event()
    real = SearchEngine.query_encoder

    def slow_load(self):
        started.set()
        release.wait(30)
        self.catalog.query("SELECT COUNT(*) FROM photos")  # what a load reads, once the library closed
        return real(self)

    monkeypatch.setattr(SearchEngine, "query_encoder", slow_load)
    window = make_window()
    qtbot.waitUntil(started.is_set, timeout=30_000)
    service = window.service
    engine = service.engine
    caplog.set_level(logging.DEBUG)
    service.shutdown(wait_ms=50)  # the load is still running: the library closes under it
    assert service.engine is None
    try:
        engine.catalog.query("SELECT 1")
    except (sqlite3.ProgrammingError, Exception):
        closed = True
    else:
        closed = False
    assert closed, "the library should be closed by now"
    release.set()
    qtbot.waitUntil(lambda: service._model.wait(0), timeout=30_000)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert any("window closed" in r.getMessage() for r in caplog.records)
