"""People with the real dlib model on the real test photos.

One library of the 18 labelled photos (six people, two group photos) is indexed
once per module; tests that change decisions work on a copy of it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike.core.engine import SearchEngine
from lookalike.core.errors import QueryError
from lookalike.core.faces.grouping import pairwise_scores
from lookalike.core.faces.model import MIN_CLUSTER_QUALITY
from tests.photos import FACES

pytestmark = pytest.mark.slow

# Who each face of the group photos is, left to right (None: the unlabelled child).
GROUPS = {
    "groups/obama_and_biden.jpg": ["biden", "obama", None],
    "groups/kit_with_rose.jpg": ["rose_leslie", "kit_harington"],
}


def _labels() -> dict[str, list[str]]:
    if not (FACES / "labels.json").exists():
        pytest.skip(f"the face test photos are not at {FACES}")
    return json.loads((FACES / "labels.json").read_text())["photos"]


def _copy_photos(dst: Path) -> Path:
    for rel in _labels():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(FACES / rel, dst / rel)
    return dst


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, offline_encoder) -> tuple[Path, Path]:
    """(photos, library) indexed once, never changed by a test."""
    root = tmp_path_factory.mktemp("people")
    photos = _copy_photos(root / "photos")
    with SearchEngine.open(root / "lib", writer=True, create=True, model="offline") as engine:
        report = engine.index([photos])
    assert report.added == len(_labels())
    return photos, root / "lib"


@pytest.fixture
def library(indexed, tmp_path) -> tuple[Path, Path]:
    """A private copy of the indexed library (same photo paths), for tests that decide things."""
    photos, lib = indexed
    shutil.copytree(lib, tmp_path / "lib")
    return photos, tmp_path / "lib"


def _truth(engine: SearchEngine, photos: Path) -> tuple[list[str], list[int | None], list[float]]:
    """Per labelled face: its true person, its person in the library, its quality."""
    people = engine.people()
    labels, groups, quality = [], [], []
    for rel, who in _labels().items():
        faces = people.faces_in_photo(photos / rel)
        names = GROUPS.get(rel, who)
        assert len(faces) >= len(who), f"{rel}: {len(faces)} faces found, {len(who)} labelled"
        if rel not in GROUPS:
            assert len(faces) == 1, f"{rel}: {len(faces)} faces in a photo of one person"
        for face, name in zip(faces, names):
            if name is None:
                continue
            labels.append(name)
            groups.append(face.person_id)
            quality.append(face.quality)
    return labels, groups, quality


def test_every_labelled_face_is_found_and_grouped_by_person(indexed):
    photos, lib = indexed
    with SearchEngine.open(lib) as engine:
        labels, groups, quality = _truth(engine, photos)
    assert len(labels) == 20
    scores = pairwise_scores(labels, groups)
    print("grouping on the test photos:", {k: round(v, 4) for k, v in scores.items()})
    assert scores["pairwise_precision"] == 1.0  # no wrong automatic merge
    assert scores["bcubed_f1"] >= 0.95
    assert all(q >= MIN_CLUSTER_QUALITY for q in quality)


def test_people_json_groups_the_test_photos(indexed, capsys):
    from lookalike.cli import main

    photos, lib = indexed
    assert main(["people", "--library", str(lib), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    # Lin-Manuel Miranda is in one photo: a group of one stays out of the way until --all.
    assert [p["faces"] for p in listed] == [6, 4, 3, 3, 3]
    assert all(p["name"] is None and isinstance(p["id"], int) for p in listed)
    by_person = {}
    for p in listed:
        folders = {Path(x).parent.name for x in p["photos"]} - {"groups"}
        assert len(folders) == 1, p
        by_person[folders.pop()] = {Path(x).relative_to(photos).as_posix() for x in p["photos"]}
    assert by_person["obama"] >= {"groups/obama_and_biden.jpg", "obama/obama.jpg"}
    assert "groups/kit_with_rose.jpg" in by_person["rose_leslie"]
    assert main(["people", "--library", str(lib), "--json", "--all"]) == 0
    everyone = json.loads(capsys.readouterr().out)
    assert len(everyone) == 6 and everyone[-1]["faces"] == 1


def test_naming_one_photo_names_the_person_and_finds_the_others_first(library):
    photos, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        info = engine.people().name(photos / "obama/obama2.jpg", "Barack Obama")
        assert info.name == "Barack Obama" and info.faces == 6
        results = engine.search('@"barack obama"', k=20)
        got = [r.path.relative_to(photos).as_posix() for r in results]
        assert set(got) == {p for p, who in _labels().items() if "obama" in who}
        # A photo from outside the library, shown as a face: the same person's photos.
        outside = lib.parent / "query" / "me.jpg"
        outside.parent.mkdir()
        shutil.copy2(FACES / "obama/obama3.jpg", outside)
        results = engine.search(f"@{outside}", k=20)
        assert {r.path.relative_to(photos).as_posix() for r in results} == set(got)


def test_person_terms_combine_with_text_and_each_other(library):
    photos, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        people = engine.people()
        people.name(photos / "obama/obama.jpg", "Obama")
        people.name(photos / "biden/biden.jpg", "Biden")
        obama = {p for p, who in _labels().items() if "obama" in who}
        ranked = [r.path.relative_to(photos).as_posix() for r in engine.search("@Obama + a man in a suit", k=50)]
        assert set(ranked) == obama
        both = [r.path.relative_to(photos).as_posix() for r in engine.search("@Obama @Biden", k=50)]
        assert both == ["groups/obama_and_biden.jpg"]
        without = {r.path.relative_to(photos).as_posix() for r in engine.search("a man - @Obama", k=50)}
        assert without and not (without & obama)
        assert "biden/biden.jpg" in without
        # subtracted alone: every other photo, newest first
        rest = {r.path.relative_to(photos).as_posix() for r in engine.search("- @Obama", k=50)}
        assert rest == set(_labels()) - obama
        with pytest.raises(QueryError) as err:
            engine.search("beach + @Obamma", k=5)
        assert err.value.column == 8 and "Obama" in str(err.value)


def test_decisions_survive_regrouping_and_reindexing(library):
    photos, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        people = engine.people()
        kit = people.name(photos / "kit_harington/kit1.jpg", "Kit")
        rose = people.name(photos / "rose_leslie/rose1.jpg", "Rose Leslie")
        lin = people.face_of_photo(photos / "lin_manuel_miranda/lin1.png")
        alex = people.name(photos / "alex_lacamoire/alex1.jpg", "Alex")
        people.hide("Alex")
        # "not this person": the right-hand face of the group photo is not Kit
        forgotten = people.forget(photos / "groups/kit_with_rose.jpg", face=2)
        assert forgotten.person_id != kit.id
        people.merge(lin.person_id, "Rose Leslie")  # a user's (wrong, but theirs) merge
        before = {p.id: (p.name, p.faces, p.hidden) for p in people.people(include_hidden=True)}
        people.regroup()
        engine.index()
        after = {p.id: (p.name, p.faces, p.hidden) for p in people.people(include_hidden=True)}
        assert {k: v for k, v in after.items() if v[0]} == {k: v for k, v in before.items() if v[0]}
        assert after[alex.id][2] is True and alex.id not in {p.id for p in people.people()}
        kit_photos = {Path(x).name for x in people.person("Kit").photos}
        assert "kit_with_rose.jpg" not in kit_photos
        assert people.person(rose.id).faces == 4  # three of Rose and Lin's, merged by hand


def test_a_moved_photo_keeps_its_face_and_name_a_deleted_one_loses_them(tmp_path, offline_encoder):
    photos = tmp_path / "photos"
    for rel in ("biden/biden.jpg", "biden/biden2.jpg", "obama/obama.jpg", "obama/obama4.jpg"):
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(FACES / rel, photos / rel)
    with SearchEngine.open(tmp_path / "lib", writer=True, create=True, model="offline") as engine:
        engine.index([photos])
        people = engine.people()
        people.name(photos / "biden/biden2.jpg", "Joe")
        moved = photos / "elsewhere" / "renamed.jpg"
        moved.parent.mkdir()
        (photos / "biden/biden2.jpg").rename(moved)
        (photos / "obama/obama4.jpg").unlink()
        report = engine.index()
        assert report.moved == 1 and report.removed == 1
        faces = people.faces_in_photo(moved)
        assert len(faces) == 1 and faces[0].name == "Joe" and faces[0].confirmed
        assert {r.path for r in engine.search("@Joe", k=10)} == {moved, photos / "biden/biden.jpg"}
        n_faces = engine.catalog.query("SELECT COUNT(*) FROM faces")[0][0]
        assert n_faces == 3  # obama4's face went with it
        assert len(people.index()) == n_faces


def test_people_off_deletes_every_face_record(library):
    photos, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        people = engine.people()
        people.name(photos / "biden/biden.jpg", "Biden")
        people.finish()
        assert (lib / "faces.hnsw").exists()
        people.set_enabled(False)
        assert engine.catalog.query("SELECT COUNT(*) FROM faces")[0][0] == 0
        assert people.people(include_hidden=True) == []
        assert not (lib / "faces.hnsw").exists()
        engine.index()  # People off: no faces looked for
        assert engine.catalog.query("SELECT COUNT(*) FROM face_scans")[0][0] == 0
        people.set_enabled(True)
        report = engine.index()  # on again: the photos already indexed get their faces
        assert report.refreshed == 18
        assert engine.catalog.query("SELECT COUNT(*) FROM faces")[0][0] == 21


def test_cli_name_merge_rename_hide_forget(library, capsys):
    from lookalike.cli import main

    photos, lib = library
    L = ["--library", str(lib)]
    assert main(["people", "name", str(photos / "groups/obama_and_biden.jpg"), "Joe Biden", "--face", "1", *L]) == 0
    assert main(["people", "rename", "joe biden", "Joe", *L]) == 0
    assert main(["people", "hide", "Joe", *L]) == 0
    capsys.readouterr()
    assert main(["people", "--json", *L]) == 0
    assert all(p["name"] != "Joe" for p in json.loads(capsys.readouterr().out))
    assert main(["people", "hide", "Joe", "--undo", *L]) == 0
    assert main(["people", "forget", str(photos / "biden/biden.jpg"), *L]) == 0
    capsys.readouterr()
    assert main(["people", "--json", *L]) == 0
    joe = next(p for p in json.loads(capsys.readouterr().out) if p["name"] == "Joe")
    assert not any(x.endswith("biden/biden.jpg") for x in joe["photos"])
    assert main(["people", "merge", "Joe", "99999", *L]) == 2
    assert "no person '99999'" in capsys.readouterr().err
    assert main(["people", "name", str(photos / "groups/kit_with_rose.jpg"), "X", "--face", "3", *L]) == 2
    assert "has 2 faces" in capsys.readouterr().err
    assert main(["search", "@Jo", *L]) == 2
    assert "did you mean @Joe" in capsys.readouterr().err


def test_query_face_photo_without_a_face_is_a_query_error(library, tmp_path):
    from PIL import Image

    photos, lib = library
    grey = tmp_path / "grey.png"
    Image.new("RGB", (400, 300), (128, 128, 128)).save(grey)
    with SearchEngine.open(lib) as engine:
        with pytest.raises(QueryError) as err:
            engine.search(f"dog + @{grey}")
        assert "no face" in str(err.value) and err.value.column == 6


def test_scores_are_sane():
    labels = ["a", "a", "b", "b"]
    assert pairwise_scores(labels, [1, 1, 2, 2])["bcubed_f1"] == 1.0
    merged = pairwise_scores(labels, [1, 1, 1, 1])
    assert merged["pairwise_precision"] == pytest.approx(1 / 3) and merged["bcubed_recall"] == 1.0
    split = pairwise_scores(labels, [1, None, 2, None])
    assert split["pairwise_precision"] == 1.0 and split["pairwise_recall"] == 0.0
    assert np.isclose(split["bcubed_precision"], 1.0)
