"""The answer set: which results match a query, and how surely."""

from __future__ import annotations

import numpy as np

from lookalike.core import answer as A
from lookalike.core.search import SearchResult
from lookalike.core.tags import IMAGENET_TAGS

PIZZA, BANANA, SPORTS_CAR, CONVERTIBLE, TABBY, SPEEDBOAT = 963, 954, 817, 511, 281, 814


def test_everyday_category_words_reach_their_imagenet_kinds():
    assert {PIZZA, BANANA} <= set(A.imagenet_classes("food"))
    assert {SPORTS_CAR, CONVERTIBLE, SPEEDBOAT} <= set(A.imagenet_classes("vehicles"))
    assert {SPORTS_CAR, CONVERTIBLE} <= set(A.imagenet_classes("a car"))
    assert SPEEDBOAT not in A.imagenet_classes("a car")
    assert set(IMAGENET_TAGS["dog"]) | {TABBY} <= set(A.imagenet_classes("animals"))
    assert BANANA in A.imagenet_classes("fruit") and BANANA in A.imagenet_classes("some fruits")
    assert A.imagenet_classes("a photo of a red car") == A.imagenet_classes("car")


def test_what_imagenet_has_no_kind_for_reads_as_nothing():
    for words in ("a sunset", "a happy moment", "", "   "):
        assert A.imagenet_classes(words) == ()


def _results(scores) -> list[SearchResult]:
    from pathlib import Path

    return [SearchResult(i + 1, Path(f"/p/{i}.jpg"), float(s), i, None, None, None, 1) for i, s in enumerate(scores)]


def test_the_tail_that_stands_out_matches_and_nothing_else():
    rng = np.random.default_rng(0)
    dim = 64
    q = np.zeros(dim, np.float32)
    q[0] = 1
    background = rng.normal(0, 1, (1000, dim)).astype(np.float32)
    background[:, 0] = rng.normal(0.2, 0.05, 1000)  # background scores 0.2 +- 0.05
    scores = [0.9, 0.85, 0.8, 0.31, 0.3, 0.28]  # three stand out; the rest are the background's top
    judged, m, note = A.judge_tail(_results(scores), q, background, 5000)
    assert m == 3 and [r.match for r in judged] == [True, True, True, False, False, False]
    assert all(0 <= r.confidence <= 1 for r in judged) and judged[0].confidence > judged[3].confidence
    assert note == ""


def test_a_query_with_no_tail_has_no_matches():
    rng = np.random.default_rng(1)
    q = np.zeros(8, np.float32)
    q[0] = 1
    background = np.zeros((1000, 8), np.float32)
    background[:, 0] = rng.normal(0.2, 0.05, 1000)
    top = sorted(background[:, 0].tolist(), reverse=True)[:20]  # the best results are the background's best
    judged, m, note = A.judge_tail(_results(top), q, background, 1000)
    assert m == 0 and not any(r.match for r in judged) and note


def test_kinds_are_ranked_by_their_probability_and_confidence_follows_it():
    judged, m = A.judge_kinds(_results([0.3, 0.2, 0.1]), np.array([0.01, 0.97, 0.6]))
    assert [r.photo_id for r in judged] == [1, 2, 0] and [r.rank for r in judged] == [1, 2, 3]
    assert [r.match for r in judged] == [True, True, False] and m == 2
    c = A.class_confidence(np.linspace(0.001, 0.999, 50))
    assert np.all(np.diff(c) > 0) and c[0] < 0.5 < c[-1]
