"""Similar shots: a burst is grouped whole even when the candidate pairs miss one of its pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lookalike.core.duplicates.finding import DuplicateKind, _similar


class _Catalog:
    """What :func:`_similar` reads of the catalog: dates taken and vectors."""

    def __init__(self, taken: dict[int, float], vectors: dict[int, np.ndarray]) -> None:
        self.taken, self.vectors = taken, vectors

    def query(self, sql: str) -> list[tuple[int, float]]:
        assert "taken" in sql
        return list(self.taken.items())

    def vectors_of(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        ids = [i for i in ids if i in self.vectors]
        return np.asarray(ids, np.int64), np.stack([self.vectors[i] for i in ids])


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def test_a_burst_missing_a_candidate_pair_is_still_one_group():
    # Three shots 2 s apart, alike pairwise; the graph's links held 1-2 and 2-3 only.
    vecs = {1: _unit([1, 0.10, 0]), 2: _unit([1, 0.15, 0.05]), 3: _unit([1, 0.2, 0.1]), 4: _unit([1, 0.12, 0])}
    taken = {1: 100.0, 2: 102.0, 3: 104.0, 4: 100.0 + 3 * 3600}  # 4: the same scene hours later
    cat = _Catalog(taken, vecs)
    a, b = np.array([1, 2, 1, 1]), np.array([2, 3, 4, 4])
    cos = np.array([float(vecs[x] @ vecs[y]) for x, y in zip(a, b)], np.float32)
    groups = _similar(cat, a[:2], b[:2], cos[:2], 0.85, 10.0, set(), [])
    assert [(g.kind, g.ids) for g in groups] == [(DuplicateKind.SIMILAR, (1, 2, 3))]
    # Without the closure complete linkage would split the burst: 1 and 3 never met.
    assert float(vecs[1] @ vecs[3]) >= 0.85


def test_the_closure_keeps_the_time_and_likeness_rules():
    # 1-2 and 2-3 are bursts; 1 and 3 are 12 s apart, so the three are no group of three.
    vecs = {1: _unit([1, 0.1, 0]), 2: _unit([1, 0.12, 0]), 3: _unit([1, 0.14, 0]), 5: _unit([0, 1, 0])}
    taken = {1: 0.0, 2: 6.0, 3: 12.0, 5: 7.0}
    cat = _Catalog(taken, vecs)
    a, b = np.array([1, 2, 2]), np.array([2, 3, 5])
    cos = np.array([float(vecs[x] @ vecs[y]) for x, y in zip(a, b)], np.float32)
    groups = _similar(cat, a, b, cos, 0.85, 10.0, set(), [])
    assert len(groups) == 1 and len(groups[0].ids) == 2
    assert not any({1, 3} <= set(g.ids) for g in groups)
    assert not any(5 in g.ids for g in groups)  # another scene seconds apart
