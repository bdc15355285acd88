"""Face models: detect -> align -> embed, behind one small protocol.

The default model is dlib's: MTCNN finds the faces (core/faces/mtcnn_net.py;
dlib's HOG frontal-face detector where it cannot load, or when chosen), dlib's
5-point landmark predictor aligns them and dlib's ResNet face embedding (128-d,
trained with a metric loss so that one person's faces lie within Euclidean 0.6
of each other) gives their vectors, run by ONNX Runtime from dlib's own weights
file (core/faces/dlib_net.py). dlib's model files ship in the PyPI package
``face-recognition-models``; they are found on disk through the package's
import spec (the package's ``__init__`` imports ``pkg_resources``, which is
not installed, so it is never imported).

A library records the face model it was built with (:class:`FaceModelRecord`:
id, weights checksum, dimension) exactly as it records the image encoder, so
faces of two models never mix in one face index.

A model the user supplies (an SFace or ArcFace ONNX file, say) plugs in through
LOOKALIKE_FACE_MODEL (:mod:`lookalike.core.faces.onnx_model`): dlib finds and
places the faces, the user's network gives the vectors, under an id and checksum
of its own. Any other model implements :class:`FaceModel` - ``id``,
``weights_checksum``, ``dimension``, ``working_size``, ``threshold`` (its
Euclidean distance for "same person") and ``analyse(image)`` returning
:class:`FoundFace` records - and is returned from :func:`load_face_model`.
Nothing else in Lookalike knows which model found a face.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from lookalike.core.errors import LookalikeError

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

#: The long side, in pixels, the detector works at. Chosen by measurement
#: (docs/models.md, "Faces"): at 1024 px every labelled face of the test photos is
#: found, and MTCNN from 60 px finds 0.9 of them as distant subjects in camera
#: frames (HOG 0.7) for 11-14 ms of CPU a photo.
DEFAULT_WORKING_SIZE = 1024

#: The id (and vector size) of the default model, known without loading it.
DEFAULT_MODEL_ID = "dlib-resnet-v1"
DEFAULT_DIMENSION = 128

#: Set to "1" (the window does) to run the face model in a child process: dlib holds
#: the GIL through loading and analysing, which freezes a window indexing on threads.
FACE_PROCESS_ENV = "LOOKALIKE_FACE_PROCESS"

#: "dlib" runs the face embedding with dlib's own code (no BLAS in the dlib-bin wheels:
#: 100-150 ms a face) instead of the same network on ONNX Runtime (the default, "onnx").
FACE_EMBEDDING_ENV = "LOOKALIKE_FACE_EMBEDDING"

#: The path of a face-embedding network the user supplies as ONNX (core/faces/onnx_model.py);
#: unset, the default dlib model.
FACE_MODEL_ENV = "LOOKALIKE_FACE_MODEL"

#: The face detector: "hog" (dlib's), "mtcnn" (core/faces/mtcnn_net.py) or "cnn" (dlib's MMOD).
FACE_DETECTOR_ENV = "LOOKALIKE_FACE_DETECTOR"
DEFAULT_DETECTOR = "mtcnn"
#: The smallest face, in pixels at the working size, the default detector looks for:
#: chosen by measurement (docs/models.md, "Detector and working scale").
DEFAULT_MTCNN_MIN_FACE = 60

#: Faces below this quality are found and stored but kept out of grouping.
MIN_CLUSTER_QUALITY = 0.5

_MODEL_FILES = {
    "landmarks": "shape_predictor_5_face_landmarks.dat",
    "embedding": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}


@dataclass(frozen=True)
class FaceModelRecord:
    """What a library remembers about the face model that found its faces."""

    name: str
    model_id: str
    weights_checksum: str
    dimension: int


@dataclass(frozen=True)
class FoundFace:
    """One face in one photo.

    ``box`` is (left, top, right, bottom) as fractions of the oriented photo's
    width and height, so it holds at any display size; ``landmarks`` are five
    (x, y) points in the same fractions. ``quality`` is in [0, 1]: the least of
    the face's size, sharpness, how much of it is inside the photo and how sure
    the detector was; under :data:`MIN_CLUSTER_QUALITY` the face is kept out of
    grouping. ``vector`` is the model's own embedding; distances between two
    are Euclidean, compared with the model's ``threshold``.
    """

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    quality: float
    vector: np.ndarray
    size_px: int = 0  # the face's width in pixels of the image it was found in


@runtime_checkable
class FaceModel(Protocol):
    id: str
    weights_checksum: str
    dimension: int
    working_size: int  # long side, in pixels, of the image analyse() wants
    threshold: float  # the model's "same person" Euclidean distance between its vectors

    def analyse(self, image: Image.Image, source_size: tuple[int, int] | None = None) -> list[FoundFace]:
        """Every face in ``image`` (RGB, already oriented), left to right. ``source_size``:
        the photo's own size, when ``image`` is a smaller decode of it."""
        ...

    @property
    def record(self) -> FaceModelRecord: ...


def model_folder() -> Path:
    """Where ``face-recognition-models`` keeps its files (without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise LookalikeError(
            "The face models are not installed: pip install face-recognition-models "
            "(People needs them; everything else works without)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _file_checksum(path: Path) -> str:
    """blake2b-128 of a file, remembered beside the models by (path, size, mtime): hashing
    the 30 MB of weights at every start cost ~40 ms of CPU."""
    import json

    from lookalike.core.runtime.models import models_dir
    from lookalike.core.store.fsutil import atomic_write_text

    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = models_dir() / "faces" / "checksums.json"
    try:
        memo = json.loads(memo_file.read_text("utf-8"))
        if isinstance(memo, dict) and isinstance(memo.get(key), str) and len(memo[key]) == 32:
            return memo[key]
    except (OSError, ValueError):
        memo = {}
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    try:
        memo = memo if isinstance(memo, dict) else {}
        memo[key] = digest
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(memo_file, json.dumps(memo, indent=0, sort_keys=True))
    except (OSError, LookalikeError) as exc:  # a read-only cache only costs a re-hash next time
        log.debug("could not remember the checksum of %s: %s", path, exc)
    return digest


@cache
def _checksums(folder: Path) -> str:
    """One checksum over the landmark and embedding weights (the detector's are in dlib)."""
    parts = [_file_checksum(folder / _MODEL_FILES[k]) for k in ("landmarks", "embedding")]
    return hashlib.blake2b("".join(parts).encode(), digest_size=16).hexdigest()


def _sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of a face chip's grey levels: low for a blurred face."""
    c = chip.astype(np.uint16)  # the channels' mean, as mean(axis=2) gives it, in a fifth of the time
    g = (c[:, :, 0] + c[:, :, 1] + c[:, :, 2]).astype(np.float32) / np.float32(3)
    lap = -4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


# Calibrated on the test photos (tests/unit/test_faces_model.py checks them): sharp
# faces at the working size give a Laplacian variance of 60-900 on the 150 px chip;
# the same faces blurred with a 3 px Gaussian fall under 20.
_SHARP_LOW, _SHARP_HIGH = 15.0, 60.0
# dlib's detector needs ~80 px faces without upsampling; a face is recognised well
# from ~60 px across the box up.
_SIZE_LOW, _SIZE_HIGH = 36.0, 64.0
_SCORE_LOW, _SCORE_HIGH = -0.3, 0.3
# MTCNN's face probability (faces are kept from 0.95): every face of the test photos,
# near or distant, scores 0.986-1.0.
_MTCNN_LOW, _MTCNN_HIGH = 0.95, 0.99


def _frontal_detector(dlib: Any) -> Any:
    """dlib's HOG face detector. Building it from the copy inside dlib costs ~250 ms of
    CPU at every start; read back from a file it saved, it is the same detector (the
    same faces and scores on the test photos) in a few milliseconds."""
    from lookalike.core.runtime.models import models_dir
    from lookalike.core.store.fsutil import atomic_path

    version = "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in str(getattr(dlib, "__version__", "0")))
    path = models_dir() / "faces" / f"dlib-{version}-frontal-face-detector.svm"
    if path.exists():
        try:
            return dlib.fhog_object_detector(str(path))
        except Exception as exc:  # a damaged copy: built again below
            log.warning("face detector copy %s unreadable (%s); building it again", path, exc)
    detector = dlib.get_frontal_face_detector()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            detector.save(str(tmp))
    except (OSError, LookalikeError) as exc:  # a read-only or full disk: built each time
        log.debug("could not keep a copy of the face detector at %s: %s", path, exc)
    return detector


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


def analysis_input(
    image: Image.Image, working_size: int, source_size: tuple[int, int] | None, *, upscale: bool
) -> tuple[np.ndarray | None, float]:
    """The array a model analyses, and how much smaller it is than the working size the
    photo would have had (1.0: not smaller). The indexer decodes JPEGs in draft mode, so a
    1600 x 1200 photo arrives at 800 x 600 rather than decoded in full and resized to 1024
    (10 + 13 ms of CPU saved): MTCNN then looks for faces from a proportionally smaller
    size, which covers the same faces of the photo; detectors whose smallest face is fixed
    in pixels (``upscale``) get the array enlarged to the working size instead."""
    arr = working_array(image, working_size)
    if arr is None or not source_size:
        return arr, 1.0
    reference = min(working_size, max(source_size))
    k = reference / max(arr.shape[:2])
    if k <= 1.02:
        return arr, 1.0
    if upscale:
        from PIL import Image as PILImage

        h, w = arr.shape[:2]
        big = PILImage.fromarray(arr).resize((round(w * k), round(h * k)), PILImage.Resampling.BILINEAR)
        return np.asarray(big), 1.0
    return arr, k


def working_array(image: Image.Image, working_size: int) -> np.ndarray | None:
    """``image`` as the RGB array a model analyses (long side at most ``working_size``);
    None when no face fits in it."""
    from PIL import Image as PILImage

    w0, h0 = image.size
    if min(w0, h0) < 24:
        return None  # no face fits
    scale = min(1.0, working_size / max(w0, h0))
    img = image if scale >= 1.0 else image.resize((round(w0 * scale), round(h0 * scale)), PILImage.Resampling.BILINEAR)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


class DlibFaceModel:
    """dlib HOG detector + 5-point alignment + ResNet embedding (128-d).

    The embedding network is dlib's, read from its weights file and run by ONNX
    Runtime (:mod:`lookalike.core.faces.dlib_net`): the same vectors as dlib's own
    code gives (to 1e-6), 7-10x faster, so it keeps the model id. It is loaded on
    the first face found. ``embedding="dlib"`` (or LOOKALIKE_FACE_EMBEDDING=dlib)
    uses dlib's own code, as does any failure to build the ONNX graph (logged).
    """

    name = "dlib"
    dimension = 128
    threshold = 0.6  # dlib's verification distance (same person below it)

    def __init__(
        self,
        working_size: int = DEFAULT_WORKING_SIZE,
        *,
        detector: str | None = None,
        embedding: str | None = None,
        mtcnn_min_face: int = DEFAULT_MTCNN_MIN_FACE,
    ) -> None:
        """``detector`` None is :data:`DEFAULT_DETECTOR`, with dlib's HOG detector where
        MTCNN cannot load (logged); a detector named is that one or an error."""
        import dlib

        folder = model_folder()
        self.working_size = int(working_size)
        self._dlib = dlib
        self._hog: Any = None
        self._cnn: Any = None
        self._mtcnn: Any = None
        chosen = detector or DEFAULT_DETECTOR
        if chosen == "mtcnn":
            try:
                from lookalike.core.faces.mtcnn_net import MtcnnDetector

                self._mtcnn = MtcnnDetector(mtcnn_min_face)
            except (ImportError, LookalikeError) as exc:
                if detector is not None:
                    raise LookalikeError(f"The MTCNN face detector could not load: {exc}") from None
                log.warning("MTCNN face detector unavailable (%s); using dlib's HOG detector", exc)
                chosen = "hog"
        if chosen == "hog":
            self._hog = _frontal_detector(dlib)
        elif chosen == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(str(folder / _MODEL_FILES["cnn_detector"]))
        elif chosen != "mtcnn":
            raise LookalikeError(f"unknown face detector '{chosen}' (mtcnn, hog or cnn)")
        self.detector_name = chosen
        self._landmarks = dlib.shape_predictor(str(folder / _MODEL_FILES["landmarks"]))
        self._weights = folder / _MODEL_FILES["embedding"]
        self.embedding = (embedding or os.environ.get(FACE_EMBEDDING_ENV, "") or "onnx").strip().lower()
        if self.embedding not in ("onnx", "dlib"):
            raise LookalikeError(f"unknown face embedding '{self.embedding}' (onnx or dlib)")
        self._embed_fn: Any = None  # loaded with the first face
        self._embed_lock = threading.Lock()
        self.weights_checksum = _checksums(folder)
        # The detector changes which faces are found, not their vectors: one id.
        self.id = DEFAULT_MODEL_ID
        # dlib's models are not safe to call from two threads at once.
        self._lock = threading.Lock()

    @property
    def record(self) -> FaceModelRecord:
        return FaceModelRecord(self.name, self.id, self.weights_checksum, self.dimension)

    def _embedder(self) -> Any:
        """chips -> (n, 128) vectors: the ResNet on ONNX Runtime, or dlib's own code."""
        with self._embed_lock:
            if self._embed_fn is None:
                if self.embedding == "onnx":
                    try:
                        from lookalike.core.faces.dlib_net import OnnxFaceEmbedder

                        self._embed_fn = OnnxFaceEmbedder(self._weights).embed
                    except Exception as exc:  # dlib's own code gives the same vectors
                        log.warning("face embedding on ONNX Runtime unavailable (%s); using dlib's", exc)
                        self.embedding = "dlib"
                if self._embed_fn is None:
                    net = self._dlib.face_recognition_model_v1(str(self._weights))

                    def embed(chips: list[np.ndarray]) -> np.ndarray:
                        with self._lock:
                            return np.asarray(net.compute_face_descriptor(chips), np.float32)

                    self._embed_fn = embed
            return self._embed_fn

    def _align(self, arr: np.ndarray, shapes: Any, chips: list[np.ndarray]) -> list[np.ndarray]:
        """The embedding's inputs: dlib's 150 px chips (another network aligns its own)."""
        return chips

    def _detect(self, arr: np.ndarray, scale: float = 1.0) -> list[tuple[Any, float]]:
        if self._hog is not None:
            rects, scores, _ = self._hog.run(arr, 0, -0.2)
            return list(zip(rects, scores))
        if self._mtcnn is not None:
            from lookalike.core.faces.mtcnn_net import dlib_box

            # As a HOG score for the quality ramp: MTCNN's probability mapped onto -0.3..0.3.
            return [
                (
                    self._dlib.rectangle(*dlib_box(f)),
                    _SCORE_LOW + (f.score - _MTCNN_LOW) * (_SCORE_HIGH - _SCORE_LOW) / (_MTCNN_HIGH - _MTCNN_LOW),
                )
                for f in self._mtcnn.detect(arr, max(12, round(self._mtcnn.min_face / scale)))
            ]
        assert self._cnn is not None
        return [(d.rect, float(d.confidence)) for d in self._cnn(arr, 0)]

    def analyse(self, image: Image.Image, source_size: tuple[int, int] | None = None) -> list[FoundFace]:
        arr, scale = analysis_input(image, self.working_size, source_size, upscale=self._mtcnn is None)
        return [] if arr is None else self.analyse_array(arr, scale)

    def analyse_array(self, arr: np.ndarray, scale: float = 1.0) -> list[FoundFace]:
        """Every face in an RGB array at the working size (:func:`working_array`), or
        ``scale`` times smaller (:func:`analysis_input`; MTCNN only)."""
        h, w = arr.shape[:2]
        with self._lock:
            found = self._detect(arr, scale)
            if not found:
                return []
            shapes = self._dlib.full_object_detections()
            for rect, _ in found:
                shapes.append(self._landmarks(arr, rect))
            chips = [self._dlib.get_face_chip(arr, s, size=150, padding=0.25) for s in shapes]
            inputs = self._align(arr, shapes, chips)
        vecs = np.asarray(self._embedder()(inputs), dtype=np.float32).reshape(len(chips), self.dimension)
        out: list[FoundFace] = []
        for (rect, score), shape, chip, vec in zip(found, shapes, chips, vecs):
            x0, t, r, b = rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1
            size = min(r - x0, b - t) * scale  # in pixels of the working size
            inside = (min(r, w) - max(x0, 0)) * (min(b, h) - max(t, 0)) / max(1, (r - x0) * (b - t))
            quality = min(
                _ramp(size, _SIZE_LOW, _SIZE_HIGH),
                _ramp(_sharpness(chip), _SHARP_LOW, _SHARP_HIGH),
                _ramp(inside, 0.6, 0.9),
                _ramp(float(score), _SCORE_LOW, _SCORE_HIGH),
            )
            box = (max(0.0, x0 / w), max(0.0, t / h), min(1.0, r / w), min(1.0, b / h))
            marks = tuple((shape.part(i).x / w, shape.part(i).y / h) for i in range(shape.num_parts))
            out.append(FoundFace(box, marks, round(quality, 4), np.ascontiguousarray(vec, np.float32), int(size)))
        out.sort(key=lambda f: (f.box[0], f.box[1]))
        return out


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and of ``b``."""
    a = np.asarray(a, np.float32).reshape(-1, np.shape(a)[-1])
    b = np.asarray(b, np.float32).reshape(-1, np.shape(b)[-1])
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))
