"""The People tables' SQL, in one place: faces, people, scans and rejections."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.core.faces.model import FoundFace
from lookalike.core.store.catalog import Catalog, unkey
from lookalike.core.store.schema.faces import INDEXES, MIGRATION, TABLES


@dataclass(frozen=True)
class FaceRow:
    id: int
    photo_id: int
    box: tuple[float, float, float, float]
    quality: float
    person_id: int | None
    confirmed: bool
    suggested_id: int | None


@dataclass(frozen=True)
class PersonRow:
    id: int
    name: str | None
    hidden: bool
    faces: int
    photos: int


_FACE_COLS = "id, photo_id, x0, y0, x1, y1, quality, person_id, confirmed, suggested_id"


def _face(r: Sequence) -> FaceRow:
    return FaceRow(r[0], r[1], (r[2], r[3], r[4], r[5]), r[6], r[7], bool(r[8]), r[9])


def _marks(ids: Sequence[int]) -> str:
    return ",".join("?" * len(ids))


def _chunks(ids: Iterable[int], n: int = 500) -> Iterable[list[int]]:
    ids = [int(i) for i in ids]
    for i in range(0, len(ids), n):
        yield ids[i : i + n]


class FaceStore:
    """Reads and writes of the People tables through the library's catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def ensure_schema(self) -> None:
        """The tables, for a library whose schema skipped migration 2 (it was made while a
        later migration existed and this one did not). Writers only; idempotent."""
        have = {r[0] for r in self.catalog.query("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        if self.catalog.readonly:
            return
        if not set(TABLES) | set(INDEXES) <= have:
            with self.catalog.transaction() as conn:
                for stmt in MIGRATION.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
        columns = {r[1] for r in self.catalog.query("PRAGMA table_info(faces)")}
        if "taken" not in columns:  # a library made before faces carried their photo's date
            with self.catalog.transaction() as conn:
                conn.execute("ALTER TABLE faces ADD COLUMN taken REAL")
                conn.execute(
                    "UPDATE faces SET taken = (SELECT COALESCE(p.taken, p.mtime_ns / 1e9) FROM photos p "
                    "WHERE p.id = faces.photo_id)"
                )
                conn.execute("DROP INDEX IF EXISTS faces_person")
                conn.execute("CREATE INDEX faces_person ON faces(person_id, photo_id, confirmed, quality, taken)")

    def has_tables(self) -> bool:
        return bool(self.catalog.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'faces'"))

    # -- writes inside the indexer's transaction --------------------------------

    @staticmethod
    def insert_found(
        conn: sqlite3.Connection, model_id: str, photo_ids: Sequence[int], found: Sequence[Sequence[FoundFace]]
    ) -> list[int]:
        """The faces of each photo, and a scan row for each (also for a photo with none).
        Returns the new face ids in order."""
        now = time.time()
        out: list[int] = []
        marks = ",".join("?" * len(photo_ids))
        when = dict(
            conn.execute(
                f"SELECT id, COALESCE(taken, mtime_ns / 1e9) FROM photos WHERE id IN ({marks})",
                [int(p) for p in photo_ids],
            ).fetchall()
        )
        for pid, faces in zip(photo_ids, found):
            conn.execute("DELETE FROM faces WHERE photo_id = ?", (int(pid),))
            for f in faces:
                cur = conn.execute(
                    "INSERT INTO faces(photo_id, model, x0, y0, x1, y1, landmarks, quality, vector, taken) "
                    "VALUES(?,?,?,?,?,?,?,?,?,?)",
                    (
                        int(pid),
                        model_id,
                        *f.box,
                        np.asarray(f.landmarks, np.float32).tobytes(),
                        float(f.quality),
                        np.ascontiguousarray(f.vector, np.float32).tobytes(),
                        when.get(int(pid)),
                    ),
                )
                assert cur.lastrowid is not None
                out.append(cur.lastrowid)
            conn.execute(
                "INSERT OR REPLACE INTO face_scans(photo_id, model, faces, at) VALUES(?,?,?,?)",
                (int(pid), model_id, len(faces), now),
            )
        return out

    @staticmethod
    def unscanned(conn: sqlite3.Connection, model_id: str) -> set[int]:
        rows = conn.execute(
            "SELECT p.id FROM photos p LEFT JOIN face_scans s ON s.photo_id = p.id AND s.model = ? "
            "WHERE s.photo_id IS NULL",
            (model_id,),
        )
        return {r[0] for r in rows}

    # -- reads -----------------------------------------------------------------

    def live_vectors(self, model_id: str) -> dict[int, bytes]:
        return {
            r[0]: bytes(r[1]) for r in self.catalog.query("SELECT id, vector FROM faces WHERE model = ?", (model_id,))
        }

    def vectors(self, face_ids: Sequence[int], dim: int) -> np.ndarray:
        got: dict[int, bytes] = {}
        for chunk in _chunks(face_ids):
            for fid, v in self.catalog.query(f"SELECT id, vector FROM faces WHERE id IN ({_marks(chunk)})", chunk):
                got[fid] = bytes(v)
        if not face_ids:
            return np.zeros((0, dim), np.float32)
        return np.stack([np.frombuffer(got[int(i)], np.float32) for i in face_ids])

    def faces(self, face_ids: Sequence[int]) -> dict[int, FaceRow]:
        out: dict[int, FaceRow] = {}
        for chunk in _chunks(face_ids):
            for r in self.catalog.query(f"SELECT {_FACE_COLS} FROM faces WHERE id IN ({_marks(chunk)})", chunk):
                out[r[0]] = _face(r)
        return out

    def faces_in_photo(self, photo_id: int) -> list[FaceRow]:
        """Left to right."""
        rows = self.catalog.query(f"SELECT {_FACE_COLS} FROM faces WHERE photo_id = ? ORDER BY x0, y0", (photo_id,))
        return [_face(r) for r in rows]

    def faces_of_person(self, person_id: int) -> list[FaceRow]:
        rows = self.catalog.query(
            f"SELECT {_FACE_COLS} FROM faces WHERE person_id = ? ORDER BY confirmed DESC, quality DESC, id",
            (person_id,),
        )
        return [_face(r) for r in rows]

    def suggestions_for(self, person_id: int) -> list[FaceRow]:
        rows = self.catalog.query(
            f"SELECT {_FACE_COLS} FROM faces WHERE suggested_id = ? AND (person_id IS NULL OR person_id != ?) "
            "ORDER BY quality DESC, id",
            (person_id, person_id),
        )
        return [_face(r) for r in rows]

    def ungrouped(self, model_id: str) -> list[tuple[int, int, float]]:
        """(face id, photo id, quality) of faces grouping has not looked at yet."""
        return [
            (r[0], r[1], r[2])
            for r in self.catalog.query(
                "SELECT id, photo_id, quality FROM faces WHERE grouped = 0 AND model = ? ORDER BY id", (model_id,)
            )
        ]

    def person_photos_of(self, photo_ids: Iterable[int]) -> dict[int, set[int]]:
        """photo id -> the people who have a face in it."""
        out: dict[int, set[int]] = {}
        for chunk in _chunks(set(photo_ids)):
            for pid, person in self.catalog.query(
                f"SELECT photo_id, person_id FROM faces WHERE person_id IS NOT NULL AND photo_id IN ({_marks(chunk)})",
                chunk,
            ):
                out.setdefault(pid, set()).add(person)
        return out

    def face_info(self, face_ids: Iterable[int]) -> dict[int, tuple[int, int | None, bool, float]]:
        """face id -> (photo id, person id, confirmed, quality)."""
        out = {}
        for chunk in _chunks(face_ids):
            for r in self.catalog.query(
                f"SELECT id, photo_id, person_id, confirmed, quality FROM faces WHERE id IN ({_marks(chunk)})", chunk
            ):
                out[r[0]] = (r[1], r[2], bool(r[3]), r[4])
        return out

    def rejections(self, face_ids: Iterable[int]) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for chunk in _chunks(face_ids):
            for fid, person in self.catalog.query(
                f"SELECT face_id, person_id FROM face_rejections WHERE face_id IN ({_marks(chunk)})", chunk
            ):
                out.setdefault(fid, set()).add(person)
        return out

    def people(self) -> list[PersonRow]:
        rows = self.catalog.query(
            "SELECT p.id, p.name, p.hidden, COUNT(f.id), COUNT(DISTINCT f.photo_id) FROM people p "
            "LEFT JOIN faces f ON f.person_id = p.id GROUP BY p.id"
        )
        return [PersonRow(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows]

    def person(self, person_id: int) -> PersonRow | None:
        rows = self.catalog.query(
            "SELECT p.id, p.name, p.hidden, COUNT(f.id), COUNT(DISTINCT f.photo_id) FROM people p "
            "LEFT JOIN faces f ON f.person_id = p.id WHERE p.id = ? GROUP BY p.id",
            (person_id,),
        )
        return PersonRow(rows[0][0], rows[0][1], bool(rows[0][2]), rows[0][3], rows[0][4]) if rows else None

    def person_by_name(self, name: str) -> PersonRow | None:
        pid = self.person_id_by_name(name)
        return self.person(pid) if pid is not None else None

    def person_id_by_name(self, name: str) -> int | None:
        rows = self.catalog.query("SELECT id FROM people WHERE name = ? COLLATE NOCASE", (name.strip(),))
        return rows[0][0] if rows else None

    def names(self) -> list[str]:
        return [r[0] for r in self.catalog.query("SELECT name FROM people WHERE name IS NOT NULL ORDER BY name")]

    def photo_paths(self, photo_ids: Iterable[int]) -> dict[int, Path]:
        out: dict[int, Path] = {}
        for chunk in _chunks(photo_ids):
            for pid, path in self.catalog.query(f"SELECT id, path FROM photos WHERE id IN ({_marks(chunk)})", chunk):
                out[pid] = unkey(path)
        return out

    def photos_of_person(self, person_id: int) -> list[int]:
        return [
            r[0]
            for r in self.catalog.query(
                "SELECT DISTINCT photo_id FROM faces WHERE person_id = ? ORDER BY photo_id", (person_id,)
            )
        ]

    def person_photo_rank(self, person_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every photo the person is in, in id order: (photo ids, whether a user placed
        the face, best face quality, when taken or else modified)."""
        rows = self.catalog.query(
            "SELECT photo_id, MAX(confirmed), MAX(quality), COALESCE(MAX(taken), 0) FROM faces "
            "WHERE person_id = ? GROUP BY photo_id ORDER BY photo_id",
            (person_id,),
        )
        if not rows:
            z = np.zeros(0)
            return z.astype(np.int64), z, z, z
        arr = np.asarray(rows, dtype=np.float64)
        return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], arr[:, 3]

    def counts(self) -> tuple[int, int, int]:
        """(faces, people, photos looked at)."""
        f = self.catalog.query("SELECT COUNT(*) FROM faces")[0][0]
        p = self.catalog.query("SELECT COUNT(*) FROM people")[0][0]
        s = self.catalog.query("SELECT COUNT(*) FROM face_scans")[0][0]
        return f, p, s
