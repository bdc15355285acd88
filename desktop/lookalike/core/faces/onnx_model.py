"""A face-embedding network the user supplies as ONNX (SFace, ArcFace and the like).

Faces are found and placed exactly as the default model finds them (dlib's HOG
detector and 5-point landmarks, the same boxes, landmarks and quality); only the
vector differs: each face is aligned to the chip the user's network expects and
embedded by ONNX Runtime. The library records the model under an id and checksum
of its own (``onnx-<file stem>-<sha256 prefix>``), so its faces never mix with
dlib's or another file's: a library of dlib faces opened with it asks for People
to be turned off and on again.

Point Lookalike at the file with ``LOOKALIKE_FACE_MODEL=/path/to/model.onnx``. The
network takes one aligned face chip, (n, 3, S, S) or (n, S, S, 3) float, and gives
(n, d) vectors. Its conventions, when they differ from the defaults, go in a JSON
file beside it with the same stem (``model.json``), part of the checksum:

* ``channels``: ``"rgb"`` (default) or ``"bgr"`` (OpenCV's SFace);
* ``mean``, ``std``: the chip is fed as ``(pixel - mean) / std`` (default 127.5,
  127.5, ArcFace's; SFace takes 0 and 1);
* ``align``: ``"arcface"`` (default; the eye centres placed where the ArcFace
  112 x 112 template has them, scaled to S) or ``"dlib"`` (dlib's face chip, as the
  default model is fed, with ``padding``, default 0.25);
* ``normalize``: scale vectors to unit length (default true);
* ``threshold``: the Euclidean distance below which two faces are the same person
  (default 1.12 on unit vectors, a cosine similarity of about 0.37).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.core.errors import LookalikeError
from lookalike.core.faces.model import DEFAULT_WORKING_SIZE, DlibFaceModel, FaceModelRecord

log = logging.getLogger(__name__)

#: Eye centres of the ArcFace 112 x 112 alignment template (image left eye first).
ARCFACE_EYES = ((38.2946, 51.6963), (73.5318, 51.5014))
DEFAULT_THRESHOLD = 1.12


@dataclass(frozen=True)
class ChipSettings:
    size: int
    nchw: bool
    channels: str = "rgb"
    mean: float = 127.5
    std: float = 127.5
    align: str = "arcface"
    padding: float = 0.25
    normalize: bool = True
    threshold: float = DEFAULT_THRESHOLD


def _settings(path: Path, shape: list[Any]) -> ChipSettings:
    if len(shape) != 4:
        raise LookalikeError(f"{path.name}: the face model's input must be one batch of chips, not shape {shape}")
    if shape[1] == 3 and isinstance(shape[2], int) and shape[2] == shape[3]:
        size, nchw = int(shape[2]), True
    elif shape[3] == 3 and isinstance(shape[1], int) and shape[1] == shape[2]:
        size, nchw = int(shape[1]), False
    else:
        raise LookalikeError(
            f"{path.name}: expected a square RGB chip as input, (n, 3, S, S) or (n, S, S, 3); got {shape}"
        )
    if not 32 <= size <= 512:
        raise LookalikeError(f"{path.name}: a face chip of {size} px is not supported (32-512)")
    opts: dict[str, Any] = {}
    side = path.with_suffix(".json")
    if side.exists():
        try:
            opts = json.loads(side.read_text("utf-8"))
            if not isinstance(opts, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise LookalikeError(f"{side.name}: not a settings object ({exc})") from None
    known = {"channels", "mean", "std", "align", "padding", "normalize", "threshold"}
    if unknown := set(opts) - known:
        raise LookalikeError(f"{side.name}: unknown settings {sorted(unknown)} (known: {sorted(known)})")
    s = ChipSettings(size, nchw, **opts)
    if s.channels not in ("rgb", "bgr") or s.align not in ("arcface", "dlib") or not float(s.std) > 0:
        raise LookalikeError(f"{side.name}: channels must be rgb or bgr, align arcface or dlib, std above 0")
    if not float(s.threshold) > 0:
        raise LookalikeError(f"{side.name}: threshold must be above 0")
    return s


def eye_aligned_chip(arr: np.ndarray, left_eye: np.ndarray, right_eye: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` chip of ``arr`` whose eye centres fall where the ArcFace
    template has them (a similarity transform: rotation, scale, shift)."""
    from PIL import Image

    scale = size / 112.0
    dst = np.asarray(ARCFACE_EYES, np.float64) * scale
    src = np.asarray([left_eye, right_eye], np.float64)
    # The similarity taking chip points to image points: p = s R q + t, from the two eyes.
    dq, dp = dst[1] - dst[0], src[1] - src[0]
    zq, zp = complex(dq[0], dq[1]), complex(dp[0], dp[1])
    if abs(zq) < 1e-9 or abs(zp) < 1e-9:
        raise LookalikeError("the two eyes of a face are at one point")
    m = zp / zq  # s * e^{i theta}
    a, b = m.real, m.imag
    t = src[0] - np.array([a * dst[0][0] - b * dst[0][1], b * dst[0][0] + a * dst[0][1]])
    img = Image.fromarray(np.ascontiguousarray(arr))
    chip = img.transform(
        (size, size), Image.Transform.AFFINE, (a, -b, t[0], b, a, t[1]), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(chip)


class OnnxFaceModel(DlibFaceModel):
    """dlib's detector and landmarks, and the user's ONNX network for the vectors."""

    name = "onnx"

    def __init__(
        self, path: Path | str, working_size: int = DEFAULT_WORKING_SIZE, *, detector: str | None = None
    ) -> None:
        from lookalike.core.runtime.models import combined_sha256, file_sha256

        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise LookalikeError(f"The face model {self.path} does not exist.")
        super().__init__(working_size, detector=detector, embedding="onnx")
        try:
            self._session = self._open(self.path)
        except Exception as exc:  # any unreadable file: one clear message
            raise LookalikeError(f"{self.path.name} is not a usable ONNX model ({exc})") from None
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self.settings = _settings(self.path, list(inp.shape))
        out_shape = self._session.get_outputs()[0].shape
        if len(out_shape) != 2 or not isinstance(out_shape[1], int) or out_shape[1] < 2:
            raise LookalikeError(f"{self.path.name}: expected (n, d) vectors out, got shape {out_shape}")
        self.dimension = int(out_shape[1])
        self.threshold = float(self.settings.threshold)
        side = self.path.with_suffix(".json")
        parts = [file_sha256(self.path)] + ([file_sha256(side)] if side.exists() else [])
        digest = combined_sha256(parts) if len(parts) > 1 else parts[0]
        self.weights_checksum = digest
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.path.stem)[:40]
        self.id = f"onnx-{stem}-{digest[:12]}"
        self._embed_fn = self._embed_user

    @staticmethod
    def _open(path: Path) -> Any:
        from lookalike.core.runtime.models import onnx_cpu_session

        return onnx_cpu_session(path)[0]

    @property
    def record(self) -> FaceModelRecord:
        return FaceModelRecord(self.name, self.id, self.weights_checksum, self.dimension)

    def _align(self, arr: np.ndarray, shapes: Any, chips: list[np.ndarray]) -> list[np.ndarray]:
        s = self.settings
        if s.align == "dlib":
            return [self._dlib.get_face_chip(arr, sh, size=s.size, padding=float(s.padding)) for sh in shapes]
        out = []
        for sh in shapes:
            pts = np.asarray([(sh.part(i).x, sh.part(i).y) for i in range(sh.num_parts)], np.float64)
            eyes = sorted((pts[0:2].mean(0), pts[2:4].mean(0)), key=lambda p: p[0])  # image left first
            out.append(eye_aligned_chip(arr, eyes[0], eyes[1], s.size))
        return out

    def _embed_user(self, chips: list[np.ndarray]) -> np.ndarray:
        s = self.settings
        x = np.stack(chips).astype(np.float32)
        if s.channels == "bgr":
            x = x[..., ::-1]
        x = (x - np.float32(s.mean)) / np.float32(s.std)
        if s.nchw:
            x = x.transpose(0, 3, 1, 2)
        (out,) = self._session.run(None, {self._input: np.ascontiguousarray(x, np.float32)})
        vecs = np.asarray(out, np.float32).reshape(len(chips), self.dimension)
        if s.normalize:
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            vecs = (vecs / np.where(norms > 0, norms, np.float32(1.0))).astype(np.float32)
        return vecs
