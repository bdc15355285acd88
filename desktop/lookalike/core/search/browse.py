"""Which photos a query's filters, people and concepts allow, and the library browsed by date.

Filters never touch scores: they only choose the photos that may answer
(:func:`allowed_ids`), and search ranks among those exactly as it ranks the
whole library. A query with nothing to rank by (filters, people, subtracted
concepts only; or no query at all) lists the photos it allows newest first
(:func:`browse`): by the date the photo was taken, else its file's time,
grouped by month (:func:`by_month`).
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.errors import QueryError
from lookalike.core.search.model import KINDS, FilterKey, Query, Shape, Term
from lookalike.core.search.parse import date_span, min_size
from lookalike.core.store.catalog import prefix_range, unkey
from lookalike.core.text.store import filter_sql as text_filter_sql

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.learning.concepts import Concepts
    from lookalike.core.store.catalog import Catalog

log = logging.getLogger(__name__)

#: The date a photo is browsed and filtered by: taken, else the file's modification time.
DATE_SQL = "COALESCE(taken, mtime_ns / 1000000000.0)"
#: A square photo's sides differ by at most this fraction.
SQUARE_TOLERANCE = 0.05

#: Photos showing a person: a person or face term -> photo ids (the People feature answers).
PersonPhotos = Callable[[Term], Sequence[int] | np.ndarray]


@dataclass(frozen=True)
class BrowseItem:
    photo_id: int
    path: Path
    date: float  # taken, else the file's modification time (POSIX seconds)
    taken: float | None
    width: int | None
    height: int | None
    size: int

    @property
    def month(self) -> str:
        """``YYYY-MM`` in local time."""
        return time.strftime("%Y-%m", time.localtime(self.date))


def _filter_sql(query: Query) -> tuple[list[str], list[object]]:
    """SQL conditions (all must hold) and their arguments for the query's filters."""
    where: list[str] = []
    args: list[object] = []
    by_key: dict[FilterKey, list[str]] = {}
    for f in query.filters:
        by_key.setdefault(f.key, []).append(f.value)
    for value in by_key.get(FilterKey.AFTER, ()):
        where.append(f"{DATE_SQL} >= ?")
        args.append(date_span(value)[0])
    for value in by_key.get(FilterKey.BEFORE, ()):
        where.append(f"{DATE_SQL} < ?")
        args.append(date_span(value)[0])
    years = by_key.get(FilterKey.YEAR, ())
    if years:
        spans = [date_span(v) for v in years]
        where.append("(" + " OR ".join(f"({DATE_SQL} >= ? AND {DATE_SQL} < ?)" for _ in spans) + ")")
        for lo, hi in spans:
            args += [lo, hi]
    folders = by_key.get(FilterKey.IN, ())
    if folders:
        parts = []
        for folder in folders:
            key_lo, key_hi = prefix_range(folder)
            parts.append("(path >= ? AND path < ?)")
            args += [key_lo, key_hi]
        where.append("(" + " OR ".join(parts) + ")")
    kinds = [s for value in by_key.get(FilterKey.KIND, ()) for name in value.split(",") for s in KINDS[name]]
    if kinds:
        where.append("(" + " OR ".join("lower(CAST(path AS TEXT)) LIKE ?" for _ in kinds) + ")")
        args += [f"%.{s}" for s in kinds]
    shapes = by_key.get(FilterKey.SHAPE, ())
    if shapes:
        parts = []
        for shape in shapes:
            if shape == Shape.PORTRAIT:
                parts.append("height > width * ?")
                args.append(1 + SQUARE_TOLERANCE)
            elif shape == Shape.LANDSCAPE:
                parts.append("width > height * ?")
                args.append(1 + SQUARE_TOLERANCE)
            else:
                parts.append("(width <= height * ? AND height <= width * ?)")
                args += [1 + SQUARE_TOLERANCE, 1 + SQUARE_TOLERANCE]
        where.append("(width IS NOT NULL AND height IS NOT NULL AND (" + " OR ".join(parts) + "))")
    for value in by_key.get(FilterKey.MIN, ()):
        pixels, long_side, short_side = min_size(value)
        where.append("(width * height >= ? AND MAX(width, height) >= ? AND MIN(width, height) >= ?)")
        args += [pixels, long_side, short_side]
    for value in by_key.get(FilterKey.TAG, ()):  # the user's tag and the automatic one of that name
        from lookalike.core.learning.user_tags import carrying_sql

        sql, more = carrying_sql(value)
        where.append(f"id IN ({sql})")
        args += more
    _text_sql(query, where, args)
    return where, args


def _text_sql(query: Query, where: list[str], args: list[object]) -> None:
    """``text:`` filters: the photos whose text holds these words (or, subtracted, not)."""
    for f in query.filters_of(FilterKey.TEXT):
        sql, more = text_filter_sql(f.value)
        where.append(f"NOT {sql}" if f.exclude else sql)
        args += more


def _concept_sql(query: Query, concepts: Concepts | None) -> tuple[list[str], list[object]]:
    where: list[str] = []
    args: list[object] = []
    for term in query.terms_of("concept"):
        if concepts is None:
            raise QueryError("concepts cannot be used here", query.source or str(query), term.column)
        info = concepts.find(term.value)
        if info is None:
            known = ", ".join(c.name for c in concepts.list()) or "none yet; teach one first"
            raise QueryError(
                f"no concept named {term.value!r} (concepts: {known})", query.source or str(query), term.column
            )
        op = "IN" if term.weight > 0 else "NOT IN"
        where.append(f"id {op} (SELECT photo_id FROM photo_concepts WHERE concept_id = ?)")
        args.append(info.id)
    return where, args


def _check_tags(query: Query, concepts: Concepts) -> None:
    """A ``tag:`` naming neither a tag of the vocabulary nor a user tag is a QueryError at its value."""
    from lookalike.core.learning.tags import TAG_NAMES

    for f in query.filters:
        if f.key == FilterKey.TAG and f.value not in TAG_NAMES and concepts.find(f.value) is None:
            names = [*TAG_NAMES, *(c.name.lower() for c in concepts.list())]
            near = difflib.get_close_matches(f.value, names, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else " (`lookalike tags` lists them)"
            raise QueryError(f"tag: unknown tag {f.value!r}{hint}", query.source or str(query), f.column + 4)


def chooses(query: Query | None) -> bool:
    """Whether the query's filters or concepts restrict which photos may answer."""
    return query is not None and bool(query.filters or query.terms_of("concept"))


def allowed_ids(
    catalog: Catalog,
    query: Query,
    *,
    concepts: Concepts | None = None,
    people: PersonPhotos | None = None,
) -> np.ndarray | None:
    """The ids (ascending) of the photos the query's filters and concepts allow (and its
    people, when ``people`` answers them; else whoever resolves people narrows further),
    or None when it allows every photo. Raises :class:`QueryError` pointing at an unknown
    concept."""
    if not chooses(query) and not (people is not None and query.terms_of("person", "face")):
        return None
    if concepts is not None and query.terms_of("concept"):
        concepts.ensure_current()
    if concepts is not None:
        _check_tags(query, concepts)
    where, args = _filter_sql(query)
    more, more_args = _concept_sql(query, concepts)
    where += more
    args += more_args
    # (no ORDER BY: it would make SQLite walk the photo rows in id order rather than
    # answer from the filters' index; numpy sorts the ids)
    sql = "SELECT id FROM photos" + (" WHERE " + " AND ".join(where) if where else "")
    rows = catalog.query(sql, args)
    ids = np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
    if people is not None:
        for term in query.terms_of("person", "face"):
            theirs = np.asarray(people(term), dtype=np.int64)
            ids = np.intersect1d(ids, theirs) if term.weight > 0 else np.setdiff1d(ids, theirs)
    return ids


def browse(
    catalog: Catalog,
    allowed: np.ndarray | None = None,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[BrowseItem]:
    """Photos newest first (date taken, else file time; ties by id, newest first).
    ``allowed`` restricts them (None: the whole library)."""
    sql = f"SELECT id, path, {DATE_SQL}, taken, width, height, size FROM photos"
    args: list[object] = []
    if allowed is not None:
        if len(allowed) == 0:
            return []
        # the ids as one JSON array: any number of them in one statement
        sql += " WHERE id IN (SELECT value FROM json_each(?))"
        args.append("[" + ",".join(str(int(i)) for i in np.asarray(allowed).tolist()) + "]")
    sql += f" ORDER BY {DATE_SQL} DESC, id DESC"
    if limit is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        args += [-1 if limit is None else int(limit), int(offset)]
    rows = catalog.query(sql, args)
    return [BrowseItem(r[0], unkey(r[1]), float(r[2]), r[3], r[4], r[5], r[6]) for r in rows]


@dataclass(frozen=True, eq=False)
class BrowseColumns:
    """Photos newest first, a column each (what :func:`browse` lists, as arrays): at 100,000
    photos there is no object per photo to build, hand between threads, or for the garbage
    collector to walk; :meth:`item` makes the one a grid tile shows."""

    ids: np.ndarray  # int64
    keys: tuple[bytes, ...]  # the catalog's path keys
    dates: np.ndarray  # float64: taken, else the file's time
    taken: np.ndarray  # float64, NaN where unknown
    width: np.ndarray  # int64, -1 where unknown
    height: np.ndarray  # int64, -1 where unknown
    size: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.ids)

    def item(self, i: int) -> BrowseItem:
        taken, w, h = float(self.taken[i]), int(self.width[i]), int(self.height[i])
        return BrowseItem(
            int(self.ids[i]),
            unkey(self.keys[i]),
            float(self.dates[i]),
            None if taken != taken else taken,
            None if w < 0 else w,
            None if h < 0 else h,
            int(self.size[i]),
        )

    def months(self) -> list[tuple[int, str]]:
        """(index of its first photo, ``YYYY-MM`` in local time) of each month, newest first:
        one local-time conversion a month, not one a photo."""
        out: list[tuple[int, str]] = []
        neg = -self.dates
        i, n = 0, len(self.dates)
        while i < n:
            tm = time.localtime(float(self.dates[i]))
            out.append((i, f"{tm.tm_year:04d}-{tm.tm_mon:02d}"))
            start = time.mktime((tm.tm_year, tm.tm_mon, 1, 0, 0, 0, 0, 0, -1))
            i = max(i + 1, int(np.searchsorted(neg, -start, side="right")))
        return out

    @classmethod
    def of(cls, items: Sequence[BrowseItem]) -> BrowseColumns:
        from lookalike.core.store.catalog import pkey

        return cls(
            np.fromiter((i.photo_id for i in items), np.int64, len(items)),
            tuple(pkey(i.path) for i in items),
            np.fromiter((i.date for i in items), np.float64, len(items)),
            np.fromiter((np.nan if i.taken is None else i.taken for i in items), np.float64, len(items)),
            np.fromiter((-1 if i.width is None else i.width for i in items), np.int64, len(items)),
            np.fromiter((-1 if i.height is None else i.height for i in items), np.int64, len(items)),
            np.fromiter((i.size for i in items), np.int64, len(items)),
        )


def browse_columns(catalog: Catalog, allowed: np.ndarray | None = None) -> BrowseColumns:
    """:func:`browse` as columns (every allowed photo, newest first)."""
    sql = f"SELECT id, path, {DATE_SQL}, taken, width, height, size FROM photos"
    args: list[object] = []
    if allowed is not None:
        if len(allowed) == 0:
            return BrowseColumns.of([])
        sql += " WHERE id IN (SELECT value FROM json_each(?))"
        args.append("[" + ",".join(str(int(i)) for i in np.asarray(allowed).tolist()) + "]")
    sql += f" ORDER BY {DATE_SQL} DESC, id DESC"
    rows = catalog.query(sql, args)
    if not rows:
        return BrowseColumns.of([])
    ids, keys, dates, taken, width, height, size = zip(*rows)
    del rows
    return BrowseColumns(
        np.asarray(ids, np.int64),
        tuple(bytes(k) for k in keys),
        np.asarray(dates, np.float64),
        np.asarray([np.nan if t is None else t for t in taken], np.float64),
        np.asarray([-1 if w is None else w for w in width], np.int64),
        np.asarray([-1 if h is None else h for h in height], np.int64),
        np.asarray(size, np.int64),
    )


def by_month(items: Iterable[BrowseItem]) -> list[tuple[str, list[BrowseItem]]]:
    """Consecutive items grouped under their ``YYYY-MM`` (the items are newest first)."""
    groups: list[tuple[str, list[BrowseItem]]] = []
    for item in items:
        month = item.month
        if not groups or groups[-1][0] != month:
            groups.append((month, []))
        groups[-1][1].append(item)
    return groups


def month_title(month: str) -> str:
    """``2024-06`` -> ``June 2024``."""
    year, mon = month.split("-")
    return f"{time.strftime('%B', time.strptime(mon, '%m'))} {year}"
