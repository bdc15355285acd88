"""Which face model a library uses and loading it once per process: dlib's, a network
the user supplies as ONNX (:mod:`lookalike.core.faces.onnx_model`), or either of them in a
child process for the window (:mod:`lookalike.core.faces.isolated`)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from lookalike.core.errors import LookalikeError
from lookalike.core.faces.model import (
    DEFAULT_DETECTOR,
    DEFAULT_WORKING_SIZE,
    FACE_DETECTOR_ENV,
    FACE_MODEL_ENV,
    FACE_PROCESS_ENV,
    DlibFaceModel,
    FaceModel,
)

_loaded: dict[tuple[str, int, str], FaceModel] = {}
_load_lock = threading.Lock()


def face_model_choice(name: str | None = None) -> str:
    """The face model to use: ``name``, else LOOKALIKE_FACE_MODEL (a path to a user's
    ONNX face-embedding network), else "dlib"."""
    chosen = (name or os.environ.get(FACE_MODEL_ENV, "") or "dlib").strip()
    if chosen == "dlib":
        return chosen
    if chosen.lower().endswith(".onnx") or Path(chosen).expanduser().is_file():
        return str(Path(chosen).expanduser().resolve())
    raise LookalikeError(f"unknown face model '{chosen}' (dlib, or the path of an ONNX face-embedding model)")


def load_face_model(
    name: str | None = None, *, working_size: int = DEFAULT_WORKING_SIZE, detector: str | None = None
) -> FaceModel:
    """The face model ``name`` (see :func:`face_model_choice`) with ``detector`` (else
    LOOKALIKE_FACE_DETECTOR, else :data:`DEFAULT_DETECTOR`), loaded once per process
    (dlib and its files are imported here)."""
    name = face_model_choice(name)
    detector = (detector or os.environ.get(FACE_DETECTOR_ENV, "")).strip().lower() or None  # None: the default
    key = (name, int(working_size), detector or DEFAULT_DETECTOR)
    with _load_lock:
        model = _loaded.get(key)
        if model is None:
            try:
                if os.environ.get(FACE_PROCESS_ENV) == "1":  # the window: dlib holds the GIL
                    from lookalike.core.faces.isolated import start_face_model

                    model = start_face_model(working_size, detector, None if name == "dlib" else name)
                elif name == "dlib":
                    model = DlibFaceModel(working_size, detector=detector)
                else:
                    from lookalike.core.faces.onnx_model import OnnxFaceModel

                    model = OnnxFaceModel(name, working_size, detector=detector)
            except ImportError:
                raise LookalikeError(
                    "dlib is not installed: pip install dlib-bin (People needs it; everything else works without)."
                ) from None
            _loaded[key] = model
        return model
