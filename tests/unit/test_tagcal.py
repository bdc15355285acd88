"""Tag thresholds: how they are set from labelled images and checked on held-out ones."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lookalike.bench import tagcal as C
from lookalike.core.learning import tags as T


def _one_tag(scores, truth, extra=None):
    """A pool of one tag (plus ``extra`` columns that set the pooled precision)."""
    s = np.array(scores, dtype=float)[:, None]
    t = np.array(truth, dtype=np.int8)[:, None]
    if extra is not None:
        s = np.hstack([s, extra[0]])
        t = np.hstack([t, extra[1]])
    return s, t


def _pooled_perfect(n):
    """Another tag whose n photos are all right at 0.9: the pooled precision is high everywhere."""
    return np.full((n, 1), 0.9), np.ones((n, 1), dtype=np.int8)


def test_fit_takes_the_lowest_cut_that_keeps_the_target():
    # ten right photos from 0.95 down to 0.50, then a wrong one at 0.45, then right ones below
    s = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.44, 0.43]
    y = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1]
    sc, tr = _one_tag(s, y)
    th = C.fit(sc, tr, target=0.9, prior=0.0, floor=0.35)
    # at 0.43 all 13 photos: 12/13 = 0.92 >= 0.9, the lowest cut
    assert th[0] == pytest.approx(0.43)
    th = C.fit(sc, tr, target=0.95, prior=0.0, floor=0.35)
    assert th[0] == pytest.approx(0.5)  # the wrong photo at 0.45 would bring it to 0.91


def test_one_lucky_photo_does_not_set_a_low_threshold_against_a_poor_pool():
    # the tag: one right photo at 0.4; the pool: a tag that is wrong half the time below 0.8
    other_s = np.array([[0.95], [0.9], [0.85], [0.6], [0.55], [0.5], [0.45]])
    other_t = np.array([[1], [1], [1], [0], [1], [0], [1]], dtype=np.int8)
    s = np.full((7, 1), np.nan)
    s[0, 0] = 0.4
    t = np.zeros((7, 1), dtype=np.int8)
    t[0, 0] = 1
    sc, tr = np.hstack([s, other_s]), np.hstack([t, other_t])
    without_prior = C.fit(sc, tr, target=0.9, prior=0.0)
    with_prior = C.fit(sc, tr, target=0.9, prior=10.0)
    assert without_prior[0] == pytest.approx(0.4)
    # shrunk towards the pool's precision at 0.4 (4/7), one photo cannot reach 0.9: the pooled cut
    tau0, _ = C.pooled_threshold(sc, tr, target=0.9)
    assert with_prior[0] == pytest.approx(tau0)
    assert tau0 == pytest.approx(0.85)


def test_a_tag_that_is_wrong_at_its_top_is_not_given_and_one_without_evidence_takes_the_pooled_cut():
    extra = _pooled_perfect(20)
    n = 20 + 2
    s = np.full((n, 3), np.nan)
    t = np.zeros((n, 3), dtype=np.int8)
    s[:20, 2], t[:20, 2] = extra[0][:, 0], 1  # the well-behaved tag
    s[20, 0], t[20, 0] = 0.97, 0  # tag 0: its only photo, wrong at 0.97
    s[21, 1] = 0.2  # tag 1: nothing above the floor
    th = C.fit(s, t, target=0.9, prior=5.0)
    assert math.isinf(th[0])
    tau0, _ = C.pooled_threshold(s, t, target=0.9)
    assert th[1] == pytest.approx(tau0)
    assert th[2] <= 0.9


def test_a_column_the_model_cannot_give_is_never_given():
    s = np.array([[0.9, np.nan], [0.8, np.nan]])
    t = np.array([[1, 1], [1, 0]], dtype=np.int8)
    th = C.fit(s, t)
    assert math.isinf(th[1])
    assert not C.assign(s, th, cap=5)[:, 1].any()


def test_assign_gives_at_most_cap_tags_best_first_each_over_its_threshold():
    s = np.array([[0.9, 0.8, 0.7, 0.6], [0.1, 0.95, 0.2, 0.99]])
    th = np.array([0.5, 0.5, 0.75, 0.5])
    got = C.assign(s, th, cap=2)
    assert got[0].tolist() == [True, True, False, False]  # 0.7 is under its own 0.75 anyway
    assert got[1].tolist() == [False, True, False, True]


def test_arguable_tags_are_not_scored():
    given = np.array([[True, True, True]])
    truth = np.array([[1, 0, -1]], dtype=np.int8)
    g, r = C.count(given, truth)
    assert g.tolist() == [1, 1, 0]
    assert r.tolist() == [1, 0, 0]


def test_cross_validation_tags_each_photo_with_thresholds_set_without_it():
    # tag 0 has one labelled photo (photo 0, right, at 0.6); tag 1 has 39 right photos at 0.95.
    # Fitted with photo 0, tag 0's own evidence sets its cut at 0.6 and photo 0 gets it; held out,
    # tag 0 has no evidence and takes the pooled cut (0.95), which photo 0 does not reach.
    s = np.full((40, 2), np.nan)
    t = np.zeros((40, 2), dtype=np.int8)
    s[0, 0], t[0, 0] = 0.6, 1
    s[1:, 1], t[1:, 1] = 0.95, 1
    fitted = C.fit(s, t, target=0.9, prior=0.0)
    assert fitted[0] == pytest.approx(0.6)
    assert C.assign(s, fitted, cap=5)[0, 0]
    held = C.cross_validate(s, t, cap=5, folds=5, repeats=3, margin=0.0, prior=0.0)
    assert held.shape == (3, 40, 2)
    assert not held[:, 0, 0].any()
    assert held[:, 1:, 1].all()


def test_the_labelled_data_file_is_well_formed():
    doc = json.loads(C.DATA.read_text())
    names = set(T.TAG_NAMES)
    assert len(doc["photos"]) >= 500
    seen = set()
    for row in doc["photos"]:
        assert row["source"] in doc["sources"], row
        assert row["kind"] in ("photo", "drawing", "abstract")
        assert set(row["tags"]) <= names, row
        assert set(row.get("maybe", ())) <= names, row
        assert not set(row["tags"]) & set(row.get("maybe", ())), row
        key = (row["source"], row["path"])
        assert key not in seen, key
        seen.add(key)
    for spec in doc["sources"].values():
        assert ("apt" in spec) != ("pip" in spec)
        assert "==" in spec.get("pip", "==")  # pinned: the labels are of those files


def test_the_shipped_thresholds_cover_every_tag_the_offline_model_can_give():
    reach = {t for t, classes in T.IMAGENET_TAGS.items() if classes}
    assert reach <= set(T.OFFLINE_THRESHOLDS)
    assert all(v >= C.FLOOR for v in T.OFFLINE_THRESHOLDS.values())
