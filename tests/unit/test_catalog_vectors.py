"""The catalog and the vector index on their own: persistence, deletes, repair."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from lookalike.core.errors import LibraryCorruptError
from lookalike.core.store.catalog import Catalog, FailureRow, NewPhoto
from lookalike.core.store.vectors import VectorIndex


def _unit(rng, n, d):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite3")
    yield cat
    cat.close()


def _fill(catalog, tmp_path, vecs):
    folder = catalog.add_folder(tmp_path / "photos")
    photos = [
        NewPhoto(tmp_path / "photos" / f"p{i}.jpg", folder.id, 100 + i, 1000 + i, f"h{i}", 10, 10, None, v)
        for i, v in enumerate(vecs)
    ]
    return folder, catalog.commit_batch(added=photos)


def test_catalog_roundtrips_vectors_and_odd_paths(catalog, tmp_path):
    rng = np.random.default_rng(1)
    vecs = _unit(rng, 3, 8)
    folder = catalog.add_folder(tmp_path)
    odd = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9-not-utf8.jpg"))
    ids = catalog.commit_batch(added=[NewPhoto(odd, folder.id, 1, 2, "h", 5, 6, 7.0, vecs[0])])
    row = catalog.photo_by_path(odd)
    assert row is not None and row.id == ids[0] and row.path == odd
    assert np.array_equal(catalog.vector(ids[0]), vecs[0])
    assert catalog.ids_in_folder(tmp_path).tolist() == ids


def test_folder_prefix_does_not_match_sibling_with_same_prefix(catalog, tmp_path):
    rng = np.random.default_rng(2)
    folder = catalog.add_folder(tmp_path)
    a = NewPhoto(tmp_path / "trip" / "a.jpg", folder.id, 1, 1, "a", 1, 1, None, _unit(rng, 1, 4)[0])
    b = NewPhoto(tmp_path / "trip2" / "b.jpg", folder.id, 1, 1, "b", 1, 1, None, _unit(rng, 1, 4)[0])
    ids = catalog.commit_batch(added=[a, b])
    assert catalog.ids_in_folder(tmp_path / "trip").tolist() == [ids[0]]


def test_failures_are_recorded_and_cleared(catalog, tmp_path):
    folder = catalog.add_folder(tmp_path)
    catalog.commit_batch(failures=[FailureRow(tmp_path / "bad.jpg", folder.id, "the file is empty (0 bytes)")])
    assert [f.reason for f in catalog.failures()] == ["the file is empty (0 bytes)"]
    catalog.commit_batch(cleared_failures=[tmp_path / "bad.jpg"])
    assert catalog.failures() == []


def test_corrupt_catalog_is_reported_clearly(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LibraryCorruptError, match="damaged"):
        Catalog(path)


def test_exact_and_hnsw_agree_and_deletes_hide(tmp_path):
    rng = np.random.default_rng(3)
    vecs = _unit(rng, 2000, 32)
    index = VectorIndex(32)
    ids = np.arange(1, 2001)
    index.add(ids, vecs)
    q = vecs[5]
    exact = index.search(q, 10, exact=True)
    approx = index.search(q, 10, exact=False)
    assert exact.ids[0] == 6 and approx.ids[0] == 6
    assert len(set(exact.ids.tolist()) & set(approx.ids.tolist())) >= 9
    index.delete([6])
    assert 6 not in index.search(q, 10, exact=True).ids
    assert 6 not in index.search(q, 10, exact=False).ids


def test_tune_ef_reaches_target_recall():
    rng = np.random.default_rng(4)
    # Clustered, like real embeddings.
    centers = _unit(rng, 30, 64)
    vecs = centers[rng.integers(0, 30, 5000)] + rng.normal(0, 0.15, size=(5000, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(64)
    index.add(np.arange(1, 5001), vecs)
    ef, recall = index.tune_ef(k=10, target=0.99)
    assert recall >= 0.99
    assert ef == index.ef


def test_exact_topk_in_small_chunks_matches_one_pass():
    rng = np.random.default_rng(6)
    vecs = _unit(rng, 3000, 32)
    index = VectorIndex(32)
    index.add(np.arange(1, 3001), vecs)
    q = _unit(rng, 20, 32)
    want = np.argsort(-(q @ vecs.T), axis=1)[:, :25] + 1
    # 256-row chunks (the smallest): twelve of them, the last one short.
    got = index.exact_topk(q, 25, chunk_bytes=1)
    assert [sorted(r) for r in got.tolist()] == [sorted(r) for r in want.tolist()]
    assert got.shape == (20, 25)


def test_photos_the_graph_cannot_reach_are_still_found(tmp_path):
    """hnswlib's link pruning can leave elements that no link leads to; the saved graph is
    walked for them, and every search scores them exactly, so no photo is unfindable."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 32)).astype(np.float32)
    vecs = centres[rng.integers(0, 40, 3000)] + rng.normal(0, 0.05, size=(3000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(32, M=4, ef_construction=40)  # sparse links: a few elements end up unlinked
    index.add(np.arange(1, 3001), vecs, num_threads=1)
    index.save(tmp_path, 1)
    lost = index._unreachable.tolist()
    assert lost, "this graph was expected to leave some elements unlinked"
    # The graph alone never returns them, from any query, however wide the search.
    index._graph.set_ef(3000)
    for q in vecs[::100]:
        for k in range(3000, 0, -1):
            try:
                labels, _ = index._graph.knn_query(q, k=k)
                break
            except RuntimeError:  # fewer than k reachable
                continue
        assert not set(labels[0].tolist()) & set(lost)
    # Our search finds each one for its own vector, first; also when restricted, and after reopening.
    for pid in lost:
        assert index.search(vecs[pid - 1], 5, exact=False).ids[0] == pid
        assert index.search(vecs[pid - 1], 5, exact=False, allowed=np.array([pid, 1, 2])).ids[0] == pid
    meta = json.loads((tmp_path / VectorIndex.SIDECAR).read_text())
    assert sorted(meta["unreachable"]) == sorted(lost)
    again = VectorIndex._load(tmp_path / VectorIndex.GRAPH, tmp_path / VectorIndex.SIDECAR, 32, None)
    assert sorted(again._unreachable.tolist()) == sorted(lost)
    index.delete([lost[0]])
    assert lost[0] not in index.search(vecs[lost[0] - 1], 5, exact=False).ids


def test_graph_is_rebuilt_when_missing_stale_or_damaged(catalog, tmp_path):
    rng = np.random.default_rng(5)
    vecs = _unit(rng, 50, 16)
    _, ids = _fill(catalog, tmp_path, vecs)
    index = VectorIndex.open(tmp_path, catalog, 16)  # no graph yet: built from the catalog
    assert len(index) == 50
    index.save(tmp_path, catalog.generation())
    # Stale: the catalog moved on (a photo removed) after the graph was saved.
    catalog.commit_batch(removed_ids=[ids[0]])
    index2 = VectorIndex.open(tmp_path, catalog, 16)
    assert len(index2) == 49 and ids[0] not in index2
    # Damaged: truncate the graph file; it is detected and rebuilt, never trusted.
    graph = tmp_path / VectorIndex.GRAPH
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    index3 = VectorIndex.open(tmp_path, catalog, 16)
    assert len(index3) == 49
    hit = index3.search(vecs[7], 1)
    assert hit.ids[0] == ids[7] and hit.scores[0] == pytest.approx(1.0, abs=1e-5)
