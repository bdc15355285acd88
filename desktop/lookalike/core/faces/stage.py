"""The faces stage of the indexer: detect, align and embed on the image already decoded.

It asks the decoder for a short side of :attr:`FaceStage.image_size` (the
indexer decodes once, at the largest size any stage asks for): 0.72 x the
detector's working long side, which for a 12 MP camera JPEG (4032 x 3024) is
what the JPEG codec's 1/4 draft scale gives (1008 x 756), so People costs the
decoder a 1/4 instead of a 1/8 decode, never a second decode.

Faces are written in the transaction that commits their photos (with a
``face_scans`` row, also for a photo without faces), then added to the face
graph and grouped; a run killed in between groups them next time (they are
still ``grouped = 0``). A cancel stops after the photo in hand; the photos of
the batch not looked at yet stay pending for the next run.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence

from lookalike.core.faces.model import FaceModel, FoundFace
from lookalike.core.faces.store import FaceStore
from lookalike.core.progress import CancelToken, Stage
from lookalike.core.stages import PhotoStage, StagePhoto

log = logging.getLogger(__name__)

#: Short side asked of the decoder, as a fraction of the model's working long side.
DECODE_FRACTION = 0.72


class FaceStage(PhotoStage[tuple[FoundFace, ...]]):
    stage = Stage.FACES

    def __init__(
        self,
        model: FaceModel | Callable[[], FaceModel],
        model_id: str,
        working_size: int,
        on_committed: Callable[[list[int], list[FoundFace]], None],
        on_forget: Callable[[Sequence[int]], None],
    ) -> None:
        """``model`` may be a function that loads it: dlib is then imported only when a
        photo actually needs looking at."""
        self._model = model if not callable(model) or hasattr(model, "analyse") else None
        self._factory = None if self._model is not None else model
        self.model_id = model_id
        self.image_size = int(working_size * DECODE_FRACTION)
        self._on_committed = on_committed
        self._on_forget = on_forget
        self._written: list[tuple[list[int], list[FoundFace]]] = []

    @property
    def model(self) -> FaceModel:
        if self._model is None:
            assert self._factory is not None
            self._model = self._factory()  # type: ignore[operator]
        return self._model

    def process(self, photos: Sequence[StagePhoto], cancel: CancelToken) -> list[tuple[FoundFace, ...]]:
        model = self.model
        self._written = []
        out: list[tuple[FoundFace, ...]] = []
        for p in photos:
            if cancel.cancelled:
                break
            try:
                out.append(tuple(model.analyse(p.decoded.image)))
            except Exception:  # one odd image must not stop the others
                log.exception("Face detection failed on %s", p.path)
                out.append(())
        return out

    def write(self, conn: sqlite3.Connection, ids: Sequence[int], outputs: Sequence[tuple[FoundFace, ...]]) -> None:
        face_ids = FaceStore.insert_found(conn, self.model_id, ids, outputs)
        self._written.append((face_ids, [f for faces in outputs for f in faces]))

    def pending(self, conn: sqlite3.Connection) -> set[int]:
        return FaceStore.unscanned(conn, self.model_id)

    def committed(self, ids: Sequence[int], outputs: Sequence[tuple[FoundFace, ...]]) -> None:
        written, self._written = self._written, []
        for face_ids, faces in written:
            self._on_committed(face_ids, faces)

    def forget(self, ids: Sequence[int]) -> None:
        self._on_forget(ids)
