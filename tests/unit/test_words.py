"""The counted-noun helper: "1 photo", "2 photos" (and no "1 photos" left in the window's strings)."""

from __future__ import annotations

import re
from pathlib import Path

from lookalike.core.words import counted, plural


def test_one_is_singular_and_every_other_count_plural():
    assert counted(1, "photo") == "1 photo"
    assert counted(0, "photo") == "0 photos"
    assert counted(2, "photo") == "2 photos"
    assert counted(1234, "photo") == "1,234 photos"
    assert counted(1, "face") == "1 face" and counted(3, "face") == "3 faces"
    assert counted(1, "person") == "1 person" and counted(2, "person") == "2 people"
    assert counted(2, "match") == "2 matches"
    assert counted(5, "example", "examples") == "5 examples"
    assert plural("folder") == "folders"


def test_no_count_is_written_before_a_fixed_plural_in_the_window_or_the_commands():
    """A number formatted straight before "photos" reads "1 photos" for one: the helper is used instead."""
    root = Path(__file__).resolve().parents[2] / "desktop" / "lookalike"
    fixed = re.compile(r"\{[^{}]*\}\s+(photos|faces|groups|folders|files|examples)\b")
    offenders = []
    for sub in ("gui", "commands"):
        for path in sorted((root / sub).rglob("*.py")):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if ('f"' in line or "f'" in line) and fixed.search(line) and "counted(" not in line:
                    offenders.append(f"{path.relative_to(root)}:{i}: {line.strip()}")
    assert offenders == []
