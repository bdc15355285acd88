"""The saved graph read without hnswlib: searched in place, checked cheaply on open."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lookalike.core import hnswfile, vectors
from lookalike.core.catalog import Catalog, NewPhoto
from lookalike.core.vectors import VectorIndex


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(25, d)).astype(np.float32)
    x = centres[rng.integers(0, 25, n)] + rng.normal(0, 0.3, size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def library(tmp_path):
    """A catalog of 3000 photos and its graph, saved; a few photos deleted before the save."""
    vecs = _clustered(3000, 24, 1)
    cat = Catalog(tmp_path / "catalog.sqlite3")
    folder = cat.add_folder(tmp_path / "photos")
    ids = cat.commit_batch(
        added=[
            NewPhoto(tmp_path / "photos" / f"p{i}.jpg", folder.id, 1, 1, f"h{i}", 1, 1, None, v)
            for i, v in enumerate(vecs)
        ]
    )
    gone = ids[::97]
    cat.commit_batch(removed_ids=gone)
    index = VectorIndex(24, M=8, ef_construction=64)
    index.add(np.asarray(ids), vecs, num_threads=1)
    index.delete(gone)
    index.save(tmp_path, cat.generation())
    yield tmp_path, cat, np.asarray(ids), vecs, set(gone), index
    cat.close()


def test_the_mapped_file_answers_as_hnswlib_does(library):
    folder, cat, ids, vecs, gone, loaded = library
    opened = VectorIndex.open(folder, cat, 24)
    assert opened._graph is None and opened._file is not None  # nothing loaded into hnswlib
    assert len(opened) == len(ids) - len(gone)
    rng = np.random.default_rng(2)
    queries = _clustered(60, 24, 3) + rng.normal(0, 0.05, size=(60, 24)).astype(np.float32)
    agree = []
    for q in queries:
        mine = opened.search(q, 10, exact=False)
        theirs = loaded.search(q, 10, exact=False)
        assert not gone & set(mine.ids.tolist())
        np.testing.assert_allclose(mine.scores, np.sort(mine.scores)[::-1])
        agree.append(len(set(mine.ids.tolist()) & set(theirs.ids.tolist())) / 10)
    assert np.mean(agree) >= 0.99
    # Each photo is found first for its own vector; restricted to a few ids, only those come back.
    for i in range(1, 3000, 211):
        if int(ids[i]) in gone:
            continue
        assert opened.search(vecs[i], 3, exact=False).ids[0] == ids[i]
        allowed = np.asarray([ids[i], ids[i - 1], ids[(i + 500) % 3000]])
        got = opened.search(vecs[i], 2, exact=False, allowed=allowed)
        assert got.ids[0] == ids[i] and set(got.ids.tolist()) <= set(allowed.tolist())
    assert opened._graph is None


def test_exact_search_reads_the_file_as_one_array(library):
    folder, cat, ids, vecs, gone, loaded = library
    opened = VectorIndex.open(folder, cat, 24)
    dense_ids, dense = opened._dense_matrix()
    assert dense.flags["C_CONTIGUOUS"] and dense.dtype == np.float32
    assert set(dense_ids.tolist()) == set(ids.tolist()) - gone
    pos = {int(p): i for i, p in enumerate(ids.tolist())}
    np.testing.assert_array_equal(dense, vecs[[pos[int(p)] for p in dense_ids]])
    hits = opened.search(vecs[10], 5, exact=True)
    assert hits.ids[0] == ids[10] and opened._graph is None


def test_open_trusts_size_and_time_and_hashes_only_when_they_disagree(library, monkeypatch):
    folder, cat, *_ = library
    graph = folder / VectorIndex.GRAPH
    real = vectors._file_digest
    hashed = []
    monkeypatch.setattr(vectors, "_file_digest", lambda p: hashed.append(p) or real(p))
    assert not VectorIndex.open(folder, cat, 24).repaired and hashed == []
    # Touched (a backup tool, a copy with new times): hashed once, found sound, kept.
    st = graph.stat()
    os.utime(graph, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = VectorIndex.open(folder, cat, 24)
    assert hashed == [graph] and not again.repaired and again._file is not None
    # Damaged in place: size and time differ, the checksum too: rebuilt from the catalog.
    data = bytearray(graph.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)
    graph.write_bytes(bytes(data))
    rebuilt = VectorIndex.open(folder, cat, 24)
    assert rebuilt.repaired and len(rebuilt) == cat.photo_count()


def test_the_sidecar_records_what_the_cheap_check_needs(library):
    folder, *_ = library
    meta = json.loads((folder / VectorIndex.SIDECAR).read_text())
    graph = folder / VectorIndex.GRAPH
    assert (meta["size"], meta["mtime_ns"]) == (graph.stat().st_size, graph.stat().st_mtime_ns)
    header = hnswfile.Header.read(graph)
    levels = hnswfile.whole_graph_levels(graph, header.count)
    assert levels is not None
    assert {int(i): int(o) for i, o, *_ in meta["upper"]} == hnswfile.upper_offsets(levels, header)
    # A file cut short is never whole.
    short = folder / "short.hnsw"
    short.write_bytes(graph.read_bytes()[:-3])
    assert hnswfile.whole_graph_levels(short, header.count) is None


def test_a_change_loads_the_graph_and_keeps_every_photo(library):
    folder, cat, ids, vecs, gone, _ = library
    opened = VectorIndex.open(folder, cat, 24)
    keep = [i for i in ids.tolist() if i not in gone]
    opened.delete([keep[0]])
    assert opened._graph is not None and opened._file is None
    assert len(opened) == len(keep) - 1 and keep[0] not in opened and keep[1] in opened


def test_a_first_exact_search_scans_the_file_and_a_second_keeps_the_vectors(library):
    folder, cat, ids, vecs, gone, _ = library
    opened = VectorIndex.open(folder, cat, 24)
    truth = np.argsort(-(vecs @ vecs[40]))
    want = [int(ids[i]) for i in truth if int(ids[i]) not in gone][:7]
    first = opened.search(vecs[40], 7, exact=True)
    assert first.ids.tolist() == want and opened._dense is None
    second = opened.search(vecs[40], 7, exact=True)
    assert second.ids.tolist() == want and opened._dense is not None
    np.testing.assert_allclose(first.scores, second.scores, rtol=1e-6)


def test_a_save_with_nothing_changed_moves_only_the_generation(library):
    folder, cat, *_ = library
    graph = folder / VectorIndex.GRAPH
    before = (graph.stat().st_ino, graph.stat().st_mtime_ns)
    opened = VectorIndex.open(folder, cat, 24)
    opened.delete([])
    opened.save(folder, cat.generation() + 1)
    assert opened._graph is None and (graph.stat().st_ino, graph.stat().st_mtime_ns) == before
    assert VectorIndex.saved_generation(folder) == cat.generation() + 1
    again = VectorIndex.open(folder, cat, 24)  # the catalog is behind it now: caught up, not trusted
    assert again.repaired and len(again) == cat.photo_count()
