"""User tags: added, removed, listed exactly, suggested, rejected for good, and kept across
reopening, a kill, a move and a model switch; on a catalog of synthetic vectors in three
groups (what a group shows does not matter here; the bench measures suggestions on real
photos)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from lookalike.core.errors import LookalikeError, QueryError
from lookalike.core.learning.learner import Learner
from lookalike.core.search.browse import allowed_ids
from lookalike.core.search.parse import parse
from lookalike.core.store.catalog import Catalog, NewPhoto
from tests.unit.test_concepts import DIM, _photo_files, clusters


@pytest.fixture
def lib(tmp_path):
    """60 photos in 3 groups of 20 (group = index // 20), on disk and in a catalog."""
    x, labels = clusters(20, 3, seed=5)
    cat = Catalog(tmp_path / "catalog.sqlite3")
    cat.set_meta({"encoder_id": "test-model", "weights_checksum": "abc"})
    folder = cat.add_folder(tmp_path / "photos")
    paths = _photo_files(tmp_path / "photos", len(x))
    new = [
        NewPhoto(p.resolve(), folder.id, p.stat().st_size, p.stat().st_mtime_ns, f"h{i}", 10, 10, None, v)
        for i, (p, v) in enumerate(zip(paths, x))
    ]
    ids = np.asarray(cat.commit_batch(added=new))
    learner = Learner(cat)
    yield cat, learner, paths, ids, labels
    cat.close()


def _ids(cat, text):
    return allowed_ids(cat, parse(text), concepts=Learner(cat).concepts).tolist()


def test_added_tags_list_exactly_their_photos_and_filter_queries(lib):
    cat, learner, paths, ids, labels = lib
    ut = learner.user_tags
    g1 = np.nonzero(labels == 1)[0]
    assert ut.add("Windmill", [paths[i] for i in g1[:3]]) == 3
    assert ut.add("windmill", [paths[g1[3]], paths[g1[0]]]) == 1  # same tag (any case); g1[0] already had it
    want = sorted(ids[g1[:4]].tolist())
    assert ut.photo_ids("windmill").tolist() == want
    # exactly those: the tag learned from them and would accept more, but none is tagged silently
    assert _ids(cat, "tag:windmill") == want
    assert _ids(cat, 'tag:"WINDMILL" year:2100') == []
    assert ut.remove("windmill", [paths[g1[1]]]) == 1
    assert _ids(cat, "tag:windmill") == sorted(ids[[g1[0], g1[2], g1[3]]].tolist())
    mine, auto = ut.counts()
    assert [(t.name, t.photos, t.user) for t in mine] == [("Windmill", 3, True)] and auto == []


def test_an_unknown_tag_is_an_error_that_points_at_it(lib):
    cat, learner, paths, ids, labels = lib
    learner.user_tags.add("windmill", [paths[0]])
    with pytest.raises(QueryError) as info:
        allowed_ids(cat, parse("dog tag:windmil"), concepts=learner.concepts)
    assert info.value.column == 8 and "did you mean 'windmill'?" in info.value.reason
    with pytest.raises(QueryError, match="did you mean 'beach'"):
        allowed_ids(cat, parse("tag:bech"), concepts=learner.concepts)
    with pytest.raises(LookalikeError, match="There is no concept named 'nope'"):
        learner.user_tags.suggest("nope")


def test_suggestions_are_untagged_best_first_and_a_rejected_photo_never_returns(lib):
    cat, learner, paths, ids, labels = lib
    ut = learner.user_tags
    g2 = np.nonzero(labels == 2)[0]
    ut.add("boat", [paths[i] for i in g2[:5]])
    got = ut.suggest("boat", k=None, every=True)
    scores = [s.score for s in got]
    assert scores == sorted(scores, reverse=True) and len(got) == 60 - 5
    tagged = set(ids[g2[:5]].tolist())
    assert not tagged & {s.photo_id for s in got}
    top = [s.photo_id for s in got[:10]]
    assert sum(labels[ids.tolist().index(i)] == 2 for i in top) >= 9  # the group's other photos come first
    assert {s.photo_id for s in ut.suggest("boat")} <= set(ids[g2].tolist()) - tagged
    # rejected: a counter-example, gone from suggestions, even from the whole ranking
    victim = next(s.photo_id for s in got if labels[ids.tolist().index(s.photo_id)] != 2)
    assert ut.reject("boat", [victim]) == 1
    assert victim not in {s.photo_id for s in ut.suggest("boat", k=None, every=True)}
    assert learner.concepts.get("boat").counter_examples == 1
    # accepted: it carries the tag now (listed), and is no suggestion any more
    pick = ut.suggest("boat")[0].photo_id
    ut.accept("boat", [pick])
    assert pick in _ids(cat, "tag:boat") and pick not in {s.photo_id for s in ut.suggest("boat", k=None)}
    # a photo indexed later that looks like the tag is suggested, never tagged
    folder = cat.folders()[0]
    vec = np.asarray(cat.vectors_of(ids[g2[:1]])[1][0])
    p = paths[0].parent / "late.jpg"
    p.write_bytes(b"late")
    (late,) = cat.commit_batch(
        added=[NewPhoto(p.resolve(), folder.id, 4, p.stat().st_mtime_ns, "late", 10, 10, None, vec)]
    )
    learner.update()
    assert late not in _ids(cat, "tag:boat")
    assert late in {s.photo_id for s in ut.suggest("boat")}


def test_an_automatic_tag_removed_from_a_photo_stays_removed_after_a_reindex(lib):
    cat, learner, paths, ids, labels = lib
    with cat.transaction() as conn:
        conn.executemany(
            "INSERT INTO photo_tags(tag, photo_id, score) VALUES('dog', ?, 0.9)", [(int(i),) for i in ids[:3]]
        )
    ut = learner.user_tags
    assert _ids(cat, "tag:dog") == ids[:3].tolist()
    assert ut.remove("dog", [paths[1]]) == 1
    assert _ids(cat, "tag:dog") == [ids[0], ids[2]]
    assert ut.of(int(ids[1])) == ([], []) and ut.of(int(ids[0])) == ([], ["dog"])
    # re-indexed: the photo gets a new id and the tagger gives "dog" again; the removal holds
    row = cat.photos_by_ids([int(ids[1])])[int(ids[1])]
    (new_id,) = cat.commit_batch(
        removed_ids=[row.id],
        added=[NewPhoto(row.path, row.folder_id, row.size, row.mtime_ns, row.hash, 10, 10, None, np.ones(DIM))],
    )
    with cat.transaction() as conn:
        conn.execute("INSERT INTO photo_tags(tag, photo_id, score) VALUES('dog', ?, 0.9)", (new_id,))
    assert new_id not in _ids(cat, "tag:dog")
    auto = dict((t.name, t.photos) for t in ut.counts()[1])
    assert auto == {"dog": 2}
    # tagging it again by hand undoes the removal
    ut.add("dog", [row.path])
    assert new_id in _ids(cat, "tag:dog")


def test_tags_follow_a_moved_photo_by_its_content(lib, tmp_path):
    cat, learner, paths, ids, labels = lib
    learner.user_tags.add("receipt", [paths[4]])
    row = cat.photos_by_ids([int(ids[4])])[int(ids[4])]
    moved = paths[4].parent / "elsewhere.jpg"
    os.rename(paths[4], moved)
    (new_id,) = cat.commit_batch(
        removed_ids=[row.id],
        added=[NewPhoto(moved.resolve(), row.folder_id, row.size, row.mtime_ns, row.hash, 10, 10, None, np.ones(DIM))],
    )
    assert _ids(cat, "tag:receipt") == [new_id]
    assert learner.user_tags.of(new_id)[0] == ["receipt"]


KILLED = """
import os, signal, sys
from pathlib import Path
from lookalike.core.store.catalog import Catalog
from lookalike.core.learning.learner import Learner
cat = Catalog(Path(sys.argv[1]))
ut = Learner(cat).user_tags
ut.add("kept", [Path(sys.argv[2])])
ut.reject("kept", [Path(sys.argv[3])])
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_decisions_survive_a_kill(lib):
    cat, learner, paths, ids, labels = lib
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", KILLED, str(cat.path), str(paths[0]), str(paths[1])], env=env)
    assert proc.returncode == -signal.SIGKILL
    fresh = Catalog(cat.path)
    try:
        ut = Learner(fresh).user_tags
        assert ut.photo_ids("kept").tolist() == [ids[0]]
        assert ut.rejected_ids("kept").tolist() == [ids[1]]
    finally:
        fresh.close()


def test_tags_rejections_and_removals_carry_to_a_new_models_library(lib, tmp_path):
    cat, learner, paths, ids, labels = lib
    ut = learner.user_tags
    with cat.transaction() as conn:
        conn.execute("INSERT INTO photo_tags(tag, photo_id, score) VALUES('cat', ?, 0.9)", (int(ids[7]),))
    ut.add("luna", [paths[5], paths[6]])
    ut.reject("luna", [paths[8]])
    ut.remove("cat", [paths[7]])
    (tmp_path / "new").mkdir()
    other = Catalog(tmp_path / "new" / Catalog.FILENAME)
    try:
        other.set_meta({"encoder_id": "model-b", "weights_checksum": "b"})
        new = Learner(other)
        assert new.concepts.adopt(cat) == 1 and new.user_tags.adopt(cat) == 1
        folder = other.add_folder(tmp_path / "photos")
        rng = np.random.default_rng(3)
        rows = cat.photos_by_ids(ids.tolist())
        new_ids = other.commit_batch(
            added=[
                NewPhoto(r.path, folder.id, r.size, r.mtime_ns, r.hash, 10, 10, None, rng.standard_normal(DIM))
                for r in rows.values()
            ]
        )
        by_hash = dict(zip((r.hash for r in rows.values()), new_ids))
        with other.transaction() as conn:  # the new model's tagger gives "cat" to the same photo
            conn.execute("INSERT INTO photo_tags(tag, photo_id, score) VALUES('cat', ?, 0.8)", (by_hash["h7"],))
        new.update()
        assert new.user_tags.photo_ids("luna").tolist() == sorted([by_hash["h5"], by_hash["h6"]])
        assert new.user_tags.rejected_ids("luna").tolist() == [by_hash["h8"]]
        assert by_hash["h8"] not in {s.photo_id for s in new.user_tags.suggest("luna", k=None, every=True)}
        assert new.user_tags.photo_ids("cat").tolist() == []
        assert new.concepts.get("luna").method  # learned again on the new vectors
    finally:
        other.close()
