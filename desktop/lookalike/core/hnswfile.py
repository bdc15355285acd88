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

A saved graph is a cache, never trusted blindly: a save records a CRC-32 of every
bottom-layer record (:class:`SumFile`, beside the graph), of each element's upper
lists and of the header, and every read checks the records it reads against them
(:class:`GraphDamaged` when one differs). A search checks only what it visits, so
the check costs what the search reads, not the library's size; loading the graph
into hnswlib (which trusts every link it reads, and crashes on a wrong one) first
checks the whole file (:func:`verify`), as it reads the whole file anyway.
"""

from __future__ import annotations

import heapq
import mmap
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

HEADER_SIZE = 96
_HEADER = struct.Struct("<QQQQQQiIQQQdQ")  # 6 size_t, int, uint32, 3 size_t, double, size_t
_DELETED = np.uint32(1 << 16)
_COUNT_MASK = np.uint32(0xFFFF)


class GraphDamaged(ValueError):
    """The graph file differs from what its save recorded (bit rot, a stray write)."""


def record_crcs(recs: np.ndarray) -> np.ndarray:
    """CRC-32 of each record of a (m, record_size) uint8 array (rows contiguous)."""
    return np.fromiter((zlib.crc32(r) for r in recs), np.uint32, len(recs))


class SumFile:
    """The per-record CRC-32s of one saved graph: a 16-byte head (magic, the save's token,
    which its sidecar repeats), then one little-endian uint32 per record in internal-id
    order. Read with positioned reads, a few bytes a record, as the records are."""

    MAGIC = b"LKSUMS1\0"
    HEAD = 16

    def __init__(self, path: Path, count: int, token: int) -> None:
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            head = os.pread(self._fd, self.HEAD, 0)
            if head[:8] != self.MAGIC or int.from_bytes(head[8:16], "little") != token:
                raise TokenMismatch("the graph's checksums belong to another save")
            if os.fstat(self._fd).st_size != self.HEAD + 4 * count:
                raise GraphDamaged("the graph's checksum file has the wrong size")
        except BaseException:
            os.close(self._fd)
            raise
        self.count = count

    @classmethod
    def write(cls, path: Path, crcs: np.ndarray, token: int) -> None:
        with open(path, "wb") as fh:
            fh.write(cls.MAGIC + int(token).to_bytes(8, "little"))
            fh.write(np.asarray(crcs, "<u4").tobytes())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def of(self, ids: list[int]) -> np.ndarray:
        """The recorded sums of these internal ids."""
        out = np.empty(len(ids), np.uint32)
        for j, i in enumerate(ids):
            if not 0 <= i < self.count:
                raise GraphDamaged("a link in the graph file points outside it")
            out[j] = int.from_bytes(os.pread(self._fd, 4, self.HEAD + 4 * i), "little")
        return out

    def span(self, first: int, stop: int) -> np.ndarray:
        """The recorded sums of internal ids first..stop-1."""
        data = os.pread(self._fd, 4 * (stop - first), self.HEAD + 4 * first)
        if len(data) != 4 * (stop - first):
            raise GraphDamaged("the graph's checksum file is short")
        return np.frombuffer(data, "<u4").astype(np.uint32)


class TokenMismatch(ValueError):
    """The checksum file and the sidecar come from different saves (one replaced meanwhile)."""


def file_sums(path: Path, header: Header, levels: np.ndarray) -> tuple[np.ndarray, dict[int, int], int]:
    """What a save records: (each record's CRC-32, internal id -> CRC-32 of its upper lists
    with their length word, the header's CRC-32), in one sequential pass."""
    crcs = np.empty(header.count, np.uint32)
    for start, recs in read_records(path, header):
        crcs[start : start + len(recs)] = record_crcs(recs)
    upper: dict[int, int] = {}
    with open(path, "rb") as fh:
        head = fh.read(HEADER_SIZE)
        for i, at in upper_offsets(levels, header).items():
            fh.seek(at - 4)
            upper[i] = zlib.crc32(fh.read(4 + int(levels[i])))
    return crcs, upper, zlib.crc32(head)


def check_structure(recs: np.ndarray, header: Header, dim: int, *, unit: bool) -> None:
    """GraphDamaged unless every record's links lie inside the graph and its vector is
    finite (and of unit length, for ``unit``): what hnswlib would otherwise follow into
    memory it does not own, or score absurdly."""
    words = np.ascontiguousarray(recs[:, : 4 * (1 + header.max_m0)]).view(np.uint32)
    degree = words[:, 0] & _COUNT_MASK
    if (degree > header.max_m0).any():
        raise GraphDamaged("a record of the graph file has more links than the graph allows")
    cols = np.arange(header.max_m0)[None, :] < degree[:, None]
    if (words[:, 1:][cols] >= header.count).any():
        raise GraphDamaged("a link in the graph file points outside it")
    vecs = np.ascontiguousarray(recs[:, header.data_offset : header.data_offset + 4 * dim]).view(np.float32)
    if not np.isfinite(vecs).all():
        raise GraphDamaged("a vector in the graph file is not a number")
    if unit and len(vecs) and float(np.abs(np.einsum("ij,ij->i", vecs, vecs) - 1.0).max()) > 1e-3:
        raise GraphDamaged("a vector in the graph file is not of unit length")


def verify(
    path: Path,
    dim: int,
    *,
    sums: SumFile | None = None,
    upper: dict[int, int] | None = None,
    header_crc: int | None = None,
    unit: bool = True,
    chunk_bytes: int = 16 * 2**20,
) -> np.ndarray:
    """Check a whole saved graph before anything trusts it: the header's layout, every
    record's links and vector (and CRC-32, with ``sums``), the upper layers' sizes, links
    (and CRC-32s, with ``upper``). Returns the upper lists' sizes; GraphDamaged if any
    of it is wrong. One sequential pass."""
    with open(path, "rb") as fh:
        head = fh.read(HEADER_SIZE)
    if header_crc is not None and zlib.crc32(head) != header_crc:
        raise GraphDamaged("the graph file's header differs from the one saved")
    try:
        header = Header.parse(head)
    except (ValueError, struct.error) as exc:
        raise GraphDamaged(str(exc)) from None
    check_header(header, dim)
    for start, recs in read_records(path, header, chunk_bytes):
        check_structure(recs, header, dim, unit=unit)
        if sums is not None and not np.array_equal(record_crcs(recs), sums.span(start, start + len(recs))):
            raise GraphDamaged("a record of the graph file differs from the one saved")
    levels = upper_list_sizes(path, header)
    if levels is None or (levels % header.upper_list_bytes).any():
        raise GraphDamaged("the graph file's upper layers do not add up")
    if int(levels.max(initial=0)) // header.upper_list_bytes > header.max_level:
        raise GraphDamaged("an element of the graph file lies above its top layer")
    with open(path, "rb") as fh:
        for i, at in upper_offsets(levels, header).items():
            fh.seek(at - 4)
            block = fh.read(4 + int(levels[i]))
            if upper is not None and upper.get(i) != zlib.crc32(block):
                raise GraphDamaged("an element's upper layers differ from the ones saved")
            words = np.frombuffer(block[4:], np.uint32).reshape(-1, 1 + header.max_m)
            deg = words[:, 0] & _COUNT_MASK
            if (deg > header.max_m).any() or (
                words[:, 1:][np.arange(header.max_m)[None, :] < deg[:, None]] >= header.count
            ).any():
                raise GraphDamaged("a link in the graph file's upper layers points outside it")
    return levels


def check_header(h: Header, dim: int) -> None:
    """GraphDamaged unless the header describes a graph of ``dim``-d vectors hnswlib can read."""
    links = 4 * (1 + h.max_m0)
    if (
        h.offset_level0 != 0
        or not 0 < h.max_m <= 0xFFFF
        or not 0 < h.max_m0 <= 0xFFFF
        or h.data_offset != links
        or h.label_offset != h.data_offset + 4 * dim
        or h.record_size != h.label_offset + 8
        or h.count > h.max_elements
        or h.count > 2**40
        or (h.count and not 0 <= h.entry < h.count)
        or not (-1 if h.count == 0 else 0) <= h.max_level < 64
    ):
        raise GraphDamaged("the graph file's header is not one of a graph of this library")


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

    def __init__(
        self,
        path: Path,
        dim: int,
        upper: dict[int, int] | None = None,
        *,
        sums: SumFile | None = None,
        upper_crcs: dict[int, int] | None = None,
        header_crc: int | None = None,
        unit: bool = True,
    ) -> None:
        """``sums``, ``upper_crcs``, ``header_crc``: what the save recorded, checked as the
        file is read (without them, only the structure of what is read is checked).
        The GraphFile owns ``sums`` and closes it."""
        self._sums = sums
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            self.stat = os.fstat(self._fd)
            head = os.pread(self._fd, HEADER_SIZE, 0)
            if header_crc is not None and zlib.crc32(head) != header_crc:
                raise GraphDamaged("the graph file's header differs from the one saved")
            self.header = h = Header.parse(head)
            if h.data_offset + 4 * dim + 8 > h.record_size or h.label_offset != h.data_offset + 4 * dim:
                raise ValueError(f"the graph file does not hold {dim}-d vectors")
            check_header(h, dim)
            if h.tail_offset + 4 * h.count > self.stat.st_size:
                raise ValueError("the graph file is shorter than its header says")
            if sums is not None and sums.count != h.count:
                raise GraphDamaged("the graph file holds another number of records than its checksums")
            self.path = Path(path)
            self.dim = dim
            self._unit = unit
            if upper is None:
                levels = upper_list_sizes(path, h)
                if levels is None:
                    raise ValueError("the graph file's upper layers do not add up")
                upper = upper_offsets(levels, h)
            self._upper = upper
            self.upper_crcs = upper_crcs
            self.header_crc = header_crc
            self._upper_ok: set[int] = set()
        except BaseException:
            os.close(self._fd)
            if sums is not None:
                sums.close()
            raise
        self._live: tuple[np.ndarray, np.ndarray] | None = None  # (labels ascending, internal ids)

    @property
    def checked(self) -> bool:
        """Whether reads are checked against the sums the save recorded."""
        return self._sums is not None

    def verify(self) -> np.ndarray:
        """:func:`verify` of this file against what its save recorded."""
        return verify(
            self.path,
            self.dim,
            sums=self._sums,
            upper=self.upper_crcs,
            header_crc=self.header_crc,
            unit=self._unit and self._sums is None,
        )

    def _check(self, recs: np.ndarray, first: int | None = None, ids: list[int] | None = None) -> None:
        """GraphDamaged unless these records are the ones saved (records ``first``.. or ``ids``)."""
        if not len(recs):
            return
        if self._sums is None:
            check_structure(recs, self.header, self.dim, unit=self._unit)
            return
        if ids is not None:
            want = self._sums.of(ids)
        else:
            assert first is not None
            want = self._sums.span(first, first + len(recs))
        if not np.array_equal(record_crcs(recs), want):
            raise GraphDamaged("a record of the graph file differs from the one saved")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._sums is not None:
            self._sums.close()

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
        count = self.header.count
        for j, i in enumerate(ids.tolist()):
            if not 0 <= i < count:
                raise GraphDamaged("a link in the graph file points outside it")
            buf[j] = np.frombuffer(self._pread(rs, HEADER_SIZE + i * rs), np.uint8)
        self._check(buf, ids=ids.tolist())
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
        h = self.header
        if i not in self._upper:
            raise GraphDamaged("the graph file's upper layers lead to an element without any")
        if i not in self._upper_ok:
            size = int.from_bytes(self._pread(4, self._upper[i] - 4), "little")
            if size % h.upper_list_bytes or size // h.upper_list_bytes > h.max_level:
                raise GraphDamaged("the graph file's upper layers do not add up")
            block = self._pread(4 + size, self._upper[i] - 4)
            if self.upper_crcs is not None and self.upper_crcs.get(i) != zlib.crc32(block):
                raise GraphDamaged("an element's upper layers differ from the ones saved")
            self._upper_ok.add(i)
        at = self._upper[i] + (level - 1) * h.upper_list_bytes
        words = np.frombuffer(self._pread(h.upper_list_bytes, at), np.uint32)
        links = words[1 : 1 + int(words[0] & _COUNT_MASK)]
        if len(links) > h.max_m or (links >= h.count).any():
            raise GraphDamaged("a link in the graph file's upper layers points outside it")
        return links

    def dense(self, chunk_bytes: int = 16 * 2**20) -> tuple[np.ndarray, np.ndarray]:
        """Every live (label, vector), read in one sequential pass of small reads into one
        contiguous float32 array (never the whole file in memory at once)."""
        h = self.header
        labels = np.empty(h.count, np.int64)
        vecs = np.empty((h.count, self.dim), np.float32)
        live = np.empty(h.count, bool)
        for start, recs in read_records(self.path, h, chunk_bytes):
            self._check(recs, start)
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
                self._check(recs, first)
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
            rows = recs[sorted_ids[a:z] - first]
            self._check(rows, ids=sorted_ids[a:z].tolist())
            out[order[a:z]] = rows[:, d0:d1].view(np.float32)

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
            self._check(recs, first)
            scores[first : first + len(recs)] = recs[:, d0:d1].view(np.float32) @ dm

        self._mapped(self._ranges(chunk_bytes), score)
        labels, internal = self.live()
        out = scores[internal]
        return labels, out[:, 0] if flat else out

    def scan(
        self, query: np.ndarray, k: int, chunk_bytes: int = 16 * 2**20, *, live_count: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` (labels, scores), unordered, in one sequential pass of small reads:
        each chunk is scored where it lies (no copy of the vectors is made or kept).

        With the save's sums, only what the answer rests on is checked, not every record
        (a CRC-32 of the whole file would cost several times the scan): the records of the
        top ``k`` (a damaged vector that scores into it, a damaged label or mark there), that
        every vector is of unit length (one damaged out of every answer), and that
        ``live_count`` records are live (a photo marked deleted by damage would be silently
        missing). Without sums, every record's structure is checked."""
        h = self.header
        q = np.asarray(query, np.float32).reshape(self.dim)
        best_l, best_s = np.zeros(0, np.int64), np.zeros(0, np.float32)
        best_i = np.zeros(0, np.int64)
        alive = 0
        for start, recs in read_records(self.path, h, chunk_bytes):
            if self._sums is None:
                self._check(recs, start)
            live = (recs[:, :4].view(np.uint32)[:, 0] & _DELETED) == 0
            alive += int(live.sum())
            vecs = recs[:, h.data_offset : h.data_offset + 4 * self.dim].view(np.float32)
            # a vector damaged out of every answer (scoring hugely negative) would be missing
            # silently: each must still be of unit length (nan fails the test too)
            if (
                self._sums is not None
                and self._unit
                and not (np.abs(np.einsum("ij,ij->i", vecs, vecs) - 1.0) <= 1e-3).all()
            ):
                raise GraphDamaged("a vector in the graph file is not of unit length")
            scores = vecs @ q
            labels = recs[:, h.label_offset : h.label_offset + 8].view(np.uint64)[:, 0].astype(np.int64)
            best_l = np.concatenate([best_l, labels[live]])
            best_s = np.concatenate([best_s, scores[live]])
            best_i = np.concatenate([best_i, start + np.flatnonzero(live)])
            if len(best_s) > k:
                top = np.argpartition(-best_s, k - 1)[:k]
                best_l, best_s, best_i = best_l[top], best_s[top], best_i[top]
        if self._sums is not None:
            if live_count is not None and alive != live_count:
                raise GraphDamaged("the graph file holds another number of live photos than saved")
            self.records(best_i)  # GraphDamaged unless the records the answer comes from are the saved ones
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
