"""Finding duplicate groups: candidate pairs from the vector graph, confirmed, grouped.

1. Exact copies: photos with the same content hash (the catalog's ``photos.hash``).
2. Near-duplicates: each photo's nearest neighbours in the graph (many queries at a
   time, every core) whose cosine reaches the model's threshold are candidates; a
   candidate is confirmed by the perceptual fingerprints (:mod:`.fingerprint`).
3. Similar shots (when asked): neighbours above a lower threshold, taken within a
   few seconds of each other (a burst).

Groups are formed so that every pair in a group is a confirmed pair: complete
linkage over each connected part of the pair graph (scipy's hierarchical
clustering), cut below the distance given to pairs that are not confirmed. A chain
(A like B, B like C, A unlike C) never joins A and C.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.duplicates import fingerprint

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.catalog import Catalog
    from lookalike.core.vectors import VectorIndex

log = logging.getLogger(__name__)


class DuplicateKind(StrEnum):
    EXACT = "exact"
    NEAR = "near"
    SIMILAR = "similar"


@dataclass(frozen=True)
class ModelThresholds:
    """Cosine at or above which a neighbour is a candidate (near) or a similar shot."""

    near: float
    similar: float
    measured: bool  # set on labelled pairs (docs/duplicates.md), or a conservative guess


# Per model (the library's registry name). The offline model's were measured on the
# labelled pairs of `lookalike bench --only duplicates`: every resized, recompressed
# and EXIF-rotated copy at or above 0.758, colour shifts from 0.56 (0.98 of them at
# 0.70). The fingerprint check holds precision, so this threshold is set for recall.
# CLIP and ResNet could not be measured here (no real weights without a network; the
# random-weight CLIP the tests use means nothing for quality): their values are the
# usual ones for those models' image embeddings, where copies score above 0.9.
# The offline model's similar-shot threshold was set on the timed labelled set (bursts
# of shifted and zoomed shots against other scenes and other photos of one person taken
# seconds apart; docs/duplicates.md): at 0.80 the finder grouped 0.84 of the burst pairs
# and six wrong pairs (portraits, of two men or of one, seconds apart); at 0.85 0.82 and
# one wrong pair (two photos of one man, cosine 0.856); at 0.88 0.78 and none.
THRESHOLDS: dict[str, ModelThresholds] = {
    "offline": ModelThresholds(near=0.70, similar=0.85, measured=True),
    "clip": ModelThresholds(near=0.85, similar=0.90, measured=False),
    "resnet50": ModelThresholds(near=0.85, similar=0.90, measured=False),
}
DEFAULT_THRESHOLDS = ModelThresholds(near=0.85, similar=0.90, measured=False)
BURST_SECONDS = 10.0  # similar shots: taken at most this far apart
NEIGHBOURS = 24  # graph neighbours asked for each photo
# A photo whose last neighbour still scores this high (a copy among many copies) is asked
# again with twice the neighbours, up to MAX_NEIGHBOURS. Below it the neighbours are
# look-alikes, not copies: asking further would only feed the fingerprint check more
# pairs it rejects (a burst of 500 photos of one scene is not 500 candidates each).
COPY_COSINE = 0.95
MAX_NEIGHBOURS = 1024
# The graph's search breadth for the all-pairs pass. Copies are the nearest of the near,
# which a narrow search finds: on 20,000 synthetic photos (1664-d) with planted copies,
# ef 96 found 99.8% of them for 25.5 s of CPU, ef 48 99.7% for 16.0 s, ef 24 99.0%.
PAIRS_EF = 48


def thresholds_for(model_name: str) -> ModelThresholds:
    base = (model_name or "").strip().lower()
    if base.startswith("clip"):
        base = "clip"
    return THRESHOLDS.get(base, DEFAULT_THRESHOLDS)


@dataclass(frozen=True)
class Pair:
    a: int
    b: int
    cosine: float
    percept: int  # fingerprint distance (0 for exact copies; -1 when not checked)


@dataclass
class FindStats:
    """What a search for duplicates cost, for the bench and the log."""

    photos: int = 0
    neighbour_seconds: float = 0.0
    candidates: int = 0
    fingerprinted: int = 0
    fingerprint_seconds: float = 0.0
    confirmed: int = 0
    group_seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def exact_sets(catalog: Catalog) -> list[list[int]]:
    """Ids of photos sharing a content hash, one list per hash, in id order."""
    out: dict[str, list[int]] = defaultdict(list)
    for h, pid in catalog.query(
        "SELECT hash, id FROM photos WHERE hash IN (SELECT hash FROM photos GROUP BY hash HAVING COUNT(*) > 1) "
        "ORDER BY hash, id"
    ):
        out[h].append(pid)
    return list(out.values())


def neighbour_pairs(
    vectors: VectorIndex,
    min_cosine: float,
    *,
    k: int = NEIGHBOURS,
    chunk: int = 2048,
    num_threads: int = -1,
    ids: np.ndarray | None = None,
    ef: int = PAIRS_EF,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (a < b) whose cosine reaches ``min_cosine`` among each photo's ``k``
    nearest: arrays a, b, cosine. A photo whose k-th neighbour still looks like a copy
    (COPY_COSINE) is asked again with twice the k, so a photo with many copies keeps
    all its pairs."""
    from lookalike.core.vectors import EXACT_LIMIT

    if ids is None:
        ids = np.sort(vectors.ids())
    if len(vectors) <= EXACT_LIMIT:
        chunk = min(chunk, 512)  # the exact path scores a chunk against every photo at once
    got_a: list[np.ndarray] = []
    got_b: list[np.ndarray] = []
    got_s: list[np.ndarray] = []
    todo, kk = ids, k + 1
    while todo.size:
        again: list[np.ndarray] = []
        for start in range(0, len(todo), chunk):
            q = todo[start : start + chunk]
            nb, sc = vectors.neighbours(q, kk, num_threads=num_threads, ef=max(ef, kk))
            keep = (sc >= min_cosine) & (nb != q[:, None]) & (nb >= 0)
            rows, cols = np.nonzero(keep)
            got_a.append(q[rows])
            got_b.append(nb[rows, cols])
            got_s.append(sc[rows, cols])
            full = keep[:, -1] & (sc[:, -1] >= max(min_cosine, COPY_COSINE)) & (kk < min(len(vectors), MAX_NEIGHBOURS))
            if full.any():
                again.append(q[full])
        todo = np.concatenate(again) if again else np.zeros(0, np.int64)
        kk *= 2
    if not got_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    a, b, s = np.concatenate(got_a), np.concatenate(got_b), np.concatenate(got_s)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * (int(hi.max()) + 1 if hi.size else 1) + hi
    _, first = np.unique(key, return_index=True)
    return lo[first], hi[first], s[first]


def graph_link_pairs(
    path: Path, dim: int, min_cosine: float, alive: np.ndarray, *, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Pairs (a < b, cosine at or above ``min_cosine``) along the saved graph's bottom-layer
    links, read in one sequential pass of the file, no search at all; and the labels the
    file holds. None when the file is missing or not a graph of ``dim``-d vectors.

    Each photo links to up to 64 near neighbours, kept by hnswlib's heuristic: a copy
    may be left out of one photo's list when another copy is nearer to it, but the copies
    stay linked among themselves (the groups' closure adds the pairs between them). Only
    photos in ``alive`` (the catalog's) count; a photo newer than the file is the
    caller's to look up. Vectors are held as float16 while the pass runs (333 MB at
    100,000 x 1664) and scored in float32."""
    from lookalike.core import hnswfile

    try:
        header = hnswfile.Header.read(path)
    except (OSError, ValueError):
        return None
    if header.label_offset != header.data_offset + 4 * dim or header.count == 0:
        return None
    n, m0 = header.count, header.max_m0
    labels = np.empty(n, np.int64)
    vecs = np.empty((n, dim), np.float16)
    links = np.empty((n, m0), np.int64)
    cols = np.arange(m0)
    try:
        for start, recs in hnswfile.read_records(path, header):
            k = len(recs)
            words = np.ascontiguousarray(recs[:, : 4 * (1 + m0)]).view(np.uint32)
            count = (words[:, 0] & 0xFFFF).astype(np.int64)
            deleted = (words[:, 0] & (1 << 16)) != 0
            lk = words[:, 1:].astype(np.int64)
            lk[(cols[None, :] >= count[:, None]) | (lk >= n)] = -1
            links[start : start + k] = lk
            labels[start : start + k] = np.where(
                deleted,
                -1,
                np.ascontiguousarray(recs[:, header.label_offset : header.label_offset + 8]).view(np.int64)[:, 0],
            )
            vecs[start : start + k] = np.ascontiguousarray(recs[:, header.data_offset : header.label_offset]).view(
                np.float32
            )
    except (OSError, ValueError) as exc:
        log.warning("Cannot read the saved graph for duplicates (%s); searching it instead", exc)
        return None
    live = np.isin(labels, alive)
    rows, c = np.nonzero(links >= 0)
    src, dst = rows, links[rows, c]
    ok = live[src] & live[dst] & (src != dst)
    lo, hi = np.minimum(src[ok], dst[ok]), np.maximum(src[ok], dst[ok])
    pairs = np.unique(lo * n + hi)  # a link held both ways is one pair
    del rows, c, src, dst, ok, lo, hi, links
    got_a: list[np.ndarray] = []
    got_b: list[np.ndarray] = []
    got_s: list[np.ndarray] = []
    for start in range(0, len(pairs), chunk):
        i, j = np.divmod(pairs[start : start + chunk], n)
        cos = np.einsum("ij,ij->i", vecs[i].astype(np.float32), vecs[j].astype(np.float32))
        keep = cos >= min_cosine
        a, b = labels[i[keep]], labels[j[keep]]
        got_a.append(np.minimum(a, b))
        got_b.append(np.maximum(a, b))
        got_s.append(cos[keep])
    covered = labels[live]
    if not got_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), covered
    return np.concatenate(got_a), np.concatenate(got_b), np.concatenate(got_s).astype(np.float32), covered


def complete_linkage(nodes: Sequence[int], edges: dict[tuple[int, int], float]) -> list[list[int]]:
    """Split ``nodes`` into groups in which every pair is an edge. ``edges`` maps
    (a, b), a < b, to a distance in [0, 1): closer pairs join first."""
    import scipy.cluster.hierarchy as sch
    from scipy.spatial.distance import squareform

    n = len(nodes)
    if n < 2:
        return []
    pos = {v: i for i, v in enumerate(nodes)}
    d = np.full((n, n), 2.0)
    np.fill_diagonal(d, 0.0)
    for (a, b), dist in edges.items():
        i, j = pos[a], pos[b]
        d[i, j] = d[j, i] = dist
    if n == 2:
        return [list(nodes)] if d[0, 1] < 1.0 else []
    labels = sch.fcluster(sch.linkage(squareform(d, checks=False), method="complete"), t=1.0, criterion="distance")
    groups: dict[int, list[int]] = defaultdict(list)
    for v, lab in zip(nodes, labels):
        groups[int(lab)].append(v)
    return [sorted(g) for g in groups.values() if len(g) > 1]


# Above this many photos a connected part is split greedily instead (its distance
# matrix alone would take n*n*8 bytes).
LINKAGE_LIMIT = 4000


def _greedy_cliques(nodes: Sequence[int], edges: dict[tuple[int, int], float]) -> list[list[int]]:
    adj: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    left = set(nodes)
    out: list[list[int]] = []
    for a, b in sorted(edges, key=edges.__getitem__):
        if a not in left or b not in left:
            continue
        group = [a, b]
        for c in sorted(adj[a] & adj[b] & left, key=lambda c: edges.get((min(a, c), max(a, c)), 2.0)):
            if c not in group and all(c in adj[g] for g in group):
                group.append(c)
        left -= set(group)
        out.append(sorted(group))
    return out


def group_pairs(edges: dict[tuple[int, int], float]) -> list[list[int]]:
    """Groups from confirmed pairs: connected parts, each split by complete linkage."""
    parts = _components(edges)
    part_of = {v: i for i, nodes in enumerate(parts) for v in nodes}
    part_edges: list[dict[tuple[int, int], float]] = [{} for _ in parts]
    for e, dist in edges.items():
        part_edges[part_of[e[0]]][e] = dist
    out: list[list[int]] = []
    for nodes, part in zip(parts, part_edges):
        split = complete_linkage if len(nodes) <= LINKAGE_LIMIT else _greedy_cliques
        out.extend(split(nodes, part))
    return sorted(out)


@dataclass(frozen=True)
class RawGroup:
    kind: DuplicateKind
    ids: tuple[int, ...]


def find_groups(
    catalog: Catalog,
    vectors: VectorIndex,
    model_name: str,
    *,
    kinds: Iterable[DuplicateKind] = (DuplicateKind.EXACT, DuplicateKind.NEAR),
    burst_seconds: float = BURST_SECONDS,
    stats: FindStats | None = None,
    fingerprints: Callable[[Sequence[int]], dict[int, fingerprint.Fingerprint]] | None = None,
    graph_file: Path | None = None,
) -> list[RawGroup]:
    """Duplicate groups of the library. Exact and near groups never share a photo: a
    group whose members all have one content hash is exact, otherwise near. Similar
    shots are grouped among the photos left over plus one photo of each group.
    ``graph_file``: the saved graph, whose links give the candidates without a search
    (:func:`graph_link_pairs`); photos it does not hold are searched for."""
    kinds = set(kinds)
    stats = stats if stats is not None else FindStats()
    th = thresholds_for(model_name)
    stats.photos = len(vectors)
    want_dups = bool(kinds & {DuplicateKind.EXACT, DuplicateKind.NEAR})
    want_similar = DuplicateKind.SIMILAR in kinds
    t0 = time.perf_counter()
    low = min(th.near, th.similar) if want_similar else th.near
    if DuplicateKind.NEAR in kinds or want_similar:
        a, b, cos = candidate_pairs(catalog, vectors, low, graph_file, stats)
    else:
        a, b, cos = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    stats.neighbour_seconds = time.perf_counter() - t0
    hashes = _hashes(catalog)
    edges: dict[tuple[int, int], float] = {}
    for ids in exact_sets(catalog) if want_dups else []:
        for i, x in enumerate(ids):
            for y in ids[i + 1 :]:
                edges[(x, y)] = 0.0
    if DuplicateKind.NEAR in kinds:
        near = cos >= th.near
        cand = [(int(x), int(y)) for x, y in zip(a[near], b[near]) if hashes.get(int(x)) != hashes.get(int(y))]
        stats.candidates = len(cand)
        t1 = time.perf_counter()
        need = sorted({v for p in cand for v in p})
        get_prints = fingerprints or (lambda ids: fingerprint.ensure(catalog, ids))
        prints = get_prints(need)
        stats.fingerprinted = len(need)
        stats.fingerprint_seconds = time.perf_counter() - t1
        for x, y in cand:
            _confirm(edges, prints, x, y)
        close_groups(catalog.vectors_of, edges, prints, get_prints, th.near, hashes)
        stats.confirmed = len(edges)
    t2 = time.perf_counter()
    out: list[RawGroup] = []
    grouped: set[int] = set()
    for g in group_pairs(edges) if want_dups else []:
        kind = DuplicateKind.EXACT if len({hashes.get(v) for v in g}) == 1 else DuplicateKind.NEAR
        grouped.update(g)
        if kind in kinds:
            out.append(RawGroup(kind, tuple(g)))
    if want_similar:
        out.extend(_similar(catalog, a, b, cos, th.similar, burst_seconds, grouped, out))
    stats.group_seconds = time.perf_counter() - t2
    return out


def candidate_pairs(
    catalog: Catalog, vectors: VectorIndex, min_cosine: float, graph_file: Path | None, stats: FindStats
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of look-alikes: along the saved graph's links when there is one to read, and
    by searching the graph for the photos it does not hold (or for all of them)."""
    alive = catalog.all_ids()
    linked = graph_link_pairs(graph_file, vectors.dim, min_cosine, alive) if graph_file is not None else None
    if linked is None:
        stats.extra["searched"] = float(len(alive))
        return neighbour_pairs(vectors, min_cosine)
    a, b, cos, covered = linked
    rest = np.setdiff1d(alive, covered)
    stats.extra["searched"] = float(rest.size)
    if rest.size:
        a2, b2, c2 = neighbour_pairs(vectors, min_cosine, ids=rest)
        a, b, cos = np.concatenate([a, a2]), np.concatenate([b, b2]), np.concatenate([cos, c2])
        if a.size:
            _, first = np.unique(a * (int(b.max()) + 1) + b, return_index=True)
            a, b, cos = a[first], b[first], cos[first]
    return a, b, cos


def _confirm(edges: dict[tuple[int, int], float], prints: dict[int, fingerprint.Fingerprint], x: int, y: int) -> bool:
    """Add the pair (x < y) if the fingerprints say it is the same photo."""
    fx, fy = prints.get(x), prints.get(y)
    if fx is None or fy is None or fx.percept is None or fy.percept is None:
        return False
    dist = fingerprint.judge(fx.percept, fy.percept)
    if dist is None:
        return False
    # Exact copies (0) join first; then the closest fingerprints.
    edges[(x, y)] = 0.01 + 0.98 * dist / (fingerprint.PERCEPT_LIMIT + 1)
    return True


CLOSURE_LIMIT = 200  # photos in a connected part whose every pair is checked


def close_groups(
    vectors_of: Callable[[Sequence[int]], tuple[np.ndarray, np.ndarray]],
    edges: dict[tuple[int, int], float],
    prints: dict[int, fingerprint.Fingerprint],
    get_prints: Callable[[Sequence[int]], dict[int, fingerprint.Fingerprint]],
    near: float,
    hashes: dict[int, str],
) -> None:
    """Within each connected part of the confirmed pairs, check the pairs that no
    candidate list held (the graph may link a copy to its nearest copy only), so that
    complete linkage sees every pair of a family of copies."""
    parts = _components(edges)
    todo = [p for p in parts if 3 <= len(p) <= CLOSURE_LIMIT]
    if not todo:
        return
    missing = sorted({v for p in todo for v in p if v not in prints})
    if missing:
        prints.update(get_prints(missing))
    for part in todo:
        ids, vecs = vectors_of(part)
        if len(ids) < 3:
            continue
        sims = vecs @ vecs.T
        ids_l = ids.tolist()
        for i, x in enumerate(ids_l):
            for j in range(i + 1, len(ids_l)):
                y = ids_l[j]
                key = (min(x, y), max(x, y))
                if key in edges:
                    continue
                if hashes.get(x) is not None and hashes.get(x) == hashes.get(y):
                    edges[key] = 0.0
                elif sims[i, j] >= near:
                    _confirm(edges, prints, *key)


def _components(edges: dict[tuple[int, int], float]) -> list[list[int]]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    parts: dict[int, list[int]] = defaultdict(list)
    for v in list(parent):
        parts[find(v)].append(v)
    return [sorted(p) for p in parts.values()]


def _hashes(catalog: Catalog) -> dict[int, str]:
    return dict(catalog.query("SELECT id, hash FROM photos"))


def _similar(
    catalog: Catalog,
    a: np.ndarray,
    b: np.ndarray,
    cos: np.ndarray,
    min_cosine: float,
    burst_seconds: float,
    grouped: set[int],
    dup_groups: list[RawGroup],
) -> list[RawGroup]:
    """Bursts: pairs above ``min_cosine`` taken within ``burst_seconds``. A duplicate
    group takes part through its first photo only (its copies are the duplicates' business)."""
    taken = dict(catalog.query("SELECT id, taken FROM photos WHERE taken IS NOT NULL"))
    stand_in = {v: g.ids[0] for g in dup_groups for v in g.ids}
    firsts = set(stand_in.values())
    edges: dict[tuple[int, int], float] = {}
    keep = cos >= min_cosine
    span = max(1e-9, 1.0 - min_cosine)
    for x, y, c in zip(a[keep].tolist(), b[keep].tolist(), cos[keep].tolist()):
        x, y = stand_in.get(x, x), stand_in.get(y, y)
        if x == y or (x in grouped and x not in firsts) or (y in grouped and y not in firsts):
            continue
        tx, ty = taken.get(x), taken.get(y)
        if tx is None or ty is None or abs(tx - ty) > burst_seconds:
            continue
        # Closer in time and in look joins first; always under 1 (every such pair may group).
        dist = 0.49 * abs(tx - ty) / max(burst_seconds, 1e-9) + 0.49 * min(1.0, (1.0 - c) / span)
        key = (min(x, y), max(x, y))
        edges[key] = min(edges.get(key, 1.0), dist)
    # The graph's links may join a shot to the burst's nearest shot only (11 of 48 burst
    # pairs of the labelled set were missing): within each part every pair is scored, so
    # that complete linkage does not split a burst for want of a pair it never saw.
    for part in _components(edges):
        if not 3 <= len(part) <= CLOSURE_LIMIT:
            continue
        ids, vecs = catalog.vectors_of(part)
        sims = vecs @ vecs.T
        ids_l = ids.tolist()
        for i, x in enumerate(ids_l):
            for j in range(i + 1, len(ids_l)):
                y = ids_l[j]
                key = (min(x, y), max(x, y))
                tx, ty = taken.get(x), taken.get(y)
                if key in edges or sims[i, j] < min_cosine or tx is None or ty is None:
                    continue
                if abs(tx - ty) <= burst_seconds:
                    edges[key] = 0.49 * abs(tx - ty) / max(burst_seconds, 1e-9) + 0.49 * min(
                        1.0, (1.0 - float(sims[i, j])) / span
                    )
    return [RawGroup(DuplicateKind.SIMILAR, tuple(g)) for g in group_pairs(edges)]
