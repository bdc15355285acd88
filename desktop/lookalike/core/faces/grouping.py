"""Grouping faces into people: incremental, constrained, stricter than verification.

dlib's embedding puts one person's faces within Euclidean 0.6 of each other
(its verification threshold). For automatic grouping we link two faces only
below :data:`AUTO_FACTOR` x that (0.55 for dlib), because a wrong merge costs a
user more than a split: measured on the test photos (docs/models.md, "Faces"),
the farthest nearest-neighbour of one person's faces is 0.52 and the nearest two
different people come is 0.70, so 0.55 keeps every person whole with a margin of
0.15 to the closest stranger. Faces between 0.55 and 0.6 of a named person's
confirmed faces become suggestions instead.

Grouping works on the faces not grouped yet (``faces.grouped = 0``), so new
photos join the people that exist: each new face is linked to its nearest faces
(the face graph), links are taken shortest first (single linkage, like
Kruskal's algorithm) and a link is refused when it would

* put two faces of one photo into one person,
* merge two people that exist already (only a user merges people),
* put a face into a person the user said it is not ("not this person").

A group with no existing person becomes a new, unnamed person. Faces under the
quality bar (too small, blurred, cut off) are kept out: stored, shown in the
preview, nameable by hand, never grouped automatically. Faces a user put
somewhere (``confirmed``) are never moved.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from lookalike.core.faces.carry import apply_carried
from lookalike.core.faces.index import FaceIndex
from lookalike.core.faces.model import MIN_CLUSTER_QUALITY, distances
from lookalike.core.faces.store import FaceStore

log = logging.getLogger(__name__)

AUTO_FACTOR = 0.55 / 0.6  # of the model's verification threshold: automatic links
NEIGHBOURS = 24  # faces looked at around each new face


@dataclass(frozen=True)
class Thresholds:
    auto: float  # link two faces automatically below this distance
    suggest: float  # suggest a named person below this distance

    @classmethod
    def for_model(cls, threshold: float) -> Thresholds:
        return cls(auto=threshold * AUTO_FACTOR, suggest=threshold)


@dataclass(frozen=True)
class GroupingReport:
    faces: int = 0  # faces looked at
    joined: int = 0  # joined a person that existed
    new_people: int = 0
    suggestions: int = 0
    seconds: float = 0.0


class _Groups:
    """Union-find over new faces ('f', id) and existing people ('p', id)."""

    def __init__(self) -> None:
        self.parent: dict[tuple[str, int], tuple[str, int]] = {}
        self.photos: dict[tuple[str, int], set[int]] = {}
        self.person: dict[tuple[str, int], int | None] = {}
        self.rejected: dict[tuple[str, int], set[int]] = {}

    def add(self, node: tuple[str, int], photos: set[int], person: int | None, rejected: set[int]) -> None:
        if node not in self.parent:
            self.parent[node] = node
            self.photos[node] = set(photos)
            self.person[node] = person
            self.rejected[node] = set(rejected)

    def find(self, node: tuple[str, int]) -> tuple[str, int]:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: tuple[str, int], b: tuple[str, int]) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        pa, pb = self.person[ra], self.person[rb]
        if pa is not None and pb is not None:
            return False  # two people that exist: only a user merges them
        person = pa if pa is not None else pb
        if self.photos[ra] & self.photos[rb]:
            return False  # two faces of one photo are never one person
        rejected = self.rejected[ra] | self.rejected[rb]
        if person is not None and person in rejected:
            return False
        if len(self.photos[ra]) < len(self.photos[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.photos[ra] |= self.photos.pop(rb)
        self.rejected[ra] = rejected
        self.rejected.pop(rb, None)
        self.person[ra] = person
        return True


@dataclass
class _Batch:
    """The faces being grouped and what grouping knows around them."""

    ids: list[int]
    photo_of: dict[int, int]
    nbr_ids: np.ndarray
    nbr_d: np.ndarray
    info: dict[int, tuple[int, int | None, bool, float]]  # neighbours not in the batch
    rejected: dict[int, set[int]]
    named: set[int]


def _gather(store: FaceStore, index: FaceIndex, good: list[tuple[int, int]], limits: Thresholds) -> _Batch:
    ids = [fid for fid, _ in good]
    nbr_ids, nbr_d = index.search(store.vectors(ids, index.dim), NEIGHBOURS + 1)
    near = {int(n) for row_i, row_d in zip(nbr_ids, nbr_d) for n, d in zip(row_i, row_d) if d <= limits.suggest}
    return _Batch(
        ids,
        dict(good),
        nbr_ids,
        nbr_d,
        store.face_info(near - set(ids)),
        store.rejections(ids),
        {p.id for p in store.people() if p.name},
    )


def _link(store: FaceStore, b: _Batch, limits: Thresholds) -> _Groups:
    """Union the batch's faces with each other and with people, shortest links first."""
    in_photo = store.person_photos_of(b.photo_of.values())
    groups = _Groups()
    for fid in b.ids:
        groups.add(("f", fid), {b.photo_of[fid]}, None, b.rejected.get(fid, set()))
    edges: list[tuple[float, int, tuple[str, int]]] = []
    pending = set(b.ids)
    for fid, row_i, row_d in zip(b.ids, b.nbr_ids, b.nbr_d):
        for n, d in zip(row_i.tolist(), row_d.tolist()):
            if n == fid or d > limits.auto:
                continue
            if n in pending:
                if n > fid:
                    edges.append((d, fid, ("f", n)))
                continue
            meta = b.info.get(n)
            if meta is None or meta[1] is None or meta[3] < MIN_CLUSTER_QUALITY:
                continue
            person = meta[1]
            groups.add(("p", person), {ph for ph, who in in_photo.items() if person in who}, person, set())
            edges.append((d, fid, ("p", person)))
    for _d, fid, other in sorted(edges):
        groups.union(("f", fid), other)
    return groups


def _suggestions(b: _Batch, assigned: dict[int, int], limits: Thresholds) -> dict[int, int]:
    """A named person within the model's threshold (but not within automatic reach)."""
    out: dict[int, int] = {}
    for fid, row_i, row_d in zip(b.ids, b.nbr_ids, b.nbr_d):
        mine = assigned.get(fid)
        if mine in b.named:
            continue
        for n, d in zip(row_i.tolist(), row_d.tolist()):
            meta = b.info.get(n)
            if n == fid or meta is None or d > limits.suggest:
                continue
            person = meta[1]
            if person in b.named and person != mine and person not in b.rejected.get(fid, set()):
                out[fid] = person
                break
    return out


def group_pending(store: FaceStore, index: FaceIndex, model_id: str, limits: Thresholds) -> GroupingReport:
    """Group every face not grouped yet; written in one transaction."""
    t0 = time.monotonic()
    apply_carried(store.catalog)  # decisions from the library before a model switch come first
    pending = store.ungrouped(model_id)
    if not pending:
        return GroupingReport()
    good = [(fid, photo) for fid, photo, q in pending if q >= MIN_CLUSTER_QUALITY]
    poor = [fid for fid, _p, q in pending if q < MIN_CLUSTER_QUALITY]
    assigned: dict[int, int] = {}  # face -> person that exists
    new_groups: dict[tuple[str, int], list[int]] = {}
    suggestions: dict[int, int] = {}
    if good:
        batch = _gather(store, index, good, limits)
        groups = _link(store, batch, limits)
        for fid in batch.ids:
            root = groups.find(("f", fid))
            person = groups.person[root]
            if person is not None:
                assigned[fid] = person
            else:
                new_groups.setdefault(root, []).append(fid)
        suggestions = _suggestions(batch, assigned, limits)
    now = time.time()
    with store.catalog.transaction() as conn:
        conn.executemany(
            "UPDATE faces SET person_id = ?, grouped = 1 WHERE id = ? AND confirmed = 0",
            [(p, f) for f, p in assigned.items()],
        )
        for members in new_groups.values():
            cur = conn.execute("INSERT INTO people(created) VALUES(?)", (now,))
            conn.executemany(
                "UPDATE faces SET person_id = ?, grouped = 1 WHERE id = ? AND confirmed = 0",
                [(cur.lastrowid, fid) for fid in members],
            )
        conn.executemany("UPDATE faces SET suggested_id = ? WHERE id = ?", [(p, f) for f, p in suggestions.items()])
        conn.executemany("UPDATE faces SET grouped = 1 WHERE id = ?", [(f,) for f in poor])
        conn.execute("UPDATE faces SET grouped = 1 WHERE grouped = 0 AND confirmed = 1")
    report = GroupingReport(len(pending), len(assigned), len(new_groups), len(suggestions), time.monotonic() - t0)
    log.info("Grouped %d faces: %d joined people, %d new people", report.faces, report.joined, report.new_people)
    return report


def absorb(store: FaceStore, index: FaceIndex, person_id: int, limits: Thresholds) -> tuple[int, int]:
    """One-shot naming: faces within automatic reach of the person's confirmed faces
    join it; those a little farther become suggestions. Never takes a face from
    another named person, a face a user placed, a face rejected for this person, or
    a second face of a photo the person is in already. Returns (joined, suggested)."""
    refs = [f for f in store.faces_of_person(person_id) if f.confirmed]
    if not refs:
        return 0, 0
    ref_vecs = store.vectors([f.id for f in refs], index.dim)
    nbr_ids, _d = index.search(ref_vecs, 64)
    candidates = sorted({int(i) for i in nbr_ids.ravel().tolist()})
    info = store.faces(candidates)
    named = {p.id for p in store.people() if p.name}
    taken_photos = set(store.photos_of_person(person_id))
    rejected = store.rejections(candidates)
    cands = [
        f
        for f in info.values()
        if f.person_id != person_id
        and not f.confirmed
        and f.quality >= MIN_CLUSTER_QUALITY
        and (f.person_id is None or f.person_id not in named)
        and person_id not in rejected.get(f.id, set())
    ]
    if not cands:
        return 0, 0
    d = distances(store.vectors([f.id for f in cands], index.dim), ref_vecs).min(axis=1)
    join: list[int] = []
    suggest: list[int] = []
    for f, dist in sorted(zip(cands, d.tolist()), key=lambda x: x[1]):
        if f.photo_id in taken_photos:
            continue
        if dist <= limits.auto:
            join.append(f.id)
            taken_photos.add(f.photo_id)
        elif dist <= limits.suggest:
            suggest.append(f.id)
    with store.catalog.transaction() as conn:
        conn.executemany(
            "UPDATE faces SET person_id = ?, suggested_id = NULL, grouped = 1 WHERE id = ?",
            [(person_id, f) for f in join],
        )
        conn.executemany("UPDATE faces SET suggested_id = ? WHERE id = ?", [(person_id, f) for f in suggest])
        drop_empty_people(conn)
    return len(join), len(suggest)


def drop_empty_people(conn) -> None:
    """Unnamed people left with no face (their faces moved to others) go; named ones stay."""
    conn.execute(
        "DELETE FROM people WHERE name IS NULL AND id NOT IN "
        "(SELECT DISTINCT person_id FROM faces WHERE person_id IS NOT NULL)"
    )


def pairwise_scores(labels: list[str], clusters: list[int | None]) -> dict[str, float]:
    """Pairwise precision/recall and BCubed precision/recall/F1 of a grouping against
    true labels. A face left out of grouping (None) counts as a group of its own."""
    n = len(labels)
    cl = [c if c is not None else -(i + 1) for i, c in enumerate(clusters)]
    lab = np.asarray(labels, dtype=object)
    cla = np.asarray(cl)
    same_l = lab[:, None] == lab[None, :]
    same_c = cla[:, None] == cla[None, :]
    off = ~np.eye(n, dtype=bool)
    tp = float((same_l & same_c & off).sum())
    pp = float((same_c & off).sum())
    ap = float((same_l & off).sum())
    both = (same_l & same_c).sum(1)
    bp = float(np.mean(both / same_c.sum(1)))
    br = float(np.mean(both / same_l.sum(1)))
    return {
        "pairwise_precision": tp / pp if pp else 1.0,
        "pairwise_recall": tp / ap if ap else 1.0,
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
    }
