"""Indexing: scan -> diff -> decode pool -> batched encode -> commit checkpoints.

Every batch of photos is committed to the catalog (vectors included) in one
transaction, so a run killed at any moment loses at most the batch in flight;
the next run picks up where it stopped. The graph is only a cache of the
catalog and is saved at the end (and repaired on open if the run died).
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import logging
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.catalog import Catalog, FailureRow, FolderRow, NewPhoto, pkey
from lookalike.core.imaging import (
    DecodedPhoto,
    FileVanishedError,
    ImageDecodeError,
    decode_bytes,
    is_photo_name,
    read_file_bytes,
)
from lookalike.core.progress import Cancelled, CancelToken, Progress, ProgressCallback, RateMeter, no_progress

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.encoders.base import Encoder
    from lookalike.core.vectors import VectorIndex

log = logging.getLogger(__name__)

# Names that are never photos of the user's: OS and tool junk.
JUNK_NAMES = frozenset(
    {
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        "@eaDir",
        ".thumbnails",
        "$RECYCLE.BIN",
        "System Volume Information",
        "lost+found",
        "#recycle",
    }
)


def is_junk(name: str) -> bool:
    return name.startswith(".") or name in JUNK_NAMES or name.startswith("._")


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# A test hook: with LOOKALIKE_ENCODE_LOG=FILE in the environment, each batch appends
# "start|done|commit <TAB> pid <TAB> path" lines to FILE before it is encoded, after
# it is encoded and after it is committed, so a crash test can count how often each
# photo was encoded across killed runs. Unset (the normal case) it costs one getenv a batch.
def _trace_encodes(event: str, paths: Sequence[Path]) -> None:
    target = os.environ.get("LOOKALIKE_ENCODE_LOG")
    if target:
        lines = b"".join(
            b"%s\t%d\t%s\n" % (event.encode(), os.getpid(), os.fsencode(p).replace(b"\n", b"\\n")) for p in paths
        )
        with open(target, "ab") as fh:
            fh.write(lines)


@dataclass(frozen=True)
class ScannedFile:
    path: Path
    folder_id: int
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    files: list[ScannedFile] = field(default_factory=list)
    failures: list[FailureRow] = field(default_factory=list)  # unreadable entries found while walking
    offline: list[FolderRow] = field(default_factory=list)
    scanned: list[FolderRow] = field(default_factory=list)


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

    @property
    def rate(self) -> float:
        """Photos handled (encoded, moved or failed) per second, end to end."""
        handled = self.encoded + self.moved + self.failed
        return handled / self.seconds if self.seconds > 0 else 0.0


def _excluded(path: str, name: str, excludes: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(path, g) for g in excludes)


def folder_is_offline(folder: FolderRow, known_photos: int) -> str | None:
    """A reason the folder's drive looks absent, or None if it is there."""
    p = os.fspath(folder.path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return "the folder is not there (a drive unplugged or a share offline?)"
    except PermissionError:
        return "the folder cannot be opened: permission denied"
    except OSError as exc:
        return f"the folder cannot be reached: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder any more"
    if not os.access(p, os.R_OK | os.X_OK):
        return "the folder cannot be opened: permission denied"
    if known_photos:
        try:
            with os.scandir(p) as it:
                empty = next(it, None) is None
        except OSError as exc:
            return f"the folder cannot be read: {exc.strerror or exc}"
        if empty:
            return "the folder is empty now (an unmounted drive?); its photos are kept until you remove it"
    return None


def scan(
    folders: Sequence[FolderRow],
    catalog: Catalog,
    excludes: Sequence[str] = (),
    cancel: CancelToken | None = None,
    progress: ProgressCallback = no_progress,
) -> ScanResult:
    """Walk every online folder: photo files with their stat, and unreadable entries."""
    result = ScanResult()
    counts = catalog.folder_counts()
    seen = 0
    for folder in folders:
        reason = folder_is_offline(folder, counts.get(folder.id, (0, 0))[0])
        if reason:
            log.warning("Folder %s is offline: %s", folder.path, reason)
            result.offline.append(folder)
            continue
        result.scanned.append(folder)
        stack = [os.fspath(folder.path)]
        while stack:
            if cancel is not None:
                cancel.check()
            d = stack.pop()
            try:
                it = os.scandir(d)
            except OSError as exc:
                if d != os.fspath(folder.path):
                    why = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
                    result.failures.append(FailureRow(Path(d), folder.id, f"the folder cannot be opened: {why}"))
                continue
            with it:
                for entry in it:
                    name = entry.name
                    if is_junk(name) or (excludes and _excluded(entry.path, name, excludes)):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            continue
                    except OSError:
                        continue
                    if not is_photo_name(name):
                        continue
                    path = Path(entry.path)
                    try:
                        st = entry.stat(follow_symlinks=True)
                    except FileNotFoundError:
                        why = (
                            "a broken symbolic link (its target is gone)"
                            if entry.is_symlink()
                            else "the file disappeared while scanning"
                        )
                        result.failures.append(FailureRow(path, folder.id, why))
                        continue
                    except OSError as exc:
                        why = (
                            "a symbolic link loop, not a file"
                            if exc.errno == errno.ELOOP
                            else f"cannot read the file's details: {exc.strerror or exc}"
                        )
                        result.failures.append(FailureRow(path, folder.id, why))
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        continue  # a symlink to a folder: never followed (no loops, no duplicates)
                    if not stat.S_ISREG(st.st_mode):
                        kind = (
                            "a named pipe (FIFO)"
                            if stat.S_ISFIFO(st.st_mode)
                            else "a socket"
                            if stat.S_ISSOCK(st.st_mode)
                            else "a device file"
                        )
                        result.failures.append(FailureRow(path, folder.id, f"{kind}, not a photo", 0, st.st_mtime_ns))
                        continue
                    result.files.append(ScannedFile(path, folder.id, st.st_size, st.st_mtime_ns))
                    seen += 1
                    if seen % 2000 == 0:
                        progress(Progress("scanning", seen, None, note=os.fspath(path.parent)))
    progress(Progress("scanning", seen, seen))
    return result


@dataclass(frozen=True)
class _Job:
    file: ScannedFile
    old_id: int | None = None  # a changed file: its current row
    old_hash: str | None = None


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    hash: str = ""
    decoded: DecodedPhoto | None = None
    reuse_id: int | None = None  # the content is a known photo whose file is gone: a move
    same_content: bool = False  # changed stat, same bytes
    error: str | None = None
    vanished: bool = False  # deleted (or renamed) between the scan and the read


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
    ) -> None:
        """``encoder`` may be a loaded encoder or a function that loads one: then the
        model (and torch) is loaded only when a photo actually needs encoding, so a
        re-scan that finds nothing new costs no model load."""
        self.catalog = catalog
        self.vectors = vectors
        self._encoder: Encoder | None = None
        self._factory: Callable[[], Encoder] | None = None
        if callable(encoder) and not hasattr(encoder, "encode_images"):
            self._factory = encoder
        else:
            self._encoder = encoder
        self._batch_request = batch_size
        self._workers_request = workers
        self._threads_before: int | None = None
        self._encoders: ThreadPoolExecutor | None = None
        self.on_commit = on_commit
        # Until a model is loaded (a factory), a CPU set-up; _configure settles it.
        self.batch_size = batch_size or 16
        self.encode_chunk = 1
        self.encode_threads: int | None = None
        self.workers = workers or (os.cpu_count() or 2)
        if self._encoder is not None:
            self._configure(self._encoder)

    def _configure(self, encoder: Encoder) -> None:
        on_gpu = str(getattr(encoder, "device", "cpu")).startswith("cuda")
        self.batch_size = self._batch_request or (128 if on_gpu else 16)
        # Photos per encoder call: on CPU what the encoder says is cheapest a photo
        # (the offline CNN one at a time, CLIP's transformer in eights); commits
        # still happen per batch_size photos.
        chunk = os.environ.get("LOOKALIKE_ENCODE_CHUNK", "").strip()
        self.encode_chunk = (
            self.batch_size
            if on_gpu
            else max(1, int(chunk) if chunk.isdigit() else int(getattr(encoder, "cpu_batch", 1)))
        )
        cpus = os.cpu_count() or 2
        # On CPU, decode and encode share the cores: the encoder gets half of them
        # for torch's intra-op threads and the decode pool one more than the rest.
        # With torch on every core while the decoders run too, its threads spin
        # waiting for each other and a photo costs ~1.7x the CPU time (`lookalike bench`).
        self.encode_threads = None if on_gpu else max(1, cpus // 2)
        self.workers = self._workers_request or (max(2, cpus - 1) if on_gpu else max(1, cpus - self.encode_threads + 1))

    @property
    def encoder(self) -> Encoder:
        """The encoder, loaded (and the torch thread share set) on first use."""
        if self._encoder is None:
            assert self._factory is not None
            self._encoder = self._factory()
            self._configure(self._encoder)
        if self._threads_before is None and self.encode_threads and not os.environ.get("LOOKALIKE_THREADS", "").strip():
            try:
                import torch
            except ImportError:  # pragma: no cover - every real encoder has torch
                self._threads_before = 0
            else:
                self._threads_before = torch.get_num_threads()
                torch.set_num_threads(min(self.encode_threads, self._threads_before))
        return self._encoder

    def _encode_pool(self) -> tuple[ThreadPoolExecutor, int]:
        """Threads that run encoder calls side by side, each on the encoder's thread share."""
        slots = max(1, (os.cpu_count() or 2) // max(1, self.encode_threads or 1))
        if self._encoders is None:
            self._encoders = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="encode")
        return self._encoders, slots

    def _encode_chunks(
        self, chunks: list, idle_decoders: Callable[[], int], stop: Callable[[], bool] = lambda: False
    ) -> np.ndarray:
        """Encode ``chunks`` (lists of images), results in order. Once ``stop()`` is
        true no further chunk is started: the rows returned are for a prefix of the
        chunks (at least the first), the calls already running are finished.

        On CPU the encoder runs on its thread share (half the cores) while the
        decoders use the rest. Whenever decoders have nothing to decode (the end of
        a run, or a window full of decoded photos because the encoder is the
        bottleneck, as with CLIP), their cores would sit idle: so another call is
        started side by side, on the encoder's own thread share, for each idle
        decoder. Measured on 2 cores: the end of a 240-photo run had used one core
        of two for a quarter of its time, and CLIP indexing kept CPU at 68-73%.
        Running calls side by side while the decoders are busy too was measured
        slower for the offline model (four busy threads on two cores)."""
        encode = self.encoder.encode_images
        if len(chunks) == 1 or self.encode_threads is None:
            out = []
            for c in chunks:
                out.append(encode(c))
                if stop():
                    break
            return np.concatenate(out)
        pool, slots = self._encode_pool()
        results: list = [None] * len(chunks)
        running: dict[Future, int] = {}
        nxt, end = 0, len(chunks)
        while nxt < end or running:
            if nxt > 0 and stop():
                end = nxt
            allowed = min(slots, 1 + idle_decoders())
            while nxt < end and len(running) < allowed:
                running[pool.submit(encode, chunks[nxt])] = nxt
                nxt += 1
            # Look again every 20 ms while chunks wait: a decoder may have gone idle.
            done, _ = wait(running, timeout=0.02 if nxt < end else None, return_when=FIRST_COMPLETED)
            for fut in done:
                results[running.pop(fut)] = fut.result()
        return np.concatenate(results[:end])

    def run(
        self,
        folders: Sequence[FolderRow],
        *,
        excludes: Sequence[str] = (),
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> IndexReport:
        try:
            return self._run(folders, excludes=excludes, progress=progress, cancel=cancel)
        finally:
            if self._encoders is not None:
                self._encoders.shutdown(wait=True)
                self._encoders = None
            if self._threads_before:
                import torch

                torch.set_num_threads(self._threads_before)
            self._threads_before = None

    def _run(
        self,
        folders: Sequence[FolderRow],
        *,
        excludes: Sequence[str] = (),
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> IndexReport:
        cancel = cancel or CancelToken()
        t0 = time.monotonic()
        try:
            found = scan(folders, self.catalog, excludes, cancel, progress)
        except Cancelled:
            return IndexReport(cancelled=True, seconds=time.monotonic() - t0)
        for folder in found.offline:
            self.catalog.set_folder_state(folder.id, online=False)

        # -- diff against the catalog
        jobs: list[_Job] = []
        gone: dict[int, str] = {}  # photo id -> hash, for rows whose file is not there
        unchanged = 0
        seen_keys: set[bytes] = set()
        by_folder: dict[int, list[ScannedFile]] = {}
        for f in found.files:
            by_folder.setdefault(f.folder_id, []).append(f)
        walk_failures = {pkey(f.path) for f in found.failures}
        stale_failures: list[Path] = []
        for folder in found.scanned:
            known = self.catalog.photos_in_folder(folder.id)
            failed = self.catalog.failures_in_folder(folder.id)
            for f in by_folder.get(folder.id, []):
                key = pkey(f.path)
                seen_keys.add(key)
                row = known.get(key)
                if row is not None:
                    pid, size, mtime, h = row
                    if size == f.size and mtime == f.mtime_ns:
                        unchanged += 1
                    else:
                        jobs.append(_Job(f, pid, h))
                    continue
                if failed.get(key) == (f.size, f.mtime_ns):
                    continue  # known bad and unchanged: not worth another try
                jobs.append(_Job(f))
            for key, (pid, _s, _m, h) in known.items():
                if key not in seen_keys:
                    gone[pid] = h
            for key in failed:
                if key not in seen_keys and key not in walk_failures:
                    stale_failures.append(Path(os.fsdecode(key)))
        # Every photo under an offline folder stays as it is.
        gone_by_hash: dict[str, int] = {}
        for pid, h in gone.items():
            gone_by_hash.setdefault(h, pid)

        stats = dict(added=0, updated=0, moved=0, failed=0, encoded=0)
        total = len(jobs)
        if jobs:
            self.encoder  # noqa: B018 - load the model now that there is work for it
        progress(Progress("indexing", 0, total))
        meter = RateMeter()
        done = 0
        last_emit = 0.0
        # Failures met while walking are recorded up front.
        if found.failures or stale_failures:
            self.catalog.commit_batch(failures=found.failures, cleared_failures=stale_failures)
            stats["failed"] += len(found.failures)

        pending_images: list[tuple[_Outcome, DecodedPhoto]] = []
        claimed: set[int] = set()
        vanished_count = 0
        cancelled = False

        def flush() -> None:
            nonlocal pending_images
            if not pending_images:
                return
            batch, pending_images = pending_images, []
            _trace_encodes("start", [o.job.file.path for o, _ in batch])
            images = [d.image for _, d in batch]
            step = max(1, self.encode_chunk)
            chunks = [images[i : i + step] for i in range(0, len(images), step)]
            vecs = self._encode_chunks(chunks, idle_decoders, lambda: cancel.cancelled)
            # Cancelled mid-batch: the photos not encoded are left for the next run.
            batch = batch[: len(vecs)]
            _trace_encodes("done", [o.job.file.path for o, _ in batch])
            added: list[NewPhoto] = []
            removed: list[int] = []
            for (o, d), v in zip(batch, vecs):
                f = o.job.file
                added.append(NewPhoto(f.path, f.folder_id, f.size, f.mtime_ns, o.hash, d.width, d.height, d.taken, v))
                if o.job.old_id is not None:
                    removed.append(o.job.old_id)
            new_ids = self.catalog.commit_batch(added=added, removed_ids=removed)
            _trace_encodes("commit", [o.job.file.path for o, _ in batch])
            self.vectors.delete(removed)
            self.vectors.add(np.asarray(new_ids), np.asarray(vecs))
            stats["encoded"] += len(batch)
            for (o, _), _v in zip(batch, vecs):
                stats["updated" if o.job.old_id is not None else "added"] += 1
            if self.on_commit:
                self.on_commit()

        small_commits: dict[str, list] = dict(
            moved=[], touched=[], failures=[], dropped=[], vanished=[], vanished_paths=[]
        )

        def flush_small() -> None:
            if not any(small_commits.values()):
                return
            self.catalog.commit_batch(
                moved=small_commits["moved"],
                touched=small_commits["touched"],
                failures=small_commits["failures"],
                removed_ids=small_commits["vanished"],
                cleared_failures=small_commits["vanished_paths"],
            )
            # changed files that no longer decode, and files gone since the scan
            self.vectors.delete(small_commits["dropped"] + small_commits["vanished"])
            for k in small_commits:
                small_commits[k] = []

        target = int(getattr(self._encoder, "image_size", 224) or 224)
        window = max(4 * self.batch_size, 2 * self.workers)
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="decode")
        inflight: deque[Future] = deque()
        job_iter: Iterator[_Job] = iter(jobs)
        gone_hashes = frozenset(gone_by_hash)

        def encoder_behind() -> bool:
            # On CPU, when the next photo is decoded already the encoder is the
            # bottleneck (CLIP): gather up to four commit batches before encoding, so
            # that more calls run side by side and fewer batch ends leave a core idle.
            return (
                self.encode_threads is not None
                and len(pending_images) < 4 * self.batch_size
                and bool(inflight)
                and inflight[0].done()
            )

        def idle_decoders() -> int:
            # Decoders with no photo left to decode in the window.
            return max(0, self.workers - sum(not f.done() for f in inflight))

        try:
            while True:
                while len(inflight) < window:
                    job = next(job_iter, None)
                    if job is None:
                        break
                    inflight.append(pool.submit(_decode_job, job, target, gone_hashes))
                if not inflight:
                    break
                cancel.check()
                outcome: _Outcome = inflight.popleft().result()
                done += 1
                f = outcome.job.file
                if outcome.vanished:
                    # Gone since the scan: not a failure, just no longer there.
                    small_commits["vanished_paths"].append(f.path)
                    if outcome.job.old_id is not None:
                        small_commits["vanished"].append(outcome.job.old_id)
                        vanished_count += 1
                elif outcome.error is not None:
                    small_commits["failures"].append(FailureRow(f.path, f.folder_id, outcome.error, f.size, f.mtime_ns))
                    stats["failed"] += 1
                    if outcome.job.old_id is not None:
                        small_commits["dropped"].append(outcome.job.old_id)
                elif outcome.same_content and outcome.job.old_id is not None:
                    small_commits["touched"].append((outcome.job.old_id, f.size, f.mtime_ns))
                elif (
                    outcome.hash in gone_by_hash
                    and gone_by_hash[outcome.hash] not in claimed
                    and outcome.job.old_id is None
                ):
                    pid = gone_by_hash[outcome.hash]
                    claimed.add(pid)
                    small_commits["moved"].append((pid, f.path, f.folder_id, f.size, f.mtime_ns))
                    stats["moved"] += 1
                elif outcome.decoded is None:
                    # Its twin was claimed already: decode it after all.
                    try:
                        decoded = decode_bytes(read_file_bytes(f.path), target)
                        pending_images.append((outcome, decoded))
                    except ImageDecodeError as exc:
                        small_commits["failures"].append(FailureRow(f.path, f.folder_id, str(exc), f.size, f.mtime_ns))
                        stats["failed"] += 1
                else:
                    pending_images.append((outcome, outcome.decoded))
                if len(pending_images) >= self.batch_size and not encoder_behind():
                    flush_small()
                    flush()
                elif sum(len(v) for v in small_commits.values()) >= 256:
                    flush_small()
                now = time.monotonic()
                if now - last_emit >= 0.1 or done == total:
                    last_emit = now
                    progress(Progress("indexing", done, total, meter.update(done), note=f.path.name))
        except Cancelled:
            cancelled = True
        finally:
            for fut in inflight:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
        # The batch in flight is finished and committed, cancelled or not (a cancel
        # during it stops it between encoder calls).
        flush_small()
        flush()
        cancelled = cancelled or cancel.cancelled

        removed_count = vanished_count
        if not cancelled:
            unclaimed = [pid for pid in gone if pid not in claimed]
            if unclaimed:
                self.catalog.commit_batch(removed_ids=unclaimed)
                self.vectors.delete(unclaimed)
                removed_count += len(unclaimed)
            for folder in found.scanned:
                self.catalog.set_folder_state(folder.id, online=True, scanned=True)
        progress(Progress("indexing", done, total, meter.update(done)))
        return IndexReport(
            added=stats["added"],
            updated=stats["updated"],
            moved=stats["moved"],
            removed=removed_count,
            failed=stats["failed"],
            unchanged=unchanged,
            offline_folders=tuple(f.path for f in found.offline),
            seconds=time.monotonic() - t0,
            encoded=stats["encoded"],
            cancelled=cancelled,
        )


def _decode_job(job: _Job, target: int, gone_hashes: frozenset[str]) -> _Outcome:
    """Runs in a worker: read once, hash, and decode unless the content is known."""
    try:
        data = read_file_bytes(job.file.path)
        h = content_hash(data)
        if job.old_hash is not None and h == job.old_hash:
            return _Outcome(job, h, same_content=True)
        if job.old_id is None and h in gone_hashes:
            return _Outcome(job, h)  # a moved or renamed photo: its vector is kept
        return _Outcome(job, h, decoded=decode_bytes(data, target, name=job.file.path.name))
    except FileVanishedError:
        return _Outcome(job, vanished=True)
    except ImageDecodeError as exc:
        return _Outcome(job, error=str(exc))
    except Exception as exc:  # a decoder bug must not abort the run
        log.exception("Unexpected error decoding %s", job.file.path)
        return _Outcome(job, error=f"could not be decoded ({exc.__class__.__name__}: {exc})")
