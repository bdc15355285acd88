"""`lookalike tag ...` and `lookalike tags` end to end on real photos (the offline model):
exact listing, suggestions that exclude tagged and rejected photos, accepting, the `teach`
and `#name` aliases, and automatic tags removed for good."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lookalike.bench.labelled import build
from tests.integration.test_concepts import lookalike, ok


@pytest.fixture(scope="module")
def tagged_library(tmp_path_factory):
    """scikit-image's sample photos and the coin photos, indexed."""
    root = tmp_path_factory.mktemp("user-tags")
    lab = build(root / "all", lfw=False)
    photos = root / "photos"
    for sub in ("samples", "coins"):
        shutil.copytree(lab.folder / sub, photos / sub)
    lib = root / "lib"
    ok("index", photos, "--library", lib)
    return photos, lib


def _paths(proc) -> list[str]:
    return [r["path"] for r in json.loads(proc.stdout)]


def test_tag_add_list_suggest_reject_accept(tagged_library):
    photos, lib = tagged_library
    coins = sorted(str(p) for p in (photos / "coins").iterdir())
    out = json.loads(ok("tag", "add", "coin", *coins[:5], "--json", "--library", lib).stdout)
    assert out["tag"] == "coin" and out["photos"] == 5 and out["changed"] == 5
    # exactly the photos tagged, though the tag would accept more
    assert sorted(_paths(ok("list", "tag:coin", "--json", "--library", lib))) == coins[:5]

    got = json.loads(ok("tag", "suggest", "coin", "-k", "10", "--json", "--library", lib).stdout)
    assert got and not set(coins[:5]) & {g["path"] for g in got}
    assert [g["score"] for g in got] == sorted((g["score"] for g in got), reverse=True)
    assert all(g["path"] in coins for g in got[:5])  # the other coins come first

    ranking = _paths(ok("tag", "suggest", "coin", "--all", "-k", "200", "--json", "--library", lib))
    wrong = next(p for p in ranking if p not in coins)  # the best photo that is not a coin
    ok("tag", "reject", "coin", wrong, "--library", lib)
    again = _paths(ok("tag", "suggest", "coin", "--all", "-k", "200", "--json", "--library", lib))
    assert wrong not in again and len(again) == len(ranking) - 1

    ok("tag", "accept", "coin", got[0]["path"], "--library", lib)
    listed = set(_paths(ok("list", "tag:coin", "--json", "--library", lib)))
    assert listed == {*coins[:5], got[0]["path"]}
    assert got[0]["path"] not in _paths(ok("tag", "suggest", "coin", "--json", "--library", lib))

    # teach is tag add; #coin ranks by what the tag learned
    extra = next(c for c in coins[5:] if c != got[0]["path"])
    ok("teach", "coin", extra, "--library", lib)
    assert extra in _paths(ok("list", "tag:coin", "--json", "--library", lib))
    rows = json.loads(ok("search", "#coin", "-k", "5", "--json", "--library", lib).stdout)
    assert rows and all(r["path"] in coins for r in rows)

    ok("tag", "remove", "coin", coins[0], "--library", lib)
    assert coins[0] not in _paths(ok("list", "tag:coin", "--json", "--library", lib))

    listing = json.loads(ok("tags", "--json", "--library", lib).stdout)
    mine = [r for r in listing if r["user"]]
    assert [(r["tag"], r["photos"]) for r in mine] == [("coin", 6)]
    assert any(not r["user"] and r["photos"] for r in listing)  # the automatic ones, apart
    text = ok("tags", "--library", lib).stdout
    assert text.index("Your tags:") < text.index("coin") < text.index("Automatic tags")

    proc = lookalike("list", "tag:coni", "--library", lib)
    assert proc.returncode == 2 and "did you mean 'coin'?" in proc.stderr
    proc = lookalike("tag", "reject", "nope", coins[1], "--library", lib)
    assert proc.returncode != 0 and "no concept named 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_an_automatic_tag_removed_stays_removed_after_reindexing(tagged_library):
    photos, lib = tagged_library
    cat = str(photos / "samples" / "chelsea.jpg")
    assert cat in _paths(ok("list", "tag:cat", "--json", "--library", lib))
    ok("tag", "remove", "cat", cat, "--library", lib)
    assert cat not in _paths(ok("list", "tag:cat", "--json", "--library", lib))
    # the photo changes on disk (re-indexed as new), its content comes back as it was: still removed
    data = Path(cat).read_bytes()
    Path(cat).write_bytes(data + b"\0")
    ok("index", photos, "--library", lib)
    Path(cat).write_bytes(data)
    ok("index", photos, "--library", lib)
    assert cat not in _paths(ok("list", "tag:cat", "--json", "--library", lib))
    ok("tag", "add", "cat", cat, "--library", lib)
    assert cat in _paths(ok("list", "tag:cat", "--json", "--library", lib))
