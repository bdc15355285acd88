"""Tags a person owns: added by hand, learned from, suggested for the rest.

A user tag and a concept are one thing. The tag ``windmill`` is the concept of
that name (:mod:`lookalike.core.learning.concepts`): the photos the user tagged are its
examples, the suggestions the user accepted are examples marked right, and the
suggestions the user rejected are counter-examples marked wrong. What the tag
learned from them ranks the rest of the library: :meth:`UserTags.suggest`
lists the photos that probably carry it, best first, and nothing is tagged
until the user accepts. A photo carries the tag (``tag:windmill``,
:meth:`UserTags.photo_ids`) when the user tagged it or accepted it, or when the
automatic tagger (:mod:`lookalike.core.learning.tags`) gave the tag of that name and
the user did not remove it.

Every decision is kept by path and content hash (``concept_examples`` for the
tag's photos, ``tag_removed`` below for automatic tags taken off a photo), so
it survives re-indexing, a move (found again by hash), a model switch
(:meth:`lookalike.core.learning.concepts.Concepts.adopt` and :meth:`UserTags.adopt`) and
a kill (each decision is one SQLite transaction).
"""

from __future__ import annotations

import builtins
import difflib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.errors import LookalikeError, UsageError
from lookalike.core.store.catalog import Catalog, pkey
from lookalike.core.store.schema.learning import USER_TAGS as MIGRATION  # noqa: F401  (the catalog applies it as step 7)

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.learning.concepts import Concepts
    from lookalike.core.learning.tags import Tags

log = logging.getLogger(__name__)


#: Origins of a tag's photos in ``concept_examples``: "taught" (added by hand, also by
#: ``teach``), "marked" (a suggestion accepted or rejected), "keyword" (read from the
#: photo's own XMP/IPTC keywords or its sidecar).
KEYWORD = "keyword"

#: Suggestions listed by default.
SUGGEST = 50


@dataclass(frozen=True)
class TagCount:
    name: str
    photos: int  # photos carrying it
    suggested: int  # photos it may also fit (user tags; 0 for automatic ones)
    user: bool  # a user tag (a concept) rather than one of the automatic vocabulary


@dataclass(frozen=True)
class Suggestion:
    photo_id: int
    path: Path
    score: float


def _examples_sql(label: int) -> str:
    """SQL for the ids of photos that are an example (label 1) or counter-example (0) of
    concept ``?``: found by path, or by content hash where the photo moved."""
    return (
        "SELECT p.id FROM photos p JOIN concept_examples e ON e.path = p.path "
        f"WHERE e.concept_id = ? AND e.label = {label} "
        "UNION SELECT p.id FROM photos p JOIN concept_examples e ON e.hash = p.hash "
        f"WHERE e.concept_id = ? AND e.label = {label} "
        "AND NOT EXISTS (SELECT 1 FROM concept_examples x WHERE x.concept_id = e.concept_id AND x.path = p.path)"
    )


def _auto_sql() -> str:
    """SQL for the ids of photos the automatic tag ``?`` is on and the user left on."""
    return (
        "SELECT t.photo_id FROM photo_tags t JOIN photos p ON p.id = t.photo_id WHERE t.tag = ? "
        "AND NOT EXISTS (SELECT 1 FROM tag_removed r WHERE r.tag = t.tag AND r.hash = p.hash)"
    )


_CONCEPT = "(SELECT id FROM concepts WHERE name = ?)"


def carrying_sql(name: str) -> tuple[str, list[object]]:
    """SQL (a subquery of photo ids) for the photos carrying the tag ``name``, and its arguments."""
    examples = _examples_sql(1).replace("e.concept_id = ?", f"e.concept_id = {_CONCEPT}")
    return f"{_auto_sql()} UNION {examples}", [name.lower(), name, name]


class UserTags:
    """The tags of one library as a user sees them: theirs and the automatic ones."""

    def __init__(self, catalog: Catalog, concepts: Concepts, tags: Tags) -> None:
        self.catalog = catalog
        self.concepts = concepts
        self.tags = tags

    # -- reading ------------------------------------------------------------------

    def known(self, name: str) -> bool:
        from lookalike.core.learning.tags import TAG_NAMES

        return name.lower() in TAG_NAMES or self.concepts.find(name) is not None

    def unknown_error(self, name: str) -> str:
        from lookalike.core.learning.tags import TAG_NAMES

        names = [*TAG_NAMES, *(c.name for c in self.concepts.list())]
        near = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=1)
        hint = f"; did you mean {near[0]!r}?" if near else " (`lookalike tags` lists them)"
        return f"tag: unknown tag {name!r}{hint}"

    def _cid(self, name: str) -> int | None:
        info = self.concepts.find(name)
        return None if info is None else info.id

    def photo_ids(self, name: str) -> np.ndarray:
        """The photos carrying the tag (ascending): the user's, accepted suggestions, and the
        automatic tag of that name where the user left it on."""
        sql, args = carrying_sql(name)
        rows = self.catalog.query(sql, args)
        return np.unique(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    def rejected_ids(self, name: str) -> np.ndarray:
        cid = self._cid(name)
        if cid is None:
            return np.zeros(0, np.int64)
        rows = self.catalog.query(_examples_sql(0), (cid, cid))
        return np.unique(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    def of(self, photo_id: int) -> tuple[builtins.list[str], builtins.list[str]]:
        """The photo's (user tags, automatic tags left on), each sorted by name."""
        row = self.catalog.photos_by_ids([photo_id]).get(photo_id)
        if row is None:
            return [], []
        mine = self.catalog.query(
            "SELECT DISTINCT c.name FROM concepts c JOIN concept_examples e ON e.concept_id = c.id "
            "WHERE e.label = 1 AND (e.path = ? OR (e.hash = ? AND NOT EXISTS (SELECT 1 FROM concept_examples x "
            "WHERE x.concept_id = c.id AND x.path = ?))) ORDER BY c.name COLLATE NOCASE",
            (pkey(row.path), row.hash, pkey(row.path)),
        )
        auto = self.catalog.query(
            "SELECT t.tag FROM photo_tags t WHERE t.photo_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM tag_removed r WHERE r.tag = t.tag AND r.hash = ?) ORDER BY t.tag",
            (photo_id, row.hash),
        )
        names = [r[0] for r in mine]
        lowered = {n.lower() for n in names}
        return names, [r[0] for r in auto if r[0].lower() not in lowered]

    def counts(self) -> tuple[builtins.list[TagCount], builtins.list[TagCount]]:
        """(the user's tags, the automatic ones), each with how many photos carry it; the
        automatic list holds only tags some photo has."""
        mine = []
        for info in self.concepts.list():
            carrying = self.photo_ids(info.name)
            suggested = self._suggested_count(info.id, info.name, carrying)
            mine.append(TagCount(info.name, int(len(carrying)), suggested, True))
        own = {t.name.lower() for t in mine}
        auto = self.catalog.query(
            "SELECT t.tag, COUNT(*) FROM photo_tags t JOIN photos p ON p.id = t.photo_id WHERE NOT EXISTS "
            "(SELECT 1 FROM tag_removed r WHERE r.tag = t.tag AND r.hash = p.hash) GROUP BY t.tag"
        )
        automatic = [TagCount(t, int(n), 0, False) for t, n in auto if n and t.lower() not in own]
        automatic.sort(key=lambda c: (-c.photos, c.name))
        return mine, automatic

    def _suggested_count(self, cid: int, name: str, carrying: np.ndarray) -> int:
        rows = self.catalog.query("SELECT photo_id FROM photo_concepts WHERE concept_id = ?", (cid,))
        got = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        rejected = self.rejected_ids(name) if len(got) else np.zeros(0, np.int64)
        return int(len(np.setdiff1d(got, np.concatenate([carrying, rejected]))))

    def suggest(self, name: str, k: int | None = SUGGEST, *, every: bool = False) -> builtins.list[Suggestion]:
        """Photos that probably carry the tag but do not yet, best first: at or above what
        the tag learned as its threshold (``every``: the whole ranking). Photos tagged,
        accepted or rejected are never among them."""
        info = self.concepts.get(name)
        if info.examples == 0:
            return []
        scorer = self.concepts.scorer(info.name)
        ids, scores = self.concepts.matrix.scores(scorer.direction)
        if len(ids) == 0:
            return []
        keep = ~np.isin(ids, np.concatenate([self.photo_ids(info.name), self.rejected_ids(info.name)]))
        if not every:
            cut = self.concepts.get(info.name).threshold
            if cut is not None:
                keep &= scores >= cut
        ids, scores = ids[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")
        if k is not None:
            order = order[:k]
        rows = self.catalog.photos_by_ids(ids[order].tolist())
        return [Suggestion(int(ids[i]), rows[int(ids[i])].path, float(scores[i])) for i in order if int(ids[i]) in rows]

    # -- writing ------------------------------------------------------------------

    def _resolve(self, photos: Iterable[Path | str | int]) -> builtins.list[tuple[Path, str, int]]:
        out = []
        for photo in photos:
            if isinstance(photo, int | np.integer):
                row = self.catalog.photos_by_ids([int(photo)]).get(int(photo))
                if row is None:
                    raise LookalikeError(f"No photo {photo} in the library")
                out.append((row.path, row.hash, row.id))
            else:
                out.append(self.concepts._photo_for(Path(photo)))
        return out

    def add(self, name: str, photos: Sequence[Path | str | int], *, origin: str = "taught") -> int:
        """Tag these photos with ``name`` (a new user tag, or more photos of one); the tag
        learns from them at once. Returns how many photos newly carry it."""
        from lookalike.core.learning.concepts import check_name

        name = check_name(name)
        if not photos:
            raise UsageError("name at least one photo to tag")
        resolved = self._resolve(photos)
        before = set(self.photo_ids(name).tolist())
        now = time.time()
        with self.concepts._lock, self.catalog.transaction() as conn:
            cid = self.concepts._ensure(conn, name, now)
            for path, digest, _ in resolved:
                self.concepts._put_example(conn, cid, path, digest, 1, origin, now)
            conn.executemany(
                "DELETE FROM tag_removed WHERE tag = ? AND hash = ?", [(name, digest) for _, digest, _ in resolved]
            )
        self.relearn(name)
        return len({i for _, _, i in resolved} - before)

    def accept(self, name: str, photos: Sequence[Path | str | int]) -> int:
        """Suggestions the user accepted: they carry the tag now, and teach it."""
        return self._mark(name, photos, 1)

    def reject(self, name: str, photos: Sequence[Path | str | int]) -> int:
        """Photos that do not carry the tag: counter-examples, never suggested again."""
        return self._mark(name, photos, 0)

    def _mark(self, name: str, photos: Sequence[Path | str | int], label: int) -> int:
        """The user's verdict on these photos (1 carries the tag, 0 does not), kept as marked examples."""
        info = self.concepts.get(name)
        resolved = self._resolve(photos)
        now = time.time()
        with self.concepts._lock, self.catalog.transaction() as conn:
            for path, digest, _ in resolved:
                self.concepts._put_example(conn, info.id, path, digest, label, "marked", now)
        self.relearn(info.name, choose=False)
        return len(resolved)

    def remove(self, name: str, photos: Sequence[Path | str | int]) -> int:
        """Take the tag off these photos: the user's tag, and the automatic tag of that name
        (remembered by content hash). Returns how many photos carried it."""
        resolved = self._resolve(photos)
        carrying = set(self.photo_ids(name).tolist())
        cid = self._cid(name)
        from lookalike.core.learning.tags import TAG_NAMES

        auto = name.lower() in TAG_NAMES
        if cid is None and not auto:
            raise LookalikeError(self.unknown_error(name).removeprefix("tag: "))
        now = time.time()
        with self.concepts._lock, self.catalog.transaction() as conn:
            for path, digest, _ in resolved:
                if cid is not None:
                    conn.execute(
                        "DELETE FROM concept_examples WHERE concept_id = ? AND label = 1 AND (path = ? OR hash = ?)",
                        (cid, pkey(path), digest),
                    )
                    self.concepts._unlearned(conn, cid)  # (relearned below; at the next update if killed)
                conn.execute(
                    "INSERT OR REPLACE INTO tag_removed(tag, hash, path, removed) VALUES(?,?,?,?)",
                    (name.lower(), digest, pkey(path), now),
                )
        if cid is not None:
            self.relearn(name)
        return len({i for _, _, i in resolved} & carrying)

    def relearn(self, name: str, *, choose: bool = True) -> None:
        info = self.concepts.find(name)
        if info is not None:
            self.concepts.learn(info.name, choose=choose)

    def removed(self, name: str, digest: str) -> bool:
        return bool(self.catalog.query("SELECT 1 FROM tag_removed WHERE tag = ? AND hash = ?", (name, digest)))

    def adopt(self, other: Catalog) -> int:
        """Carry the removals of another library (the model before a switch) into this one."""
        try:
            theirs = other.query("SELECT tag, hash, path, removed FROM tag_removed")
        except Exception:  # an older library without the table
            return 0
        with self.catalog.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO tag_removed(tag, hash, path, removed) VALUES(?,?,?,?)", theirs)
        return len(theirs)
