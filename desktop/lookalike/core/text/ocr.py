"""Reading the text in a photo: RapidOCR's PP-OCRv4 models on ONNX Runtime.

The models (a text detector, a 0/180 degree line classifier and a line recogniser,
about 16 MB in all, Apache-2.0) ship inside the ``rapidocr-onnxruntime`` wheel, so
nothing is downloaded. Why this engine and not Tesseract: docs/models.md.

A photo is read in two passes (:meth:`Reader.read`):

1. the detector alone, on the photo shrunk to at most :data:`PROBE_SIDE` pixels on
   its long side: most photos show no text, and this pass (about a tenth of a full
   read) is all they cost;
2. where it found text, the full read: the detector on the photo at the stage's size
   (its long side at most 2000 px), each line cut out and turned upright (lines
   standing on end are turned a quarter, the classifier turns upside-down ones),
   then recognised.

Matching is on :func:`normalise`'s form of the text: lower case, accents taken off
(``Café`` matches ``cafe``), punctuation and spacing one space. The recogniser often
drops the space between two words (``LANTERNOYSTER``), so a word is looked for as a
substring of that form, not as a whole word (measured: docs/models.md).
"""

from __future__ import annotations

import logging
import os
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

#: Long side (pixels) of the detector's first pass, which decides whether a photo shows text.
PROBE_SIDE = 640
#: Lines recognised with a lower confidence than this are dropped.
MIN_SCORE = 0.5
#: Results written by another version of the reader are read again.
VERSION = 1
ENGINE = "RapidOCR PP-OCRv4 (rapidocr-onnxruntime)"

R = TypeVar("R")


def normalise(text: str) -> str:
    """``text`` as matching sees it: case folded, accents off, each run of anything but
    letters and digits one space (``Café, 7-19`` is ``cafe 7 19``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return " ".join(kept.split())


@dataclass(frozen=True)
class Line:
    """One line of text as read: its words, the recogniser's confidence, its corners
    (x, y) in the original photo's pixels, clockwise from the top left."""

    text: str
    score: float
    box: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class TextRead:
    """What was read in one photo."""

    lines: tuple[Line, ...] = ()
    probed: bool = False  # the first pass found no text: the full read did not run
    failed: bool = False  # the image could not be read (logged); kept as no text

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


def available() -> bool:
    """Whether the OCR engine is installed."""
    try:
        import importlib.util

        return importlib.util.find_spec("rapidocr_onnxruntime") is not None
    except (ImportError, ValueError):  # pragma: no cover
        return False


def _lower_priority() -> None:
    """The reading thread runs at a lower priority than the window and the likeness
    indexing (Linux: a thread's own nice value; ONNX Runtime's threads, started from
    it, inherit it)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: normal priority
        pass


class Reader:
    """The OCR engine, loaded on first use, run on one thread of its own at a lower
    priority. ``threads``: ONNX Runtime's threads per model call (default: all cores
    but one, at least one; the decoders use the rest)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self._engine: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _on_thread(self, fn: Callable[[], R]) -> R:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="ocr", initializer=_lower_priority)
            pool = self._pool
        return pool.submit(fn).result()

    def load(self) -> None:
        """Load the models (about a second), on the reading thread."""
        self._on_thread(self._load)

    def _load(self) -> Any:
        if self._engine is None:
            # OpenCV's wheel points Qt at its own Qt 5 plugins on import: the window's Qt 6
            # (and any process started from here) must not be sent there.
            qt_env = {k: os.environ.get(k) for k in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")}
            try:
                from rapidocr_onnxruntime import RapidOCR
            finally:
                for key, value in qt_env.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

            self._engine = RapidOCR(
                det_limit_type="max",
                det_limit_side_len=2000,
                intra_op_num_threads=self.threads,
                inter_op_num_threads=1,
                text_score=MIN_SCORE,
            )
            logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        return self._engine

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def read(self, image: Image.Image) -> TextRead:
        """The text in an RGB image (already upright: the decoder applied its EXIF turn)."""
        return self._on_thread(lambda: self._read(image))

    def _read(self, image: Image.Image) -> TextRead:
        import numpy as np

        engine = self._load()
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        h, w = bgr.shape[:2]
        if not self.shows_text(bgr):
            return TextRead(probed=True)
        result, _ = engine(bgr)
        lines = []
        for box, text, score in result or ():
            text = str(text).strip()
            if text and float(score) >= MIN_SCORE:
                corners = tuple((int(round(x)), int(round(y))) for x, y in box)
                lines.append(Line(text, float(score), corners))
        return TextRead(tuple(lines))

    def shows_text(self, bgr: Any) -> bool:
        """The first pass: whether the detector finds any text on the photo shrunk to
        :data:`PROBE_SIDE` on its long side."""
        import cv2

        engine = self._load()
        h, w = bgr.shape[:2]
        scale = PROBE_SIDE / max(h, w)
        small = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        boxes, _ = engine.text_det(small if scale < 1 else bgr)
        return boxes is not None and len(boxes) > 0
