"""The window's indexing queue, without a window: one run at a time, everything asked for
meanwhile merged into one run after it, a removed folder dropped from both. (core/ is
Qt-free: the import-linter contracts and test_core_boundaries hold it to that.)"""

from __future__ import annotations

from lookalike.core.index.jobs import IndexJob, IndexKind, IndexQueue


def test_the_first_run_starts_and_the_ones_asked_meanwhile_merge_into_one():
    runs = IndexQueue()
    first = IndexJob.of(["/a"])
    assert runs.ask(first) is first
    runs.started(first)
    assert runs.ask(IndexJob.of(["/b"])) is None
    assert runs.ask(IndexJob.of(["/c", "/b"])) is None
    assert runs.take_next() is None  # the first still runs
    runs.finished()
    nxt = runs.take_next()
    assert nxt == IndexJob.of(["/b", "/c"])
    assert runs.take_next() is None  # taken once


def test_a_rescan_asked_meanwhile_swallows_the_folder_runs():
    runs = IndexQueue()
    runs.started(IndexJob.of(["/a"]))
    runs.ask(IndexJob.of(["/b"]))
    runs.ask(IndexJob.all())
    runs.ask(IndexJob.of(["/c"]))
    runs.finished()
    assert runs.take_next() == IndexJob.all()


def test_removing_a_folder_drops_it_from_the_queue_and_stops_the_run_on_it():
    runs = IndexQueue()
    running = IndexJob.of(["/a", "/b"])
    runs.started(running)
    runs.ask(IndexJob.of(["/b", "/c"]))
    assert runs.remove_folder("/b") is True  # the running run indexes /b: it must stop
    runs.finished()
    # what the stopped run had left (/a) and the queued run less /b
    assert runs.take_next() == IndexJob.of(["/c", "/a"])


def test_removing_a_folder_nothing_indexes_leaves_the_run_alone():
    runs = IndexQueue()
    runs.started(IndexJob.of(["/a"]))
    runs.ask(IndexJob.of(["/x"]))
    assert runs.remove_folder("/z") is False
    assert runs.remove_folder("/x") is False  # only queued: dropped, nothing to cancel
    runs.finished()
    assert runs.take_next() is None


def test_a_model_switch_is_not_cut_short_by_a_folder_removal():
    runs = IndexQueue()
    runs.started(IndexJob.switch("clip"))
    assert runs.remove_folder("/a") is False
    assert runs.running is not None and runs.running.kind is IndexKind.MODEL


def test_clearing_forgets_the_queue_but_not_the_run():
    runs = IndexQueue()
    runs.started(IndexJob.all())
    runs.ask(IndexJob.of(["/a"]))
    runs.clear()
    assert runs.running == IndexJob.all()
    runs.finished()
    assert runs.take_next() is None
