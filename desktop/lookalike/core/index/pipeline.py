"""The indexer's steps between the scan and the catalog: plan -> decode -> batches -> commit.

* :func:`make_plan` diffs the scan against the catalog: which files need reading
  (new or changed), which photos are gone (unless they turn up moved), which are
  unchanged.
* :class:`DecodePool` reads, hashes and decodes those files on worker threads, a
  window of them ahead of the consumer, yielding each :class:`Outcome` in order.
* :class:`Batches` routes every outcome: a decoded photo waits in the
  :class:`Ready` list of its batch for the stages; a move, a touch, a failure or a file gone
  since the scan is a row change in :class:`RowChanges`.
* :func:`commit_ready` runs the stages on ready photos and commits them batch by
  batch, each batch's photos and every stage's output in one transaction, as soon as
  the batch is encoded; :func:`commit_rows` commits the rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lookalike.core.errors import DiskFullError
from lookalike.core.index.imaging import (
    DecodedPhoto,
    FileVanishedError,
    ImageDecodeError,
    decode_bytes,
    read_file_bytes,
)
from lookalike.core.index.stages import EncodeStage, PhotoStage, StagePhoto
from lookalike.core.progress import Cancelled, CancelToken
from lookalike.core.store.catalog import Catalog, FailureRow, NewPhoto, pkey

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from lookalike.core.index.scan import ScannedFile, ScanResult

log = logging.getLogger(__name__)

SMALL_COMMIT = 256  # row changes gathered before they are committed on their own


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# A test hook: with LOOKALIKE_ENCODE_LOG=FILE in the environment, "start|done|commit <TAB>
# pid <TAB> path" lines are appended to FILE as an encoder call starts on the photos, once
# every stage is done with a batch (ready to commit) and after it is committed, so a crash test can
# count how often each photo was processed across killed runs. Unset (the normal case) it costs one getenv a batch.
def trace_encodes(event: str, paths: Iterable[Path]) -> None:
    target = os.environ.get("LOOKALIKE_ENCODE_LOG")
    if target:
        lines = b"".join(
            b"%s\t%d\t%s\n" % (event.encode(), os.getpid(), os.fsencode(p).replace(b"\n", b"\\n")) for p in paths
        )
        with open(target, "ab") as fh:
            fh.write(lines)


# -- plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A file to read: new, or changed (then ``old_id``/``old_hash`` are its current row)."""

    file: ScannedFile
    old_id: int | None = None
    old_hash: str | None = None


@dataclass(frozen=True)
class Refresh:
    """A photo already in the catalog, unchanged, that some stages have not seen yet."""

    photo_id: int
    path: Path
    stages: tuple[PhotoStage, ...]


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    gone: dict[int, str] = field(default_factory=dict)  # photo id -> hash, for rows whose file is not there
    unchanged_count: int = 0
    unchanged: dict[int, Path] = field(default_factory=dict)  # photo id -> path, when a stage may want them
    stale_failures: list[Path] = field(default_factory=list)  # failures whose file is not there any more

    def gone_by_hash(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for pid, h in self.gone.items():
            out.setdefault(h, pid)
        return out

    def refreshes(self, wanted: dict[PhotoStage, set[int]]) -> list[Refresh]:
        """Unchanged photos some stage still lacks, each with the stages that lack it."""
        out = []
        for pid, path in self.unchanged.items():
            stages = tuple(s for s, ids in wanted.items() if pid in ids)
            if stages:
                out.append(Refresh(pid, path, stages))
        return out


def make_plan(found: ScanResult, catalog: Catalog, *, keep_unchanged: bool = False) -> Plan:
    """The diff of a scan against the catalog, folder by folder. Every photo under an
    offline folder stays as it is (those folders are not in ``found.scanned``).
    ``keep_unchanged``: list the unchanged photos too (for stages that may lack them)."""
    plan = Plan()
    by_folder: dict[int, list[ScannedFile]] = {}
    for f in found.files:
        by_folder.setdefault(f.folder_id, []).append(f)
    walk_failures = {pkey(f.path) for f in found.failures}
    for folder in found.scanned:
        _plan_folder(plan, catalog, folder.id, by_folder.get(folder.id, []), walk_failures, keep_unchanged)
    return plan


def _plan_folder(
    plan: Plan,
    catalog: Catalog,
    folder_id: int,
    files: list[ScannedFile],
    walk_failures: set[bytes],
    keep_unchanged: bool,
) -> None:
    known = catalog.photos_in_folder(folder_id)
    failed = catalog.failures_in_folder(folder_id)
    seen: set[bytes] = set()
    for f in files:
        key = pkey(f.path)
        seen.add(key)
        row = known.get(key)
        if row is not None:
            pid, size, mtime, h = row
            if size == f.size and mtime == f.mtime_ns:
                plan.unchanged_count += 1
                if keep_unchanged:
                    plan.unchanged[pid] = f.path
            else:
                plan.jobs.append(Job(f, pid, h))
        elif failed.get(key) != (f.size, f.mtime_ns):  # known bad and unchanged: not worth another try
            plan.jobs.append(Job(f))
    for key, (pid, _s, _m, h) in known.items():
        if key not in seen:
            plan.gone[pid] = h
    plan.stale_failures.extend(Path(os.fsdecode(key)) for key in failed if key not in seen and key not in walk_failures)


# -- decode -------------------------------------------------------------------------


def fit(decoded: DecodedPhoto, size: int) -> DecodedPhoto:
    """``decoded`` for a stage that asked for a short side of ``size``, shrunk about as
    the decoder would have shrunk it: halved (a box filter, like the JPEG codec's draft
    scales) while the short side stays at least ``size``, then scaled down to ``size``
    if still over twice it."""
    img = decoded.image
    short = min(img.size)
    factor = 1
    while factor < 8 and short // (factor * 2) >= size:
        factor *= 2
    if factor == 1 and short <= 2 * size:
        return decoded
    small = img.reduce(factor) if factor > 1 else img.copy()
    if min(small.size) > 2 * size:
        scale = size / min(small.size)
        small.thumbnail(
            (max(1, round(small.width * scale)), max(1, round(small.height * scale))),
            Image.Resampling.BILINEAR,
            reducing_gap=2.0,
        )
    return dataclasses.replace(decoded, image=small)


@dataclass(frozen=True)
class Sizes:
    """The image sizes a run's stages ask for: the largest is decoded, the others derived."""

    sizes: tuple[int, ...]

    @classmethod
    def of(cls, *sizes: int) -> Sizes:
        return cls(tuple(sorted({s for s in sizes if s}, reverse=True)) or (224,))

    def decode(self, data: bytes, name: str = "") -> Views:
        decoded = decode_bytes(data, self.sizes[0], name=name)
        return Views({size: fit(decoded, size) for size in self.sizes})


@dataclass(frozen=True)
class Views:
    """One photo decoded once, at each size a stage asked for."""

    by_size: dict[int, DecodedPhoto]

    def at(self, size: int) -> DecodedPhoto:
        return self.by_size.get(size) or self.by_size[max(self.by_size)]

    @property
    def largest(self) -> DecodedPhoto:
        return self.by_size[max(self.by_size)]


@dataclass(frozen=True)
class Outcome:
    job: Job
    hash: str = ""
    decoded: Views | None = None
    reuse: bool = False  # the content is a known photo whose file is gone: maybe a move
    same_content: bool = False  # changed stat, same bytes
    error: str | None = None
    vanished: bool = False  # deleted (or renamed) between the scan and the read


def decode_job(job: Job, sizes: Sizes, gone_hashes: frozenset[str]) -> Outcome:
    """Runs in a worker: read once, hash, and decode unless the content is known."""
    try:
        data = read_file_bytes(job.file.path)
        h = content_hash(data)
        if job.old_hash is not None and h == job.old_hash:
            return Outcome(job, h, same_content=True)
        if job.old_id is None and h in gone_hashes:
            return Outcome(job, h, reuse=True)  # a moved or renamed photo: its vector is kept
        return Outcome(job, h, decoded=sizes.decode(data, name=job.file.path.name))
    except FileVanishedError:
        return Outcome(job, vanished=True)
    except ImageDecodeError as exc:
        return Outcome(job, error=str(exc))
    except Exception as exc:  # a decoder bug must not abort the run
        log.exception("Unexpected error decoding %s", job.file.path)
        return Outcome(job, error=f"could not be decoded ({exc.__class__.__name__}: {exc})")


def decode_refresh(job: Refresh, sizes: Sizes) -> tuple[Refresh, Views | None]:
    """Runs in a worker: decode a photo already indexed, for the stages that lack it.
    A file that cannot be decoded now is left as it is (its stages try again next run)."""
    try:
        return job, sizes.decode(read_file_bytes(job.path), name=job.path.name)
    except Exception as exc:
        log.info("Cannot decode %s for %s: %s", job.path, ", ".join(map(repr, job.stages)), exc)
        return job, None


class DecodePool:
    """Worker threads decoding a window of jobs ahead of the consumer, results in order."""

    def __init__(self, workers: int, window: int) -> None:
        self.workers = workers
        self.window = window
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
        self._inflight: deque[Future] = deque()

    def results(self, jobs: Iterable, work: Callable, cancel: CancelToken) -> Iterator:
        """``work(job)`` of each job, in order; raises Cancelled between photos."""
        it = iter(jobs)
        while True:
            while len(self._inflight) < self.window:
                job = next(it, None)
                if job is None:
                    break
                self._inflight.append(self._pool.submit(work, job))
            if not self._inflight:
                return
            cancel.check()
            yield self._inflight.popleft().result()

    def idle(self) -> int:
        """Decoders with no photo left to decode in the window."""
        return max(0, self.workers - sum(not f.done() for f in self._inflight))

    def next_is_ready(self) -> bool:
        return bool(self._inflight) and self._inflight[0].done()

    def close(self) -> None:
        for fut in self._inflight:
            fut.cancel()
        self._inflight.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- batches ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """A decoded photo waiting for the stages."""

    job: Job
    hash: str
    decoded: Views


@dataclass(frozen=True)
class Moved:
    photo_id: int
    file: ScannedFile


@dataclass
class RowChanges:
    """Changes that need no stage: committed together every SMALL_COMMIT of them."""

    moved: list[Moved] = field(default_factory=list)
    touched: list[tuple[int, int, int]] = field(default_factory=list)  # (id, size, mtime_ns): same bytes
    failures: list[FailureRow] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # changed files that no longer decode
    vanished: list[int] = field(default_factory=list)  # photos whose file went since the scan
    vanished_paths: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.moved)
            + len(self.touched)
            + len(self.failures)
            + len(self.dropped)
            + len(self.vanished)
            + len(self.vanished_paths)
        )


@dataclass
class Tally:
    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    failed: int = 0
    encoded: int = 0


def _failure(f: ScannedFile, reason: str) -> FailureRow:
    return FailureRow(f.path, f.folder_id, reason, f.size, f.mtime_ns)


class Batches:
    """Routes each decode outcome to the ready batch or the row changes."""

    def __init__(self, gone_by_hash: dict[str, int], sizes: Sizes, tally: Tally) -> None:
        self.ready: list[Ready] = []
        self.rows = RowChanges()
        self.tally = tally
        self.claimed: set[int] = set()  # gone photos found again under a new path
        self._gone_by_hash = gone_by_hash
        self._sizes = sizes

    def take(self, o: Outcome) -> None:
        f, old_id = o.job.file, o.job.old_id
        if o.vanished:
            # Gone since the scan: not a failure, just no longer there.
            self.rows.vanished_paths.append(f.path)
            if old_id is not None:
                self.rows.vanished.append(old_id)
                self.tally.removed += 1
        elif o.error is not None:
            self._fail(o.job, o.error)
        elif o.same_content and old_id is not None:
            self.rows.touched.append((old_id, f.size, f.mtime_ns))
        elif o.reuse and self._claim(o.hash, f):
            pass
        elif o.decoded is not None:
            self.ready.append(Ready(o.job, o.hash, o.decoded))
        else:
            self._decode_after_all(o)

    def _claim(self, h: str, f: ScannedFile) -> bool:
        pid = self._gone_by_hash.get(h)
        if pid is None or pid in self.claimed:
            return False
        self.claimed.add(pid)
        self.rows.moved.append(Moved(pid, f))
        self.tally.moved += 1
        return True

    def _decode_after_all(self, o: Outcome) -> None:
        """Its twin was claimed already: decode it after all."""
        try:
            decoded = self._sizes.decode(read_file_bytes(o.job.file.path))
        except ImageDecodeError as exc:
            self._fail(o.job, str(exc))
        else:
            self.ready.append(Ready(o.job, o.hash, decoded))

    def _fail(self, job: Job, reason: str) -> None:
        self.rows.failures.append(_failure(job.file, reason))
        self.tally.failed += 1
        if job.old_id is not None:
            self.rows.dropped.append(job.old_id)

    def take_ready(self) -> list[Ready]:
        batch, self.ready = self.ready, []
        return batch

    def take_rows(self) -> RowChanges:
        rows, self.rows = self.rows, RowChanges()
        return rows


# -- commit -------------------------------------------------------------------------


def _stage_outputs(
    stages: Sequence[PhotoStage],
    decoded: list[tuple[Path, Views, int | None]],
    cancel: CancelToken,
    default_size: int,
) -> list[tuple[PhotoStage, list]]:
    """Each stage's outputs for a prefix of the photos, each given its own image size."""
    out: list[tuple[PhotoStage, list]] = []
    for stage in stages:
        size = stage.image_size or default_size
        photos = [StagePhoto(path, views.at(size), pid) for path, views, pid in decoded]
        try:
            results = list(stage.process(photos, cancel))[: len(photos)]
        except Cancelled:
            results = []
        except DiskFullError:  # not the stage's fault: the run stops, nothing is lost
            raise
        except Exception:  # a stage's bug must not stop the indexing: its photos stay pending
            log.exception("Stage %r failed on a batch of %d photos", stage, len(photos))
            results = []
        out.append((stage, results))
    return out


def prepare(stages: Sequence[PhotoStage]) -> None:
    """Load what the stages need before the first photo (a failure there is the stage's
    own: logged, and its photos stay pending)."""
    for stage in stages:
        try:
            stage.prepare()
        except Exception:
            log.exception("Stage %r could not get ready", stage)


def _write_outputs(conn: sqlite3.Connection, ids: Sequence[int], outputs: list[tuple[PhotoStage, list]]) -> None:
    for stage, results in outputs:
        if results:
            stage.write(conn, ids[: len(results)], results)


def _new_photo(r: Ready, vector: np.ndarray) -> NewPhoto:
    f, d = r.job.file, r.decoded.largest
    return NewPhoto(f.path, f.folder_id, f.size, f.mtime_ns, r.hash, d.width, d.height, d.taken, vector)


def commit_ready(
    ready: list[Ready],
    catalog: Catalog,
    encode: EncodeStage,
    stages: Sequence[PhotoStage],
    cancel: CancelToken,
    on_commit: Callable[[int, int], None] = lambda added, updated: None,
) -> None:
    """Encode decoded photos (a commit batch, or several gathered to encode side by side)
    and commit them batch by batch, each as soon as it is encoded: its rows, vectors and
    the other stages' outputs in one transaction, while the next batches encode. So a
    kill loses only photos whose encoding had started and whose batch was not committed
    (at most ``encode.share.calls_at_once`` batches). ``on_commit(added, updated)``
    after each commit. Cancelled: no further encoder call starts; what the calls
    running encode is committed, the rest is left for the next run."""
    size = encode.share.batch_size
    batches = [ready[i : i + size] for i in range(0, len(ready), size)]
    photos = [[StagePhoto(r.job.file.path, r.decoded.at(encode.image_size)) for r in b] for b in batches]
    started = partial(_trace_photos, "start")
    for n, vecs in enumerate(encode.encode_batches(photos, cancel, started)):
        on_commit(*_commit_batch(batches[n][: len(vecs)], vecs, catalog, encode, stages, cancel))


def _trace_photos(event: str, photos: Sequence[StagePhoto]) -> None:
    trace_encodes(event, (p.path for p in photos))


def _commit_batch(
    batch: list[Ready],
    vecs: np.ndarray,
    catalog: Catalog,
    encode: EncodeStage,
    stages: Sequence[PhotoStage],
    cancel: CancelToken,
) -> tuple[int, int]:
    """Run the other stages on an encoded batch, commit it; returns (added, updated). A
    later stage that stopped early (a cancel) leaves its photos pending."""
    outputs = _stage_outputs(stages, [(r.job.file.path, r.decoded, None) for r in batch], cancel, encode.image_size)
    trace_encodes("done", (r.job.file.path for r in batch))
    replaced = [r.job.old_id for r in batch if r.job.old_id is not None]
    new_ids = catalog.commit_batch(
        added=[_new_photo(r, v) for r, v in zip(batch, vecs)],
        removed_ids=replaced,
        also=lambda conn, ids: _write_outputs(conn, ids, outputs),
    )
    trace_encodes("commit", (r.job.file.path for r in batch))
    for stage, results in [(encode, list(vecs)), *outputs]:
        if replaced:
            stage.forget(replaced)
        stage.committed(new_ids[: len(results)], results)
    return len(batch) - len(replaced), len(replaced)


def commit_rows(rows: RowChanges, catalog: Catalog, stages: Sequence[PhotoStage]) -> None:
    if not len(rows):
        return
    catalog.commit_batch(
        moved=[(m.photo_id, m.file.path, m.file.folder_id, m.file.size, m.file.mtime_ns) for m in rows.moved],
        touched=rows.touched,
        failures=rows.failures,
        removed_ids=rows.vanished,
        cleared_failures=rows.vanished_paths,
    )
    gone = rows.dropped + rows.vanished
    if gone:
        for stage in stages:
            stage.forget(gone)


def commit_removed(ids: list[int], catalog: Catalog, stages: Sequence[PhotoStage]) -> None:
    catalog.commit_batch(removed_ids=ids)
    for stage in stages:
        stage.forget(ids)


def commit_refreshed(
    batch: list[tuple[Refresh, Views]],
    catalog: Catalog,
    stages: Sequence[PhotoStage],
    cancel: CancelToken,
    default_size: int,
) -> dict[PhotoStage, int]:
    """Run each stage on the photos of the batch that lack it; commit their outputs together.
    Returns the photos each stage processed."""
    outputs: list[tuple[PhotoStage, list]] = []
    ids: dict[PhotoStage, list[int]] = {}
    for stage in stages:
        mine = [(job, d) for job, d in batch if stage in job.stages]
        if not mine:
            continue
        ((_, results),) = _stage_outputs([stage], [(j.path, d, j.photo_id) for j, d in mine], cancel, default_size)
        outputs.append((stage, results))
        ids[stage] = [job.photo_id for job, _ in mine]
    if any(results for _, results in outputs):

        def write(conn: sqlite3.Connection, _new: list[int]) -> None:
            for stage, results in outputs:
                _write_outputs(conn, ids[stage], [(stage, results)])

        catalog.commit_batch(also=write)
        for stage, results in outputs:
            stage.committed(ids[stage][: len(results)], results)
    return {stage: len(results) for stage, results in outputs}
