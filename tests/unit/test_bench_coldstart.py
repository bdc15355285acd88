"""The start-up section's cold-query measurement: one child's own wall, CPU and peak memory."""

from __future__ import annotations

import os
import sys

import pytest

from lookalike.bench import coldstart


def test_a_child_is_measured_alone():
    small = coldstart.run_child([sys.executable, "-c", "pass"], dict(os.environ))
    big = coldstart.run_child(
        [sys.executable, "-c", "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"], dict(os.environ)
    )
    assert small[0] > 0 and small[1] >= 0 and small[2] < 200 * 2**20
    assert big[2] > small[2] + 200 * 2**20  # its own peak, not the largest child's so far
    with pytest.raises(RuntimeError, match="failed"):
        coldstart.run_child([sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))


def test_the_report_lists_each_size():
    s = {"median": 0.3, "max": 0.4}
    cold = {
        "query": "a cat",
        "repeats": 5,
        "runs": [
            {"n": 37, "wall_s": s, "cpu_s": s, "peak_mib": {"median": 226.0}, "graph_mib": 0.3},
            {"n": 100_000, "wall_s": s, "cpu_s": s, "peak_mib": {"median": 227.0}, "graph_mib": 661.0},
        ],
    }
    text = "\n".join(coldstart.render(cold))
    assert "| 37 | 0.30 s | 0.40 s | 0.30 s | 226 MiB |" in text and "| 100,000 |" in text
    assert coldstart.render(None) == []
