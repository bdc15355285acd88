"""The faces' own hnswlib graph: a cache of the catalog's face vectors.

Keyed by face id, Euclidean (hnswlib's squared L2; :meth:`FaceIndex.search`
returns plain distances). Like the photos' graph it can always be rebuilt from
the catalog: on open it is reconciled with the ``faces`` table (faces added
since the last save are added, faces gone are marked deleted), so a run killed
before the save loses nothing. Saved write-temp-then-rename, the graph and its
sidecar as a pair; the sidecar records the graph's size and CRC-32, and a graph
whose bytes differ from them (bit rot keeps size and time), or whose structure
hnswlib could not follow safely, is rebuilt from the catalog with a warning and
never handed to hnswlib.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lookalike.core.fsutil import atomic_paths

log = logging.getLogger(__name__)

GRAPH = "faces.hnsw"
SIDECAR = "faces.json"
_M, _EF_CONSTRUCTION, _EF = 16, 100, 64


class FaceIndex:
    def __init__(self, dim: int, model_id: str, capacity: int = 1024) -> None:
        import hnswlib

        self.dim = int(dim)
        self.model_id = model_id
        self._lock = threading.RLock()
        self._graph = hnswlib.Index(space="l2", dim=self.dim)
        self._graph.init_index(max_elements=max(64, capacity), ef_construction=_EF_CONSTRUCTION, M=_M)
        self._graph.set_ef(_EF)
        self._alive: set[int] = set()
        self.dirty = False

    def __len__(self) -> int:
        return len(self._alive)

    def __contains__(self, face_id: int) -> bool:
        return int(face_id) in self._alive

    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        ids = np.asarray(list(ids), dtype=np.int64)
        if ids.size == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        with self._lock:
            need = self._graph.element_count + len(ids)
            if need > self._graph.max_elements:
                self._graph.resize_index(max(need, int(self._graph.max_elements * 1.5) + 1024))
            self._graph.add_items(vectors, ids.astype(np.uint64), num_threads=1)
            for fid in ids.tolist():
                try:
                    self._graph.unmark_deleted(fid)
                except RuntimeError:
                    pass
            self._alive.update(ids.tolist())
            self.dirty = True

    def delete(self, ids: Iterable[int]) -> None:
        with self._lock:
            for fid in ids:
                fid = int(fid)
                if fid in self._alive:
                    self._alive.discard(fid)
                    try:
                        self._graph.mark_deleted(fid)
                    except RuntimeError:
                        pass
                    self.dirty = True

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, distances), each (n, k') with k' = min(k, faces); nearest first."""
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            k = min(int(k), len(self._alive))
            if k <= 0 or q.shape[0] == 0:
                return np.zeros((q.shape[0], 0), np.int64), np.zeros((q.shape[0], 0), np.float32)
            self._graph.set_ef(max(_EF, k))
            try:
                labels, d2 = self._graph.knn_query(q, k=k, num_threads=1)
            except RuntimeError:  # fewer reachable than k: ask for fewer
                labels, d2 = self._graph.knn_query(q, k=max(1, k // 2), num_threads=1)
        return labels.astype(np.int64), np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)

    # -- persistence ----------------------------------------------------------

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        with self._lock:
            if not self.dirty and (folder / GRAPH).exists():
                return
            with atomic_paths(folder / GRAPH, folder / SIDECAR) as (tmp, side_tmp):
                self._graph.save_index(os.fspath(tmp))
                side_tmp.write_text(
                    json.dumps(
                        {
                            "format": 1,
                            "dim": self.dim,
                            "model": self.model_id,
                            "alive": sorted(self._alive),
                            "size": tmp.stat().st_size,
                            "crc": _crc(tmp),
                        }
                    )
                )
            self.dirty = False

    @classmethod
    def open(cls, folder: Path, dim: int, model_id: str, live: dict[int, bytes] | None = None) -> FaceIndex:
        """The saved graph reconciled with ``live`` (face id -> vector bytes of this model),
        or a new graph built from it."""
        import hnswlib

        folder = Path(folder)
        live = live or {}
        index: FaceIndex | None = None
        try:
            side = json.loads((folder / SIDECAR).read_text())
            if side.get("dim") == dim and side.get("model") == model_id and (folder / GRAPH).exists():
                _check_saved(folder / GRAPH, side, dim)
                index = cls(dim, model_id, capacity=16)
                graph = hnswlib.Index(space="l2", dim=dim)
                graph.load_index(os.fspath(folder / GRAPH), max_elements=max(64, len(live) + 1024))
                graph.set_ef(_EF)
                index._graph = graph
                index._alive = {int(i) for i in side.get("alive", [])}
                if not index._alive <= set(np.asarray(graph.get_ids_list(), np.int64).tolist()):
                    raise ValueError("the face graph lacks faces its sidecar lists")
        except FileNotFoundError:
            pass
        except Exception as exc:  # a damaged cache is rebuilt, never trusted
            log.warning("Rebuilding the face graph from the catalog: %s", exc)
            index = None
        if index is None:
            index = cls(dim, model_id, capacity=len(live) + 1024)
        gone = [i for i in index._alive if i not in live]
        new = [i for i in live if i not in index._alive]
        index.delete(gone)
        if new:
            index.add(new, np.stack([np.frombuffer(live[i], dtype=np.float32) for i in new]))
        return index


def _crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(4 * 2**20), b""):
            crc = zlib.crc32(chunk, crc)
    return crc


def _check_saved(path: Path, side: dict, dim: int) -> None:
    """ValueError unless the graph file is the one its sidecar describes (size and CRC-32,
    when recorded) and hnswlib can follow every link in it."""
    from lookalike.core import hnswfile

    if "crc" in side and (path.stat().st_size != side.get("size") or _crc(path) != side["crc"]):
        raise hnswfile.GraphDamaged("the face graph differs from the one saved (damaged)")
    hnswfile.verify(path, dim, unit=False)
