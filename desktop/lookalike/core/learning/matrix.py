"""The library's vectors as one matrix for learning, and the photos learning has not seen.

Shared by tags and concepts (:class:`lookalike.core.learning.learner.Learner` holds
one for both): vectors are read where they lie, never row by row from the catalog.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.store.catalog import Catalog
    from lookalike.core.store.vectors import VectorIndex


class LibraryMatrix:
    """The library's vectors for learning. With the vector index at hand (the engine's), they
    are read where they lie - the saved graph, mapped a chunk at a time, or the array the
    index already holds - and only as far as a step needs: a teach or a mark reads the
    examples' and a few hundred random photos' vectors, and scores every photo in one pass,
    keeping none of it. Without one (a bare catalog), every vector is read from the catalog
    once and kept (reloaded when the catalog changes)."""

    def __init__(self, catalog: Catalog, index: Callable[[], VectorIndex | None] | None = None) -> None:
        self.catalog = catalog
        self._index_of = index
        self._gen = -1
        self._ids = np.zeros(0, np.int64)
        self._vecs = np.zeros((0, 0), np.float32)
        self._lock = threading.Lock()

    def _index(self) -> VectorIndex | None:
        if self._index_of is None or self._gen == self.catalog.generation():  # (set() stands in a matrix)
            return None
        return self._index_of()

    def get(self) -> tuple[np.ndarray, np.ndarray]:
        """Every photo's (ids ascending, vectors) as one matrix, kept."""
        index = self._index()
        if index is not None:
            return index.dense()
        with self._lock:
            gen = self.catalog.generation()
            if gen != self._gen:
                ids, parts = [], []
                for i, v in self.catalog.iter_vectors(batch=8192):
                    ids.append(i)
                    parts.append(v)
                self._ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
                self._vecs = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
                self._gen = gen
            return self._ids, self._vecs

    def ids(self) -> np.ndarray:
        """Every photo's id, ascending."""
        index = self._index()
        return index.live_ids() if index is not None else self.get()[0]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of these photos (all in the library), in order."""
        ids = np.asarray(ids, np.int64)
        index = self._index()
        if index is not None:
            return index.rows(ids)
        all_ids, vecs = self.get()
        return vecs[np.searchsorted(all_ids, ids)]

    def scores(self, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every photo's score by ``direction`` (inner product): (ids ascending, scores)."""
        d = np.asarray(direction, np.float32)
        index = self._index()
        if index is not None:
            return index.score_all(d)
        ids, vecs = self.get()
        return ids, (vecs @ d if len(ids) else np.zeros(0, np.float32))

    def set(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Stand in a matrix (benchmarks); kept until the catalog's generation moves."""
        with self._lock:
            self._ids, self._vecs, self._gen = ids, vecs, self.catalog.generation()


def new_photo_ids(catalog: Catalog) -> np.ndarray:
    """Photos indexed since tags and concepts last looked (new or changed photos get new ids)."""
    rows = catalog.query("SELECT id FROM photos WHERE id NOT IN (SELECT photo_id FROM photo_learned) ORDER BY id")
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
