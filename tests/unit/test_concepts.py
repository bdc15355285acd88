"""Concepts learned from examples, tags' bookkeeping, filters and browsing, on a catalog of
synthetic vectors (what they show does not matter here; tests on real photos are in
tests/integration/test_concepts.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike.core.errors import LookalikeError, QueryError, UsageError
from lookalike.core.learning.concepts import Concepts, check_name
from lookalike.core.learning.learner import Learner
from lookalike.core.learning.scorers import (
    Method,
    TrainingSet,
    average_precision,
    choose_method,
    threshold,
    train,
    uncertain,
)
from lookalike.core.search.browse import allowed_ids, browse, by_month, month_title
from lookalike.core.search.parse import parse
from lookalike.core.store.catalog import Catalog, NewPhoto

DIM = 32


def clusters(n_per: int, k: int, dim: int = DIM, spread: float = 0.35, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim))
    labels = np.repeat(np.arange(k), n_per)
    x = centres[labels] + spread * rng.standard_normal((len(labels), dim)) * np.sqrt(dim) / 3
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


# ------------------------------------------------------------------ learning


@pytest.mark.parametrize("method", list(Method))
def test_each_method_ranks_held_out_members_above_the_rest(method):
    x, labels = clusters(30, 8)
    members = np.nonzero(labels == 3)[0]
    rng = np.random.default_rng(1)
    ex = members[:5]
    rest = np.setdiff1d(np.arange(len(x)), ex)
    bg = rng.choice(rest, 100, replace=False)
    scorer = train(method, TrainingSet(x[ex], x[:0], x[bg]))
    assert scorer.direction.shape == (DIM,)
    assert abs(float(np.linalg.norm(scorer.direction)) - 1) < 1e-5
    ap = average_precision(scorer.scores(x[rest]), labels[rest] == 3)
    assert ap > 0.9


def test_counter_examples_push_the_probe_away():
    # two overlapping groups: the examples sit between; counter-examples say which side is wrong
    x, labels = clusters(40, 2, spread=0.9, seed=3)
    pos, neg = np.nonzero(labels == 0)[0], np.nonzero(labels == 1)[0]
    rest = np.setdiff1d(np.arange(len(x)), np.r_[pos[:3], neg[:6]])
    plain = train(Method.PROBE, TrainingSet(x[pos[:3]], x[:0], x[rest[::4]]))
    told = train(Method.PROBE, TrainingSet(x[pos[:3]], x[neg[:6]], x[rest[::4]]))
    truth = labels[rest] == 0
    assert average_precision(told.scores(x[rest]), truth) >= average_precision(plain.scores(x[rest]), truth)


def test_leave_one_out_picks_a_method_and_needs_three_examples():
    x, labels = clusters(20, 5)
    data = TrainingSet(x[labels == 1][:6], x[:0], x[labels != 1][:60])
    pick = choose_method(data)
    assert pick.method in Method
    assert set(pick.scores) == {str(m) for m in Method}
    assert all(0.0 <= s <= 1.0 for s in pick.scores.values())
    assert {k: len(v) for k, v in pick.held_out.items()} == {str(m): 6 for m in Method}
    two = choose_method(TrainingSet(x[labels == 1][:2], x[:0], x[labels != 1][:60]))
    assert two.method == Method.CENTROID and two.scores == {}


def test_threshold_keeps_precision_on_marks():
    x, labels = clusters(30, 4)
    pos = x[labels == 0][:5]
    wrong = x[labels == 1][:5]
    scorer = train(Method.CENTROID, TrainingSet(pos, wrong, x[labels > 1][:40]))
    cut = threshold(scorer, TrainingSet(pos, wrong, x[:0]))
    s_right, s_wrong = scorer.scores(pos), scorer.scores(wrong)
    above = np.r_[s_right >= cut, s_wrong >= cut]
    truth = np.r_[np.ones(5), np.zeros(5)]
    assert truth[above].mean() >= 0.9


def test_a_single_example_accepts_at_most_the_top_percent():
    x, _ = clusters(50, 10)
    scorer = train(Method.CENTROID, TrainingSet(x[:1], x[:0], x[1:100]))
    scores = scorer.scores(x)
    cut = threshold(scorer, TrainingSet(x[:1], x[:0], x[:0]), library_scores=scores)
    assert (scores >= cut).mean() <= 0.011


def test_uncertain_offers_photos_nearest_the_threshold_and_skips_marked():
    scores = np.array([0.1, 0.49, 0.9, 0.52, 0.5, 0.7])
    got = uncertain(scores, 0.5, exclude=np.array([4]), k=3)
    assert got.tolist() == [1, 3, 5]


# ------------------------------------------------------- a catalog of photos


def _photo_files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"p{i:03d}.jpg"
        p.write_bytes(b"x" * (i + 1))
        paths.append(p)
    return paths


@pytest.fixture
def library(tmp_path):
    """60 photos in 3 groups of 20 (group = id // 20 in insertion order), on disk and in a catalog."""
    x, labels = clusters(20, 3, seed=5)
    cat = Catalog(tmp_path / "catalog.sqlite3")
    cat.set_meta({"encoder_id": "test-model", "weights_checksum": "abc"})
    folder = cat.add_folder(tmp_path / "photos")
    paths = _photo_files(tmp_path / "photos", len(x))
    new = [
        NewPhoto(p.resolve(), folder.id, p.stat().st_size, p.stat().st_mtime_ns, f"h{i}", 10, 10, None, v)
        for i, (p, v) in enumerate(zip(paths, x))
    ]
    ids = cat.commit_batch(added=new)
    yield cat, paths, np.asarray(ids), labels
    cat.close()


def test_teach_learns_a_concept_and_finds_its_photos(library):
    cat, paths, ids, labels = library
    concepts = Concepts(cat)
    learned = concepts.teach("Luna", paths[:5])
    info = learned.concept
    assert (info.name, info.examples, info.counter_examples) == ("Luna", 5, 0)
    members = set(concepts.photo_ids("luna").tolist())
    group0 = set(ids[labels == 0].tolist())
    assert len(members & group0) >= 15 and len(members - group0) <= 2
    assert info.photos == len(members)
    best = [pid for pid, _ in concepts.ranked("LUNA", k=20)]
    assert len(set(best) & group0) >= 18
    assert learned.offered and not set(learned.offered) & set(ids[:5].tolist())


def test_marks_retrain_and_are_kept_as_the_users_data(library):
    cat, paths, ids, labels = library
    concepts = Concepts(cat)
    concepts.teach("luna", paths[:3])
    wrong = paths[int(np.nonzero(labels == 1)[0][0])]
    learned = concepts.mark("luna", wrong, right=False)
    assert learned.concept.counter_examples == 1
    learned = concepts.mark("luna", int(ids[10]), right=True)
    assert learned.concept.examples == 4
    ex = concepts.examples("luna")
    assert [(e.path.name, e.right, e.marked) for e in ex][-2:] == [
        (wrong.name, False, True),
        (paths[10].name, True, True),
    ]
    # re-teaching an example that was marked keeps it as taught, never loses it
    concepts.teach("luna", [paths[10]])
    assert sum(1 for e in concepts.examples("luna") if e.path.name == paths[10].name) == 1


def test_rename_delete_and_bad_names(library):
    cat, paths, _, _ = library
    concepts = Concepts(cat)
    concepts.teach("my bike", paths[:2])
    concepts.teach("cat", paths[20:22])
    assert concepts.rename("My Bike", "bike").name == "bike"
    with pytest.raises(LookalikeError, match="already a concept named 'cat'"):
        concepts.rename("bike", "CAT")
    for bad in ("", "#luna", 'say "x"', "x" * 81):
        with pytest.raises(UsageError):
            check_name(bad)
    with pytest.raises(LookalikeError, match="not in the library"):
        concepts.teach("dog", [Path(__file__)])
    with pytest.raises(UsageError, match="both an example and a counter-example"):
        concepts.teach("dog", paths[:2], [paths[1]])
    gone = concepts.delete("bike")
    assert gone.examples == 2 and [c.name for c in concepts.list()] == ["cat"]
    assert all(p.exists() for p in paths)  # deleting a concept never touches photos
    with pytest.raises(LookalikeError, match="no concept named 'bike'"):
        concepts.get("bike")


def test_concepts_survive_reopening_and_tag_new_photos(library, tmp_path):
    cat, paths, ids, labels = library
    Concepts(cat).teach("group one", [paths[i] for i in np.nonzero(labels == 1)[0][:5]])
    cat.close()
    cat2 = Catalog(tmp_path / "catalog.sqlite3")
    try:
        learner = Learner(cat2)
        assert [c.name for c in learner.concepts.list()] == ["group one"]
        before = set(learner.concepts.photo_ids("group one").tolist())
        # a new photo like group one's is indexed: the next pass gives it the concept
        x, labels2 = clusters(20, 3, seed=5)
        fresh = x[labels2 == 1].mean(0)
        fresh /= np.linalg.norm(fresh)
        folder = cat2.folders()[0]
        p = _photo_files(tmp_path / "photos" / "new", 1)[0]
        (new_id,) = cat2.commit_batch(
            added=[NewPhoto(p.resolve(), folder.id, 1, p.stat().st_mtime_ns, "hnew", 10, 10, None, fresh)]
        )
        report = learner.update()
        assert report.photos >= 1
        after = set(learner.concepts.photo_ids("group one").tolist())
        assert after == before | {new_id}
        assert learner.update().photos == 0  # nothing new the second time
    finally:
        cat2.close()


def test_a_model_switch_relearns_concepts_from_their_examples(library):
    cat, paths, ids, labels = library
    concepts = Concepts(cat)
    concepts.teach("g2", [paths[i] for i in np.nonzero(labels == 2)[0][:4]])
    old = concepts.scorer("g2").direction
    # the library is re-encoded by another model: new vectors, a new model id
    rng = np.random.default_rng(9)
    with cat.transaction() as conn:
        for pid in ids.tolist():
            v = rng.standard_normal(DIM).astype(np.float32)
            conn.execute("UPDATE photos SET vector = ? WHERE id = ?", ((v / np.linalg.norm(v)).tobytes(), pid))
        cat.set_meta({"encoder_id": "other-model", "generation": cat.generation() + 1}, db=conn)
    assert concepts.ensure_current() == 1
    assert not np.allclose(concepts.scorer("g2").direction, old)
    assert concepts.get("g2").examples == 4  # the examples are the user's: all still there


# ------------------------------------------------------------ filters, browse


@pytest.fixture
def dated(tmp_path):
    """Photos of known dates, sizes and kinds."""
    cat = Catalog(tmp_path / "catalog.sqlite3")
    folder = cat.add_folder(tmp_path / "pics")
    rows = [
        # name, taken (None: file time), file time, width, height
        ("a.jpg", (2023, 5, 1), (2020, 1, 1), 4000, 3000),
        ("b.png", None, (2024, 6, 15), 1000, 2000),
        ("trip/c.heic", (2024, 7, 2), (2024, 7, 3), 3000, 3000),
        ("trip/d.JPEG", (2022, 12, 31), (2025, 1, 1), 640, 480),
        ("e.png", None, (2024, 6, 1), 800, 800),
    ]
    new = []
    for i, (name, taken, mtime, w, h) in enumerate(rows):
        t = time.mktime((*taken, 12, 0, 0, 0, 0, -1)) if taken else None
        m = int(time.mktime((*mtime, 12, 0, 0, 0, 0, -1)) * 1e9)
        path = tmp_path / "pics" / name
        new.append(NewPhoto(path, folder.id, 10, m, f"h{i}", w, h, t, np.eye(4, dtype=np.float32)[i % 4]))
    ids = cat.commit_batch(added=new)
    yield cat, dict(zip([r[0] for r in rows], ids)), tmp_path
    cat.close()


def names(cat, items) -> list[str]:
    return [os.path.basename(i.path) for i in items]


def test_browse_is_newest_first_by_date_taken_else_file_time(dated):
    cat, _, _ = dated
    items = browse(cat)
    assert names(cat, items) == ["c.heic", "b.png", "e.png", "a.jpg", "d.JPEG"]
    groups = by_month(items)
    assert [(m, len(g)) for m, g in groups] == [("2024-07", 1), ("2024-06", 2), ("2023-05", 1), ("2022-12", 1)]
    assert month_title("2024-06") == "June 2024"
    assert names(cat, browse(cat, limit=2, offset=1)) == ["b.png", "e.png"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("year:2024", ["c.heic", "b.png", "e.png"]),
        ("year:2023 year:2022", ["a.jpg", "d.JPEG"]),
        ("after:2024-06-10", ["c.heic", "b.png"]),
        ("before:2024", ["a.jpg", "d.JPEG"]),
        ("after:2023 before:2024-07", ["b.png", "e.png", "a.jpg"]),
        ("kind:png", ["b.png", "e.png"]),
        ("kind:jpeg", ["a.jpg", "d.JPEG"]),
        ("kind:heic,png", ["c.heic", "b.png", "e.png"]),
        ("shape:portrait", ["b.png"]),
        ("shape:landscape", ["a.jpg", "d.JPEG"]),
        ("shape:square", ["c.heic", "e.png"]),
        ("min:2mp", ["c.heic", "b.png", "a.jpg"]),
        ("min:9mp", ["c.heic", "a.jpg"]),
        ("min:3500x3000", ["a.jpg"]),
        ("kind:png shape:square", ["e.png"]),
    ],
)
def test_filters_choose_photos(dated, query, expected):
    cat, _, _ = dated
    allowed = allowed_ids(cat, parse(query))
    assert names(cat, browse(cat, allowed)) == expected


def test_in_filter_takes_a_folder_and_not_its_siblings(dated):
    cat, _, tmp = dated
    q = parse(f"in:{tmp / 'pics' / 'trip'}")
    assert names(cat, browse(cat, allowed_ids(cat, q))) == ["c.heic", "d.JPEG"]
    q = parse(f"in:{tmp / 'pics' / 'tri'}")
    assert names(cat, browse(cat, allowed_ids(cat, q))) == []


def test_tag_and_concept_filters(dated):
    cat, ids, _ = dated
    with cat.transaction() as conn:
        conn.executemany(
            "INSERT INTO photo_tags(tag, photo_id, score) VALUES(?,?,?)",
            [("beach", ids["a.jpg"], 0.9), ("beach", ids["b.png"], 0.8), ("dog", ids["b.png"], 0.7)],
        )
    assert names(cat, browse(cat, allowed_ids(cat, parse("tag:beach")))) == ["b.png", "a.jpg"]
    assert names(cat, browse(cat, allowed_ids(cat, parse("tag:beach tag:dog")))) == ["b.png"]
    concepts = Concepts(cat)
    with pytest.raises(QueryError) as info:
        allowed_ids(cat, parse("dog + #luna"), concepts=concepts)
    assert info.value.column == 6 and "no concept named 'luna'" in info.value.reason
    assert allowed_ids(cat, parse("dog")) is None  # nothing to choose: every photo may answer


# ---------------------------------------------------------------------- tags


def test_clip_tags_come_from_prompts_and_are_redone_when_the_vocabulary_changes(tmp_path, monkeypatch):
    from lookalike.core.learning import tags as T

    rng = np.random.default_rng(0)
    prompts = rng.standard_normal((len(T.TAG_NAMES), 16)).astype(np.float32)
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    calls: list[list[str]] = []

    def encode_texts(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return prompts[[T.TAG_NAMES.index(t.removeprefix("a photo of ").removeprefix("a ")) for t in texts]]

    cat = Catalog(tmp_path / "catalog.sqlite3")
    try:
        cat.set_meta({"encoder_id": "openclip-tiny-file", "weights_checksum": "x"})
        folder = cat.add_folder(tmp_path / "p")
        dog, beach = T.TAG_NAMES.index("dog"), T.TAG_NAMES.index("beach")
        vecs = [prompts[dog], prompts[beach], (prompts[dog] + prompts[beach]) / np.sqrt(2)]
        ids = cat.commit_batch(
            added=[
                NewPhoto(tmp_path / "p" / f"{i}.jpg", folder.id, 1, 1, f"h{i}", 10, 10, None, v.astype(np.float32))
                for i, v in enumerate(vecs)
            ]
        )
        learner = Learner(cat, encode_texts)
        tags = learner.tags
        assert learner.update().tagged == 3
        assert calls and [T.prompt(t) for t in T.TAG_NAMES] == calls[0]
        assert [t for t, _ in tags.of(ids[0])] == ["dog"]
        assert [t for t, _ in tags.of(ids[1])] == ["beach"]
        assert {t for t, _ in tags.of(ids[2])} == {"dog", "beach"}
        assert dict(tags.counts())["dog"] == 2
        assert learner.update().photos == 0  # nothing new
        # the thresholds change: every photo is tagged again
        monkeypatch.setattr(T, "CLIP_THRESHOLD", 0.6)
        tags._tagger = None
        assert tags.update() == 3
        assert tags.of(ids[2]) == []  # half dog, half beach: neither reaches 0.6 now
    finally:
        cat.close()


def test_concepts_move_to_the_library_of_a_new_model(library, tmp_path):
    cat, paths, ids, labels = library
    old = Concepts(cat)
    old.teach("g1", [paths[i] for i in np.nonzero(labels == 1)[0][:4]], [paths[0]])
    # a library being built for another model adopts the concepts, then indexes the same photos
    (tmp_path / "new").mkdir()
    other = Catalog(tmp_path / "new" / Catalog.FILENAME)
    try:
        other.set_meta({"encoder_id": "model-b", "weights_checksum": "b"})
        learner = Learner(other)
        assert learner.concepts.adopt(cat) == 1  # the old library's catalog
        assert learner.concepts.adopt(cat) == 0  # already there
        folder = other.add_folder(tmp_path / "photos")
        rng = np.random.default_rng(3)
        rows = cat.photos_by_ids(ids.tolist())
        other.commit_batch(
            added=[
                NewPhoto(
                    r.path,
                    folder.id,
                    r.size,
                    r.mtime_ns,
                    r.hash,
                    10,
                    10,
                    None,
                    rng.standard_normal(DIM).astype(np.float32),
                )
                for r in rows.values()
            ]
        )
        learner.update()
        info = learner.concepts.get("g1")
        assert (info.examples, info.counter_examples) == (4, 1) and info.method  # learned on the new vectors
        assert {e.path for e in learner.concepts.examples("g1")} == {e.path for e in old.examples("g1")}
        # deleted in the new library, it is not brought back by a later switch: that library has photos now
        learner.concepts.delete("g1")
        assert learner.concepts.adopt(cat) == 0 and learner.concepts.list() == []
    finally:
        other.close()


def test_threshold_when_no_cut_reaches_90_percent_balances_right_and_wrong():
    from lookalike.core.learning.scorers import Scorer

    d = np.array([1.0, 0.0], dtype=np.float32)
    scorer = Scorer(Method.CENTROID, d)
    pos = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]], dtype=np.float32)
    neg = np.array([[0.95, 0.0]], dtype=np.float32)  # a wrong one above every right one
    cut = threshold(scorer, TrainingSet(pos, neg, pos[:0]))
    assert cut <= 0.6  # keeps the four right ones (F1 0.89) rather than only the wrong one


def test_a_teach_killed_before_it_learns_is_learned_at_the_next_update(library, monkeypatch):
    """Killed after its examples are saved and before it learns, a concept keeps what it
    learned from fewer examples: the next update (an index, or opening the library) learns
    it again from all of them, as a whole run would have."""
    cat, paths, ids, labels = library
    concepts = Concepts(cat)
    concepts.teach("luna", paths[:2])
    before = concepts.get("luna").threshold

    def killed(self, name, *, choose=True):
        raise KeyboardInterrupt  # the process dies here

    with monkeypatch.context() as m:
        m.setattr(Concepts, "learn", killed)
        with pytest.raises(KeyboardInterrupt):
            concepts.teach("luna", paths[2:7])
    again = Concepts(cat)  # the next run
    assert again.get("luna").examples == 7 and again.get("luna").threshold == before  # stale so far
    assert again.ensure_current() == 1
    relearned = again.get("luna")
    whole = again.learn("luna").concept  # what the whole run learns from the same examples
    assert relearned.threshold == whole.threshold != before
    assert set(again.photo_ids("luna").tolist()) == set(concepts.photo_ids("luna").tolist())
    assert again.ensure_current() == 0  # and then it is current


def test_the_photos_offered_for_marking_come_from_the_whole_library(tmp_path):
    """A concept of many photos: the least sure photos (nearest the threshold) lie far below
    the top 400, and those are the ones offered."""
    x, labels = clusters(700, 2, seed=9, spread=0.6)
    cat = Catalog(tmp_path / "catalog.sqlite3")
    cat.set_meta({"encoder_id": "test-model", "weights_checksum": "abc"})
    folder = cat.add_folder(tmp_path / "photos")
    paths = _photo_files(tmp_path / "photos", len(x))
    ids = np.asarray(
        cat.commit_batch(
            added=[
                NewPhoto(p.resolve(), folder.id, p.stat().st_size, p.stat().st_mtime_ns, f"h{i}", 10, 10, None, v)
                for i, (p, v) in enumerate(zip(paths, x))
            ]
        )
    )
    concepts = Concepts(cat)
    examples = [paths[i] for i in np.nonzero(labels == 0)[0][:8]]
    learned = concepts.teach("big", examples)
    info = learned.concept
    assert info.photos > 400
    scores = dict(concepts.ranked("big", k=len(ids)))
    taught = set(ids[np.nonzero(labels == 0)[0][:8]].tolist())
    nearest = sorted((abs(s - info.threshold), pid) for pid, s in scores.items() if pid not in taught)[:12]
    offered = concepts.offered("big")
    assert list(offered) == [pid for _, pid in nearest] == list(learned.offered)
    top400 = {pid for pid, _ in concepts.ranked("big", k=400)}
    assert not set(offered) & top400  # what a look at the top 400 alone could never offer
    cat.close()
