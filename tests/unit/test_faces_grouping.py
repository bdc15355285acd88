"""Grouping faces into people, on made-up face vectors (no model): incremental,
constrained, and every user decision kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.core.faces.model import FoundFace
from lookalike.core.faces.people import People
from lookalike.core.faces.store import FaceStore
from lookalike.core.store.catalog import NewPhoto
from lookalike.core.store.library import Library

DIM = 128


class Faces:
    """A library with photos whose faces we place by hand."""

    def __init__(self, root: Path) -> None:
        self.library = Library(root / "lib", writer=True, create=True)
        self.catalog = self.library.catalog
        self.folder = self.catalog.add_folder(root / "photos")
        self.people = People(self.library)
        self.rng = np.random.default_rng(7)
        self.centres: dict[str, np.ndarray] = {}
        self.n = 0

    def centre(self, who: str) -> np.ndarray:
        if who not in self.centres:
            v = self.rng.normal(size=DIM)
            self.centres[who] = (v / np.linalg.norm(v) * 1.0).astype(np.float32)  # strangers ~1.4 apart
        return self.centres[who]

    def face(self, who: str, spread: float = 0.2, quality: float = 1.0) -> FoundFace:
        noise = self.rng.normal(size=DIM)
        vec = self.centre(who) + noise / np.linalg.norm(noise) * spread
        return FoundFace((0.1, 0.1, 0.3, 0.3), ((0.0, 0.0),) * 5, quality, vec.astype(np.float32), 100)

    def photo(self, *faces: FoundFace) -> tuple[int, list[int]]:
        """A new photo with these faces, committed and grouped; (photo id, face ids)."""
        self.n += 1
        new = NewPhoto(Path(f"/x/p{self.n}.jpg"), self.folder.id, 1, 1, f"h{self.n}", 10, 10, None, np.zeros(4))
        out: list[list[int]] = []

        def write(conn, ids):
            out.append(FaceStore.insert_found(conn, self.people.model_id, ids, [list(faces)]))

        (pid,) = self.catalog.commit_batch(added=[new], also=write)
        if faces:
            self.people._committed(out[0], list(faces))
        return pid, out[0]

    def person_of(self, face_id: int) -> int | None:
        return self.people.store.faces([face_id])[face_id].person_id


@pytest.fixture
def lib(tmp_path) -> Faces:
    f = Faces(tmp_path)
    yield f
    f.library.close()


def test_new_photos_join_the_people_there_are(lib):
    a = [lib.photo(lib.face("ann"))[1][0] for _ in range(3)]
    b = [lib.photo(lib.face("bob"))[1][0] for _ in range(3)]
    ann, bob = lib.person_of(a[0]), lib.person_of(b[0])
    assert {lib.person_of(f) for f in a} == {ann} and {lib.person_of(f) for f in b} == {bob} and ann != bob
    later = lib.photo(lib.face("ann"), lib.face("cat"))[1]
    assert lib.person_of(later[0]) == ann
    assert lib.person_of(later[1]) not in (ann, bob, None)
    assert len(lib.people.people(include_hidden=True)) == 3


def test_two_faces_of_one_photo_are_never_one_person(lib):
    twin = lib.face("ann", spread=0.05)
    _, ids = lib.photo(twin, lib.face("ann", spread=0.05), lib.face("ann", spread=0.05))
    assert len({lib.person_of(f) for f in ids}) == 3
    # and a later photo of the same face does not glue them together
    _, (later,) = lib.photo(lib.face("ann", spread=0.05))
    assert lib.person_of(later) in {lib.person_of(f) for f in ids}
    assert len({lib.person_of(f) for f in ids}) == 3


def test_people_that_exist_are_never_merged_automatically(lib):
    # two groups of one person, kept apart because they began in one photo (a poster behind her)
    _, (x, y) = lib.photo(lib.face("ann", spread=0.05), lib.face("ann", spread=0.05))
    px, py = lib.person_of(x), lib.person_of(y)
    assert px != py
    _, (bridge,) = lib.photo(lib.face("ann", spread=0.05))  # near both
    assert lib.person_of(bridge) in (px, py)
    assert lib.person_of(x) == px and lib.person_of(y) == py


def test_strict_threshold_no_link_between_near_strangers(lib):
    """Two faces 0.58 apart (inside dlib's 0.6, outside our 0.55) stay apart."""
    base = lib.centre("ann")
    step = lib.rng.normal(size=DIM)
    step = (step / np.linalg.norm(step) * 0.58).astype(np.float32)
    f1 = FoundFace((0, 0, 0.1, 0.1), ((0, 0),) * 5, 1.0, base, 100)
    f2 = FoundFace((0, 0, 0.1, 0.1), ((0, 0),) * 5, 1.0, base + step, 100)
    _, (a,) = lib.photo(f1)
    _, (b,) = lib.photo(f2)
    assert lib.person_of(a) != lib.person_of(b)
    # Named, the first makes the second a suggestion to confirm, not a member.
    info = lib.people.name_face(a, "Ann")
    assert info.faces == 1 and info.suggestions == 0
    assert lib.people.store.faces([b])[b].suggested_id == info.id
    assert lib.people.people(include_hidden=True)[0].suggestions == 1
    confirmed = lib.people.confirm(b)
    assert confirmed.faces == 2 and lib.people.store.faces([b])[b].confirmed


def test_poor_faces_stay_out_of_grouping_but_can_be_named(lib):
    _, (good,) = lib.photo(lib.face("ann"))
    _, (poor,) = lib.photo(lib.face("ann", quality=0.2))
    assert lib.person_of(good) is not None and lib.person_of(poor) is None
    info = lib.people.name_face(poor, "Ann")
    assert lib.person_of(poor) == info.id
    assert lib.person_of(good) == info.id  # the good face within reach joined the name


def test_one_shot_naming_and_rejection_survive_regrouping(lib):
    faces = [lib.photo(lib.face("ann"))[1][0] for _ in range(4)]
    stranger = lib.photo(lib.face("zed"))[1][0]
    info = lib.people.name_face(faces[0], "Ann")
    assert info.faces == 4 and info.name == "Ann"
    rejected = lib.people.reject(faces[3])
    assert rejected.person_id != info.id
    lib.people.hide(lib.person_of(stranger))
    for _ in range(2):
        lib.people.regroup()
        assert lib.person_of(faces[3]) != info.id
        assert {lib.person_of(f) for f in faces[:3]} == {info.id}
        assert lib.people.person("ann").faces == 3
        assert lib.people.store.person(lib.person_of(stranger)).hidden


def test_merge_rename_and_names_are_unique(lib):
    _, (a, b) = lib.photo(lib.face("ann"), lib.face("ann"))
    _, (c,) = lib.photo(lib.face("bob"))
    pa, pb = lib.person_of(a), lib.person_of(b)
    assert pa != pb
    lib.people.rename(pa, "Ann")
    merged = lib.people.merge(pb, "ann")
    assert merged.id == pa and merged.faces == 2 and merged.name == "Ann"
    lib.people.rename("Ann", "Anne")
    lib.people.name_face(c, "Bob")
    from lookalike.core.errors import UsageError

    with pytest.raises(UsageError, match="already a person called 'Anne'"):
        lib.people.rename("Bob", "anne")
    with pytest.raises(UsageError, match="did you mean Anne"):
        lib.people.person("Annie")
