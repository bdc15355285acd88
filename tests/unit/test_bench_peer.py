"""The `peer` bench section: skipped without rclip, and its table says what was measured."""

from __future__ import annotations

from lookalike.bench import peer


def test_without_rclip_the_section_is_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOKALIKE_RCLIP", str(tmp_path / "no-such-rclip"))
    said: list[str] = []
    assert peer.rclip_executable() is None
    assert peer.measure_peer(tmp_path, 1, said.append) == {"skipped": "rclip not installed"}
    assert "rclip is not installed" in said[0]
    assert peer.render_peer({"skipped": "rclip not installed"}, {}) == ""


def test_the_table_gives_medians_and_ratios(tmp_path):
    row = {
        "folder": "small",
        "photos": 111,
        "size": [768, 512],
        "first_load_wall": 30.0,
        "load_average": 1.5,
        "query_ours_median": 0.4,
        "query_theirs_median": 1.0,
        "query_ours_cpu_median": 0.35,
        "query_theirs_cpu_median": 1.2,
        "rate_ours": 15.0,
        "rate_theirs": 10.0,
        "index_ours_cpu_median": 9.0,
        "index_theirs_cpu_median": 11.0,
        "one_new_ours_median": 1.5,
        "one_new_theirs_median": 3.0,
    }
    text = peer.render_peer({"rclip": "rclip 3.3.0", "repeats": 3, "rows": [row]}, {"cpu": "X", "cores": 2})
    assert "| cold text query (s) | 111 photos, 768x512 | 1.00 | 0.40 | 2.50x faster | 1.20 | 0.35 | 3.43x |" in text
    assert (
        "| index, fresh library (photos/s) | 111 photos, 768x512 | 10.0 | 15.0 | 1.50x | 11.00 | 9.00 | 1.22x |" in text
    )
    assert "| index 1 new photo (s) | 111 photos, 768x512 | 3.00 | 1.50 | 2.00x faster | - | - | - |" in text
    assert "People off" not in text.split("|---|")[1].split("\n\n")[0]  # no row without its figures
    bare = {**row, "rate_bare": 20.0, "index_bare_cpu_median": 7.5}
    text = peer.render_peer({"rclip": "rclip 3.3.0", "repeats": 3, "rows": [bare]}, {"cpu": "X", "cores": 2})
    assert (
        "| index, fresh library, People off (photos/s) | 111 photos, 768x512 | 10.0 | 20.0 | 2.00x | 11.00 | 7.50 |"
        in text
    )
    peer.write_peer_report({"peer": {"rclip": "rclip 3.3.0", "repeats": 3, "rows": [row]}, "machine": {}}, tmp_path)
    assert (tmp_path / "peer.md").read_text().startswith("# Lookalike beside rclip")
    assert (tmp_path / "peer.png").stat().st_size > 1000
