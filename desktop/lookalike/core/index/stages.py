"""Indexing stages: work done on each photo's decoded image, committed with its row.

The indexer reads and decodes every new or changed photo once, then hands the
decoded image to each stage in turn, a commit batch at a time. The image
encoder is the first stage (:class:`EncodeStage`: its output is the photo's
vector, stored in the photo's own row); others (faces, ...) plug in beside it
with a :class:`PhotoStage` of their own and never decode again.

The protocol, as the indexer drives it:

``stage``
    A :class:`~lookalike.core.progress.Stage` member: the label of the
    progress the indexer reports while it runs this stage on photos already in
    the library (``Stage.FACES``). While new photos are indexed all stages
    count under ``Stage.ENCODE``.
``image_size``
    The short side (pixels) the stage wants the decoded image to have; 0: the
    encoder's. The indexer decodes once, at the largest size any stage asks
    for, and hands each stage the photo shrunk to about its own size (short
    side between it and twice it, as the decoder itself would have given).
``prepare()``
    Called once a run has photos for the stage, before the first is decoded:
    load models here, so that the time between a photo's encoding and its
    commit (what a kill can lose) stays short.
``process(photos, cancel) -> list[T]``
    Runs on a worker thread, a batch (a commit batch, up to 16 photos on CPU)
    at a time; ``photos`` are :class:`StagePhoto` (path, decoded image, the
    photo's id when it is already in the catalog). Returns one output per
    photo, in order. Checks ``cancel.cancelled`` between photos and, once it
    is set, returns the outputs of the photos done so far (a prefix): the
    rest are left for the next run. No catalog access here.
``write(conn, ids, outputs)``
    Runs inside the transaction that commits the photo rows, with the photos'
    ids (``ids[i]`` is the photo of ``outputs[i]``). Insert the stage's rows
    and record that these photos were processed, so a run killed anywhere
    keeps photos and their stage output together or neither.
``pending(conn) -> set[int]``
    Ids of photos in the catalog that still lack this stage's output: photos
    indexed before the stage existed, or whose batch was cancelled. At the end
    of each run (not cancelled) the indexer decodes those of them whose file is
    there and unchanged, and runs only the stages that need them.
``forget(ids)``
    Called after a commit that deleted photos (a file gone, replaced by new
    content, or now unreadable). Tables keyed by ``photos(id)`` with ``ON
    DELETE CASCADE`` lose their rows on their own (foreign keys are on); this
    is for state outside the catalog (a graph, a cache). A moved photo keeps
    its id, so it keeps its stage data; a changed one is a new photo (new id).
``committed(ids, outputs)``
    Called after the transaction, for state outside the catalog.

Defaults (``pending`` none, ``prepare``/``forget``/``committed`` nothing, ``image_size`` 0)
come from subclassing :class:`PhotoStage`. A tiny stage that records sizes::

    class SizeStage(PhotoStage[tuple[int, int]]):
        stage = Stage.FACES
        def process(self, photos, cancel):
            out = []
            for p in photos:
                if cancel.cancelled:
                    break
                out.append(p.decoded.image.size)
            return out
        def write(self, conn, ids, outputs):
            conn.executemany("INSERT OR REPLACE INTO sizes(photo_id, w, h) VALUES(?, ?, ?)",
                             [(i, w, h) for i, (w, h) in zip(ids, outputs)])
        def pending(self, conn):
            return {r[0] for r in conn.execute(
                "SELECT id FROM photos WHERE id NOT IN (SELECT photo_id FROM sizes)")}

    Indexer(catalog, vectors, encoder, stages=[SizeStage()]).run(folders)

with ``sizes(photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE
CASCADE, w, h)`` in the stage's catalog migration.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar, cast

import numpy as np

from lookalike.core.progress import CancelToken, Stage

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.encoders.base import Encoder
    from lookalike.core.index.imaging import DecodedPhoto
    from lookalike.core.store.vectors import VectorIndex

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class StagePhoto:
    """One decoded photo as a stage sees it."""

    path: Path
    # .image: RGB, oriented, short side about the stage's image_size; .width/.height: the original's
    decoded: DecodedPhoto
    photo_id: int | None = None  # known for a photo already in the catalog; None for a new one


class PhotoStage(Generic[T]):
    """A step run on every decoded photo; see the module docstring for the protocol."""

    stage: Stage
    image_size: int = 0

    def prepare(self) -> None:
        return None

    def process(self, photos: Sequence[StagePhoto], cancel: CancelToken) -> list[T]:
        raise NotImplementedError

    def write(self, conn: sqlite3.Connection, ids: Sequence[int], outputs: Sequence[T]) -> None:
        raise NotImplementedError

    def pending(self, conn: sqlite3.Connection) -> set[int]:
        return set()

    def forget(self, ids: Sequence[int]) -> None:
        return None

    def committed(self, ids: Sequence[int], outputs: Sequence[T]) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stage})"


@dataclass(frozen=True)
class CpuShare:
    """How a run splits the machine between the decoders and the encoder."""

    batch_size: int  # photos per commit
    encode_chunk: int  # photos per encoder call
    encode_threads: int | None  # torch threads per encoder call on CPU; None on a GPU
    workers: int  # decode threads

    @classmethod
    def for_encoder(cls, encoder: Encoder | None, batch_size: int | None, workers: int | None) -> CpuShare:
        """On CPU, decode and encode share the cores: the encoder gets half of them for
        torch's intra-op threads and the decode pool one more than the rest. With torch
        on every core while the decoders run too, its threads spin waiting for each
        other and a photo costs ~1.7x the CPU time (`lookalike bench`). Photos per
        encoder call: on CPU what the encoder says is cheapest a photo (``cpu_batch``);
        commits still happen per ``batch_size`` photos. ``encoder`` None: not loaded
        yet (a CPU set-up until it is)."""
        cpus = os.cpu_count() or 2
        on_gpu = encoder is not None and str(encoder.device).startswith("cuda")
        batch = batch_size or (128 if on_gpu else 16)
        if on_gpu:
            return cls(batch, batch, None, workers or max(2, cpus - 1))
        chunk = os.environ.get("LOOKALIKE_ENCODE_CHUNK", "").strip()
        cpu_batch = encoder.cpu_batch if encoder is not None else 1
        threads = max(1, cpus // 2)
        return cls(
            batch,
            max(1, int(chunk) if chunk.isdigit() else int(cpu_batch)),
            threads,
            workers or max(1, cpus - threads + 1),
        )

    @property
    def calls_at_once(self) -> int:
        """Encoder calls that may run side by side: on CPU one per thread share of the
        cores (two, typically); on a GPU one."""
        if self.encode_threads is None:
            return 1
        return max(1, (os.cpu_count() or 2) // max(1, self.encode_threads))


class EncodeStage(PhotoStage[np.ndarray]):
    """The first stage: the image encoder. Its output is the photo's vector, which the
    commit stores in the photo's own row (so ``write`` has nothing to add) and adds to
    the graph once committed.

    On CPU the encoder runs on its thread share (half the cores) while the decoders
    use the rest. Whenever decoders have nothing to decode (the end of a run, or a
    window full of decoded photos because the encoder is the bottleneck, as with
    CLIP), their cores would sit idle: so another call is started side by side, on
    the encoder's own thread share, for each idle decoder (when the encoder allows
    it: ``side_by_side``). Measured on 2 cores: the end of a 240-photo run had used
    one core of two for a quarter of its time, and CLIP indexing kept CPU at 68-73%.
    Running calls side by side while the decoders are busy too was measured slower
    for the offline model (four busy threads on two cores)."""

    stage = Stage.ENCODE

    def __init__(
        self,
        encoder: Encoder | Callable[[], Encoder],
        vectors: VectorIndex,
        *,
        batch_size: int | None = None,
        workers: int | None = None,
    ) -> None:
        """``encoder`` may be a loaded encoder or a function that loads one: then the
        model (and torch) is loaded only when a photo actually needs encoding, so a
        re-scan that finds nothing new costs no model load."""
        self.vectors = vectors
        self._loaded: Encoder | None = None
        self._factory: Callable[[], Encoder] | None = None
        if callable(encoder) and not hasattr(encoder, "encode_images"):
            self._factory = encoder
        else:
            self._loaded = cast("Encoder", encoder)
        self._requests = (batch_size, workers)
        self.share = CpuShare.for_encoder(self._loaded, batch_size, workers)
        self.idle_decoders: Callable[[], int] = lambda: 0
        self._threads_before: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._warming: threading.Thread | None = None

    @property
    def image_size(self) -> int:  # type: ignore[override]
        return int(self._loaded.image_size) if self._loaded is not None else 224

    @property
    def encoder(self) -> Encoder:
        """The encoder, loaded (and the torch thread share set) on first use."""
        if self._loaded is None:
            assert self._factory is not None
            self._loaded = self._factory()
            self.share = CpuShare.for_encoder(self._loaded, *self._requests)
        if self._threads_before is None and self.share.encode_threads:
            self._set_torch_threads(self.share.encode_threads)
        return self._loaded

    def warm_up(self, photos: int = 0) -> None:
        """Load the encoder, and start what it loads on the first photo (the CLIP image
        tower: an ONNX Runtime session, about 0.4 s, or for a large run its bfloat16 copy)
        on a thread of its own, so that it starts while the photos are decoded and the
        other stages get ready: a run with ``photos`` to encode calls this before the first
        is decoded."""
        encoder = self.encoder
        warm = getattr(encoder, "warm_up", None)
        if callable(warm) and self._warming is None:
            self._warming = threading.Thread(target=warm, args=(photos,), name="encoder-warm-up", daemon=True)
            self._warming.start()

    def _set_torch_threads(self, threads: int) -> None:
        if os.environ.get("LOOKALIKE_THREADS", "").strip():
            return  # the user's own setting
        if self._loaded is not None and not self._loaded.uses_torch:
            return  # its runtime was given its thread share when it loaded (CLIP in ONNX Runtime)
        try:
            import torch
        except ImportError:  # pragma: no cover - every real encoder has torch
            self._threads_before = 0
        else:
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(min(threads, self._threads_before))

    def close(self) -> None:
        """The end of a run: the encode threads go, torch gets its thread count back."""
        if self._warming is not None:  # a run that encoded nothing: its warm-up ends here, not at exit
            self._warming.join()
            self._warming = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._threads_before:
            import torch

            torch.set_num_threads(self._threads_before)
        self._threads_before = None

    # -- the stage --------------------------------------------------------------

    def process(self, photos: Sequence[StagePhoto], cancel: CancelToken) -> list[np.ndarray]:
        """Vectors of a prefix of ``photos`` (all of them unless cancelled mid-batch)."""
        return [v for vecs in self.encode_batches([photos], cancel) for v in vecs]

    def write(self, conn: sqlite3.Connection, ids: Sequence[int], outputs: Sequence[np.ndarray]) -> None:
        return None  # the vector is a column of the photo's row

    def committed(self, ids: Sequence[int], outputs: Sequence[np.ndarray]) -> None:
        if len(ids):
            self.vectors.add(np.asarray(ids), np.asarray(outputs))

    def forget(self, ids: Sequence[int]) -> None:
        self.vectors.delete(ids)

    # -- scheduling -------------------------------------------------------------

    def encode_batches(
        self,
        batches: Sequence[Sequence[StagePhoto]],
        cancel: CancelToken,
        started: Callable[[Sequence[StagePhoto]], None] = lambda photos: None,
    ) -> Iterator[np.ndarray]:
        """The vectors of each commit batch in turn, each as soon as it (and every batch
        before it) is encoded, so that the caller commits it while later batches encode.

        An encoder call never spans two batches, and calls run side by side only on
        batches within ``share.calls_at_once`` of the oldest one the caller has not
        taken back from (committed): photos whose encoding has started and whose batch
        is not committed, what a kill loses, are at most that many batches.
        ``started(photos)`` is called as each call starts. Once ``cancel`` is set no
        further call starts (after the first): the calls running finish, and the last
        batch yielded may be a prefix of its photos."""
        step = max(1, self.share.encode_chunk)
        chunks = [
            (b, list(photos[i : i + step])) for b, photos in enumerate(batches) for i in range(0, len(photos), step)
        ]
        if not chunks:
            return
        encoder = self.encoder
        alone = len(chunks) == 1 or self.share.encode_threads is None or not encoder.side_by_side
        if not alone and self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.share.calls_at_once, thread_name_prefix="encode")
        if alone:
            yield from self._one_at_a_time(encoder, chunks, cancel, started)
        else:
            assert self._pool is not None
            yield from self._side_by_side(self._pool, encoder, chunks, cancel, started)

    def _one_at_a_time(
        self, encoder: Encoder, chunks: list[tuple[int, list[StagePhoto]]], cancel: CancelToken, started: Callable
    ) -> Iterator[np.ndarray]:
        out: list[np.ndarray] = []
        for n, (batch, photos) in enumerate(chunks):
            if n > 0 and cancel.cancelled:
                break
            started(photos)
            out.append(encoder.encode_images([p.decoded.image for p in photos]))
            if n + 1 == len(chunks) or chunks[n + 1][0] != batch:
                yield np.concatenate(out)
                out = []
        if out:
            yield np.concatenate(out)

    def _side_by_side(
        self,
        pool: ThreadPoolExecutor,
        encoder: Encoder,
        chunks: list[tuple[int, list[StagePhoto]]],
        cancel: CancelToken,
        started: Callable,
    ) -> Iterator[np.ndarray]:
        """Calls on the encode threads, as many at once as decoders are idle (plus one),
        up to ``calls_at_once``, within that many batches of the oldest not yet taken."""
        window = self.share.calls_at_once
        results: list[np.ndarray | None] = [None] * len(chunks)
        running: dict[Future, int] = {}
        nxt, end, first = 0, len(chunks), 0  # first: the oldest chunk not yet yielded
        while first < end:
            if nxt > 0 and cancel.cancelled:
                end = nxt
            allowed = min(window, 1 + self.idle_decoders())
            while nxt < end and len(running) < allowed and chunks[nxt][0] < chunks[first][0] + window:
                started(chunks[nxt][1])
                running[pool.submit(encoder.encode_images, [p.decoded.image for p in chunks[nxt][1]])] = nxt
                nxt += 1
            last = first  # the oldest batch is done when all its chunks (up to end) are
            while last < end and chunks[last][0] == chunks[first][0] and results[last] is not None:
                last += 1
            if last > first and (last == end or chunks[last][0] != chunks[first][0]):
                yield np.concatenate([r for r in results[first:last] if r is not None])
                first = last
                continue
            # Look again every 20 ms while chunks wait: a decoder may have gone idle.
            done, _ = wait(running, timeout=0.02 if nxt < end else None, return_when=FIRST_COMPLETED)
            for fut in done:
                results[running.pop(fut)] = fut.result()
