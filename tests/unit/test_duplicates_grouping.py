"""Grouping: every pair in a group is a duplicate (no chains); pairs from the graph."""

from __future__ import annotations

import numpy as np

from lookalike.core.duplicates.finding import group_pairs, neighbour_pairs


def test_a_chain_does_not_join_its_ends():
    # 1~2 and 2~3, but 1 and 3 are not alike: 1 and 3 never share a group.
    groups = group_pairs({(1, 2): 0.2, (2, 3): 0.5})
    assert groups == [[1, 2]]
    assert all(not {1, 3} <= set(g) for g in groups)


def test_a_clique_is_one_group_and_parts_stay_apart():
    edges = {(a, b): 0.1 for a in (1, 2, 3, 4) for b in (1, 2, 3, 4) if a < b}
    edges[(10, 11)] = 0.3
    assert group_pairs(edges) == [[1, 2, 3, 4], [10, 11]]


def test_every_pair_in_every_group_is_an_edge():
    rng = np.random.default_rng(3)
    edges = {}
    for _ in range(300):
        a, b = sorted(rng.choice(60, 2, replace=False).tolist())
        edges[(a, b)] = float(rng.random() * 0.9)
    groups = group_pairs(edges)
    assert groups, "random edges should make some groups"
    for g in groups:
        for i, a in enumerate(g):
            for b in g[i + 1 :]:
                assert (a, b) in edges
    seen = [v for g in groups for v in g]
    assert len(seen) == len(set(seen))  # a photo is in one group at most


def _index(vectors: np.ndarray):
    from lookalike.core.store.vectors import VectorIndex

    index = VectorIndex(vectors.shape[1], capacity=len(vectors))
    index.add(np.arange(1, len(vectors) + 1), vectors)
    return index


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_neighbour_pairs_find_every_copy_even_beyond_k():
    rng = np.random.default_rng(0)
    base = _unit(rng.normal(size=(200, 32)))
    # Photo 1 has 40 near copies: more than the 16 neighbours first asked for.
    copies = _unit(base[0] + rng.normal(scale=0.01, size=(40, 32)))
    index = _index(np.concatenate([base, copies]))
    a, b, cos = neighbour_pairs(index, 0.95, k=16)
    pairs = set(zip(a.tolist(), b.tolist()))
    group = {1, *range(201, 241)}
    want = {(x, y) for x in group for y in group if x < y}
    assert want <= pairs
    assert (cos >= 0.95).all() and (a < b).all()
    assert not any(x not in group or y not in group for x, y in pairs)


def test_neighbour_pairs_through_hnsw_match_exact(monkeypatch):
    import lookalike.core.store.vectors as vectors_mod

    rng = np.random.default_rng(1)
    base = _unit(rng.normal(size=(3000, 24)))
    near = _unit(base[:300] + rng.normal(scale=0.02, size=(300, 24)))
    index = _index(np.concatenate([base, near]))
    exact = set(zip(*[x.tolist() for x in neighbour_pairs(index, 0.97)[:2]]))
    monkeypatch.setattr(vectors_mod, "EXACT_LIMIT", 100)  # the graph answers now
    graph = set(zip(*[x.tolist() for x in neighbour_pairs(index, 0.97)[:2]]))
    assert len(exact) >= 300
    assert len(graph & exact) / len(exact) >= 0.99


def test_the_saved_graphs_links_give_the_copies_without_a_search(tmp_path):
    from lookalike.core.duplicates.finding import _components, graph_link_pairs

    rng = np.random.default_rng(2)
    base = _unit(rng.normal(size=(3000, 24)))
    near = _unit(base[:300] + rng.normal(scale=0.02, size=(300, 24)))  # photo i+1 ~ photo 3001+i
    family = _unit(base[300] + rng.normal(scale=0.01, size=(40, 24)))  # 40 copies of photo 301
    index = _index(np.concatenate([base, near, family]))
    index.save(tmp_path, 1)
    alive = np.arange(1, 3341)
    alive = alive[alive != 3001]  # a photo trashed since the graph was saved
    a, b, cos, covered = graph_link_pairs(tmp_path / index.GRAPH, 24, 0.95, alive)
    assert set(covered.tolist()) == set(alive.tolist())
    assert (a < b).all() and (cos >= 0.95).all() and 3001 not in set(a.tolist()) | set(b.tolist())
    pairs = set(zip(a.tolist(), b.tolist()))
    planted = {(i + 1, 3001 + i) for i in range(1, 300)}
    assert len(planted & pairs) >= 0.98 * len(planted)
    # A family of copies may not hold every pair as a link, but it is linked as one part.
    fam = {301, *range(3301, 3341)}
    parts = _components({p: 0.0 for p in pairs if set(p) <= fam})
    assert [set(p) for p in parts] == [fam]
    assert graph_link_pairs(tmp_path / "missing.hnsw", 24, 0.95, alive) is None
    assert graph_link_pairs(tmp_path / index.GRAPH, 32, 0.95, alive) is None  # another dimension
