"""Exact filtered search and whole-library scoring read vectors where they lie (the saved
graph, or the array already held), and answer exactly what brute force answers."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.core.store import hnswfile
from lookalike.core.store.catalog import Catalog, NewPhoto
from lookalike.core.store.vectors import VectorIndex

DIM = 24


def _vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 12, n)] + rng.normal(0, 0.4, size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def library(tmp_path):
    """1500 photos in the catalog and a saved graph; every 13th photo deleted before the save
    (its record stays in the file, marked deleted)."""
    vecs = _vectors(1500, 5)
    cat = Catalog(tmp_path / "catalog.sqlite3")
    folder = cat.add_folder(tmp_path / "photos")
    ids = np.asarray(
        cat.commit_batch(
            added=[
                NewPhoto(tmp_path / "photos" / f"p{i}.jpg", folder.id, 1, 1, f"h{i}", 1, 1, None, v)
                for i, v in enumerate(vecs)
            ]
        )
    )
    gone = ids[::13]
    cat.commit_batch(removed_ids=gone.tolist())
    index = VectorIndex(DIM, M=8, ef_construction=64)
    # added out of id order, so the file's internal order is not the ids' order
    order = np.random.default_rng(6).permutation(len(ids))
    index.add(ids[order], vecs[order], num_threads=1)
    index.delete(gone)
    index.save(tmp_path, cat.generation())
    live = ~np.isin(ids, gone)
    yield tmp_path, cat, ids[live], vecs[live]
    cat.close()


def _prepare(index: VectorIndex, folder, cat: Catalog, mode: str) -> None:
    """file: the saved graph mapped; dense: its vectors held as one array; loaded: the graph
    in hnswlib (vectors from the catalog); saved: loaded, then saved (read from that file)."""
    if mode == "dense":
        index.dense()
    elif mode in ("loaded", "saved"):
        index.load()
        if mode == "saved":
            index.save(folder, cat.generation())


def _brute(ids: np.ndarray, vecs: np.ndarray, q: np.ndarray, allowed: np.ndarray, k: int) -> list[int]:
    keep = np.isin(ids, allowed)
    scores = vecs[keep] @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[keep][order].tolist()


def test_the_file_is_read_in_place_by_label_in_small_mapped_chunks(library):
    folder, _cat, ids, vecs = library
    graph = hnswfile.GraphFile(folder / VectorIndex.GRAPH, DIM)
    try:
        labels, internal = graph.live()
        assert labels.tolist() == sorted(ids.tolist())  # the deleted ones are left out
        by_id = dict(zip(ids.tolist(), vecs))
        # chunks of a few records, at offsets no page boundary lines up with
        for chunk in (1000, 4096, 1 << 20):
            pick = np.random.default_rng(chunk).permutation(len(labels))[:300]
            got = graph.gather(internal[pick], chunk_bytes=chunk)
            assert got.flags["C_CONTIGUOUS"]
            np.testing.assert_array_equal(got, np.stack([by_id[int(i)] for i in labels[pick]]))
            d = _vectors(3, chunk)
            got_ids, scores = graph.score_live(d, chunk_bytes=chunk)
            assert got_ids.tolist() == labels.tolist() and scores.shape == (len(labels), 3)
            want = np.stack([by_id[int(i)] for i in labels]) @ d.T
            np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6)
    finally:
        graph.close()


@pytest.mark.parametrize("mode", ["file", "dense", "loaded", "saved"])
def test_a_filtered_exact_search_is_the_brute_force_top_k_among_the_allowed(library, mode):
    folder, cat, ids, vecs = library
    index = VectorIndex.open(folder, cat, DIM)
    _prepare(index, folder, cat, mode)
    rng = np.random.default_rng(7)
    queries = _vectors(8, 8)
    for size in (1, 40, 700):
        allowed = np.sort(rng.choice(ids, size, replace=False))
        # a filter may name photos that are not in the index (deleted meanwhile)
        asked = np.concatenate([allowed, [int(ids.max()) + 5, 10**9]])
        for q in queries:
            for _ in range(2):  # the second time from the filter's vectors kept
                hits = index.search(q, 10, allowed=asked, exact=True)
                assert set(hits.ids.tolist()) <= set(allowed.tolist())
                assert hits.ids.tolist() == _brute(ids, vecs, q, allowed, 10)
                np.testing.assert_allclose(hits.scores, np.sort(vecs[np.isin(ids, hits.ids)] @ q)[::-1], rtol=1e-5)
    assert (index._graph is None) == (mode in ("file", "dense"))
    assert (index._reader is not None) == (mode == "saved")


@pytest.mark.parametrize("mode", ["file", "saved"])
def test_the_kept_filter_vectors_follow_a_change(library, mode):
    folder, cat, ids, vecs = library
    index = VectorIndex.open(folder, cat, DIM)
    _prepare(index, folder, cat, mode)
    allowed = np.sort(ids[:200])
    q = vecs[3]
    assert index.search(q, 1, allowed=allowed, exact=True).ids[0] == ids[3]
    index.delete([ids[3]])
    assert index._reader is None  # the file saved before the change is not read any more
    assert ids[3] not in index.search(q, 5, allowed=allowed, exact=True).ids.tolist()
    assert ids[3] not in index.live_ids().tolist()
    new_vec = q.copy()
    index.add(np.asarray([ids[3]]), new_vec[None, :])
    assert index.search(q, 1, allowed=allowed, exact=True).ids[0] == ids[3]


@pytest.mark.parametrize("mode", ["file", "dense", "loaded", "saved"])
def test_every_photo_is_scored_and_rows_come_back_in_order(library, mode):
    folder, cat, ids, vecs = library
    index = VectorIndex.open(folder, cat, DIM)
    _prepare(index, folder, cat, mode)
    assert index.live_ids().tolist() == sorted(ids.tolist())
    d = _vectors(1, 11)[0]
    got_ids, scores = index.score_all(d)
    order = np.argsort(ids)
    assert got_ids.tolist() == ids[order].tolist()
    np.testing.assert_allclose(scores, vecs[order] @ d, rtol=1e-5, atol=1e-6)
    some = ids[[40, 3, 900, 41]]
    np.testing.assert_array_equal(index.rows(some), vecs[[40, 3, 900, 41]])
    if mode != "loaded":
        with pytest.raises(KeyError):
            index.rows(np.asarray([10**9]))


@pytest.mark.parametrize("mode", ["file", "dense", "loaded", "saved"])
def test_learning_reads_the_index_as_it_would_read_the_catalog(library, mode):
    from lookalike.core.learning.matrix import LibraryMatrix

    folder, cat, ids, vecs = library
    index = VectorIndex.open(folder, cat, DIM)
    _prepare(index, folder, cat, mode)
    from_index, from_catalog = LibraryMatrix(cat, lambda: index), LibraryMatrix(cat)
    assert from_index.ids().tolist() == from_catalog.ids().tolist() == sorted(ids.tolist())
    some = np.sort(ids)[[5, 0, 700, 6]]
    np.testing.assert_array_equal(from_index.rows(some), from_catalog.rows(some))
    d = _vectors(1, 3)[0]
    (a_ids, a), (b_ids, b) = from_index.scores(d), from_catalog.scores(d)
    assert a_ids.tolist() == b_ids.tolist()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
