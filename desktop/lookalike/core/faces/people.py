"""People: the service the command line, the window and search call.

It owns the library's face model record, the face graph, grouping and every
decision a user makes (names, merges, "not this person", hidden people), which
are rows of the catalog and so survive later runs and re-grouping.
"""

from __future__ import annotations

import difflib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.errors import LookalikeError, ModelMismatchError, QueryError, UsageError
from lookalike.core.faces import index as face_index
from lookalike.core.faces.grouping import GroupingReport, Thresholds, absorb, drop_empty_people, group_pending
from lookalike.core.faces.loading import load_face_model
from lookalike.core.faces.model import (
    DEFAULT_DIMENSION,
    DEFAULT_MODEL_ID,
    DEFAULT_WORKING_SIZE,
    MIN_CLUSTER_QUALITY,
    FaceModel,
    FaceModelRecord,
    FoundFace,
)
from lookalike.core.faces.store import FaceRow, FaceStore, PersonRow
from lookalike.core.progress import ProgressCallback, no_progress

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.faces.index import FaceIndex
    from lookalike.core.faces.stage import FaceStage
    from lookalike.core.store.catalog import Catalog
    from lookalike.core.store.library import Library

log = logging.getLogger(__name__)

#: Unnamed groups with fewer faces stay out of the way (listed with --all).
MIN_VISIBLE_FACES = 2
DLIB_THRESHOLD = 0.6

_META_ENABLED = "people_enabled"
_META_MODEL = ("face_model_name", "face_model_id", "face_weights_checksum", "face_dimension")


@dataclass(frozen=True)
class PersonInfo:
    id: int
    name: str | None
    faces: int
    photos: tuple[Path, ...]  # absolute paths, best face first
    hidden: bool
    cover_face: int | None  # the face to show for the person
    suggestions: int = 0

    @property
    def label(self) -> str:
        return self.name or f"Person {self.id}"


@dataclass(frozen=True)
class FaceInfo:
    """A face of one photo, as the preview draws it."""

    id: int
    index: int  # 1-based, left to right
    box: tuple[float, float, float, float]  # fractions of the oriented photo
    quality: float
    person_id: int | None
    name: str | None
    confirmed: bool
    suggested_id: int | None
    suggested_name: str | None


@dataclass(frozen=True)
class _Chosen:
    """What one person term chooses: photo ids (sorted), each with a score and when
    it was taken; ``by_score``: rank by score, not newest first."""

    ids: np.ndarray
    score: np.ndarray
    when: np.ndarray
    by_score: bool = False

    @classmethod
    def of(cls, rows: dict[int, tuple[float, float]], by_score: bool) -> _Chosen:
        ids = np.fromiter(sorted(rows), np.int64, len(rows))
        return cls(
            ids,
            np.asarray([rows[i][0] for i in ids.tolist()], np.float32),
            np.asarray([rows[i][1] for i in ids.tolist()], np.float64),
            by_score,
        )

    def at(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ids, ids)


@dataclass(frozen=True)
class PersonSelection:
    """What the person terms of a query choose. ``allowed``: the photos the query may
    return (None: any); ``excluded``: photos it must not; ``ranked_ids`` /
    ``ranked_scores``: for a query of person terms alone, the chosen photos in the
    order to show them (score in [0, 1])."""

    allowed: np.ndarray | None
    excluded: np.ndarray
    ranked_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ranked_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def narrow(self, allowed: np.ndarray | None, all_ids: Callable[[], np.ndarray]) -> np.ndarray:
        """The photo ids a query may return: ``allowed`` (None: every photo, from
        ``all_ids``) within what the person terms choose, less what they exclude."""
        base = self.allowed if self.allowed is not None else all_ids()
        if allowed is not None:
            base = np.intersect1d(base, np.asarray(allowed, np.int64))
        if self.excluded.size:
            base = np.setdiff1d(base, self.excluded)
        return np.asarray(base, np.int64)

    def hits(self, allowed: np.ndarray, k: int):
        """For a query of person terms alone: the first ``k`` chosen photos within
        ``allowed``, as the vector graph's :class:`~lookalike.core.store.vectors.Hits`."""
        from lookalike.core.store.vectors import Hits

        ids, scores = self.ranked_ids, self.ranked_scores
        if self.allowed is None or len(allowed) != len(self.allowed) or not np.array_equal(allowed, self.allowed):
            keep = np.isin(ids, allowed)
            ids, scores = ids[keep], scores[keep]
        return Hits(ids[:k].copy(), scores[:k].copy())


class People:
    def __init__(self, library: Library, *, working_size: int = DEFAULT_WORKING_SIZE) -> None:
        self.library = library
        self.catalog = library.catalog
        self.store = FaceStore(self.catalog)
        self.working_size = working_size
        self._model: FaceModel | None = None
        self._index: FaceIndex | None = None
        self._stale = False
        self._stage: FaceStage | None = None
        self._lock = threading.RLock()
        if library.writer:
            self.store.ensure_schema()

    # -- the setting and the model ----------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.catalog.get_meta(_META_ENABLED, "1") != "0"

    def set_enabled(self, on: bool) -> None:
        """Turn People on or off. Off deletes every face record (faces, people and their
        names, rejections, which photos were looked at) and the face graph."""
        self._need_writer("change the People setting")
        with self._lock:
            with self.catalog.transaction() as conn:
                if not on:
                    for table in ("face_rejections", "faces", "face_scans", "carried_faces", "people"):
                        conn.execute(f"DELETE FROM {table}")
                    conn.execute("DELETE FROM meta WHERE key IN (?, ?, ?, ?)", _META_MODEL)
                self.catalog.set_meta({_META_ENABLED: "1" if on else "0"}, conn)
            if not on:
                self._index = None
                for name in (face_index.GRAPH, face_index.SIDECAR):
                    try:
                        (self.library.path / name).unlink()
                    except FileNotFoundError:
                        pass

    def record(self) -> FaceModelRecord | None:
        m = self.catalog.meta()
        if "face_model_id" not in m:
            return None
        return FaceModelRecord(
            m.get("face_model_name", ""),
            m["face_model_id"],
            m.get("face_weights_checksum", ""),
            int(m["face_dimension"]),
        )

    @property
    def model_id(self) -> str:
        rec = self.record()
        return rec.model_id if rec else DEFAULT_MODEL_ID

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds.for_model(self._model.threshold if self._model is not None else DLIB_THRESHOLD)

    def model(self) -> FaceModel:
        """The face model, loaded on first use and checked against the library's record."""
        with self._lock:
            if self._model is None:
                model = load_face_model(working_size=self.working_size)
                rec, mine = self.record(), model.record
                if rec is None:
                    if self.library.writer:
                        self.catalog.set_meta(
                            dict(zip(_META_MODEL, (mine.name, mine.model_id, mine.weights_checksum, mine.dimension)))
                        )
                elif (rec.model_id, rec.weights_checksum, rec.dimension) != (
                    mine.model_id,
                    mine.weights_checksum,
                    mine.dimension,
                ):
                    raise ModelMismatchError(
                        f"This library's faces were found with '{rec.model_id}' and cannot mix with "
                        f"'{mine.model_id}'; turn People off and on again to find them anew."
                    )
                self._model = model
            return self._model

    def index(self) -> FaceIndex:
        """The face graph, opened (and brought in line with the catalog) on first use."""
        with self._lock:
            dim = self._dim()
            if self._index is None:
                self._index = face_index.FaceIndex.open(
                    self.library.path, dim, self.model_id, self.store.live_vectors(self.model_id)
                )
                self._stale = False
            elif self._stale:
                live = set(self.store.live_vectors(self.model_id))
                self._index.delete([i for i in list(self._index._alive) if i not in live])
                self._stale = False
            return self._index

    # -- indexing ----------------------------------------------------------------

    def stages(self) -> list[FaceStage]:
        """The indexer's faces stage, or none while People is off."""
        if not self.enabled or not self.library.writer:
            return []
        from lookalike.core.faces.stage import FaceStage

        self._stage = FaceStage(
            self.model, self.model_id, self.working_size, self.catalog, self._committed, self._forget
        )
        return [self._stage]

    def _committed(self, face_ids: list[int], faces: list[FoundFace]) -> None:
        """New faces are in the catalog (called on the face thread): graph and group them."""
        if face_ids:
            self.index().add(face_ids, np.stack([f.vector for f in faces]))
        self.group()

    def faces_back(self) -> None:
        """Faces put back in the catalog with their ids (a trash undone): into the graph."""
        with self._lock:
            if self._index is None:
                return  # opened later, the graph is brought in line with the catalog then
            live = self.store.live_vectors(self.model_id)
            new = [i for i in live if i not in self._index]
            if new:
                self._index.add(new, np.stack([np.frombuffer(live[i], dtype=np.float32) for i in new]))

    def _forget(self, photo_ids: Sequence[int]) -> None:
        self._stale = True  # their faces went with them (ON DELETE CASCADE)

    def group(self) -> GroupingReport:
        """Group the faces not grouped yet (new photos join the people there are)."""
        with self._lock:
            return group_pending(self.store, self.index(), self.model_id, self.thresholds)

    def finish(self, progress: ProgressCallback = no_progress) -> None:
        """The end of an indexing run: the faces stage finishes the photos it was given
        (reporting Stage.FACES), what is left is grouped, the face graph saved."""
        stage, self._stage = self._stage, None
        if stage is not None:
            stage.drain(progress)
        if not self.library.writer or not self.store.has_tables():
            return
        with self._lock:
            if self._index is None and not self.store.ungrouped(self.model_id):
                return
            self.group()
            try:
                self.index().save(self.library.path)
            except OSError as exc:  # a cache: rebuilt from the catalog next time
                log.warning("Could not save the face graph: %s", exc)

    def regroup(self) -> GroupingReport:
        """Group again from scratch, keeping every user decision: named people, faces a
        user placed, rejections and hidden people stay; automatic assignments of
        unnamed people are undone and redone."""
        self._need_writer("group faces")
        with self._lock, self.catalog.transaction() as conn:
            conn.execute(
                "UPDATE faces SET person_id = NULL, grouped = 0, suggested_id = NULL WHERE confirmed = 0 AND "
                "(person_id IS NULL OR person_id IN (SELECT id FROM people WHERE name IS NULL AND hidden = 0))"
            )
            drop_empty_people(conn)
        return self.group()

    def adopt(self, other: Catalog) -> int:
        """Bring the user's decisions about people from another library (the one of the
        image model before a switch): names, merges, faces placed by hand, "not this
        person", hidden people. They are applied as this library finds the same faces
        (core/faces/carry.py). Only a library still empty of photos and people adopts
        (one being built for the new model), and only while People is on. Returns how
        many face decisions were brought."""
        from lookalike.core.faces import carry

        if not self.library.writer or not self.enabled or self.catalog.photo_count() > 0:
            return 0
        self.store.ensure_schema()
        if carry.pending(self.catalog) or self.store.people():
            return 0
        return carry.carry_into(self.catalog, carry.decisions_of(other))

    # -- listing -----------------------------------------------------------------

    def people(self, *, include_hidden: bool = False) -> list[PersonInfo]:
        """People, largest first; unless ``include_hidden``, hidden people and unnamed
        groups smaller than MIN_VISIBLE_FACES are left out."""
        if not self.store.has_tables():
            return []
        out = []
        suggested = dict(
            self.catalog.query(
                "SELECT suggested_id, COUNT(*) FROM faces WHERE suggested_id IS NOT NULL "
                "AND (person_id IS NULL OR person_id != suggested_id) GROUP BY suggested_id"
            )
        )
        for p in self.store.people():
            if p.faces == 0 and not p.name:
                continue
            if not include_hidden and (p.hidden or (not p.name and p.faces < MIN_VISIBLE_FACES)):
                continue
            out.append(self._info(p, suggested.get(p.id, 0)))
        out.sort(key=lambda i: (-i.faces, i.name is None, (i.name or "").lower(), i.id))
        return out

    def _info(self, p: PersonRow, suggestions: int = 0) -> PersonInfo:
        faces = self.store.faces_of_person(p.id)
        order: list[int] = []
        for f in faces:  # confirmed, then best quality first
            if f.photo_id not in order:
                order.append(f.photo_id)
        paths = self.store.photo_paths(order)
        return PersonInfo(
            p.id,
            p.name,
            p.faces,
            tuple(paths[i] for i in order if i in paths),
            p.hidden,
            faces[0].id if faces else None,
            suggestions,
        )

    def person(self, ref: str | int) -> PersonInfo:
        return self._info(self._resolve(ref))

    def _resolve(self, ref: str | int) -> PersonRow:
        """A person by name (any case), by id (``12`` or ``#12``)."""
        text = str(ref).strip()
        row = self.store.person_by_name(text) if text else None
        if row is None and text.lstrip("#").isdigit():
            row = self.store.person(int(text.lstrip("#")))
        if row is None:
            close = difflib.get_close_matches(text, self.store.names(), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else " (lookalike people lists them)"
            raise UsageError(f"no person '{text}' in this library{hint}")
        return row

    def faces_of_person(self, person_id: int) -> list[FaceRow]:
        """The person's faces, the ones placed by the user first, then the clearest."""
        return self.store.faces_of_person(person_id)

    def suggestions_for(self, person_id: int) -> list[FaceRow]:
        """Faces grouping suggests (not placed) for this person, the clearest first."""
        return self.store.suggestions_for(person_id)

    def faces_in_photo(self, path: Path | str) -> list[FaceInfo]:
        """The faces found in a photo of the library, left to right, with their names."""
        row = self.catalog.photo_by_path(Path(path).expanduser().resolve())
        if row is None or not self.store.has_tables():
            return []
        faces = self.store.faces_in_photo(row.id)
        names = {p.id: p.name for p in self.store.people()}
        return [
            FaceInfo(
                f.id,
                i + 1,
                f.box,
                f.quality,
                f.person_id,
                names.get(f.person_id) if f.person_id else None,
                f.confirmed,
                f.suggested_id,
                names.get(f.suggested_id) if f.suggested_id else None,
            )
            for i, f in enumerate(faces)
        ]

    def face_of_photo(self, path: Path | str, n: int | None = None) -> FaceRow:
        """The largest face of a photo, or its ``n``-th (1-based, left to right)."""
        p = Path(path).expanduser().resolve()
        row = self.catalog.photo_by_path(p)
        if row is None:
            raise UsageError(f"{p} is not in this library (index its folder first)")
        faces = self.store.faces_in_photo(row.id)
        if not faces:
            scanned = self.catalog.query("SELECT 1 FROM face_scans WHERE photo_id = ?", (row.id,))
            why = "no face was found in it" if scanned else "its faces have not been looked for yet (index it)"
            raise LookalikeError(f"{p.name}: {why}")
        if n is None:
            return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        if not 1 <= n <= len(faces):
            raise UsageError(
                f"{p.name} has {len(faces)} face{'s' if len(faces) != 1 else ''}; --face takes 1-{len(faces)}"
            )
        return faces[n - 1]

    def face_crop(self, face_id: int, size: int = 128):
        """A square crop around a face (PIL image), for the People view."""
        from lookalike.core.index.imaging import decode_file

        rows = self.catalog.query(
            "SELECT p.path, f.x0, f.y0, f.x1, f.y1 FROM faces f JOIN photos p ON p.id = f.photo_id WHERE f.id = ?",
            (face_id,),
        )
        if not rows:
            return None
        from lookalike.core.store.catalog import unkey

        path, x0, y0, x1, y1 = rows[0]
        decoded = decode_file(unkey(path), target=max(256, size * 3))
        img = decoded.image
        w, h = img.size
        cx, cy = (x0 + x1) / 2 * w, (y0 + y1) / 2 * h
        half = max((x1 - x0) * w, (y1 - y0) * h) * 0.8
        box = (int(cx - half), int(cy - half), int(cx + half), int(cy + half))
        return img.crop(box).resize((size, size))

    # -- decisions ---------------------------------------------------------------

    def name(self, path: Path | str, name: str, *, face: int | None = None) -> PersonInfo:
        """Name the person of the largest (or ``face``-th) face of a photo."""
        return self.name_face(self.face_of_photo(path, face).id, name)

    def name_face(self, face_id: int, name: str) -> PersonInfo:
        """This face is ``name``. Its person takes the name (or joins the person already
        called so); the face becomes a reference, and faces within reach of the
        person's references join it or become suggestions."""
        self._need_writer("name a person")
        name = _clean_name(name)
        with self._lock:
            f = self.store.faces([face_id]).get(face_id)
            if f is None:
                raise LookalikeError("that face is not in the library any more")
            target = self.store.person_by_name(name)
            current = self.store.person(f.person_id) if f.person_id else None
            with self.catalog.transaction() as conn:
                if target is None:
                    if current is not None and current.name is None:
                        conn.execute("UPDATE people SET name = ?, hidden = 0 WHERE id = ?", (name, current.id))
                        pid = current.id
                    else:
                        cur = conn.execute("INSERT INTO people(name, created) VALUES(?, ?)", (name, time.time()))
                        assert cur.lastrowid is not None
                        pid = cur.lastrowid
                else:
                    pid = target.id
                    if current is not None and current.name is None and current.id != pid:
                        # Its unnamed group is the same person: the group joins the name.
                        conn.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (pid, current.id))
                    conn.execute("UPDATE people SET hidden = 0 WHERE id = ?", (pid,))
                conn.execute(
                    "UPDATE faces SET person_id = ?, confirmed = 1, grouped = 1, suggested_id = NULL WHERE id = ?",
                    (pid, face_id),
                )
                conn.execute("DELETE FROM face_rejections WHERE face_id = ? AND person_id = ?", (face_id, pid))
                drop_empty_people(conn)
            absorb(self.store, self.index(), pid, self.thresholds)
            return self.person(pid)

    def confirm(self, face_id: int) -> PersonInfo:
        """Accept a suggestion: the face joins the suggested person as a reference."""
        f = self.store.faces([face_id]).get(face_id)
        if f is None or f.suggested_id is None:
            raise LookalikeError("that face has no suggestion to confirm")
        p = self.store.person(f.suggested_id)
        assert p is not None
        if p.name:
            return self.name_face(face_id, p.name)
        return self.assign(face_id, p.id)

    def assign(self, face_id: int, person_id: int) -> PersonInfo:
        """ "This is...": put a face into a person (named or not) as a reference."""
        self._need_writer("change a person")
        p = self._resolve(person_id)
        if p.name:
            return self.name_face(face_id, p.name)
        with self._lock, self.catalog.transaction() as conn:
            conn.execute(
                "UPDATE faces SET person_id = ?, confirmed = 1, grouped = 1, suggested_id = NULL WHERE id = ?",
                (p.id, face_id),
            )
            conn.execute("DELETE FROM face_rejections WHERE face_id = ? AND person_id = ?", (face_id, p.id))
            drop_empty_people(conn)
        return self.person(p.id)

    def merge(self, a: str | int, b: str | int) -> PersonInfo:
        """A and B are one person: A's faces join B (B keeps its name; B takes A's when it
        has none). Every face of both becomes a reference, so no re-grouping splits them."""
        self._need_writer("merge people")
        pa, pb = self._resolve(a), self._resolve(b)
        if pa.id == pb.id:
            raise UsageError("that is the same person twice")
        with self._lock:
            with self.catalog.transaction() as conn:
                conn.execute(
                    "UPDATE faces SET person_id = ?, confirmed = 1, grouped = 1, suggested_id = NULL "
                    "WHERE person_id IN (?, ?)",
                    (pb.id, pa.id, pb.id),
                )
                conn.execute("UPDATE faces SET suggested_id = ? WHERE suggested_id = ?", (pb.id, pa.id))
                conn.execute("DELETE FROM face_rejections WHERE person_id = ?", (pa.id,))
                # decisions carried from another library that still wait for A's faces: B's now
                conn.execute("UPDATE carried_faces SET person_id = ? WHERE person_id = ?", (pb.id, pa.id))
                name = pb.name or pa.name
                conn.execute("DELETE FROM people WHERE id = ?", (pa.id,))
                conn.execute("UPDATE people SET name = ?, hidden = 0 WHERE id = ?", (name, pb.id))
            if name:
                absorb(self.store, self.index(), pb.id, self.thresholds)
            return self.person(pb.id)

    def rename(self, ref: str | int, new_name: str) -> PersonInfo:
        self._need_writer("rename a person")
        p = self._resolve(ref)
        new_name = _clean_name(new_name)
        other = self.store.person_by_name(new_name)
        if other is not None and other.id != p.id:
            raise UsageError(
                f"there is already a person called '{other.name}'; to make them one: "
                f'lookalike people merge {p.id} "{other.name}"'
            )
        with self._lock, self.catalog.transaction() as conn:
            conn.execute("UPDATE people SET name = ? WHERE id = ?", (new_name, p.id))
            # A name is a user's word about the faces it stands for: they become references.
            conn.execute("UPDATE faces SET confirmed = 1 WHERE person_id = ? AND confirmed = 0", (p.id,))
        absorb(self.store, self.index(), p.id, self.thresholds)
        return self.person(p.id)

    def hide(self, ref: str | int, hidden: bool = True) -> PersonInfo:
        self._need_writer("hide a person")
        p = self._resolve(ref)
        with self.catalog.transaction() as conn:
            conn.execute("UPDATE people SET hidden = ? WHERE id = ?", (int(hidden), p.id))
        return self.person(p.id)

    def forget(self, path: Path | str, *, face: int | None = None) -> FaceRow:
        """ "Not this person" for the largest (or ``face``-th) face of a photo."""
        return self.reject(self.face_of_photo(path, face).id)

    def reject(self, face_id: int, person_id: int | None = None) -> FaceRow:
        """The face is not its person (or not ``person_id``, a suggestion): it leaves and
        never joins that person again; grouping may place it with someone else."""
        self._need_writer("change a person")
        with self._lock:
            f = self.store.faces([face_id]).get(face_id)
            if f is None:
                raise LookalikeError("that face is not in the library any more")
            person = person_id if person_id is not None else (f.person_id or f.suggested_id)
            if person is None:
                raise LookalikeError("that face belongs to no person")
            with self.catalog.transaction() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO face_rejections(face_id, person_id) VALUES(?, ?)", (face_id, person)
                )
                if f.person_id == person:
                    conn.execute(
                        "UPDATE faces SET person_id = NULL, confirmed = 0, grouped = 0, suggested_id = NULL "
                        "WHERE id = ?",
                        (face_id,),
                    )
                conn.execute(
                    "UPDATE faces SET suggested_id = NULL WHERE id = ? AND suggested_id = ?", (face_id, person)
                )
                drop_empty_people(conn)
            self.group()
            return self.store.faces([face_id])[face_id]

    def _need_writer(self, what: str) -> None:
        if not self.library.writer:
            raise LookalikeError(self.library.holder() or f"This library is open for searching only; cannot {what}.")

    # -- queries -----------------------------------------------------------------

    def select(self, terms: Sequence, source: str = "") -> PersonSelection | None:
        """The photos the person (``@name``) and face (``@./photo.jpg``) terms of a query
        choose: each added person must be in the photo, no subtracted one. A query of
        person terms alone is a browse: its photos come newest first (a face from outside
        the library that belongs to nobody yet ranks by how close the faces are)."""
        mine = [t for t in terms if getattr(t, "kind", "") in ("person", "face")]
        if not mine:
            return None
        required: list[_Chosen] = []
        excluded: set[int] = set()
        for t in mine:
            chosen = self._term_photos(t, source)
            if t.weight < 0:
                excluded.update(chosen.ids.tolist())
            else:
                required.append(chosen)
        excluded_ids = np.fromiter(sorted(excluded), np.int64, len(excluded))
        if not required:
            return PersonSelection(None, excluded_ids)
        keep = required[0].ids
        for r in required[1:]:
            keep = np.intersect1d(keep, r.ids, assume_unique=True)
        if excluded_ids.size:
            keep = np.setdiff1d(keep, excluded_ids, assume_unique=True)
        score = np.min(np.stack([r.score[r.at(keep)] for r in required]), axis=0) if keep.size else np.zeros(0)
        when = required[0].when[required[0].at(keep)]
        if any(r.by_score for r in required):
            order = np.lexsort((keep, -score))
        else:
            order = np.lexsort((-keep, -when))
        return PersonSelection(keep, excluded_ids, keep[order], score[order].astype(np.float32))

    def _term_photos(self, term, source: str) -> _Chosen:
        if term.kind == "person":
            has = self.store.has_tables()
            pid = self.store.person_id_by_name(term.value) if has else None
            if pid is None:
                known = self.store.names() if has else []
                if not known:
                    raise QueryError(
                        f"no person named '{term.value}': nobody is named yet (lookalike people name PHOTO NAME)",
                        source,
                        term.column,
                    )
                close = difflib.get_close_matches(term.value, known, n=3, cutoff=0.4)
                pick = close or known[:5]
                raise QueryError(
                    f"no person named '{term.value}'; "
                    + ("did you mean " if close else "known: ")
                    + ", ".join(f"@{_quote(n)}" for n in pick),
                    source,
                    term.column,
                )
            return self._person_photos(pid)
        return self._face_term_photos(Path(term.value), source, term.column)

    def _person_photos(self, person_id: int) -> _Chosen:
        """The person's photos: score 1 where a user placed the face, else the face's
        quality (under 1); with when the photo was taken (or its file's time)."""
        ids, confirmed, quality, when = self.store.person_photo_rank(person_id)
        return _Chosen(ids, np.where(confirmed > 0, 1.0, 0.9 * quality).astype(np.float32), when)

    def _face_term_photos(self, path: Path, source: str, column: int) -> _Chosen:
        """``@./photo.jpg``: the person whose face is in the photo (the largest face)."""
        row = self.catalog.photo_by_path(path)
        if row is not None and self.store.has_tables():
            faces = self.store.faces_in_photo(row.id)
            if faces:
                f = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
                if f.person_id is not None:
                    return self._person_photos(f.person_id)
                vec = self.store.vectors([f.id], self._dim())[0]
                return self._near_photos(vec)
        from lookalike.core.faces.stage import DECODE_FRACTION
        from lookalike.core.index.imaging import ImageDecodeError, decode_file

        model = self.model()
        try:  # decoded and analysed as the indexer's faces stage does
            decoded = decode_file(path, target=int(model.working_size * DECODE_FRACTION))
        except ImageDecodeError as exc:
            raise QueryError(f"cannot use {path.name} as a face: {exc}", source, column) from None
        found = model.analyse(decoded.image, (decoded.width, decoded.height))
        if not found:
            raise QueryError(f"no face found in {path.name}", source, column)
        best = max(found, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return self._near_photos(best.vector)

    def _near_photos(self, vec: np.ndarray) -> _Chosen:
        """The person of the faces within automatic reach of ``vec`` (the one most of them
        are); with no person in reach, the photos of faces within the model's threshold."""
        ids, d = self.index().search(vec[None, :], 32)
        info = self.store.face_info(ids[0].tolist())
        near = [(fid, dist) for fid, dist in zip(ids[0].tolist(), d[0].tolist()) if fid in info]
        votes: dict[int, int] = {}
        for fid, dist in near:
            person = info[fid][1]
            if person is not None and dist <= self.thresholds.auto and info[fid][3] >= MIN_CLUSTER_QUALITY:
                votes[person] = votes.get(person, 0) + 1
        if votes:
            return self._person_photos(max(votes, key=votes.__getitem__))
        out: dict[int, tuple[float, float]] = {}
        for fid, dist in near:
            if dist <= self.thresholds.suggest:
                photo = info[fid][0]
                score = 1.0 - dist / (2 * self.thresholds.suggest)
                out[photo] = (max(out.get(photo, (0.0, 0.0))[0], score), 0.0)
        return _Chosen.of(out, by_score=True)

    def _dim(self) -> int:
        rec = self.record()
        return rec.dimension if rec else DEFAULT_DIMENSION


def _clean_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not name:
        raise UsageError("a name cannot be empty")
    if len(name) > 200:
        raise UsageError("a name is at most 200 characters")
    if name.lstrip("#").isdigit():
        raise UsageError("a name cannot be a number (numbers stand for people's ids)")
    return name


def _quote(name: str) -> str:
    return f'"{name}"' if any(c.isspace() or c in "+-*\"'" for c in name) else name
