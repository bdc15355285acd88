"""The face model in a process of its own, for the window.

dlib's Python binding holds the GIL through all of its work (loading the landmark
weights, each face's landmarks and chip; with the HOG detector, ~50 ms a photo of
detection), and MTCNN's steps between its networks are Python; the networks run
on ONNX Runtime, which releases it. In the window, which indexes on threads of
its own process, each of those calls froze the event loop for its whole length. Here the model lives in a child process (spawned, so it
shares nothing with the window's threads); the indexing thread waits on a pipe,
which releases the GIL, and the window keeps painting.

The child gets the photo already at the model's working size (Pillow resizes
without the GIL) and returns the same :class:`FoundFace` records the model gives
in process. Where no child can start, the model is loaded in process (logged).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from lookalike.core.errors import LookalikeError
from lookalike.core.faces.model import (
    DEFAULT_DETECTOR,
    DlibFaceModel,
    FaceModel,
    FaceModelRecord,
    FoundFace,
    analysis_input,
    model_folder,
)

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import ProcessPoolExecutor

    from PIL import Image

log = logging.getLogger(__name__)

# -- in the child ------------------------------------------------------------------

_child_model: DlibFaceModel | None = None


def _child_start(working_size: int, detector: str | None, path: str | None = None) -> None:
    global _child_model
    if path is None:
        _child_model = DlibFaceModel(working_size, detector=detector)
    else:
        from lookalike.core.faces.onnx_model import OnnxFaceModel

        _child_model = OnnxFaceModel(path, working_size, detector=detector)


def _child_record() -> tuple[FaceModelRecord, int, float]:
    assert _child_model is not None
    return _child_model.record, _child_model.working_size, _child_model.threshold


def _child_analyse(arr: object, scale: float = 1.0) -> list[FoundFace]:
    assert _child_model is not None
    return _child_model.analyse_array(arr, scale)  # type: ignore[arg-type]


# -- in the window's process ---------------------------------------------------------


class ProcessFaceModel:
    """A :class:`DlibFaceModel` (or a user's ONNX model on dlib's detector) run in a child
    process, behind the same protocol."""

    def __init__(
        self,
        pool: ProcessPoolExecutor,
        record: FaceModelRecord,
        working_size: int,
        detector: str | None,
        threshold: float,
        path: str | None = None,
    ) -> None:
        self._pool = pool
        self._detector = detector
        self._path = path
        self._record = record
        self.name = record.name
        self.id = record.model_id
        self.weights_checksum = record.weights_checksum
        self.dimension = record.dimension
        self.threshold = threshold
        self.working_size = working_size

    @property
    def record(self) -> FaceModelRecord:
        return self._record

    def analyse(self, image: Image.Image, source_size: tuple[int, int] | None = None) -> list[FoundFace]:
        from concurrent.futures.process import BrokenProcessPool

        mtcnn = (self._detector or DEFAULT_DETECTOR) == "mtcnn"
        arr, scale = analysis_input(image, self.working_size, source_size, upscale=not mtcnn)
        if arr is None:
            return []
        for attempt in (1, 2):
            try:
                return self._pool.submit(_child_analyse, arr, scale).result()
            except BrokenProcessPool:  # the child died (on this photo, or killed): a new one, once
                log.warning("face model process ended unexpectedly (attempt %d)", attempt)
                self._pool = _new_pool(self.working_size, self._detector, self._path)
        raise LookalikeError("the face model's process ended twice on this photo")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_start_lock = threading.Lock()


def _new_pool(working_size: int, detector: str | None, path: str | None = None) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),  # nothing of this process's threads
        initializer=_child_start,
        initargs=(int(working_size), detector, path),
    )


def start_face_model(working_size: int, detector: str | None = None, path: str | None = None) -> FaceModel:
    """The dlib model (or the user's ONNX model at ``path``) in a child process; in this
    process where no child starts."""
    import importlib.util

    if importlib.util.find_spec("dlib") is None:
        raise ImportError("dlib")
    model_folder()  # a clear error when the weights are not installed
    with _start_lock:
        pool = _new_pool(working_size, detector, path)
        try:
            record, size, threshold = pool.submit(_child_record).result()
        except Exception as exc:  # any failure to start: run in process
            pool.shutdown(wait=False, cancel_futures=True)
            log.warning("face model process did not start (%s); running it in process", exc)
            if path is None:
                return DlibFaceModel(working_size, detector=detector)
            from lookalike.core.faces.onnx_model import OnnxFaceModel

            return OnnxFaceModel(path, working_size, detector=detector)  # its own error, if the file is bad
        log.info("face model running in a child process (working size %d)", size)
        return ProcessFaceModel(pool, record, size, detector, threshold, path)
