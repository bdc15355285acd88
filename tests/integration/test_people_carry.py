"""A user's decisions about people come along to the library of a new image model.

The real dlib model on the real test photos: decisions taken in one library (as
the window and the command line take them) are carried into a new, empty library
and re-applied as its faces are found.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lookalike.core.engine import SearchEngine
from lookalike.core.faces import carry
from tests.photos import FACES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def decided(tmp_path_factory, offline_encoder) -> tuple[Path, Path, dict]:
    """(photos, library, what the user sees) after a handful of decisions."""
    if not (FACES / "labels.json").exists():
        pytest.skip(f"the face test photos are not at {FACES}")
    root = tmp_path_factory.mktemp("carry")
    photos = root / "photos"
    for rel in json.loads((FACES / "labels.json").read_text())["photos"]:
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(FACES / rel, photos / rel)
    with SearchEngine.open(root / "old", writer=True, create=True, model="offline") as engine:
        engine.index([photos])
        people = engine.people()
        people.name(photos / "kit_harington/kit1.jpg", "Kit")
        rose = people.name(photos / "rose_leslie/rose1.jpg", "Rose Leslie")
        lin = people.face_of_photo(photos / "lin_manuel_miranda/lin1.png")
        people.merge(lin.person_id, rose.id)  # a user's (wrong, but theirs) merge
        people.forget(photos / "groups/kit_with_rose.jpg", face=2)  # "not Kit", theirs too
        people.name(photos / "alex_lacamoire/alex1.jpg", "Alex")
        people.hide("Alex")
        obama = people.face_of_photo(photos / "obama/obama.jpg")
        people.assign(obama.id, obama.person_id)  # placed by hand, left unnamed
        people.finish()
        seen = _seen(engine, photos)
    return photos, root / "old", seen


def _seen(engine: SearchEngine, photos: Path) -> dict:
    """Each person as a user sees them: name (or their photos), faces, hidden, photos."""
    out = {}
    for p in engine.people().people(include_hidden=True):
        names = tuple(sorted(str(Path(x).relative_to(photos)) for x in p.photos))
        out[p.name or names] = (p.faces, p.hidden, names)
    return out


def test_names_merges_rejections_and_hidden_people_come_along(decided, tmp_path):
    photos, old, seen = decided
    with SearchEngine.open(tmp_path / "new", writer=True, create=True, model="offline") as new:
        concepts, faces = new.adopt_library(old)
        assert concepts == 0 and faces >= 9  # Kit, Rose + Lin, Alex, the placed Obama group
        new.index([photos])
        assert carry.pending(new.catalog) == 0  # every decision met its face
        now = _seen(new, photos)
        named = {k: v for k, v in seen.items() if isinstance(k, str)}
        assert {k: v for k, v in now.items() if isinstance(k, str)} == named
        assert "groups/kit_with_rose.jpg" not in now["Kit"][2]  # "not Kit" held
        assert now["Rose Leslie"][0] == 4  # Rose's three and Lin's, merged by hand
        assert now["Alex"][1] is True  # still hidden
        placed = [v for k, v in now.items() if not isinstance(k, str) and "obama/obama.jpg" in k]
        assert placed and placed[0] == next(v for k, v in seen.items() if not isinstance(k, str) and k == placed[0][2])
        assert {r.path for r in new.search("@Kit", k=20)} == {photos / p for p in seen["Kit"][2]}


def test_a_library_with_photos_already_adopts_nothing(decided, tmp_path):
    photos, old, _seen_before = decided
    with SearchEngine.open(tmp_path / "used", writer=True, create=True, model="offline") as used:
        used.index([photos / "biden"])
        assert used.adopt_library(old) == (0, 0)
        assert used.adopt_library(tmp_path / "nowhere") == (0, 0)
        assert carry.pending(used.catalog) == 0


def test_boxes_match_by_overlap():
    assert carry.overlap((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert carry.overlap((0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1)) == 0.0
    assert carry.overlap((0, 0, 0.4, 0.4), (0.1, 0.1, 0.5, 0.5)) == pytest.approx(0.09 / 0.23)
