"""The vector index: an hnswlib graph kept beside the catalog, plus exact search.

The catalog holds every vector; the graph file is a cache of it that makes
large libraries fast. On open, a graph that is missing, stale (its generation
differs from the catalog's), truncated or corrupt is repaired from the catalog
rather than trusted. Small libraries (and small folder restrictions) are
searched exactly with numpy; large ones through HNSW with an ``ef`` tuned so
that recall@k against exact search is at least 0.99.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.fsutil import atomic_paths

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.catalog import Catalog

log = logging.getLogger(__name__)

# At or below this many photos, search is exact (numpy) - it costs ~1 ms per
# 10k photos and has perfect recall.
EXACT_LIMIT = 20_000

# HNSW parameters, chosen at the knee of recall versus speed (see `lookalike bench`
# and docs/performance.md). M is 32, not the usual 16: hnswlib links a new element
# to M neighbours on the bottom layer (faiss links 2M), and on clustered, photo-like
# vectors M=16 left whole queries stranded in the wrong cluster (recall@10 0.98 at
# ef 96, 0.99 only at ef 384, 100,000 x 1664) and 0.17% of the photos with no link
# into them at all; M=32 gave 1.000 at ef 96 and 0.016% such photos, for a build
# within 10% of the time and 128 more bytes a photo.
DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF = 96
MIN_EF = 16


@dataclass(frozen=True)
class Hits:
    ids: np.ndarray  # int64, best first
    scores: np.ndarray  # float32 cosine similarity


def _file_digest(path: Path, limit: int = 256 * 2**20) -> str:
    """blake2b of the whole file when small, else of its size and sampled 1 MiB chunks."""
    h = hashlib.blake2b(digest_size=16)
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        if size <= limit:
            for chunk in iter(lambda: fh.read(4 * 2**20), b""):
                h.update(chunk)
        else:
            step = size // 64
            for i in range(64):
                fh.seek(i * step)
                h.update(fh.read(2**20))
            fh.seek(max(0, size - 2**20))
            h.update(fh.read())
    return h.hexdigest()


_HNSW_HEADER = 96  # hnswlib's saveIndex header: 6 size_t, int, uint, 3 size_t, double, size_t


def _graph_file_is_whole(path: Path, elements: int) -> bool:
    return _whole_graph_levels(path, elements) is not None


def _whole_graph_levels(path: Path, elements: int) -> np.ndarray | None:
    """Walk hnswlib's file layout: header, level-0 block, then one length-prefixed
    list of upper-level links per element, ending exactly at the end of the file.
    The upper lists' sizes when it does (0: bottom layer only), else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HNSW_HEADER)
    except OSError:
        return None
    if len(head) < _HNSW_HEADER:
        return None
    count, size_data = struct.unpack_from("<QQ", head, 16)
    if count != elements:
        return None
    return _upper_list_sizes(path, count, size_data)


def _unreachable_labels(path: Path, levels: np.ndarray | None = None, chunk_bytes: int = 32 * 2**20) -> np.ndarray:
    """Labels of the elements in a saved hnswlib graph that no search can reach.

    A search descends the upper layers greedily and then walks the bottom layer
    from where it landed: an element with a level above 0, or the entry point. An
    element that no bottom-layer link leads to from those is never visited, for
    any query and any ef. hnswlib prunes links by a heuristic, and on clustered
    photo vectors it leaves a few such elements (16 in 100,000 at M=32).
    ``levels``: the file's upper-list sizes when the caller has walked them already.

    The bottom layer's links are read from the file in one sequential pass into a
    compact array (about 4% of the graph at 1664-d); the vectors are not kept, so a
    save does not double the memory the graph takes."""
    with open(path, "rb") as fh:
        head = fh.read(_HNSW_HEADER)
        count, size, label_off = struct.unpack_from("<QQQ", head, 16)
        entry = struct.unpack_from("<I", head, 52)[0]
        max_m0 = int(struct.unpack_from("<Q", head, 64)[0])
        if count == 0:
            return np.zeros(0, np.int64)
        width = 1 + max_m0  # uint32 words: the count (low 16 bits), then the links
        links = np.empty((count, width), np.uint32)
        rows = max(1, chunk_bytes // size)
        for start in range(0, count, rows):
            m = min(rows, count - start)
            buf = fh.read(m * size)
            if len(buf) != m * size:
                raise ValueError("the graph file is shorter than its header says")
            links[start : start + m] = (
                np.frombuffer(buf, np.uint8).reshape(m, size)[:, : 4 * width].copy().view(np.uint32)
            )
    if levels is None:
        levels = _upper_list_sizes(path, count, size)
    if levels is None or len(levels) != count:
        raise ValueError("the graph file's upper layers do not add up")
    degree = (links[:, 0] & 0xFFFF).astype(np.int64)
    cols = np.arange(max_m0)
    seen = np.zeros(count, dtype=bool)
    front = np.union1d(np.flatnonzero(levels > 0), [entry]).astype(np.int64)
    seen[front] = True
    while front.size:
        block = links[front, 1:]
        nxt = block[cols[None, :] < degree[front, None]].astype(np.int64)
        nxt = np.unique(nxt[nxt < count])
        nxt = nxt[~seen[nxt]]
        seen[nxt] = True
        front = nxt
    lost = np.flatnonzero(~seen)
    del links
    out = np.zeros(lost.size, np.int64)
    with open(path, "rb") as fh:
        for i, e in enumerate(lost.tolist()):
            fh.seek(_HNSW_HEADER + e * size + label_off)
            out[i] = int.from_bytes(fh.read(8), "little")
    return out


def _upper_list_sizes(path: Path, count: int, size: int) -> np.ndarray | None:
    """Byte length of each element's upper-layer link lists (0: bottom layer only), or
    None when the file does not end exactly where its layout says it does."""
    try:
        with open(path, "rb") as fh:
            fh.seek(_HNSW_HEADER + count * size)
            tail = fh.read()
    except OSError:
        return None
    off, end = 0, len(tail)
    if end < 4 * count:
        return None
    sizes = np.zeros(count, np.int64)
    for i in range(count):
        if off + 4 > end:
            return None
        n = int.from_bytes(tail[off : off + 4], "little")
        sizes[i] = n
        off += 4 + n
    return sizes if off == end else None


def _nearly_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1024 * 1024


class _SavedMeanwhile(ValueError):
    """The graph and its sidecar disagree: damaged, or a writer replaced them mid-read."""


class VectorIndex:
    GRAPH = "vectors.hnsw"
    SIDECAR = "vectors.json"

    def __init__(
        self,
        dim: int,
        *,
        M: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef: int = DEFAULT_EF,
        capacity: int = 1024,
        init: bool = True,
    ) -> None:
        import hnswlib

        self.dim = int(dim)
        self.M = M
        self.ef_construction = ef_construction
        self.ef = ef
        self._lock = threading.RLock()
        # Held by whatever changes the graph, and by save(): a save must not see the graph
        # change under it, but searches (read-only, like the save) go on while it writes.
        self._mutating = threading.RLock()
        self._graph = hnswlib.Index(space="ip", dim=self.dim)
        if init:
            self._graph.init_index(max_elements=max(16, capacity), ef_construction=ef_construction, M=M)
            self._graph.set_ef(ef)
        self._alive: set[int] = set()
        self._dense: tuple[np.ndarray, np.ndarray] | None = None  # (ids, vecs) cache for exact search
        self.generation = -1  # catalog generation this index reflects
        self.max_id = 0
        self.repaired = False  # open() rebuilt or caught up the graph: the file on disk is not it
        self._saved_count: int | None = None  # live photos the sidecar recorded
        # Photos the saved graph cannot lead a search to: scored exactly on every search.
        self._unreachable: np.ndarray = np.zeros(0, np.int64)
        self._unreachable_vecs: tuple[np.ndarray, np.ndarray] | None = None

    # -- content ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._alive)

    def __contains__(self, photo_id: int) -> bool:
        return int(photo_id) in self._alive

    def ids(self) -> np.ndarray:
        with self._lock:
            return np.fromiter(self._alive, dtype=np.int64, count=len(self._alive))

    def add(self, ids: np.ndarray, vectors: np.ndarray, num_threads: int = -1) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        with self._mutating, self._lock:
            need = self._graph.element_count + len(ids)
            if need > self._graph.max_elements:
                self._graph.resize_index(max(need, int(self._graph.max_elements * 1.5) + 1024))
            # Labels already present (deleted earlier, or re-added) are replaced in place.
            self._graph.add_items(vectors, ids.astype(np.uint64), num_threads=num_threads, replace_deleted=False)
            for pid in ids.tolist():
                try:
                    self._graph.unmark_deleted(pid)
                except RuntimeError:
                    pass
            self._alive.update(ids.tolist())
            self.max_id = max(self.max_id, int(ids.max()))
            self._dense = None

    def delete(self, ids) -> None:
        with self._mutating, self._lock:
            for pid in np.asarray(ids, dtype=np.int64).tolist():
                if pid in self._alive:
                    self._alive.discard(pid)
                    try:
                        self._graph.mark_deleted(pid)
                    except RuntimeError:
                        pass
            self._dense = None
            self._unreachable_vecs = None

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        with self._lock:
            if len(ids) == 0:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.asarray(self._graph.get_items(np.asarray(ids, dtype=np.uint64)), dtype=np.float32)

    # -- search -------------------------------------------------------------

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None, exact: bool | None = None
    ) -> Hits:
        """Top ``k`` by cosine similarity. ``allowed`` restricts to those ids."""
        q = np.asarray(query, dtype=np.float32).reshape(1, self.dim)
        with self._lock:
            n = len(self._alive)
            if n == 0 or k <= 0:
                return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
            if allowed is not None:
                allowed = np.asarray(
                    [i for i in np.asarray(allowed, np.int64).tolist() if i in self._alive], dtype=np.int64
                )
                if allowed.size == 0:
                    return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
            use_exact = (
                exact
                if exact is not None
                else (n <= EXACT_LIMIT or (allowed is not None and allowed.size <= EXACT_LIMIT))
            )
            if use_exact:
                if allowed is not None:
                    ids, vecs = allowed, self.vectors(allowed)
                else:
                    ids, vecs = self._dense_matrix()
                return _topk(ids, vecs @ q[0], k)
            k_eff = min(k, n if allowed is None else allowed.size)
            self._graph.set_ef(max(self.ef, k_eff))
            flt: Callable[[int], bool] | None = None
            if allowed is not None:
                allowed_set = set(allowed.tolist())
                flt = allowed_set.__contains__
            try:
                labels, dist = self._graph.knn_query(q, k=k_eff, num_threads=1, filter=flt)
            except RuntimeError:
                # Fewer than k reachable elements pass the filter: hnswlib refuses to
                # answer with fewer. Exact search always can.
                return self.search(query, k, allowed=allowed, exact=True)
            ids, scores = labels[0].astype(np.int64), (1.0 - dist[0]).astype(np.float32)
            lost_ids, lost_vecs = self._unreachable_rows()
            if lost_ids.size:
                if allowed is not None:
                    keep = np.isin(lost_ids, allowed)
                    lost_ids, lost_vecs = lost_ids[keep], lost_vecs[keep]
                new = ~np.isin(lost_ids, ids)
                ids = np.concatenate([ids, lost_ids[new]])
                scores = np.concatenate([scores, lost_vecs[new] @ q[0]])
                return _topk(ids, scores, k_eff)
            return Hits(ids, scores)

    def neighbours(self, ids: np.ndarray, k: int, *, num_threads: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest photos of each of these photos (itself included), many at a
        time from the graph (exact at or under EXACT_LIMIT): (ids, cosine), (len(ids), k),
        best first; rows padded with -1 / -inf when fewer photos are alive."""
        ids = np.asarray(ids, np.int64)
        with self._lock:
            n = len(self._alive)
            k_eff = min(k, n)
            out_i = np.full((len(ids), k), -1, np.int64)
            out_s = np.full((len(ids), k), -np.inf, np.float32)
            if k_eff == 0 or ids.size == 0:
                return out_i, out_s
            q = self.vectors(ids)
            if n <= EXACT_LIMIT:
                all_ids, vecs = self._dense_matrix()
                sc = q @ vecs.T
                top = (
                    np.argpartition(-sc, k_eff - 1, axis=1)[:, :k_eff]
                    if k_eff < n
                    else np.tile(np.arange(n), (len(ids), 1))
                )
                s = np.take_along_axis(sc, top, axis=1)
                order = np.argsort(-s, axis=1, kind="stable")
                out_i[:, :k_eff] = all_ids[np.take_along_axis(top, order, axis=1)]
                out_s[:, :k_eff] = np.take_along_axis(s, order, axis=1)
                return out_i, out_s
            self._graph.set_ef(max(self.ef, k_eff))
            labels, dist = self._graph.knn_query(q, k=k_eff, num_threads=num_threads)
            out_i[:, :k_eff] = labels.astype(np.int64)
            out_s[:, :k_eff] = 1.0 - dist
            return out_i, out_s

    def _unreachable_rows(self) -> tuple[np.ndarray, np.ndarray]:
        if self._unreachable_vecs is None:
            ids = np.asarray([i for i in self._unreachable.tolist() if i in self._alive], np.int64)
            self._unreachable_vecs = (ids, self.vectors(ids))
        return self._unreachable_vecs

    def _dense_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        if self._dense is None:
            ids = np.fromiter(sorted(self._alive), dtype=np.int64, count=len(self._alive))
            self._dense = (ids, self.vectors(ids))
        return self._dense

    # -- persistence --------------------------------------------------------

    def save(self, folder: Path, generation: int) -> None:
        """Write the graph and its sidecar atomically (temp, fsync, rename), as a pair:
        both are complete on disk before either is renamed into place."""
        folder = Path(folder)
        with self._mutating:  # not self._lock: searches are not held up by a save
            with atomic_paths(folder / self.GRAPH, folder / self.SIDECAR) as (tmp, side_tmp):
                self._graph.save_index(os.fspath(tmp))
                levels = _whole_graph_levels(tmp, int(self._graph.element_count))
                if levels is None:
                    # hnswlib writes through an unchecked C++ stream: a full disk leaves the
                    # file short without any error. Never rename a short file over a good one.
                    raise OSError(
                        errno.ENOSPC if _nearly_full(folder) else errno.EIO,
                        "the vector graph could not be written completely",
                    )
                unreachable = _unreachable_labels(tmp, levels)
                sidecar = {
                    "format": 1,
                    "dim": self.dim,
                    "M": self.M,
                    "ef_construction": self.ef_construction,
                    "ef": self.ef,
                    "generation": generation,
                    "count": len(self._alive),
                    "max_id": self.max_id,
                    "elements": int(self._graph.element_count),
                    "digest": _file_digest(tmp),
                    "unreachable": unreachable.tolist(),
                }
                side_tmp.write_text(json.dumps(sidecar, indent=1))
            self.generation = generation
            with self._lock:
                self._unreachable = unreachable
                self._unreachable_vecs = None

    @classmethod
    def open(cls, folder: Path, catalog: Catalog, dim: int, *, ef: int | None = None) -> VectorIndex:
        """Load the graph if it is sound and current; otherwise repair or rebuild from the catalog."""
        folder = Path(folder)
        graph_path, sidecar_path = folder / cls.GRAPH, folder / cls.SIDECAR
        gen = catalog.generation()
        index: VectorIndex | None = None
        for attempt in range(4):
            try:
                index = cls._load(graph_path, sidecar_path, dim, ef)
                break
            except _SavedMeanwhile as exc:
                # A writer renamed a new graph or sidecar in while we read the pair: read again.
                if attempt < 3:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                log.warning("Rebuilding the vector graph from the catalog: %s", exc)
            except Exception as exc:  # a damaged cache is rebuilt, never trusted
                log.warning("Rebuilding the vector graph from the catalog: %s", exc)
                break
        if index is not None and index.generation == gen:
            if len(index._alive) != index._saved_count:
                # Deleted labels stay in the graph's label list; the catalog says which live.
                index._reconcile(catalog, set(catalog.all_ids().tolist()))
            return index
        if index is None:
            index = cls(dim, ef=ef or DEFAULT_EF, capacity=max(1024, catalog.photo_count() + 1024))
            index._alive = set()
        index._reconcile(catalog, set(catalog.all_ids().tolist()))
        index.generation = gen
        index.repaired = True
        return index

    @classmethod
    def _load(cls, graph_path: Path, sidecar_path: Path, dim: int, ef: int | None) -> VectorIndex | None:
        """The graph on disk if it matches its sidecar; None if there is none yet."""
        if not graph_path.exists() and not sidecar_path.exists():
            return None
        try:
            side_bytes = sidecar_path.read_bytes()
            digest = _file_digest(graph_path)
        except FileNotFoundError:
            raise _SavedMeanwhile("graph file or its sidecar is missing") from None
        meta = json.loads(side_bytes)
        if meta.get("dim") != dim:
            raise ValueError(f"graph dimension {meta.get('dim')} != {dim}")
        if digest != meta.get("digest"):
            raise _SavedMeanwhile("graph file does not match its checksum (truncated or damaged)")
        index = cls(
            dim,
            M=int(meta["M"]),
            ef_construction=int(meta["ef_construction"]),
            ef=int(ef or meta.get("ef", DEFAULT_EF)),
            init=False,
        )
        index._graph.load_index(os.fspath(graph_path), max_elements=int(meta["elements"]) + 1024)
        if sidecar_path.read_bytes() != side_bytes:
            raise _SavedMeanwhile("the graph was saved again while it was being read")
        index._graph.set_ef(index.ef)
        labels = np.asarray(index._graph.get_ids_list(), dtype=np.int64)
        index.generation = int(meta["generation"])
        index.max_id = int(meta.get("max_id", 0))
        index._alive = set(labels.tolist())
        index._saved_count = meta.get("count")
        saved = meta.get("unreachable")
        if saved is not None:
            index._unreachable = np.asarray(saved, np.int64)
        else:  # a graph saved before this was recorded: the walk is a refinement, never a reason to rebuild
            try:
                index._unreachable = _unreachable_labels(graph_path)
            except (OSError, ValueError) as exc:
                log.warning("Could not walk the vector graph for unreachable photos: %s", exc)
        return index

    def _reconcile(self, catalog: Catalog, live: set[int]) -> tuple[int, int]:
        """Make the graph hold exactly the catalog's photos. Returns (added, removed)."""
        with self._mutating, self._lock:
            labels = (
                set(np.asarray(self._graph.get_ids_list(), dtype=np.int64).tolist())
                if self._graph.element_count
                else set()
            )
            extra = (self._alive | labels) - live
            for pid in extra:
                try:
                    self._graph.mark_deleted(pid)
                except RuntimeError:
                    pass
            self._alive = (self._alive | labels) & live
            missing = live - self._alive
            added = 0
            if missing:
                # Re-deleted labels that are live again get unmarked (vector unchanged: ids never reused).
                relive = missing & labels
                for pid in relive:
                    try:
                        self._graph.unmark_deleted(pid)
                    except RuntimeError:
                        pass
                self._alive |= relive
                missing -= relive
                if missing:
                    after = min(missing) - 1
                    for ids, vecs in catalog.iter_vectors(after_id=after):
                        mask = np.isin(ids, np.fromiter(missing, np.int64, len(missing)))
                        if mask.any():
                            self.add(ids[mask], vecs[mask])
                            added += int(mask.sum())
            self._dense = None
            return added, len(extra)

    def refresh(self, catalog: Catalog) -> bool:
        """Catch up with changes another process committed. True if anything changed."""
        gen = catalog.generation()
        if gen == self.generation:
            return False
        self._reconcile(catalog, set(catalog.all_ids().tolist()))
        self.generation = gen
        return True

    # -- recall tuning -------------------------------------------------------

    def exact_topk(
        self, queries: np.ndarray, k: int, *, ids: np.ndarray | None = None, chunk_bytes: int = 32 * 2**20
    ) -> np.ndarray:
        """Ids of the exact top ``k`` (unordered) for each query, over every live vector.

        Vectors are read back from the graph in chunks of about ``chunk_bytes``:
        hnswlib hands each chunk over twice (a C++ copy, then the array), so big
        chunks showed up as a spike in peak memory at the end of an indexing run
        (about 1.1 GB at 100,000 x 1664 with 50,000-row chunks).
        """
        with self._lock:
            if ids is None:
                ids = np.fromiter(sorted(self._alive), dtype=np.int64, count=len(self._alive))
            q = np.asarray(queries, np.float32).reshape(-1, self.dim)
            step = max(256, chunk_bytes // (4 * self.dim))
            chunks = ((ids[s : s + step], self.vectors(ids[s : s + step])) for s in range(0, len(ids), step))
            return topk_of_chunks(q, chunks, k)[0]

    def tune_ef(self, k: int = 50, target: float = 0.99, queries: int = 100, seed: int = 0) -> tuple[int, float]:
        """Pick the smallest ef whose recall@k against exact search reaches ``target``.

        Queries are the library's own vectors, perturbed with noise and
        re-normalised (held-out-like points in the same distribution); exact
        top-k is computed with numpy over every live vector.
        """
        with self._lock:
            ids = np.fromiter(sorted(self._alive), dtype=np.int64, count=len(self._alive))
            rng = np.random.default_rng(seed)
            n = len(ids)
            if n < 2:
                return self.ef, 1.0
            k = min(k, n)
            pick = rng.choice(n, size=min(queries, n), replace=False)
            q = self.vectors(ids[pick]) + rng.normal(0, 0.02, size=(len(pick), self.dim)).astype(np.float32)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            truth = self.exact_topk(q, k, ids=ids)
            chosen, recall = self.ef, 0.0
            for ef in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512):
                if ef < k:
                    continue
                self._graph.set_ef(ef)
                labels, _ = self._graph.knn_query(q, k=k)
                recall = float(
                    np.mean(
                        [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(labels.astype(np.int64), truth)]
                    )
                )
                chosen = ef
                if recall >= target:
                    break
            self.ef = chosen
            self._graph.set_ef(chosen)
            return chosen, recall


def topk_of_chunks(
    queries: np.ndarray, chunks: Iterable[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` by inner product for each query over (ids, vectors) chunks, keeping
    only k candidates a query between chunks: (ids, scores), each (queries, k), unordered."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for cid, vecs in chunks:
        sc = queries @ vecs.T
        best_s = np.concatenate([best_s, sc], axis=1)
        best_i = np.concatenate([best_i, np.broadcast_to(np.asarray(cid, np.int64), sc.shape)], axis=1)
        if best_s.shape[1] > k:
            top = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
            best_s = np.take_along_axis(best_s, top, axis=1)
            best_i = np.take_along_axis(best_i, top, axis=1)
    return best_i, best_s


def _topk(ids: np.ndarray, scores: np.ndarray, k: int) -> Hits:
    k = min(k, len(ids))
    if k == 0:
        return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
    part = np.argpartition(-scores, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
    order = part[np.argsort(-scores[part], kind="stable")]
    return Hits(ids[order].astype(np.int64), scores[order].astype(np.float32))
