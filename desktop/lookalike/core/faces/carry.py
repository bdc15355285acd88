"""People's decisions carried into the library of another image model.

Switching the image model builds a new library, and its faces are found again
(the face model does not depend on the image model). What a user decided about
people - names, merges, faces placed by hand, "not this person", hidden people -
is data and comes along: when the new library is still empty, the decisions of
the library before it are copied into ``carried_faces``, one row per face they
touch, keyed by the photo's content hash and the face's box. As the new library
finds faces, each carried row is matched to the face at the same place in the
same photo (boxes overlapping by at least :data:`MIN_OVERLAP`, intersection over
union) and applied before grouping looks at the face; an applied row is gone.

Which people are carried: every person with a name, a hidden person, one with a
face a user placed (a merge, "this is..."), and one a face was rejected from.
All their faces come, with whether a user placed them; so a hidden group of
strangers stays hidden and a merge stays merged. Suggestions are not carried:
grouping makes them again.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lookalike.core.store.catalog import Catalog

log = logging.getLogger(__name__)

#: Two boxes are the same face at this overlap (intersection over union) or more.
MIN_OVERLAP = 0.5

_COLUMNS = "hash, x0, y0, x1, y1, person, name, hidden, confirmed, rejected"


@dataclass(frozen=True)
class Carried:
    """One face's decision, as it travels between libraries."""

    hash: str
    box: tuple[float, float, float, float]
    person: str  # "name:<name>", or "group:<id>" for an unnamed person of the library it came from
    name: str | None
    hidden: bool
    confirmed: bool  # a user placed the face in the person
    rejected: bool  # "not this person": the face never joins it


def overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _has(catalog: Catalog, table: str) -> bool:
    return bool(catalog.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)))


def decisions_of(catalog: Catalog) -> list[Carried]:
    """Every decision about people in ``catalog`` (read only), as carried rows."""
    if not _has(catalog, "faces"):
        return []
    people = {
        int(pid): (name, bool(hidden))
        for pid, name, hidden in catalog.query(
            "SELECT id, name, hidden FROM people WHERE name IS NOT NULL OR hidden = 1 "
            "OR id IN (SELECT person_id FROM faces WHERE confirmed = 1 AND person_id IS NOT NULL) "
            "OR id IN (SELECT person_id FROM face_rejections)"
        )
    }

    def key(pid: int) -> str:
        name = people[pid][0]
        return f"name:{name.casefold()}" if name else f"group:{pid}"

    out: list[Carried] = []
    marks = ",".join("?" * len(people))
    if people:
        for h, x0, y0, x1, y1, pid, confirmed in catalog.query(
            "SELECT p.hash, f.x0, f.y0, f.x1, f.y1, f.person_id, f.confirmed FROM faces f "
            f"JOIN photos p ON p.id = f.photo_id WHERE f.person_id IN ({marks})",
            tuple(people),
        ):
            name, hidden = people[int(pid)]
            out.append(Carried(h, (x0, y0, x1, y1), key(int(pid)), name, hidden, bool(confirmed), False))
        for h, x0, y0, x1, y1, pid in catalog.query(
            "SELECT p.hash, f.x0, f.y0, f.x1, f.y1, r.person_id FROM face_rejections r "
            "JOIN faces f ON f.id = r.face_id JOIN photos p ON p.id = f.photo_id"
        ):
            if int(pid) in people:
                name, hidden = people[int(pid)]
                out.append(Carried(h, (x0, y0, x1, y1), key(int(pid)), name, hidden, False, True))
    if _has(catalog, "carried_faces"):  # decisions it had carried itself and not yet met
        for h, x0, y0, x1, y1, person, name, hidden, confirmed, rejected in catalog.query(
            f"SELECT {_COLUMNS} FROM carried_faces"
        ):
            out.append(Carried(h, (x0, y0, x1, y1), person, name, bool(hidden), bool(confirmed), bool(rejected)))
    return out


def carry_into(catalog: Catalog, decisions: Iterable[Carried]) -> int:
    """Write carried decisions into a library (a writer, its People tables made)."""
    rows = [(c.hash, *c.box, c.person, c.name, int(c.hidden), int(c.confirmed), int(c.rejected)) for c in decisions]
    with catalog.transaction() as conn:
        conn.executemany(f"INSERT INTO carried_faces({_COLUMNS}) VALUES(?,?,?,?,?,?,?,?,?,?)", rows)
    return len(rows)


def pending(catalog: Catalog) -> int:
    """Carried decisions not yet met by a face of this library."""
    if not _has(catalog, "carried_faces"):
        return 0
    return int(catalog.query("SELECT COUNT(*) FROM carried_faces")[0][0])


@dataclass(frozen=True)
class Applied:
    placed: int = 0  # faces put into their person
    rejected: int = 0  # "not this person" re-applied
    unmatched: int = 0  # decisions whose photo was looked at and had no face there


def apply_carried(catalog: Catalog) -> Applied:
    """Apply the carried decisions that met their face: before grouping, in one transaction."""
    if not _has(catalog, "carried_faces") or not catalog.query("SELECT 1 FROM carried_faces LIMIT 1"):
        return Applied()
    rows = catalog.query(
        "SELECT c.id, c.x0, c.y0, c.x1, c.y1, c.person, c.name, c.hidden, c.confirmed, c.rejected, c.person_id, "
        "p.id, f.id, f.x0, f.y0, f.x1, f.y1, f.person_id, f.confirmed "
        "FROM carried_faces c JOIN photos p ON p.hash = c.hash "
        "JOIN face_scans s ON s.photo_id = p.id LEFT JOIN faces f ON f.photo_id = p.id"
    )
    if not rows:
        return Applied()
    best: dict[int, tuple[float, tuple]] = {}  # carried row -> (overlap, the row)
    seen: set[int] = set()
    for r in rows:
        seen.add(r[0])
        if r[12] is None:
            continue
        o = overlap(r[1:5], r[13:17])
        if o >= MIN_OVERLAP and o > best.get(r[0], (0.0, ()))[0]:
            best[r[0]] = (o, r)
    placed = rejected = 0
    done: list[int] = [cid for cid in seen if cid not in best]  # the face is not found there: nothing to meet
    with catalog.transaction() as conn:
        resolved: dict[str, int | None] = {}
        for cid, (_o, r) in sorted(best.items(), key=lambda kv: kv[1][1][9]):  # placements first
            _id, *_box, person, name, hidden, confirmed, is_rejection, made = r[:11]
            face_id, face_person, face_confirmed = r[12], r[17], r[18]
            if is_rejection:
                pid = resolved.get(person) if person in resolved else _person(conn, person, name, made, False)
                if pid is None:
                    continue  # its person is not here yet: wait for it
                conn.execute("INSERT OR IGNORE INTO face_rejections(face_id, person_id) VALUES(?, ?)", (face_id, pid))
                if face_person == pid and not face_confirmed:
                    conn.execute(
                        "UPDATE faces SET person_id = NULL, grouped = 0, suggested_id = NULL WHERE id = ?", (face_id,)
                    )
                rejected += 1
            else:
                pid = resolved.get(person)
                if pid is None:
                    pid = _person(conn, person, name, made, bool(hidden), create=True)
                    resolved[person] = pid
                if not face_confirmed:  # a face a user placed here already stays where they put it
                    conn.execute(
                        "UPDATE faces SET person_id = ?, confirmed = ?, grouped = 1, suggested_id = NULL WHERE id = ?",
                        (pid, int(confirmed), face_id),
                    )
                placed += 1
            done.append(cid)
        conn.executemany("DELETE FROM carried_faces WHERE id = ?", [(c,) for c in done])
        conn.execute(
            "DELETE FROM people WHERE name IS NULL AND id NOT IN "
            "(SELECT DISTINCT person_id FROM faces WHERE person_id IS NOT NULL) "
            "AND id NOT IN (SELECT person_id FROM carried_faces WHERE person_id IS NOT NULL)"
        )
    out = Applied(placed, rejected, len(done) - placed - rejected)
    if placed or rejected:
        log.info("Carried decisions applied: %d faces placed, %d rejections", placed, rejected)
    return out


def _person(
    conn: sqlite3.Connection, key: str, name: str | None, made: int | None, hidden: bool, *, create: bool = False
) -> int | None:
    """This library's person for a carried key: by name, or the one made for the group."""
    if name:
        row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
    elif made is not None and conn.execute("SELECT 1 FROM people WHERE id = ?", (made,)).fetchone():
        return int(made)
    if not create:
        return None
    cur = conn.execute("INSERT INTO people(name, hidden, created) VALUES(?, ?, ?)", (name, int(hidden), time.time()))
    pid = cur.lastrowid
    assert pid is not None
    conn.execute("UPDATE carried_faces SET person_id = ? WHERE person = ?", (pid, key))
    return int(pid)
