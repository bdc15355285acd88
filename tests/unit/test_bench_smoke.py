"""`lookalike bench --quick` runs and writes its report. No timing is asserted."""

from __future__ import annotations

import json

import pytest

from lookalike.cli import main


@pytest.mark.slow
def test_bench_quick_writes_its_report(tmp_path):
    out = tmp_path / "report"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert "# lookalike bench report" in report
    for section in ("decode", "scale", "memory", "startup"):
        assert section in results, section
    assert "Queries at scale" in report
    assert (out / "recall_vs_qps.png").stat().st_size > 0
    assert not (out / ".work").exists()  # generated photos and libraries are cleaned up


def test_bench_rejects_an_unknown_section(tmp_path, capsys):
    assert main(["bench", "--quick", "--out", str(tmp_path), "--only", "nonsense"]) == 2
    assert "unknown section" in capsys.readouterr().err
