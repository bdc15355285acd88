"""hnswlib's saved-graph file, read without hnswlib.

The layout ``hnswlib::HierarchicalNSW::saveIndex`` writes (0.8):

* a 96-byte header (:class:`Header`);
* the bottom layer: one fixed-size record per element, in internal-id order:
  a uint32 word (link count in the low 16 bits, the deleted mark in bit 16),
  ``max_m0`` uint32 links, the vector (``dim`` float32), the label (uint64);
* per element, a uint32 byte length and then its upper layers' link lists,
  ``max_m + 1`` uint32 words a layer (a count, then the links).

Reading the file ourselves lets a search run on the memory-mapped file (pages are
read as the search touches them, so a cold query costs what it visits, not the
library's size), lets a save check that the file came out whole, and finds the
elements no search can reach.
"""

from __future__ import annotations

import heapq
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

HEADER_SIZE = 96
_HEADER = struct.Struct("<QQQQQQiIQQQdQ")  # 6 size_t, int, uint32, 3 size_t, double, size_t
_DELETED = np.uint32(1 << 16)
_COUNT_MASK = np.uint32(0xFFFF)


@dataclass(frozen=True)
class Header:
    offset_level0: int
    max_elements: int
    count: int  # elements in the file, deleted ones included
    record_size: int  # bytes per bottom-layer record
    label_offset: int  # where the label sits in a record
    data_offset: int  # where the vector sits in a record
    max_level: int
    entry: int  # internal id of the entry point
    max_m: int  # links per upper-layer list
    max_m0: int  # links per bottom-layer list
    m: int
    mult: float
    ef_construction: int

    @classmethod
    def parse(cls, head: bytes) -> Header:
        if len(head) < HEADER_SIZE:
            raise ValueError("the graph file is shorter than its header")
        return cls(*_HEADER.unpack_from(head, 0))

    @classmethod
    def read(cls, path: Path) -> Header:
        with open(path, "rb") as fh:
            return cls.parse(fh.read(HEADER_SIZE))

    @property
    def upper_list_bytes(self) -> int:
        return 4 * (self.max_m + 1)

    @property
    def tail_offset(self) -> int:
        return HEADER_SIZE + self.count * self.record_size


def upper_list_sizes(path: Path, header: Header | None = None) -> np.ndarray | None:
    """Byte length of each element's upper-layer link lists (0: bottom layer only), or
    None when the file does not end exactly where its layout says it does."""
    try:
        header = header or Header.read(path)
        with open(path, "rb") as fh:
            fh.seek(header.tail_offset)
            tail = fh.read()
    except (OSError, ValueError):
        return None
    count, off, end = header.count, 0, len(tail)
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


def whole_graph_levels(path: Path, elements: int) -> np.ndarray | None:
    """The upper lists' sizes when the file holds ``elements`` elements and ends exactly
    where its layout says (hnswlib writes through an unchecked stream: a full disk leaves
    it short without an error), else None."""
    try:
        header = Header.read(path)
    except (OSError, ValueError):
        return None
    if header.count != elements:
        return None
    return upper_list_sizes(path, header)


def upper_offsets(levels: np.ndarray, header: Header) -> dict[int, int]:
    """Internal id -> file offset of its upper-layer lists, for the elements that have any."""
    starts = header.tail_offset + 4 * np.arange(1, len(levels) + 1) + np.concatenate([[0], np.cumsum(levels)[:-1]])
    has = np.flatnonzero(levels > 0)
    return dict(zip(has.tolist(), starts[has].tolist()))


def read_records(path: Path, header: Header, chunk_bytes: int = 16 * 2**20) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first internal id, records as a (m, record_size) uint8 array) in one
    sequential pass of ``chunk_bytes`` reads into one reused buffer (valid until the next
    step): the file is never in memory whole, mapped or read."""
    rows = max(1, chunk_bytes // header.record_size)
    buf = np.empty((min(rows, max(1, header.count)), header.record_size), np.uint8)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(HEADER_SIZE)
        for start in range(0, header.count, rows):
            m = min(rows, header.count - start)
            view = buf[:m].data.cast("B")
            got = 0
            while got < len(view):
                n = fh.readinto(view[got:])
                if not n:
                    raise ValueError("the graph file is shorter than its header says")
                got += n
            yield start, buf[:m]


def unreachable_labels(path: Path, levels: np.ndarray | None = None, chunk_bytes: int = 32 * 2**20) -> np.ndarray:
    """Labels of the elements in a saved hnswlib graph that no search can reach.

    A search descends the upper layers greedily and then walks the bottom layer
    from where it landed: an element with a level above 0, or the entry point. An
    element that no bottom-layer link leads to from those is never visited, for
    any query and any ef. hnswlib prunes links by a heuristic, and on clustered
    photo vectors it leaves a few such elements (16 in 100,000 at M=32).
    ``levels``: the file's upper-list sizes when the caller has walked them already.

    The bottom layer's links are read in one sequential pass into a compact array
    (about 4% of the graph at 1664-d); the vectors are not kept."""
    header = Header.read(path)
    count = header.count
    if count == 0:
        return np.zeros(0, np.int64)
    width = 1 + header.max_m0  # uint32 words: the count (low 16 bits), then the links
    links = np.empty((count, width), np.uint32)
    for start, recs in read_records(path, header, chunk_bytes):
        links[start : start + len(recs)] = recs[:, : 4 * width].view(np.uint32)
    if levels is None:
        levels = upper_list_sizes(path, header)
    if levels is None or len(levels) != count:
        raise ValueError("the graph file's upper layers do not add up")
    degree = (links[:, 0] & _COUNT_MASK).astype(np.int64)
    cols = np.arange(header.max_m0)
    seen = np.zeros(count, dtype=bool)
    front = np.union1d(np.flatnonzero(levels > 0), [header.entry]).astype(np.int64)
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
            fh.seek(HEADER_SIZE + e * header.record_size + header.label_offset)
            out[i] = int.from_bytes(fh.read(8), "little")
    return out


class GraphFile:
    """A saved graph, searched in place (inner-product space).

    Nothing is read up front: a search reads the records it visits, each with one
    positioned read, so its cost does not grow with the library. (Not a memory map:
    the kernel maps whole cached folios of a file, and a query at 100,000 photos held
    most of the 700 MB file as resident memory that way.) The search is hnswlib's
    own: greedy descent through the upper layers, then a best-first walk of the bottom
    layer with ``ef`` candidates, so it answers as the loaded graph would.
    """

    def __init__(self, path: Path, dim: int, upper: dict[int, int] | None = None) -> None:
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            self.stat = os.fstat(self._fd)
            self.header = h = Header.parse(os.pread(self._fd, HEADER_SIZE, 0))
            if h.data_offset + 4 * dim + 8 > h.record_size or h.label_offset != h.data_offset + 4 * dim:
                raise ValueError(f"the graph file does not hold {dim}-d vectors")
            if h.count and not 0 <= h.entry < h.count:
                raise ValueError("the graph file's entry point is outside it")
            if h.tail_offset + 4 * h.count > self.stat.st_size:
                raise ValueError("the graph file is shorter than its header says")
            self.path = Path(path)
            self.dim = dim
            if upper is None:
                levels = upper_list_sizes(path, h)
                if levels is None:
                    raise ValueError("the graph file's upper layers do not add up")
                upper = upper_offsets(levels, h)
            self._upper = upper
        except BaseException:
            os.close(self._fd)
            raise
        self._live: tuple[np.ndarray, np.ndarray] | None = None  # (labels ascending, internal ids)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __len__(self) -> int:
        return self.header.count

    # -- records ------------------------------------------------------------

    def _pread(self, size: int, offset: int) -> bytes:
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise ValueError("the graph file is shorter than its header says")
        return data

    def records(self, internal: npt.ArrayLike) -> np.ndarray:
        """The bottom-layer records of these elements, (m, record_size) uint8."""
        rs = self.header.record_size
        ids = np.asarray(internal, np.int64).reshape(-1)
        buf = np.empty((len(ids), rs), np.uint8)
        for j, i in enumerate(ids.tolist()):
            buf[j] = np.frombuffer(self._pread(rs, HEADER_SIZE + i * rs), np.uint8)
        return buf

    def _parts(self, recs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vectors, deleted, labels) of records."""
        h = self.header
        vecs = np.ascontiguousarray(recs[:, h.data_offset : h.data_offset + 4 * self.dim]).view(np.float32)
        deleted = (np.ascontiguousarray(recs[:, :4]).view(np.uint32)[:, 0] & _DELETED) != 0
        labels = np.ascontiguousarray(recs[:, h.label_offset : h.label_offset + 8]).view(np.uint64)[:, 0]
        return vecs, deleted, labels.astype(np.int64)

    def vectors(self, internal: npt.ArrayLike) -> np.ndarray:
        return self._parts(self.records(internal))[0]

    def labels(self, internal: np.ndarray) -> np.ndarray:
        return self._parts(self.records(internal))[2]

    def deleted(self, internal: np.ndarray) -> np.ndarray:
        return self._parts(self.records(internal))[1]

    def _links_in(self, record: np.ndarray) -> np.ndarray:
        words = np.ascontiguousarray(record[: 4 * (1 + self.header.max_m0)]).view(np.uint32)
        return words[1 : 1 + int(words[0] & _COUNT_MASK)]

    def _upper_links(self, i: int, level: int) -> np.ndarray:
        at = self._upper[i] + (level - 1) * self.header.upper_list_bytes
        words = np.frombuffer(self._pread(self.header.upper_list_bytes, at), np.uint32)
        return words[1 : 1 + int(words[0] & _COUNT_MASK)]

    def dense(self, chunk_bytes: int = 16 * 2**20) -> tuple[np.ndarray, np.ndarray]:
        """Every live (label, vector), read in one sequential pass of small reads into one
        contiguous float32 array (never the whole file in memory at once)."""
        h = self.header
        labels = np.empty(h.count, np.int64)
        vecs = np.empty((h.count, self.dim), np.float32)
        live = np.empty(h.count, bool)
        for start, recs in read_records(self.path, h, chunk_bytes):
            end = start + len(recs)
            live[start:end] = (recs[:, :4].view(np.uint32)[:, 0] & _DELETED) == 0
            labels[start:end] = recs[:, h.label_offset : h.label_offset + 8].view(np.uint64)[:, 0]
            vecs[start:end] = recs[:, h.data_offset : h.data_offset + 4 * self.dim].view(np.float32)
        if live.all():
            return labels, vecs
        return labels[live], vecs[live]

    # -- mapped passes -------------------------------------------------------------

    def _mapped(self, chunks: Iterator[tuple[int, int]], use: Callable[[int, np.ndarray], None]) -> None:
        """Call ``use(first internal id, records as a (m, record_size) uint8 array)`` on each
        (first, stop) range of records, each mapped only for that call: the vectors are
        read where they lie (BLAS works on the mapping, no copy), and at most one chunk of
        the file is ever mapped, so a pass over a large graph leaves nothing resident."""
        rs, gran = self.header.record_size, mmap.ALLOCATIONGRANULARITY
        for first, stop in chunks:
            lo, hi = HEADER_SIZE + first * rs, HEADER_SIZE + stop * rs
            base = lo - lo % gran
            mapped = mmap.mmap(self._fd, hi - base, offset=base, access=mmap.ACCESS_READ)
            try:
                recs = np.frombuffer(mapped, np.uint8, count=hi - lo, offset=lo - base).reshape(stop - first, rs)
                use(first, recs)
                del recs
            finally:
                try:
                    mapped.close()
                except BufferError:  # a view escaped (an error's traceback): the collector unmaps it
                    pass

    def _ranges(self, chunk_bytes: int, count: int | None = None) -> Iterator[tuple[int, int]]:
        rows = max(1, chunk_bytes // self.header.record_size)
        count = self.header.count if count is None else count
        return ((s, min(s + rows, count)) for s in range(0, count, rows))

    def live(self, chunk_bytes: int = 32 * 2**20) -> tuple[np.ndarray, np.ndarray]:
        """(labels ascending, internal ids) of the live elements, read once (each record's
        mark and label, in mapped chunks) and kept: about 16 bytes an element."""
        if self._live is None:
            h = self.header
            labels = np.empty(h.count, np.int64)
            live = np.empty(h.count, bool)

            def read(first: int, recs: np.ndarray) -> None:
                end = first + len(recs)
                live[first:end] = (np.ascontiguousarray(recs[:, :4]).view(np.uint32)[:, 0] & _DELETED) == 0
                labels[first:end] = np.ascontiguousarray(recs[:, h.label_offset : h.label_offset + 8]).view(np.uint64)[
                    :, 0
                ]

            self._mapped(self._ranges(chunk_bytes), read)
            internal = np.flatnonzero(live)
            order = np.argsort(labels[internal], kind="stable")
            self._live = (labels[internal][order], internal[order])
        return self._live

    def gather(self, internal: npt.ArrayLike, chunk_bytes: int = 32 * 2**20) -> np.ndarray:
        """The vectors of these elements, in the order given, as one contiguous float32
        array: only the chunks of the file that hold one of them are mapped, each once."""
        h = self.header
        ids = np.asarray(internal, np.int64).reshape(-1)
        out = np.empty((len(ids), self.dim), np.float32)
        if len(ids) == 0:
            return out
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        rows = max(1, chunk_bytes // h.record_size)
        blocks = np.unique(sorted_ids // rows)
        bounds = np.searchsorted(sorted_ids, np.stack([blocks * rows, (blocks + 1) * rows]))
        span = {int(b) * rows: (int(a), int(z)) for b, a, z in zip(blocks.tolist(), *bounds.tolist())}
        d0, d1 = h.data_offset, h.data_offset + 4 * self.dim

        def take(first: int, recs: np.ndarray) -> None:
            a, z = span[first]
            out[order[a:z]] = recs[sorted_ids[a:z] - first, d0:d1].view(np.float32)

        self._mapped(((int(b) * rows, min((int(b) + 1) * rows, h.count)) for b in blocks.tolist()), take)
        return out

    def score_live(self, directions: np.ndarray, chunk_bytes: int = 32 * 2**20) -> tuple[np.ndarray, np.ndarray]:
        """Every live element's inner product with each direction, in one mapped pass (the
        vectors are scored where they lie): (labels ascending, scores (n,) or (n, m))."""
        h = self.header
        d = np.asarray(directions, np.float32)
        flat = d.ndim == 1
        dm = d.reshape(-1, self.dim).T.copy()  # (dim, m)
        scores = np.empty((h.count, dm.shape[1]), np.float32)
        d0, d1 = h.data_offset, h.data_offset + 4 * self.dim

        def score(first: int, recs: np.ndarray) -> None:
            scores[first : first + len(recs)] = recs[:, d0:d1].view(np.float32) @ dm

        self._mapped(self._ranges(chunk_bytes), score)
        labels, internal = self.live()
        out = scores[internal]
        return labels, out[:, 0] if flat else out

    def scan(self, query: np.ndarray, k: int, chunk_bytes: int = 16 * 2**20) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` (labels, scores), unordered, in one sequential pass of small reads:
        each chunk is scored where it lies (no copy of the vectors is made or kept)."""
        h = self.header
        q = np.asarray(query, np.float32).reshape(self.dim)
        best_l, best_s = np.zeros(0, np.int64), np.zeros(0, np.float32)
        for _, recs in read_records(self.path, h, chunk_bytes):
            live = (recs[:, :4].view(np.uint32)[:, 0] & _DELETED) == 0
            scores = recs[:, h.data_offset : h.data_offset + 4 * self.dim].view(np.float32) @ q
            labels = recs[:, h.label_offset : h.label_offset + 8].view(np.uint64)[:, 0].astype(np.int64)
            best_l = np.concatenate([best_l, labels[live]])
            best_s = np.concatenate([best_s, scores[live]])
            if len(best_s) > k:
                top = np.argpartition(-best_s, k - 1)[:k]
                best_l, best_s = best_l[top], best_s[top]
        return best_l, best_s

    # -- search ---------------------------------------------------------------

    def search(
        self, query: np.ndarray, k: int, ef: int, allowed: Callable[[int], bool] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(labels, scores) of the best ``k`` by inner product, best first; fewer when
        fewer reachable live elements pass ``allowed`` (a label test)."""
        h = self.header
        if h.count == 0 or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = np.asarray(query, np.float32).reshape(self.dim)
        cur = h.entry
        cur_d = 1.0 - float(self.vectors([cur])[0] @ q)
        for level in range(h.max_level, 0, -1):
            changed = True
            while changed:
                changed = False
                nb = self._upper_links(cur, level)
                if nb.size == 0:
                    continue
                d = 1.0 - self.vectors(nb) @ q
                j = int(np.argmin(d))
                if d[j] < cur_d:
                    cur, cur_d, changed = int(nb[j]), float(d[j]), True
        top, labels = self._bottom_layer(q, cur, max(ef, k), allowed)
        best = sorted((-nd, e) for nd, e in top)[:k]
        return (
            np.asarray([labels[e] for _, e in best], np.int64),
            np.asarray([1.0 - d for d, _ in best], np.float32),
        )

    def _bottom_layer(
        self, q: np.ndarray, entry: int, ef: int, allowed: Callable[[int], bool] | None
    ) -> tuple[list[tuple[float, int]], dict[int, int]]:
        """hnswlib's searchBaseLayerST: a max-heap ``top`` (as negated distances) of the
        best ``ef`` admissible elements, a min-heap of candidates to expand. Each element
        is read once, when first scored; its links are kept for when it is expanded.
        Returns ``top`` and the labels of the elements in it."""
        visited = np.zeros(self.header.count, bool)
        links: dict[int, np.ndarray] = {}
        labels: dict[int, int] = {}
        top: list[tuple[float, int]] = []
        candidates: list[tuple[float, int]] = []
        bound = float("inf")

        def score(nodes: np.ndarray) -> list[tuple[int, float, bool]]:
            recs = self.records(nodes)
            vecs, deleted, labs = self._parts(recs)
            ok = ~deleted
            if allowed is not None:
                ok &= np.fromiter(map(allowed, labs.tolist()), bool, len(labs))
            out = []
            for j, (e, d) in enumerate(zip(nodes.tolist(), (1.0 - vecs @ q).tolist())):
                links[e] = self._links_in(recs[j])
                labels[e] = int(labs[j])
                out.append((e, d, bool(ok[j])))
            return out

        visited[entry] = True
        for e, d, ok in score(np.asarray([entry])):
            if ok:
                top.append((-d, e))
                bound = d
            candidates.append((d, e))
        while candidates:
            dist, node = candidates[0]
            if dist > bound and len(top) >= ef:
                break
            heapq.heappop(candidates)
            nb = links.pop(node)
            nb = nb[~visited[nb]]
            if nb.size == 0:
                continue
            visited[nb] = True
            for e, d, ok in score(nb):
                if len(top) < ef or bound > d:
                    heapq.heappush(candidates, (d, e))
                    if ok:
                        heapq.heappush(top, (-d, e))
                        if len(top) > ef:
                            heapq.heappop(top)
                    if top:
                        bound = -top[0][0]
        return top, labels
