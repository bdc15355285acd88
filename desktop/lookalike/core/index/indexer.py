"""Indexing: scan -> plan (the diff) -> decode pool -> stages (encode, ...) -> commit.

:meth:`Indexer.run` orders the steps; each is small and lives where it reads best:
the scan in :mod:`lookalike.core.index.scan`, the plan, decode pool, typed batches and commits in
:mod:`lookalike.core.index.pipeline`, the stages (the image encoder first, then any
other, such as faces) in :mod:`lookalike.core.index.stages`, whose docstring is the
protocol a new stage implements.

Every batch of photos (``batch_size``) is committed to the catalog (vectors and
every stage's output included) in one transaction, as soon as it is encoded. So
a run killed at any moment loses at most the batch in flight: the photos whose
encoding had started and whose batch was not committed yet. On CPU, while the
encoder runs calls side by side, a call never spans two batches and calls run
only on the oldest uncommitted batch and the ones right after it, up to
``CpuShare.calls_at_once`` batches in all (two, typically), whatever number of
batches was gathered. A cancel (Ctrl+C) stops between encoder calls and commits
what was encoded. The next run picks up where it stopped.
Faces are committed on their own thread (:mod:`lookalike.core.faces.stage`):
a photo committed without them is found again by the stage's ``pending()``,
decoded for the faces alone, never encoded again. The graph is only a cache of
the catalog and is saved at the end (and repaired on open if the run died).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.core.index.pipeline import (
    SMALL_COMMIT,
    Batches,
    DecodePool,
    Plan,
    Refresh,
    Sizes,
    Tally,
    Views,
    commit_ready,
    commit_refreshed,
    commit_removed,
    commit_rows,
    decode_job,
    decode_refresh,
    make_plan,
    prepare,
)
from lookalike.core.index.scan import ScanResult, scan
from lookalike.core.index.stages import EncodeStage, PhotoStage
from lookalike.core.progress import (
    Cancelled,
    CancelToken,
    Progress,
    ProgressCallback,
    RateMeter,
    Stage,
    no_progress,
)
from lookalike.core.store.catalog import Catalog, Folder

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.encoders.base import Encoder
    from lookalike.core.store.vectors import VectorIndex

__all__ = ["IndexReport", "Indexer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexReport:
    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    failed: int = 0
    unchanged: int = 0
    offline_folders: tuple[Path, ...] = ()
    seconds: float = 0.0
    encoded: int = 0
    cancelled: bool = False
    refreshed: int = 0  # photos indexed before that a stage added since (faces, ...) has now seen

    @property
    def rate(self) -> float:
        """Photos handled (encoded, moved or failed) per second, end to end."""
        handled = self.encoded + self.moved + self.failed
        return handled / self.seconds if self.seconds > 0 else 0.0


class _Meter:
    """Progress of one stage, about ten updates a second."""

    def __init__(self, progress: ProgressCallback, stage: Stage, total: int) -> None:
        self.progress, self.stage, self.total = progress, stage, total
        self.done = 0
        self._rate = RateMeter()
        self._last = 0.0

    def tick(self, n: int = 1, note: str = "") -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 0.1 or self.done == self.total:
            self._last = now
            self.progress(Progress(self.stage, self.done, self.total, self._rate.update(self.done), note=note))

    def finish(self) -> None:
        self.progress(Progress(self.stage, self.done, self.total, self._rate.update(self.done)))


class Indexer:
    """Brings a library's catalog and graph in line with its folders."""

    def __init__(
        self,
        catalog: Catalog,
        vectors: VectorIndex,
        encoder: Encoder | Callable[[], Encoder],
        *,
        batch_size: int | None = None,
        workers: int | None = None,
        on_commit: Callable[[], None] | None = None,
        stages: Sequence[PhotoStage] = (),
    ) -> None:
        """``encoder`` may be a loaded encoder or a function that loads one: then the
        model (and torch) is loaded only when a photo actually needs encoding, so a
        re-scan that finds nothing new costs no model load. ``stages`` run after the
        encoder on every decoded photo (see :mod:`lookalike.core.index.stages`)."""
        self.catalog = catalog
        self.vectors = vectors
        self.encode = EncodeStage(encoder, vectors, batch_size=batch_size, workers=workers)
        self.stages: tuple[PhotoStage, ...] = tuple(stages)
        self.on_commit = on_commit

    @property
    def encoder(self) -> Encoder:
        return self.encode.encoder

    def run(
        self,
        folders: Sequence[Folder],
        *,
        excludes: Sequence[str] = (),
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> IndexReport:
        t0 = time.monotonic()
        cancel = cancel or CancelToken()
        try:
            found = scan(folders, self.catalog, excludes, cancel, progress)
        except Cancelled:
            self.encode.close()
            return IndexReport(cancelled=True, seconds=time.monotonic() - t0)
        try:
            tally, plan, cancelled = self._update(found, progress, cancel)
        finally:
            self.encode.close()
        refreshed = 0 if cancelled else self._refresh(plan, progress, cancel)
        return IndexReport(
            added=tally.added,
            updated=tally.updated,
            moved=tally.moved,
            removed=tally.removed,
            failed=tally.failed,
            unchanged=plan.unchanged_count,
            offline_folders=tuple(f.path for f in found.offline),
            seconds=time.monotonic() - t0,
            encoded=tally.encoded,
            cancelled=cancelled or cancel.cancelled,
            refreshed=refreshed,
        )

    def _update(self, found: ScanResult, progress: ProgressCallback, cancel: CancelToken) -> tuple[Tally, Plan, bool]:
        """The catalog in line with the scan: new and changed photos through the stages,
        moves, failures, and (unless cancelled) the photos that are gone."""
        for folder in found.offline:
            self.catalog.set_folder_state(folder.id, online=False)
        plan = make_plan(found, self.catalog, keep_unchanged=bool(self.stages))
        if plan.jobs:
            self.encode.warm_up(len(plan.jobs))  # the model, now that there is work for it (started aside)
            prepare(self.stages)
        meter = _Meter(progress, Stage.ENCODE, len(plan.jobs))
        progress(Progress(Stage.ENCODE, 0, len(plan.jobs)))
        tally = Tally(failed=len(found.failures))
        if found.failures or plan.stale_failures:  # met while walking: recorded up front
            self.catalog.commit_batch(failures=found.failures, cleared_failures=plan.stale_failures)
        batches = Batches(plan.gone_by_hash(), self._sizes(), tally)
        cancelled = self._dispatch(plan, batches, meter, cancel)
        cancelled = cancelled or cancel.cancelled
        if not cancelled:
            unclaimed = [pid for pid in plan.gone if pid not in batches.claimed]
            if unclaimed:
                commit_removed(unclaimed, self.catalog, (self.encode, *self.stages))
                tally.removed += len(unclaimed)
            for folder in found.scanned:
                self.catalog.set_folder_state(folder.id, online=True, scanned=True)
        meter.finish()
        return tally, plan, cancelled

    def _sizes(self, stages: Sequence[PhotoStage] | None = None) -> Sizes:
        """The image sizes to decode for: the encoder's and the stages' (all of them, or
        ``stages`` alone). One decode at the largest; the others are derived from it."""
        if stages is None:
            return Sizes.of(self.encode.image_size, *(s.image_size or self.encode.image_size for s in self.stages))
        return Sizes.of(*(s.image_size or self.encode.image_size for s in stages))

    def _dispatch(self, plan: Plan, batches: Batches, meter: _Meter, cancel: CancelToken) -> bool:
        """Decode the plan's jobs and commit them batch by batch. Returns whether cancelled;
        the batch in flight is finished and committed either way (a cancel during it
        stops it between encoder calls)."""
        share = self.encode.share
        work = partial(decode_job, sizes=self._sizes(), gone_hashes=frozenset(plan.gone_by_hash()))
        cancelled = False
        with DecodePool(share.workers, max(4 * share.batch_size, 2 * share.workers)) as pool:
            self.encode.idle_decoders = pool.idle
            try:
                for outcome in pool.results(plan.jobs, work, cancel):
                    batches.take(outcome)
                    self._commit_due(batches, pool, cancel)
                    meter.tick(note=outcome.job.file.path.name)
            except Cancelled:
                cancelled = True
        self._commit_rows(batches)
        self._commit_ready(batches, cancel)
        return cancelled

    def _commit_due(self, batches: Batches, pool: DecodePool, cancel: CancelToken) -> None:
        share = self.encode.share
        # On CPU, when the next photo is decoded already the encoder is the bottleneck
        # (CLIP): gather up to four commit batches before encoding, so that more calls
        # run side by side and fewer batch ends leave a core idle. They are still
        # committed one batch at a time, each as soon as it is encoded.
        encoder_behind = (
            share.encode_threads is not None and len(batches.ready) < 4 * share.batch_size and pool.next_is_ready()
        )
        if len(batches.ready) >= share.batch_size and not encoder_behind:
            self._commit_rows(batches)
            self._commit_ready(batches, cancel)
        elif len(batches.rows) >= SMALL_COMMIT:
            self._commit_rows(batches)

    def _commit_rows(self, batches: Batches) -> None:
        commit_rows(batches.take_rows(), self.catalog, (self.encode, *self.stages))

    def _commit_ready(self, batches: Batches, cancel: CancelToken) -> None:
        ready = batches.take_ready()
        if not ready:
            return

        def committed(added: int, updated: int) -> None:
            batches.tally.added += added
            batches.tally.updated += updated
            batches.tally.encoded += added + updated
            if self.on_commit:
                self.on_commit()

        commit_ready(ready, self.catalog, self.encode, self.stages, cancel, committed)

    # -- stages added since photos were indexed --------------------------------------

    def _refresh(self, plan: Plan, progress: ProgressCallback, cancel: CancelToken) -> int:
        """Photos already indexed, unchanged, that some stage has not seen (it is new, or a
        run was cancelled before it got to them): decoded for those stages alone."""
        if not self.stages:
            return 0
        with self.catalog.transaction() as conn:
            wanted = {stage: stage.pending(conn) for stage in self.stages}
        jobs = plan.refreshes(wanted)
        if not jobs:
            return 0
        meters = {s: _Meter(progress, s.stage, sum(s in j.stages for j in jobs)) for s in self.stages}
        needed = [s for s in self.stages if meters[s].total]
        prepare(needed)
        share = self.encode.share
        batch: list[tuple[Refresh, Views]] = []
        refreshed = 0
        with DecodePool(share.workers, max(4 * share.batch_size, 2 * share.workers)) as pool:
            try:
                for job, decoded in pool.results(jobs, partial(decode_refresh, sizes=self._sizes(needed)), cancel):
                    if decoded is not None:
                        batch.append((job, decoded))
                    if len(batch) >= share.batch_size:
                        refreshed += self._commit_refreshed(batch, meters, cancel)
                        batch = []
            except Cancelled:
                pass
        refreshed += self._commit_refreshed(batch, meters, cancel)
        for meter in meters.values():
            meter.finish()
        return refreshed

    def _commit_refreshed(
        self, batch: list[tuple[Refresh, Views]], meters: dict[PhotoStage, _Meter], cancel: CancelToken
    ) -> int:
        if not batch:
            return 0
        done = commit_refreshed(batch, self.catalog, self.stages, cancel, self.encode.image_size)
        for stage, n in done.items():
            meters[stage].tick(n, note=batch[-1][0].path.name)
        return max(done.values(), default=0)
