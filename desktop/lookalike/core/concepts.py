"""Concepts taught from examples, and where tags and concepts live in the catalog.

A concept ("Luna", "my bike", "receipts") is a name, the photos the user gave
as examples and counter-examples, and the marks they made on results (right
or wrong). Those are the user's data: they are kept by path and content hash,
so they survive re-indexing, moves and a model switch, and are never dropped
by anything but the user deleting the concept or the example.

What is learned from them (see :mod:`lookalike.core.learning`) is a cache: a
unit direction in the current model's space, the method that won on the
examples, a threshold, and the photos at or above it (``photo_concepts``). It
is rebuilt whenever the examples change, the model changes, or new photos are
indexed (:meth:`Concepts.update`).
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.catalog import Catalog, pkey, unkey
from lookalike.core.concepts_schema import MIGRATION  # noqa: F401  (the catalog applies it as step 3)
from lookalike.core.errors import LookalikeError, UsageError
from lookalike.core.learning import (
    Method,
    Scorer,
    TrainingSet,
    choose_method,
    held_out_scores,
    one_thread,
    threshold,
    train,
    uncertain,
)

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.vectors import VectorIndex

log = logging.getLogger(__name__)

#: Random library photos that stand in as weak negatives when a concept is learned.
BACKGROUND = 256
#: Photos offered for marking after each change.
OFFER = 12
MAX_NAME = 80


@dataclass(frozen=True)
class Example:
    path: Path
    hash: str
    right: bool  # an example (or marked right) versus a counter-example (or marked wrong)
    marked: bool  # from a mark on a result rather than taught
    photo_id: int | None  # where it is in the library now (None: not found)


@dataclass(frozen=True)
class ConceptInfo:
    id: int
    name: str
    examples: int
    counter_examples: int
    photos: int  # photos at or above the threshold
    method: str
    threshold: float | None
    created: float
    updated: float
    evaluation: dict[str, float]  # leave-one-out score per method, when there were enough examples


@dataclass(frozen=True)
class Learned:
    """What one (re)learning did: for the window and the command line."""

    concept: ConceptInfo
    offered: tuple[int, ...]  # photo ids the concept is least sure about, to mark next
    seconds: float
    missing: tuple[Path, ...] = ()  # examples not found in the library (kept, unused)


def check_name(name: str) -> str:
    clean = " ".join(str(name).split())
    if not clean:
        raise UsageError("a concept needs a name")
    if len(clean) > MAX_NAME:
        raise UsageError(f"a concept's name is at most {MAX_NAME} characters")
    if clean.startswith(("#", "@")) or any(c in clean for c in "\"'"):
        raise UsageError(f"a concept's name cannot begin with # or @ or contain quotes: {clean!r}")
    return clean


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


class Concepts:
    """The concepts of one library: teach, mark, rename, delete, and their photos."""

    def __init__(self, catalog: Catalog, *, matrix: LibraryMatrix | None = None) -> None:
        self.catalog = catalog
        self.matrix = matrix or LibraryMatrix(catalog)
        self._lock = threading.RLock()

    # -- reading ------------------------------------------------------------------

    def model_key(self) -> str:
        m = self.catalog.meta()
        return f"{m.get('encoder_id', '')}:{m.get('weights_checksum', '')}"

    def list(self) -> list[ConceptInfo]:
        rows = self.catalog.query(
            "SELECT c.id, c.name, c.method, c.threshold, c.created, c.updated, c.evaluation, "
            "(SELECT COUNT(*) FROM concept_examples e WHERE e.concept_id = c.id AND e.label = 1), "
            "(SELECT COUNT(*) FROM concept_examples e WHERE e.concept_id = c.id AND e.label = 0), "
            "(SELECT COUNT(*) FROM photo_concepts p WHERE p.concept_id = c.id) "
            "FROM concepts c ORDER BY c.name COLLATE NOCASE"
        )
        return [
            ConceptInfo(r[0], r[1], r[7], r[8], r[9], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}")) for r in rows
        ]

    def find(self, name: str) -> ConceptInfo | None:
        key = " ".join(str(name).split())
        return next((c for c in self.list() if c.name.casefold() == key.casefold()), None)

    def get(self, name: str) -> ConceptInfo:
        info = self.find(name)
        if info is None:
            known = ", ".join(c.name for c in self.list()) or "none yet"
            raise LookalikeError(f"There is no concept named {name!r} (concepts: {known})")
        return info

    def examples(self, name: str) -> builtins.list[Example]:
        info = self.get(name)
        rows = self.catalog.query(
            "SELECT e.path, e.hash, e.label, e.origin, "
            "COALESCE((SELECT id FROM photos p WHERE p.path = e.path), "
            "(SELECT id FROM photos p WHERE p.hash = e.hash LIMIT 1)) "
            "FROM concept_examples e WHERE e.concept_id = ? ORDER BY e.added, e.path",
            (info.id,),
        )
        return [Example(unkey(r[0]), r[1], bool(r[2]), r[3] == "marked", r[4]) for r in rows]

    def scorer(self, name: str) -> Scorer:
        """The concept's learned direction (relearned first if the model changed)."""
        info = self.get(name)
        self.ensure_current()
        rows = self.catalog.query("SELECT method, direction FROM concepts WHERE id = ?", (info.id,))
        if not rows or rows[0][1] is None:
            raise LookalikeError(f"The concept {info.name!r} has no examples in this library yet")
        return Scorer(Method(rows[0][0]), np.frombuffer(rows[0][1], dtype=np.float32).copy())

    def query_direction(self, term, source: str) -> np.ndarray:
        """A ``#name`` query term's direction; an unknown or empty concept is a QueryError at its column."""
        from lookalike.core.errors import QueryError

        if self.find(term.value) is None:
            known = ", ".join(c.name for c in self.list()) or "none yet; teach one first"
            raise QueryError(f"no concept named {term.value!r} (concepts: {known})", source, term.column)
        try:
            return self.scorer(term.value).direction
        except LookalikeError as exc:
            raise QueryError(str(exc), source, term.column) from None

    def photo_ids(self, name: str) -> np.ndarray:
        """The photos the concept accepts (score at or above its threshold)."""
        info = self.get(name)
        self.ensure_current()
        rows = self.catalog.query("SELECT photo_id FROM photo_concepts WHERE concept_id = ?", (info.id,))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def concepts_of(self, photo_id: int) -> builtins.list[tuple[str, float]]:
        rows = self.catalog.query(
            "SELECT c.name, p.score FROM photo_concepts p JOIN concepts c ON c.id = p.concept_id "
            "WHERE p.photo_id = ? ORDER BY p.score DESC",
            (photo_id,),
        )
        return [(r[0], float(r[1])) for r in rows]

    def offered(self, name: str, k: int = OFFER) -> tuple[int, ...]:
        """The photos the concept is least sure about now, to mark next: those scoring nearest
        its threshold over the whole library, its examples and marks left out (what
        :meth:`learn` offers as :attr:`Learned.offered`)."""
        info = self.get(name)
        if not info.method or info.threshold is None:
            return ()
        scorer = self.scorer(info.name)
        info = self.get(info.name)  # (relearned by scorer() if it was stale)
        ids, scores = self.matrix.scores(scorer.direction)
        known = np.asarray([e.photo_id for e in self.examples(info.name) if e.photo_id is not None], np.int64)
        used = np.flatnonzero(np.isin(ids, known))
        cut = info.threshold if info.threshold is not None else 0.0
        return tuple(int(i) for i in ids[uncertain(scores, cut, used, k)])

    def ranked(self, name: str, k: int = 50) -> builtins.list[tuple[int, float]]:
        """The library ranked by the concept: (photo id, score), best first."""
        scorer = self.scorer(name)
        ids, s = self.matrix.scores(scorer.direction)
        if len(ids) == 0:
            return []
        k = min(k, len(ids))
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        return [(int(ids[i]), float(s[i])) for i in top]

    # -- writing ------------------------------------------------------------------

    def _photo_for(self, path: Path) -> tuple[Path, str, int]:
        p = Path(path).expanduser()
        try:
            p = p.resolve(strict=True)
        except (OSError, RuntimeError):
            raise LookalikeError(f"There is no photo at {path}") from None
        row = self.catalog.photo_by_path(p)
        if row is None:
            raise LookalikeError(f"{p} is not in the library: add its folder and index it first")
        return row.path, row.hash, row.id

    def teach(self, name: str, examples: Sequence[Path | str], counter_examples: Sequence[Path | str] = ()) -> Learned:
        """Create the concept ``name`` (or add to it) from photos in the library, and learn it."""
        name = check_name(name)
        if not examples and self.find(name) is None:
            raise UsageError("teach a concept with at least one example photo")
        pos = [self._photo_for(Path(p)) for p in examples]
        neg = [self._photo_for(Path(p)) for p in counter_examples]
        overlap = {p for p, _, _ in pos} & {p for p, _, _ in neg}
        if overlap:
            raise UsageError(f"a photo cannot be both an example and a counter-example: {sorted(overlap)[0]}")
        now = time.time()
        with self._lock, self.catalog.transaction() as conn:
            cid = self._ensure(conn, name, now)
            for items, label in ((pos, 1), (neg, 0)):
                for path, digest, _ in items:
                    self._put_example(conn, cid, path, digest, label, "taught", now)
        return self.learn(name, choose=True)

    def mark(self, name: str, photo: Path | str | int, right: bool) -> Learned:
        """A result marked right (it shows the concept) or wrong; retrains at once."""
        info = self.get(name)
        if isinstance(photo, int):
            row = self.catalog.photos_by_ids([photo]).get(photo)
            if row is None:
                raise LookalikeError(f"No photo {photo} in the library")
            path, digest = row.path, row.hash
        else:
            path, digest, _ = self._photo_for(Path(photo))
        with self._lock, self.catalog.transaction() as conn:
            self._put_example(conn, info.id, path, digest, 1 if right else 0, "marked", time.time())
        return self.learn(info.name, choose=False)

    def forget(self, name: str, photo: Path | str) -> Learned:
        """Take a photo out of the concept's examples and marks (the user's choice)."""
        info = self.get(name)
        p = Path(photo).expanduser().absolute()
        with self._lock, self.catalog.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM concept_examples WHERE concept_id = ? AND path = ?", (info.id, pkey(os.path.normpath(p)))
            )
            if cur.rowcount == 0:
                raise LookalikeError(f"{p} is not one of {info.name!r}'s examples")
            self._unlearned(conn, info.id)
        return self.learn(info.name, choose=True)

    def rename(self, old: str, new: str) -> ConceptInfo:
        info = self.get(old)
        new = check_name(new)
        other = self.find(new)
        if other is not None and other.id != info.id:
            raise LookalikeError(f"There is already a concept named {other.name!r}")
        with self._lock, self.catalog.transaction() as conn:
            conn.execute("UPDATE concepts SET name = ?, updated = ? WHERE id = ?", (new, time.time(), info.id))
        return self.get(new)

    def delete(self, name: str) -> ConceptInfo:
        info = self.get(name)
        with self._lock, self.catalog.transaction() as conn:
            conn.execute("DELETE FROM concepts WHERE id = ?", (info.id,))
        return info

    def adopt(self, other: Catalog) -> int:
        """Bring the concepts of another library (the one of the model before a switch) into
        this one: names, examples and marks, as the user gave them. They are learned on this
        library's vectors at the next update. Concepts of the same name here are left alone.
        Only a library still empty of photos adopts (one being built for the new model): a
        library used before keeps its own concepts, and one deleted there is never brought
        back. Returns how many were brought."""
        if self.catalog.photo_count() > 0:
            return 0
        theirs = other.query("SELECT id, name, created FROM concepts ORDER BY id")
        brought = 0
        with self._lock, self.catalog.transaction() as conn:
            for cid, name, created in theirs:
                if conn.execute("SELECT 1 FROM concepts WHERE name = ?", (name,)).fetchone():
                    continue
                new = conn.execute(
                    "INSERT INTO concepts(name, created, updated) VALUES(?, ?, ?)", (name, created, time.time())
                ).lastrowid
                conn.executemany(
                    "INSERT OR IGNORE INTO concept_examples(concept_id, path, hash, label, origin, added) "
                    "VALUES(?,?,?,?,?,?)",
                    [
                        (new, *row)
                        for row in other.query(
                            "SELECT path, hash, label, origin, added FROM concept_examples WHERE concept_id = ?",
                            (cid,),
                        )
                    ],
                )
                brought += 1
        return brought

    @staticmethod
    def _ensure(conn: sqlite3.Connection, name: str, now: float) -> int:
        row = conn.execute("SELECT id FROM concepts WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        cur = conn.execute("INSERT INTO concepts(name, created, updated) VALUES(?, ?, ?)", (name, now, now))
        assert cur.lastrowid is not None  # an INSERT always sets it
        return int(cur.lastrowid)

    @staticmethod
    def _unlearned(conn: sqlite3.Connection, cid: int) -> None:
        """Mark the concept as not learned on its examples as they now are, in the transaction
        that changes them: a run killed before it learns leaves it marked, and the next
        :meth:`ensure_current` (an index, or any use of the concept) learns it again."""
        conn.execute("UPDATE concepts SET model = '' WHERE id = ?", (cid,))

    @staticmethod
    def _put_example(
        conn: sqlite3.Connection, cid: int, path: Path, digest: str, label: int, origin: str, now: float
    ) -> None:
        conn.execute(
            "INSERT INTO concept_examples(concept_id, path, hash, label, origin, added) VALUES(?,?,?,?,?,?) "
            "ON CONFLICT(concept_id, path) DO UPDATE SET label = excluded.label, hash = excluded.hash, "
            "origin = CASE WHEN concept_examples.origin = 'taught' THEN 'taught' ELSE excluded.origin END",
            (cid, pkey(path), digest, label, origin, now),
        )
        Concepts._unlearned(conn, cid)  # learned again by the caller; if it is killed first, at the next update

    # -- learning -----------------------------------------------------------------

    def _training(self, examples: builtins.list[Example], ids: np.ndarray, seed: int):
        """The training set (only its photos' vectors are read) and the positions in ``ids``
        (every photo's id, ascending) of the photos it was taught with."""
        known = np.asarray([e.photo_id for e in examples if e.photo_id is not None], np.int64)
        at = np.minimum(np.searchsorted(ids, known), max(0, len(ids) - 1))
        index = {int(i): int(k) for i, k in zip(known.tolist(), at.tolist()) if len(ids) and ids[k] == i}
        taught_pos: builtins.list[int] = []
        taught_neg: builtins.list[int] = []
        marked_pos: builtins.list[int] = []
        marked_neg: builtins.list[int] = []
        used: set[int] = set()
        for e in examples:
            k = index.get(e.photo_id) if e.photo_id is not None else None
            if k is None:
                continue
            used.add(k)
            target = (marked_pos if e.marked else taught_pos) if e.right else (marked_neg if e.marked else taught_neg)
            target.append(k)
        rng = np.random.default_rng(seed)
        pool = np.setdiff1d(np.arange(len(ids)), np.fromiter(used, np.int64, len(used)))
        bg = rng.choice(pool, size=min(BACKGROUND, len(pool)), replace=False) if len(pool) else pool
        pos_idx = taught_pos + marked_pos
        neg_idx = taught_neg + marked_neg
        bg = np.sort(bg)
        vecs = self.matrix.rows(ids[np.concatenate([np.asarray(pos_idx + neg_idx, np.int64), bg]).astype(np.int64)])
        p, n = len(pos_idx), len(neg_idx)
        data = TrainingSet(vecs[:p], vecs[p : p + n], vecs[p + n :])
        return data, np.asarray(sorted(used), dtype=np.int64)

    def learn(self, name: str, *, choose: bool = True) -> Learned:
        """(Re)learn a concept from its examples and marks on the current vectors, and
        store its direction, threshold and photos. ``choose`` runs the leave-one-out
        comparison of methods; without it the method chosen last time is kept (a mark
        retrains in well under a second)."""
        start = time.perf_counter()
        with self._lock, one_thread():
            info = self.get(name)
            examples = self.examples(info.name)
            ids = self.matrix.ids()
            missing = tuple(e.path for e in examples if e.photo_id is None)
            data, used = self._training(examples, ids, seed=info.id)
            if len(data.positives) == 0:
                self._store(info.id, None, None, None, np.zeros(0, np.int64), np.zeros(0), {})
                return Learned(self.get(info.name), (), time.perf_counter() - start, missing)
            evaluation = info.evaluation
            if choose or not info.method:
                pick = choose_method(data)
                method, evaluation = pick.method, pick.scores
                held = pick.held_out.get(str(method))
            else:
                method = Method(info.method)
                # a mark retrains at once: held-out scores only where they are cheap
                cheap = method != Method.METRIC and len(data.positives) <= 20
                held = held_out_scores(method, data) if cheap and len(data.positives) > 1 else None
            scorer = train(method, data)
            scored_ids, scores = self.matrix.scores(scorer.direction)
            if not np.array_equal(scored_ids, ids):  # the library changed meanwhile
                used = np.searchsorted(scored_ids, np.intersect1d(ids[used], scored_ids))
                ids = scored_ids
            cut = threshold(scorer, data, held_out=held, library_scores=scores)
            keep = scores >= cut
            self._store(info.id, method, scorer.direction, cut, ids[keep], scores[keep], evaluation)
            offered = ids[uncertain(scores, cut, used, OFFER)]
        return Learned(self.get(info.name), tuple(int(i) for i in offered), time.perf_counter() - start, missing)

    def _store(self, cid, method, direction, cut, member_ids, member_scores, evaluation) -> None:
        with self.catalog.transaction() as conn:
            conn.execute(
                "UPDATE concepts SET method = ?, direction = ?, threshold = ?, model = ?, evaluation = ?, "
                "updated = ? WHERE id = ?",
                (
                    str(method or ""),
                    None if direction is None else np.asarray(direction, np.float32).tobytes(),
                    cut,
                    self.model_key(),
                    json.dumps(evaluation),
                    time.time(),
                    cid,
                ),
            )
            conn.execute("DELETE FROM photo_concepts WHERE concept_id = ?", (cid,))
            conn.executemany(
                "INSERT INTO photo_concepts(concept_id, photo_id, score) VALUES(?,?,?)",
                [(cid, int(i), float(s)) for i, s in zip(member_ids.tolist(), member_scores.tolist())],
            )

    def stale(self) -> builtins.list[str]:
        """The concepts :meth:`ensure_current` would learn again."""
        return [r[0] for r in self.catalog.query("SELECT name FROM concepts WHERE model != ?", (self.model_key(),))]

    def ensure_current(self) -> int:
        """Relearn every concept learned on another model (after a model switch), or not
        learned on its examples as they are (a run killed between saving them and learning,
        a concept brought from another library); how many."""
        key = self.model_key()
        stale = self.catalog.query("SELECT name FROM concepts WHERE model != ?", (key,))
        if stale and not self.catalog.readonly:
            for (name,) in stale:
                log.info("relearning the concept %r on the current model", name)
                self.learn(name, choose=True)
        return len(stale)

    def update(self, photo_ids: np.ndarray | None = None) -> int:
        """Score ``photo_ids`` (default: the photos indexed since the last pass) against
        every concept, at each concept's own threshold. Returns how many were scored."""
        if self.catalog.readonly:
            return 0
        self.ensure_current()
        rows = self.catalog.query("SELECT id, direction, threshold FROM concepts WHERE direction IS NOT NULL")
        if photo_ids is None:
            photo_ids = new_photo_ids(self.catalog)
        photo_ids = np.asarray(photo_ids, dtype=np.int64)
        if len(photo_ids) == 0:  # (a re-scan that found nothing new reads no vectors)
            return 0
        sel_ids, sel = self.catalog.vectors_of(photo_ids)  # only the new photos' vectors
        if len(sel_ids) == 0:
            return 0
        inserts = []
        for cid, blob, cut in rows:
            s = sel @ np.frombuffer(blob, dtype=np.float32)
            hit = s >= cut
            inserts += [(cid, int(i), float(v)) for i, v in zip(sel_ids[hit].tolist(), s[hit].tolist())]
        with self.catalog.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO photo_concepts(concept_id, photo_id, score) VALUES(?,?,?)", inserts
            )
        return int(len(sel_ids))


def new_photo_ids(catalog: Catalog) -> np.ndarray:
    """Photos indexed since tags and concepts last looked (new or changed photos get new ids)."""
    rows = catalog.query("SELECT id FROM photos WHERE id NOT IN (SELECT photo_id FROM photo_learned) ORDER BY id")
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


@dataclass(frozen=True)
class LearnReport:
    photos: int  # photos looked at
    tagged: int
    concepts: int


class Learner:
    """Tags and concepts of one library together: what the facade holds and calls after
    each indexing run, so that new photos get their tags and concepts."""

    def __init__(
        self,
        catalog: Catalog,
        encode_texts: Callable[[list[str]], np.ndarray] | None = None,
        vectors: Callable[[], VectorIndex | None] | None = None,
    ) -> None:
        """``vectors``: the library's vector index (None while it has no model), where
        learning reads vectors; without it, from the catalog."""
        from lookalike.core.tags import Tags

        self.catalog = catalog
        self.matrix = LibraryMatrix(catalog, vectors)
        self.tags = Tags(catalog, self.matrix, encode_texts)
        self.concepts = Concepts(catalog, matrix=self.matrix)
        from lookalike.core.user_tags import UserTags

        self.user_tags = UserTags(catalog, self.concepts, self.tags)

    def update(self) -> LearnReport:
        if self.catalog.readonly:
            return LearnReport(0, 0, 0)
        new = new_photo_ids(self.catalog)
        self.concepts.ensure_current()
        if len(new):  # keywords the photos already carry (XMP, IPTC, sidecars) are the user's tags
            from lookalike.core.keywords import import_keywords

            import_keywords(self.user_tags, new.tolist())
        tagged = self.tags.update(new)
        scored = self.concepts.update(new)
        with self.catalog.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO photo_learned(photo_id) VALUES(?)", [(int(i),) for i in new])
        return LearnReport(int(len(new)), tagged, scored)
