"""The watcher's batching rule on a made-up clock: quiet period, longest wait, back-off."""

from __future__ import annotations

from pathlib import Path

from lookalike.core.index.watch import Debouncer

A, B = Path("/photos/a"), Path("/photos/b")


def test_a_batch_waits_for_a_quiet_moment():
    d = Debouncer(quiet=0.75, max_delay=4.0)
    assert d.due() is None and d.take(100.0) is None
    d.note(A, 10.0)
    d.note(A, 10.5)
    assert d.due() == 11.25
    assert d.take(11.2) is None
    batch = d.take(11.25)
    assert batch is not None and batch.roots == {A} and batch.events == 2 and batch.first == 10.0
    assert not d.pending and d.take(50.0) is None


def test_a_long_burst_runs_after_the_longest_wait():
    d = Debouncer(quiet=0.75, max_delay=4.0)
    t = 0.0
    while t < 3.9:  # an event every half second: never quiet
        d.note(A if t < 2 else B, t)
        assert d.take(t) is None
        t += 0.5
    assert d.due() == 4.0
    batch = d.take(4.0)
    assert batch is not None and batch.roots == {A, B} and batch.events == 8


def test_a_request_is_due_at_once_and_renames_travel_with_the_batch():
    d = Debouncer(quiet=0.75, max_delay=4.0)
    d.note(A, 5.0, events=0, urgent=True)
    assert d.due() == 5.0
    d.renamed(B, Path("/photos/b2"), 5.0)
    batch = d.take(5.75)
    assert batch is not None and batch.renamed == [(B, Path("/photos/b2"))] and batch.roots == {A, B}


def test_after_a_failed_run_nothing_runs_before_the_back_off():
    d = Debouncer(quiet=0.75, max_delay=4.0)
    d.note(A, 1.0)
    d.back_off(6.0)
    assert d.take(5.9) is None and d.due() == 6.0
    assert d.take(6.0) is not None
    d.note(A, 7.0)  # a later batch is not held back by an old back-off
    assert d.due() == 7.75
