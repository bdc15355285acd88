"""The vector index: an hnswlib graph kept beside the catalog, plus exact search.

The catalog holds every vector; the graph file is a cache of it that makes
large libraries fast. On open, a graph that is missing, stale (its generation
differs from the catalog's), truncated or corrupt is repaired from the catalog
rather than trusted. Small libraries (and small folder restrictions) are
searched exactly with numpy; large ones through HNSW with an ``ef`` tuned so
that recall@k against exact search is at least 0.99.

Opening costs the same at any size: the saved graph is memory-mapped and
searched in place (:class:`hnswfile.GraphFile`), its integrity taken from the
size, modification time and checksum its sidecar recorded at the save (the
whole file is hashed again only when size or time disagree). Damage that keeps
size and time (bit rot) is caught by the CRC-32 of each record the save wrote
to ``vectors.sums``: every record a search reads is checked, and a record that
differs drops the graph, which is rebuilt from the catalog with a one-line
warning (the search is answered from the rebuilt one). hnswlib loads the graph
only when something changes it (indexing, a removed folder) or a batch job asks
for it, and only after the whole file is checked.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from lookalike.core import hnswfile
from lookalike.core.fsutil import atomic_paths

if TYPE_CHECKING:  # pragma: no cover
    import hnswlib

    from lookalike.core.catalog import Catalog

log = logging.getLogger(__name__)
_T = TypeVar("_T")

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


def _same_file(path: Path, st: os.stat_result) -> bool:
    try:
        now = path.stat()
    except OSError:
        return False
    return (now.st_ino, now.st_size, now.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)


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
    SUMS = "vectors.sums"
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
        self.dim = int(dim)
        self.M = M
        self.ef_construction = ef_construction
        self.ef = ef
        self._lock = threading.RLock()
        # Held by whatever changes the graph, and by save(): a save must not see the graph
        # change under it, but searches (read-only, like the save) go on while it writes.
        self._mutating = threading.RLock()
        # The graph in hnswlib, once something needs it; until then the saved file answers.
        self._graph: Any = self._new_graph(capacity) if init else None
        self._file: hnswfile.GraphFile | None = None  # the saved graph, while this index is it
        self._meta: dict[str, Any] | None = None  # its sidecar
        self._catalog: Catalog | None = None  # where vectors are read from in bulk
        self._alive: set[int] = set()  # live labels, kept while the graph is loaded
        self._count = 0  # live photos in the saved graph (file mode)
        self._dense: tuple[np.ndarray, np.ndarray] | None = None  # (ids, vecs) cache for exact search
        # The vectors of the last filter searched exactly: (digest of its ids, ids, vectors).
        self._subset: tuple[bytes, np.ndarray, np.ndarray] | None = None
        # The file this index saved last while hnswlib holds the graph and nothing changed it
        # since: vectors are read from it as from the mapped graph (not element by element).
        self._reader: hnswfile.GraphFile | None = None
        self._scanned = False  # an exact search has scanned the saved file once
        self.generation = -1  # catalog generation this index reflects
        self.max_id = 0
        self.repaired = False  # open() rebuilt or caught up the graph: the file on disk is not it
        self._saved_count: int | None = None  # live photos the sidecar recorded
        # Photos the saved graph cannot lead a search to: scored exactly on every search.
        self._unreachable: np.ndarray = np.zeros(0, np.int64)
        self._unreachable_vecs: tuple[np.ndarray, np.ndarray] | None = None
        self.needs_save = False  # the graph on disk was found damaged and rebuilt here: save it

    def _new_graph(self, capacity: int) -> hnswlib.Index:
        import hnswlib

        graph = hnswlib.Index(space="ip", dim=self.dim)
        graph.init_index(max_elements=max(16, capacity), ef_construction=self.ef_construction, M=self.M)
        graph.set_ef(self.ef)
        return graph

    def load(self) -> None:
        """Load the graph into hnswlib now (before changes that must not wait for it)."""
        self._loaded()

    def _loaded(self) -> hnswlib.Index:
        """The graph in hnswlib, loaded from the saved file on first need. (Locks taken in
        the order every change takes them; call it before taking self._lock.)"""
        graph = self._graph
        if graph is not None:  # searches go on during a save: no lock when it is loaded
            return graph
        with self._mutating, self._lock:
            if self._graph is not None:
                return self._graph
            file = self._file
            if file is None:
                self._graph = self._new_graph(1024)
                return self._graph
            import hnswlib

            try:  # hnswlib follows every link it reads: a wrong one crashes the process
                file = self._verified(file)
            except (OSError, ValueError) as exc:
                self._rebuild_damaged(exc)
                assert self._graph is not None
                return self._graph
            graph = hnswlib.Index(space="ip", dim=self.dim)
            graph.load_index(os.fspath(file.path), max_elements=len(file) + 1024)
            graph.set_ef(self.ef)
            same = _same_file(file.path, file.stat)
            # hnswlib lists deleted labels too: the live ones are those the file does not mark.
            self._alive = set(file.live()[0].tolist()) if same else set(_live_labels(graph, file))
            self._graph, self._file = graph, None
            file.close()
            if not same:  # saved again by another process since it was mapped: catch up below
                self.generation = -1
            if self._catalog is not None and (not same or len(self._alive) != self._saved_count):
                # Deleted labels stay in the graph's label list; the catalog says which live.
                self.generation = self._catalog.generation()
                self._reconcile(self._catalog, set(self._catalog.all_ids().tolist()))
            return graph

    def _verified(self, file: hnswfile.GraphFile) -> hnswfile.GraphFile:
        """``file`` checked whole against its save's sums, or, when another process saved the
        graph again since it was opened, the new one checked against its own (the one
        hnswlib is about to read). ValueError/OSError when it is damaged."""
        if _same_file(file.path, file.stat):
            file.verify()
            return file
        fresh = type(self)._load(file.path, file.path.with_name(self.SIDECAR), self.dim, self.ef)
        if fresh is None or fresh._file is None:
            raise ValueError("the graph file is gone")
        new = fresh._file
        fresh._file = None
        new.verify()
        self._file = new
        file.close()
        return new

    def _rebuild_damaged(self, exc: BaseException) -> None:
        """Drop a damaged saved graph and build the graph again from the catalog (the caller
        holds self._mutating and self._lock, in that order)."""
        log.warning("The vector graph is damaged (%s): rebuilding it from the catalog", exc)
        file, self._file = self._file, None
        if file is not None:
            file.close()
        self._drop_reader()
        catalog = self._catalog
        self._graph = self._new_graph(max(1024, (catalog.photo_count() if catalog else 0) + 1024))
        self._alive = set()
        self._count = 0
        self._meta = None
        self._dense = self._subset = None
        self._unreachable = np.zeros(0, np.int64)
        self._unreachable_vecs = None
        self._scanned = False
        self.repaired = self.needs_save = True
        if catalog is not None:
            self.generation = catalog.generation()
            self._reconcile(catalog, set(catalog.all_ids().tolist()))

    def check(self) -> bool:
        """Check the whole saved graph against what its save recorded (one sequential read of
        the file); a damaged one is rebuilt from the catalog. True when it was."""
        with self._mutating, self._lock:
            file = self._file if self._graph is None else None
            if file is None:
                return False
            try:
                self._verified(file)
            except (OSError, ValueError) as exc:
                self._rebuild_damaged(exc)
                return True
            return False

    def _guarded(self, fn: Callable[[], _T]) -> _T:
        """``fn()``; when it finds the saved graph damaged, the graph is rebuilt from the
        catalog and ``fn()`` runs again on the rebuilt one. (Called with no lock held.)"""
        try:
            return fn()
        except hnswfile.GraphDamaged as exc:
            with self._mutating, self._lock:
                if self._graph is None:
                    self._rebuild_damaged(exc)
                else:  # the file saved last, read beside the loaded graph: read the graph instead
                    self._drop_reader()
            return fn()

    def close(self) -> None:
        """Let go of the mapped graph file (the end of the index's use, unless loaded in hnswlib)."""
        with self._lock:
            file, self._file = self._file, None
            if file is not None:
                file.close()
            self._drop_reader()

    def _drop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def _vector_file(self) -> hnswfile.GraphFile | None:
        """The saved graph to read vectors from: the mapped one, or the one saved last by this
        index when nothing changed the loaded graph since."""
        return self._file if self._graph is None else self._reader

    # -- content ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._alive) if self._graph is not None else self._count

    def __contains__(self, photo_id: int) -> bool:
        self._loaded()
        return int(photo_id) in self._alive

    def ids(self) -> np.ndarray:
        self._loaded()
        with self._lock:
            return np.fromiter(self._alive, dtype=np.int64, count=len(self._alive))

    def add(self, ids: np.ndarray, vectors: np.ndarray, num_threads: int = -1) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        with self._mutating, self._lock:
            graph = self._loaded()
            need = graph.element_count + len(ids)
            if need > graph.max_elements:
                graph.resize_index(max(need, int(graph.max_elements * 1.5) + 1024))
            # Labels already present (deleted earlier, or re-added) are replaced in place.
            graph.add_items(vectors, ids.astype(np.uint64), num_threads=num_threads, replace_deleted=False)
            for pid in ids.tolist():
                try:
                    graph.unmark_deleted(pid)
                except RuntimeError:
                    pass
            self._alive.update(ids.tolist())
            self.max_id = max(self.max_id, int(ids.max()))
            self._dense = self._subset = None
            self._drop_reader()

    def delete(self, ids) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            return  # nothing to change: the saved graph stays unloaded
        with self._mutating, self._lock:
            graph = self._loaded()
            for pid in ids.tolist():
                if pid in self._alive:
                    self._alive.discard(pid)
                    try:
                        graph.mark_deleted(pid)
                    except RuntimeError:
                        pass
            self._dense = self._subset = None
            self._unreachable_vecs = None
            self._drop_reader()

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of these photos, in order: from the catalog (one contiguous array),
        else from the graph for photos the catalog does not hold (yet)."""
        ids = np.asarray(ids, np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = np.empty((len(ids), self.dim), np.float32)
            have = np.zeros(len(ids), bool)
            if self._catalog is not None:
                found, vecs = self._catalog.vectors_of(ids)
                if len(found):
                    pos = {int(i): j for j, i in enumerate(ids.tolist())}
                    at = np.fromiter((pos[i] for i in found.tolist()), np.int64, len(found))
                    out[at], have[at] = vecs, True
            if not have.all():
                rest = ids[~have]
                out[~have] = np.asarray(self._loaded().get_items(rest.astype(np.uint64)), np.float32)
            return out

    # -- search -------------------------------------------------------------

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None, exact: bool | None = None
    ) -> Hits:
        """Top ``k`` by cosine similarity. ``allowed`` restricts to those ids."""
        return self._guarded(lambda: self._search(query, k, allowed=allowed, exact=exact))

    def _search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None, exact: bool | None = None
    ) -> Hits:
        q = np.asarray(query, dtype=np.float32).reshape(1, self.dim)
        with self._lock:
            n = len(self)
            if n == 0 or k <= 0:
                return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
            if allowed is not None:
                allowed = np.unique(np.asarray(allowed, np.int64))
                if self._graph is not None:
                    allowed = allowed[np.fromiter((i in self._alive for i in allowed.tolist()), bool, allowed.size)]
                if allowed.size == 0:
                    return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
            use_exact = (
                exact
                if exact is not None
                else (n <= EXACT_LIMIT or (allowed is not None and allowed.size <= EXACT_LIMIT))
            )
            if use_exact:
                if allowed is not None:
                    ids, vecs = self._allowed_rows(allowed)
                elif self._dense is None and self._graph is None and self._file is not None and not self._scanned:
                    # A first search (a one-shot command's only one) scans the file in place;
                    # a process that searches again keeps the vectors as one array.
                    self._scanned = True
                    ids, scores = self._file.scan(q[0], k, live_count=self._count)
                    return _topk(ids, scores, k)
                else:
                    ids, vecs = self._dense_matrix()
                return _topk(ids, vecs @ q[0], k)
            k_eff = min(k, n if allowed is None else allowed.size)
            try:
                ids, scores = self._graph_search(q, k_eff, allowed)
            except RuntimeError:
                # Fewer than k reachable elements pass the filter: hnswlib refuses to
                # answer with fewer. Exact search always can.
                return self._search(query, k, allowed=allowed, exact=True)
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

    def _graph_search(self, q: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """HNSW top ``k``: in hnswlib when loaded, else on the mapped file. RuntimeError
        when fewer than ``k`` reachable photos pass ``allowed``."""
        flt: Callable[[int], bool] | None = None
        if allowed is not None:
            flt = set(allowed.tolist()).__contains__
        ef = max(self.ef, k)
        if self._graph is None and self._file is not None:
            labels, scores = self._file.search(q[0], k, ef, flt)
            if len(labels) < k:
                raise RuntimeError("fewer reachable photos than asked for")
            return labels, scores
        graph = self._loaded()
        graph.set_ef(ef)
        labels, dist = graph.knn_query(q, k=k, num_threads=1, filter=flt)
        return labels[0].astype(np.int64), (1.0 - dist[0]).astype(np.float32)

    def neighbours(
        self, ids: np.ndarray, k: int, *, num_threads: int = -1, ef: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest photos of each of these photos (itself included), many at a
        time from the graph (exact at or under EXACT_LIMIT): (ids, cosine), (len(ids), k),
        best first; rows padded with -1 / -inf when fewer photos are alive. ``ef``: the
        graph's search breadth for this call (default: the tuned one)."""
        return self._guarded(lambda: self._neighbours(ids, k, num_threads=num_threads, ef=ef))

    def _neighbours(
        self, ids: np.ndarray, k: int, *, num_threads: int = -1, ef: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, np.int64)
        if len(self) > EXACT_LIMIT:
            self._loaded()  # before the lock (see _loaded)
        with self._lock:
            n = len(self)
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
            graph = self._loaded()
            graph.set_ef(max(ef or self.ef, k_eff))
            labels, dist = graph.knn_query(q, k=k_eff, num_threads=num_threads)
            out_i[:, :k_eff] = labels.astype(np.int64)
            out_s[:, :k_eff] = 1.0 - dist
            return out_i, out_s

    def _rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those of ``ids`` that are live photos."""
        if self._catalog is not None and self._graph is None:
            found, vecs = self._catalog.vectors_of(ids)
            return found, vecs.reshape(len(found), self.dim)
        ids = np.asarray([i for i in np.asarray(ids, np.int64).tolist() if i in self._alive], np.int64)
        return ids, self.vectors(ids)

    def _allowed_rows(self, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the live photos among ``allowed`` (ascending, unique) for an exact
        filtered search: out of the vectors held as one array when there is one, else out of
        the saved graph where it lies (the chunks of the file that hold them), else from the
        catalog. The last filter's vectors are kept (at most EXACT_LIMIT of them): the next
        query under the same filter only multiplies."""
        key = hashlib.blake2b(allowed.tobytes(), digest_size=16).digest()
        if self._subset is not None and self._subset[0] == key:
            return self._subset[1], self._subset[2]
        if self._dense is not None:
            ids, vecs = self._dense
            pos = _positions(ids, allowed)
            return ids[pos], vecs[pos]  # (no copy kept: the whole array is already held)
        file = self._vector_file()
        if file is not None:
            labels, internal = file.live()
            pos = _positions(labels, allowed)
            ids, vecs = labels[pos], file.gather(internal[pos])
        else:
            ids, vecs = self._rows(allowed)
        if len(ids) <= EXACT_LIMIT:
            self._subset = (key, ids, vecs)
        return ids, vecs

    def live_ids(self) -> np.ndarray:
        """Every live photo's id, ascending."""
        return self._guarded(lambda: self._live_ids())

    def _live_ids(self) -> np.ndarray:
        with self._lock:
            if self._dense is not None:
                return self._dense[0]
            file = self._vector_file()
            if file is not None:
                return file.live()[0]
            return np.fromiter(sorted(self._alive), dtype=np.int64, count=len(self._alive))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of these live photos, in order (for training on a few of them): out of
        the array or the saved graph where they lie, else from the catalog."""
        return self._guarded(lambda: self._rows_of(ids))

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64).reshape(-1)
        with self._lock:
            if self._dense is not None:
                dense_ids, vecs = self._dense
                pos = _positions(dense_ids, ids, strict=True)
                return vecs[pos]
            file = self._vector_file()
            if file is not None:
                labels, internal = file.live()
                return file.gather(internal[_positions(labels, ids, strict=True)])
        return self.vectors(ids)

    def score_all(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every live photo scored by each direction (inner product): (ids ascending, scores
        (n,) or (n, m)). The vectors are read where they lie - the array when held, else the
        saved graph in one mapped pass, else the catalog in chunks - and never kept."""
        return self._guarded(lambda: self._score_all(directions))

    def _score_all(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(directions, np.float32)
        with self._lock:
            if self._dense is not None:
                ids, vecs = self._dense
                return ids, vecs @ d.T
            file = self._vector_file()
            if file is not None:
                return file.score_live(d)
            catalog = self._catalog
        if catalog is None:
            ids = self.live_ids()
            return ids, self.vectors(ids) @ d.T
        parts_i, parts_s = [], []
        for ids, vecs in catalog.iter_vectors(batch=4096):
            parts_i.append(ids)
            parts_s.append(vecs @ d.T)
        if not parts_i:
            return np.zeros(0, np.int64), np.zeros((0,) + d.shape[:-1], np.float32)
        return np.concatenate(parts_i), np.concatenate(parts_s)

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live (id, vector), ids ascending, as one contiguous array, kept until the
        graph changes (repeated exact searches, and learning a whole-library task)."""
        return self._guarded(lambda: self._dense_all())

    def _dense_all(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self._dense_matrix()

    def _unreachable_rows(self) -> tuple[np.ndarray, np.ndarray]:
        if self._unreachable_vecs is None:
            self._unreachable_vecs = self._rows(self._unreachable)
        return self._unreachable_vecs

    def _dense_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live (id, vector) as one contiguous array: read from the saved graph in one
        pass, or from the catalog, never element by element out of hnswlib."""
        if self._dense is None:
            file = self._vector_file()
            if file is not None:
                ids, vecs = file.dense()
                if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
                    order = np.argsort(ids, kind="stable")
                    ids, vecs = ids[order], vecs[order]
                self._dense = (ids, vecs)
            else:
                ids = np.fromiter(sorted(self._alive), dtype=np.int64, count=len(self._alive))
                self._dense = (ids, self.vectors(ids))
        return self._dense

    # -- persistence --------------------------------------------------------

    def save(self, folder: Path, generation: int) -> None:
        """Write the graph and its sidecar atomically (temp, fsync, rename), as a pair:
        both are complete on disk before either is renamed into place."""
        folder = Path(folder)
        with self._mutating:  # not self._lock: searches are not held up by a save
            file, meta = self._file, self._meta
            if (
                self._graph is None
                and file is not None
                and meta is not None
                and file.path == folder / self.GRAPH
                and "sums_token" in meta  # (a graph saved before its sums were: write them now)
            ):
                # Nothing changed the graph since it was read: only the generation moves on
                # (a rescan that found nothing new never loads a large graph to write it again).
                with atomic_paths(folder / self.SIDECAR) as (side_tmp,):
                    side_tmp.write_text(json.dumps({**meta, "generation": generation}, separators=(",", ":")))
                self._meta = {**meta, "generation": generation}
                self.generation = generation
                return
            graph = self._loaded()
            with atomic_paths(folder / self.GRAPH, folder / self.SUMS, folder / self.SIDECAR) as (
                tmp,
                sums_tmp,
                side_tmp,
            ):
                graph.save_index(os.fspath(tmp))
                levels = hnswfile.whole_graph_levels(tmp, int(graph.element_count))
                if levels is None:
                    # hnswlib writes through an unchecked C++ stream: a full disk leaves the
                    # file short without any error. Never rename a short file over a good one.
                    raise OSError(
                        errno.ENOSPC if _nearly_full(folder) else errno.EIO,
                        "the vector graph could not be written completely",
                    )
                unreachable = hnswfile.unreachable_labels(tmp, levels)
                header = hnswfile.Header.read(tmp)
                upper = hnswfile.upper_offsets(levels, header)
                crcs, upper_crcs, header_crc = hnswfile.file_sums(tmp, header, levels)
                token = int.from_bytes(os.urandom(8), "little") >> 1
                hnswfile.SumFile.write(sums_tmp, crcs, token)
                st = tmp.stat()
                sidecar = {
                    "format": 1,
                    "dim": self.dim,
                    "M": self.M,
                    "ef_construction": self.ef_construction,
                    "ef": self.ef,
                    "generation": generation,
                    "count": len(self._alive),
                    "max_id": self.max_id,
                    "elements": int(graph.element_count),
                    # The integrity of the file as saved: size and time are checked on every
                    # open, the digest only when they disagree.
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                    "digest": _file_digest(tmp),
                    "unreachable": unreachable.tolist(),
                    "live_digest": _ids_digest(self._alive),
                    # What every read is checked against (bit rot keeps size and time):
                    # the header's CRC-32, each element's upper lists' [id, offset, CRC-32],
                    # and the token of the vectors.sums written with it (a CRC-32 a record).
                    "header_crc": header_crc,
                    "upper": [[i, o, upper_crcs[i]] for i, o in upper.items()],
                    "sums_token": token,
                }
                side_tmp.write_text(json.dumps(sidecar, separators=(",", ":")))
            self.generation = generation
            self._saved_count = len(self._alive)
            self.needs_save = False
            with self._lock:
                self._unreachable = unreachable
                self._unreachable_vecs = None
                self._drop_reader()
                try:  # (the graph cannot change meanwhile: this save holds self._mutating)
                    sums = hnswfile.SumFile(folder / self.SUMS, len(crcs), token)
                    self._reader = hnswfile.GraphFile(
                        folder / self.GRAPH, self.dim, upper, sums=sums, upper_crcs=upper_crcs, header_crc=header_crc
                    )
                except (OSError, ValueError) as exc:
                    log.warning("Could not map the saved vector graph for reading: %s", exc)

    @classmethod
    def saved_generation(cls, folder: Path) -> int:
        """The catalog generation the saved graph reflects (-1: none, or unreadable)."""
        try:
            return int(json.loads((Path(folder) / cls.SIDECAR).read_text())["generation"])
        except (OSError, ValueError, KeyError, TypeError):
            return -1

    @classmethod
    def open(cls, folder: Path, catalog: Catalog, dim: int, *, ef: int | None = None) -> VectorIndex:
        """The saved graph if it is sound and current; otherwise repaired or rebuilt from the catalog."""
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
            except hnswfile.GraphDamaged as exc:
                log.warning("The vector graph is damaged (%s): rebuilding it from the catalog", exc)
                break
            except Exception as exc:  # a damaged cache is rebuilt, never trusted
                log.warning("Rebuilding the vector graph from the catalog: %s", exc)
                break
        if index is not None:
            index._catalog = catalog
            if index.generation == gen:
                return index
        if index is None:
            index = cls(dim, ef=ef or DEFAULT_EF, capacity=max(1024, catalog.photo_count() + 1024))
            index._catalog = catalog
        index._reconcile(catalog, set(catalog.all_ids().tolist()))
        index.generation = gen
        index.repaired = True
        return index

    @classmethod
    def _load(cls, graph_path: Path, sidecar_path: Path, dim: int, ef: int | None) -> VectorIndex | None:
        """The graph on disk, mapped, if it matches its sidecar; None if there is none yet."""
        if not graph_path.exists() and not sidecar_path.exists():
            return None
        try:
            side_bytes = sidecar_path.read_bytes()
            st = graph_path.stat()
        except FileNotFoundError:
            raise _SavedMeanwhile("graph file or its sidecar is missing") from None
        meta = json.loads(side_bytes)
        if meta.get("dim") != dim:
            raise ValueError(f"graph dimension {meta.get('dim')} != {dim}")
        if (meta.get("size"), meta.get("mtime_ns")) != (st.st_size, st.st_mtime_ns):
            # Copied, touched, damaged, or from before size and time were kept: hash it.
            try:
                digest = _file_digest(graph_path)
            except FileNotFoundError:
                raise _SavedMeanwhile("graph file is missing") from None
            if digest != meta.get("digest"):
                raise _SavedMeanwhile("graph file does not match its checksum (truncated or damaged)")
        upper = meta.get("upper")
        token = meta.get("sums_token")
        try:
            sums = None
            if token is not None:
                try:
                    sums = hnswfile.SumFile(graph_path.with_name(cls.SUMS), int(meta["elements"]), int(token))
                except hnswfile.TokenMismatch:
                    raise _SavedMeanwhile("the graph's checksums were saved again while it was being read") from None
            file = hnswfile.GraphFile(
                graph_path,
                dim,
                {int(e[0]): int(e[1]) for e in upper} if upper is not None else None,
                sums=sums,
                upper_crcs={int(e[0]): int(e[2]) for e in upper} if upper is not None and token is not None else None,
                header_crc=int(meta["header_crc"]) if token is not None else None,
            )
        except FileNotFoundError:
            raise _SavedMeanwhile("graph file or its checksums are missing") from None
        if (file.stat.st_ino, file.stat.st_size) != (st.st_ino, st.st_size) or sidecar_path.read_bytes() != side_bytes:
            file.close()
            raise _SavedMeanwhile("the graph was saved again while it was being read")
        if len(file) != int(meta["elements"]):
            file.close()
            raise ValueError("the graph file holds another number of elements than its sidecar says")
        index = cls(
            dim,
            M=int(meta["M"]),
            ef_construction=int(meta["ef_construction"]),
            ef=int(ef or meta.get("ef", DEFAULT_EF)),
            init=False,
        )
        index._file, index._meta = file, meta
        index.generation = int(meta["generation"])
        index.max_id = int(meta.get("max_id", 0))
        index._count = index._saved_count = int(meta["count"])
        saved = meta.get("unreachable")
        if saved is not None:
            index._unreachable = np.asarray(saved, np.int64)
        else:  # a graph saved before this was recorded: the walk is a refinement, never a reason to rebuild
            try:
                index._unreachable = hnswfile.unreachable_labels(graph_path)
            except (OSError, ValueError) as exc:
                log.warning("Could not walk the vector graph for unreachable photos: %s", exc)
        return index

    def _reconcile(self, catalog: Catalog, live: set[int]) -> tuple[int, int]:
        """Make the graph hold exactly the catalog's photos. Returns (added, removed)."""
        with self._mutating, self._lock:
            graph = self._loaded()
            labels = set(np.asarray(graph.get_ids_list(), dtype=np.int64).tolist()) if graph.element_count else set()
            extra = (self._alive | labels) - live
            for pid in extra:
                try:
                    graph.mark_deleted(pid)
                except RuntimeError:
                    pass
            # Labels the graph holds but this index deleted (a photo trashed, then put back)
            # are not taken as alive here: they are unmarked below, with the caches dropped.
            self._alive &= live
            if extra:
                self._dense = self._subset = None
                self._unreachable_vecs = None
                self._drop_reader()
            missing = live - self._alive
            added = 0
            if missing:
                # Re-deleted labels that are live again get unmarked (vector unchanged: ids never reused).
                relive = missing & labels
                for pid in relive:
                    try:
                        graph.unmark_deleted(pid)
                    except RuntimeError:
                        pass
                self._alive |= relive
                missing -= relive
                if relive:  # the live set changed: what was read of it (or of the saved file) is stale
                    self._dense = self._subset = None
                    self._unreachable_vecs = None
                    self._drop_reader()
                if missing:
                    after = min(missing) - 1
                    for ids, vecs in catalog.iter_vectors(after_id=after):
                        mask = np.isin(ids, np.fromiter(missing, np.int64, len(missing)))
                        if mask.any():
                            self.add(ids[mask], vecs[mask])
                            added += int(mask.sum())
            self._dense = self._subset = None
            self._unreachable_vecs = None
            if added or extra:
                self._drop_reader()
            return added, len(extra)

    def verify(self, catalog: Catalog) -> int:
        """Make sure every photo of the catalog is in the graph, and no other: cheap when the
        saved sidecar's digest of its live photos matches the catalog's, else the file's marks
        are read. Returns how many photos were put back or taken out."""
        live = catalog.all_ids()
        with self._mutating, self._lock:
            if self._graph is None and self._file is not None:
                meta = self._meta or {}
                if meta.get("live_digest") == _ids_digest(live) and self._saved_count == len(live):
                    return 0
                held = self._file.live()[0]
            else:
                held = np.fromiter(self._alive, np.int64, len(self._alive))
            held = np.sort(held)
            if np.array_equal(held, live):
                return 0
            missed, extra = np.setdiff1d(live, held).size, np.setdiff1d(held, live).size
            self._reconcile(catalog, set(live.tolist()))
            self.generation = catalog.generation()
            self.repaired = True
            log.warning("The vector graph missed %d photos and held %d others: repaired", missed, extra)
            return missed + extra

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
        """Ids of the exact top ``k`` (unordered) for each query, over every live vector,
        read in chunks of about ``chunk_bytes`` (the peak memory stays small)."""
        if ids is None:
            ids = np.sort(self.ids())
        with self._lock:
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
        graph = self._loaded()
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
                graph.set_ef(ef)
                labels, _ = graph.knn_query(q, k=k)
                recall = float(
                    np.mean(
                        [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(labels.astype(np.int64), truth)]
                    )
                )
                chosen = ef
                if recall >= target:
                    break
            self.ef = chosen
            graph.set_ef(chosen)
            return chosen, recall


def _ids_digest(ids) -> str:
    """A short digest of a set of photo ids (the sidecar's check that the graph holds them)."""
    arr = np.sort(np.fromiter(ids, np.int64) if isinstance(ids, set) else np.asarray(ids, np.int64))
    return hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest()


def _live_labels(graph: Any, file: hnswfile.GraphFile) -> list[int]:
    """The live labels of a graph hnswlib loaded from a file saved again since it was mapped
    (the mapped marks may be old): those hnswlib can return a vector for."""
    out = []
    for label in np.asarray(graph.get_ids_list(), np.int64).tolist():
        try:
            graph.get_items([label])
        except RuntimeError:
            continue
        out.append(label)
    return out


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


def _positions(sorted_ids: np.ndarray, want: np.ndarray, *, strict: bool = False) -> np.ndarray:
    """Where each of ``want`` sits in ``sorted_ids`` (ascending); those not there are left
    out, or raise KeyError when ``strict``."""
    want = np.asarray(want, np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, want), max(0, len(sorted_ids) - 1))
    hit = sorted_ids[pos] == want if len(sorted_ids) else np.zeros(len(want), bool)
    if strict and not hit.all():
        raise KeyError(f"{int((~hit).sum())} photo(s) are not in the index")
    return pos[hit]


def _topk(ids: np.ndarray, scores: np.ndarray, k: int) -> Hits:
    k = min(k, len(ids))
    if k == 0:
        return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
    part = np.argpartition(-scores, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
    order = part[np.argsort(-scores[part], kind="stable")]
    return Hits(ids[order].astype(np.int64), scores[order].astype(np.float32))
