"""The duplicates facade the command line and the window call."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.core.catalog import PhotoRow, pkey, unkey
from lookalike.core.duplicates import fingerprint, trash
from lookalike.core.duplicates.finding import DuplicateKind, FindStats, find_groups
from lookalike.core.duplicates.keeper import DEFAULT_RULES, Candidate, KeeperRule, choose, format_name
from lookalike.core.errors import LibraryLockedError, LookalikeError
from lookalike.core.vectors import VectorIndex

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.search import SearchEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """One photo of a group, with what the window shows of it."""

    photo_id: int
    path: Path
    format: str
    width: int | None
    height: int | None
    taken: float | None
    size: int
    exif: int
    reference: bool
    hash: str
    chosen: bool = False  # the user chose it as its group's keeper

    @property
    def folder(self) -> Path:
        return self.path.parent


@dataclass(frozen=True)
class DuplicateGroup:
    kind: DuplicateKind
    keep: Member
    others: tuple[Member, ...]
    reason: str

    @property
    def members(self) -> tuple[Member, ...]:
        return (self.keep, *self.others)

    @property
    def hashes(self) -> tuple[str, ...]:
        return tuple(sorted(m.hash for m in self.members))

    def as_json(self) -> dict:
        return {
            "kind": self.kind.value,
            "keep": str(self.keep.path),
            "others": [str(m.path) for m in self.others],
            "reason": self.reason,
        }


def _writes(what: str):
    """The method writes the library: it runs inside the engine's ``writing`` block (which
    takes the writer lock of a library the window opened, and refuses a reader)."""

    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            with self.engine.writing(what):
                return method(self, *args, **kwargs)

        return run

    return wrap


class Duplicates:
    """Finding duplicate groups of a library, choosing keepers, acting on them.

    Opening it for a library that can be written settles whatever a killed trash
    run left (:func:`.trash.recover`)."""

    def __init__(self, engine: SearchEngine, rules: Sequence[KeeperRule] = DEFAULT_RULES) -> None:
        self.engine = engine
        self.rules = tuple(rules)
        self.last_stats = FindStats()
        if self.writable:
            try:
                with engine.writing("settle an interrupted trash run"):
                    recovered = trash.recover(self.catalog)
            except LibraryLockedError:  # another Lookalike writes now: settled next time
                recovered = False
            if recovered:
                self._refresh_search()

    @property
    def catalog(self):
        return self.engine.catalog

    @property
    def writable(self) -> bool:
        return bool(self.engine.library.can_write)

    # -- finding ----------------------------------------------------------------

    def groups(
        self,
        kinds: Iterable[DuplicateKind] = (DuplicateKind.EXACT, DuplicateKind.NEAR),
        *,
        include_kept: bool = False,
    ) -> list[DuplicateGroup]:
        """The groups, biggest saving first; those the user kept whole are left out."""
        kinds = tuple(kinds)
        if self.catalog.photo_count() < 2:
            return []
        stats = FindStats()
        raw = find_groups(
            self.catalog,
            self.engine.vectors(),
            self.engine.model_name,
            kinds=kinds,
            stats=stats,
            fingerprints=self._ensure_fingerprints,
            graph_file=self.engine.library.path / VectorIndex.GRAPH,
        )
        self.last_stats = stats
        kept = [] if include_kept else self._kept_sets()
        ids = sorted({i for g in raw for i in g.ids})
        rows = self.catalog.photos_by_ids(ids)
        prints = fingerprint.cached(self.catalog, ids)
        refs = self.reference_folders()
        chosen = self._chosen()
        out: list[DuplicateGroup] = []
        for g in raw:
            members = _one_per_file([self._member(rows[i], prints.get(i), refs, chosen) for i in g.ids if i in rows])
            picked = [m for m in members if m.chosen]
            if len(picked) > 1:  # chosen in two groups that are one now: the latest choice
                latest = max(picked, key=lambda m: chosen[m.photo_id])
                members = [m if m is latest or not m.chosen else replace(m, chosen=False) for m in members]
            if len(members) < 2:
                continue
            if any(_within(Counter(m.hash for m in members), k) for k in kept):
                continue
            choice = choose([_candidate(m) for m in members], self.rules)
            by_id = {m.photo_id: m for m in members}
            out.append(
                DuplicateGroup(
                    g.kind,
                    by_id[choice.keep.photo_id],
                    tuple(by_id[c.photo_id] for c in choice.others),
                    choice.reason,
                )
            )
        out.sort(key=lambda g: (list(DuplicateKind).index(g.kind), -sum(m.size for m in g.others), str(g.keep.path)))
        return out

    def _ensure_fingerprints(self, ids: Sequence[int]) -> dict[int, fingerprint.Fingerprint]:
        """Fingerprints of ``ids``, computing (and storing) the missing ones when it may write."""
        if self.writable:
            try:
                with self.engine.writing("store photo fingerprints"):
                    return fingerprint.ensure(self.catalog, ids)
            except LibraryLockedError:  # another Lookalike writes now: read what is stored
                pass
        return self._fingerprints(ids)

    def _fingerprints(self, ids: Sequence[int]) -> dict[int, fingerprint.Fingerprint]:
        """Read-only library: the cache, and the missing ones computed but not stored."""
        have = fingerprint.cached(self.catalog, ids)
        rows = self.catalog.photos_by_ids([i for i in ids if i not in have])
        for pid, row in rows.items():
            have[pid] = fingerprint.fingerprint_file(row.path)
        return have

    def _chosen(self) -> dict[int, float]:
        return {int(p): float(at) for p, at in self.catalog.query("SELECT photo_id, at FROM dup_keeper")}

    def _member(
        self, row: PhotoRow, fp: fingerprint.Fingerprint | None, refs: Sequence[Path], chosen: dict[int, float]
    ) -> Member:
        if fp is None:
            exif, fmt = fingerprint.file_facts(row.path)
        else:
            exif, fmt = fp.exif, fp.format
        return Member(
            row.id,
            row.path,
            format_name(row.path, fmt),
            row.width,
            row.height,
            row.taken,
            row.size,
            exif,
            any(row.path.is_relative_to(r) for r in refs),
            row.hash,
            row.id in chosen,
        )

    # -- decisions ----------------------------------------------------------------

    @_writes("remember a decision")
    def keep_all(self, group: DuplicateGroup) -> None:
        """Remember that these photos are all kept: the group does not come back (a new copy does)."""
        with self.catalog.transaction() as conn:
            conn.execute(
                "INSERT INTO dup_kept(kind, hashes, at) VALUES(?, ?, ?)",
                (group.kind.value, " ".join(group.hashes), time.time()),
            )

    @_writes("remember a keeper")
    def choose_keeper(self, group: DuplicateGroup, member: Member) -> DuplicateGroup:
        """The user's keeper of a group (a click on its card): remembered, it wins over every
        rule while it is in a group; the others of the group stop being chosen."""
        if member.photo_id not in {m.photo_id for m in group.members}:
            raise LookalikeError(f"{member.path} is not in this group")
        with self.catalog.transaction() as conn:
            conn.executemany("DELETE FROM dup_keeper WHERE photo_id = ?", [(m.photo_id,) for m in group.members])
            conn.execute(
                "INSERT INTO dup_keeper(photo_id, hashes, at) VALUES(?, ?, ?)",
                (member.photo_id, " ".join(group.hashes), time.time()),
            )
        members = [replace(m, chosen=m.photo_id == member.photo_id) for m in group.members]
        keep = next(m for m in members if m.chosen)
        return DuplicateGroup(group.kind, keep, tuple(m for m in members if m is not keep), "chosen by you")

    def _kept_sets(self) -> list[Counter]:
        return [Counter(h.split()) for (h,) in self.catalog.query("SELECT hashes FROM dup_kept")]

    @_writes("forget decisions")
    def forget_kept(self) -> int:
        """Let every group kept whole come back. Returns the decisions forgotten."""
        with self.catalog.transaction() as conn:
            return conn.execute("DELETE FROM dup_kept").rowcount

    def reference_folders(self) -> list[Path]:
        return [unkey(p) for (p,) in self.catalog.query("SELECT path FROM dup_reference ORDER BY path")]

    @_writes("mark a reference folder")
    def set_reference(self, folder: Path, reference: bool = True) -> None:
        """Mark a folder whose photos always win as the keeper (or unmark it)."""
        folder = Path(folder).expanduser().resolve()
        with self.catalog.transaction() as conn:
            if reference:
                conn.execute(
                    "INSERT INTO dup_reference(path, added) VALUES(?, ?) ON CONFLICT(path) DO NOTHING",
                    (pkey(folder), time.time()),
                )
            else:
                conn.execute("DELETE FROM dup_reference WHERE path = ?", (pkey(folder),))

    # -- actions ------------------------------------------------------------------

    @_writes("move photos to the trash")
    def trash_others(self, groups: Sequence[DuplicateGroup]) -> trash.TrashReport:
        """Move every group's photos but its keeper to the system trash (journalled; undoable)."""
        ids = [m.photo_id for g in groups for m in g.members]
        rows = self.catalog.photos_by_ids(ids)
        victims: list[PhotoRow] = []
        keepers: dict[int, PhotoRow] = {}
        left: list[trash.Left] = []
        for g in groups:
            keeper = rows.get(g.keep.photo_id)
            for m in g.others:
                row = rows.get(m.photo_id)
                if row is None or keeper is None:
                    left.append(trash.Left(m.path, "no longer in the library (indexed again meanwhile?)"))
                    continue
                if row.id not in keepers:
                    victims.append(row)
                    keepers[row.id] = keeper
        keeper_ids = {k.id for k in keepers.values()}
        victims = [v for v in victims if v.id not in keeper_ids]  # never trash a photo another group keeps
        report = trash.trash_photos(self.catalog, victims, keepers)
        self._refresh_search()
        return trash.TrashReport(report.run_id, report.moved, report.left + tuple(left))

    @_writes("undo")
    def undo(self, run_id: int | None = None) -> trash.UndoReport:
        """Put back the last trash run's files that are still in the trash."""
        report = trash.undo(self.catalog, run_id)
        self._refresh_search()
        people = self.engine.people_if_open()
        if report.restored and people is not None:
            people.faces_back()  # their faces came back with them: the face graph takes them again
        return report

    def can_undo(self) -> bool:
        return trash.last_run(self.catalog) is not None

    def _refresh_search(self) -> None:
        """Trashed photos leave search results at once: the graph follows the catalog."""
        try:
            self.engine.vectors()
        except LookalikeError as exc:  # no model recorded yet: nothing to search anyway
            log.debug("No vector graph to refresh: %s", exc)

    def _need_writer(self, what: str) -> None:
        if not self.writable:
            raise LookalikeError(
                self.engine.library.holder() or f"This library is open for reading only; cannot {what}."
            )


def _one_per_file(members: list[Member]) -> list[Member]:
    """A symbolic link and its target are one file, not two copies: one member each (the
    target itself, else the first), so that neither is ever offered for the trash."""
    by_file: dict[tuple[int, int], list[Member]] = {}
    for m in members:
        try:
            st = os.stat(m.path)
        except OSError:
            continue  # not there: the trash step says so
        by_file.setdefault((st.st_dev, st.st_ino), []).append(m)
    dropped = {
        m.photo_id
        for same in by_file.values()
        for m in same
        if m is not next((x for x in same if not os.path.islink(x.path)), same[0])
    }
    return [m for m in members if m.photo_id not in dropped]


def _within(group: Counter, kept: Counter) -> bool:
    return all(kept[h] >= n for h, n in group.items())


def _candidate(m: Member) -> Candidate:
    return Candidate(m.photo_id, m.path, m.format, m.width, m.height, m.taken, m.exif, m.size, m.reference, m.chosen)
