"""The faces stage of the indexer: detect, align and embed on the image already decoded.

It asks the decoder for a short side of :attr:`FaceStage.image_size` (the
indexer decodes once, at the largest size any stage asks for): half the
detector's working long side, which for a 12 MP camera JPEG (4032 x 3024) is
what the JPEG codec's 1/4 draft scale gives (1008 x 756), so People costs the
decoder a 1/4 instead of a 1/8 decode, never a second decode; and a 1600 x 1200
photo is decoded at 1/2 (800 x 600) and analysed at that size with MTCNN's
smallest face scaled to match (:func:`~lookalike.core.faces.model.analysis_input`),
instead of decoded in full and resized to 1024 (23 ms of CPU a photo saved).

Faces take longer than the image encoder (1.6-2.6x, docs/performance.md),
so they are found on a thread of the stage's own, beside the encoder: ``process``
hands each decoded photo to that thread (waiting only while
:data:`QUEUE_PHOTOS` photos are queued) and the photos' rows are committed at
once, searchable before their faces are found. When a photo's row is committed
and its faces are found, the thread commits the faces and the photo's
``face_scans`` row in one transaction, adds them to the face graph and groups
them. A run killed meanwhile leaves those photos without a ``face_scans`` row:
the next run finds their faces (:meth:`FaceStage.pending`), decoding just those
again. A cancel stops the thread after the photo in hand; :meth:`drain` waits for
it at the end of a run. A full disk stops the thread's writing: the error is raised
in the indexer's own flow (by the next ``process``, or ``drain``), and the photos
whose faces were not written stay pending; so does a face model that cannot load
(dlib missing, or a model that is not the library's face model).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lookalike.core.errors import LookalikeError
from lookalike.core.faces.model import FaceModel, FoundFace
from lookalike.core.faces.store import FaceStore
from lookalike.core.index.stages import PhotoStage, StagePhoto
from lookalike.core.progress import CancelToken, Progress, ProgressCallback, RateMeter, Stage, no_progress

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from lookalike.core.store.catalog import Catalog

log = logging.getLogger(__name__)

#: Short side asked of the decoder, as a fraction of the model's working long side.
DECODE_FRACTION = 0.5
#: Decoded photos waiting for the face thread before ``process`` waits for it.
QUEUE_PHOTOS = 32


@dataclass
class _Job:
    token: int
    name: str
    image: Image.Image | None
    source: tuple[int, int] | None = None  # the photo's own size (the image may be a smaller decode)


class FaceStage(PhotoStage[int]):
    """Outputs are tokens: the photo's place in the face thread's queue."""

    stage = Stage.FACES

    def __init__(
        self,
        model: FaceModel | Callable[[], FaceModel],
        model_id: str,
        working_size: int,
        catalog: Catalog,
        on_found: Callable[[list[int], list[FoundFace]], None],
        on_forget: Callable[[Sequence[int]], None],
        *,
        queue_photos: int = QUEUE_PHOTOS,
    ) -> None:
        """``model`` may be a function that loads it: dlib is then imported only when a
        photo actually needs looking at (on the face thread)."""
        self._model: FaceModel | None = model if isinstance(model, FaceModel) else None
        self._factory: Callable[[], FaceModel] | None = None if isinstance(model, FaceModel) else model
        self.model_id = model_id
        self.image_size = int(working_size * DECODE_FRACTION)
        self.catalog = catalog
        self._on_found = on_found
        self._on_forget = on_forget
        self._limit = max(1, queue_photos)
        self._cond = threading.Condition()
        self._todo: deque[_Job] = deque()
        self._working: int | None = None
        self._found: dict[int, tuple[FoundFace, ...]] = {}  # token -> faces, waiting to be written
        self._ids: dict[int, int] = {}  # token -> photo id, once its row is written
        self._durable: set[int] = set()  # tokens whose photo row is committed
        self._next = 0
        self._cancel: CancelToken | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        # A full disk, or a model that cannot load (not installed, or not the library's
        # face model), met on the face thread: raised in the main flow.
        self._error: LookalikeError | None = None
        self.photos_done = 0

    @property
    def model(self) -> FaceModel:
        if self._model is None:
            assert self._factory is not None
            self._model = self._factory()
            # The faces are written under the id of the model that found them (a library's
            # first run with a model of the user's knows it only once it is loaded).
            self.model_id = getattr(self._model, "id", self.model_id)
        return self._model

    # -- the stage protocol ---------------------------------------------------------

    def process(self, photos: Sequence[StagePhoto], cancel: CancelToken) -> list[int]:
        self._cancel = cancel
        self._raise_error()
        self._start()
        out: list[int] = []
        for p in photos:
            with self._cond:
                while len(self._todo) >= self._limit and not cancel.cancelled and self._alive():
                    self._cond.wait(0.25)
                if cancel.cancelled:
                    break
                token = self._next
                self._next += 1
                d = p.decoded
                self._todo.append(_Job(token, p.path.name, d.image, (d.width, d.height) if d.width else None))
                self._cond.notify_all()
            out.append(token)
        return out

    def write(self, conn: sqlite3.Connection, ids: Sequence[int], outputs: Sequence[int]) -> None:
        with self._cond:
            for token, pid in zip(outputs, ids):
                self._ids[int(token)] = int(pid)

    def committed(self, ids: Sequence[int], outputs: Sequence[int]) -> None:
        with self._cond:
            self._durable.update(int(t) for t in outputs)
            self._cond.notify_all()

    def pending(self, conn: sqlite3.Connection) -> set[int]:
        with self._cond:
            queued = {self._ids[t] for t in self._tokens_in_flight() if t in self._ids}
        return FaceStore.unscanned(conn, self.model_id) - queued

    def forget(self, ids: Sequence[int]) -> None:
        self._on_forget(ids)

    # -- the face thread ---------------------------------------------------------------

    def _tokens_in_flight(self) -> set[int]:
        tokens = {j.token for j in self._todo} | set(self._found)
        if self._working is not None:
            tokens.add(self._working)
        return tokens

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start(self) -> None:
        if not self._alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="faces", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._todo and not self._ready() and not self._stopping:
                        self._cond.wait(0.5)
                    if self._cancel is not None and self._cancel.cancelled:
                        self._todo.clear()  # left for the next run (no face_scans row)
                    job = self._todo.popleft() if self._todo else None
                    if job is None and not self._ready() and self._stopping:
                        return
                    self._working = job.token if job else None
                    self._cond.notify_all()
                if job is not None:
                    faces = self._analyse(job)
                    with self._cond:
                        self._found[job.token] = faces
                        self._working = None
                self._write_ready()
        except LookalikeError as exc:  # a full disk, a model that cannot load: the indexer raises
            log.info("The face thread stopped: %s", exc)  # it; the photos' faces stay pending
            self._error = exc
        except Exception:  # never leave process() waiting on a dead thread
            log.exception("The face thread stopped")
        finally:
            with self._cond:
                self._working = None
                self._cond.notify_all()

    def _analyse(self, job: _Job) -> tuple[FoundFace, ...]:
        image, job.image = job.image, None
        if image is None:
            return ()
        model = self.model  # one that cannot load stops the stage (raised in the main flow)
        try:
            return tuple(model.analyse(image, job.source))
        except Exception:  # one odd image must not stop the others
            log.exception("Face detection failed on %s", job.name)
            return ()

    def _ready(self) -> list[int]:
        return [t for t in self._found if t in self._durable and t in self._ids]

    def _write_ready(self) -> None:
        """Faces of photos whose rows are committed: written, graphed and grouped."""
        with self._cond:
            tokens = self._ready()
            batch = [(self._ids[t], self._found.pop(t)) for t in tokens]
        if not batch:
            return
        face_ids: list[int] = []
        with self.catalog.transaction() as conn:
            marks = ",".join("?" * len(batch))
            live = {r[0] for r in conn.execute(f"SELECT id FROM photos WHERE id IN ({marks})", [p for p, _ in batch])}
            batch = [(p, f) for p, f in batch if p in live]  # a photo gone meanwhile has no faces to keep
            face_ids = FaceStore.insert_found(conn, self.model_id, [p for p, _ in batch], [f for _, f in batch])
        self.photos_done += len(batch)
        self._on_found(face_ids, [f for _, faces in batch for f in faces])

    def drain(self, progress: ProgressCallback = no_progress) -> None:
        """The end of a run: wait for the face thread to finish what it was given (or, once
        cancelled, the photo in hand), write what is ready, forget the rest. While it
        waits it reports the photos whose faces were found (Stage.FACES)."""
        thread = self._thread
        if thread is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            meter = RateMeter()
            while thread.is_alive():
                thread.join(0.1)
                with self._cond:
                    left = len(self._todo) + (self._working is not None)
                total = self.photos_done + left
                progress(Progress(Stage.FACES, self.photos_done, total, meter.update(self.photos_done)))
        self._thread = None
        if self._error is None:
            self._write_ready()
        with self._cond:
            self._todo.clear()
            self._found.clear()
            self._ids.clear()
            self._durable.clear()
        self._raise_error()

    def _raise_error(self) -> None:
        """A full disk or a face model that cannot load, met on the face thread, stops the run
        with its message, in the main flow."""
        if self._error is not None:
            raise self._error
