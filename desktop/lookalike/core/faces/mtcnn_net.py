"""MTCNN, the three-stage CNN face detector, on ONNX Runtime.

dlib's HOG detector costs ~55 ms of one core on a 1008 x 756 photo and finds faces
from ~64-80 px up. MTCNN (Zhang et al. 2016; weights MIT) finds the same faces from
a chosen size up for a fraction of that: a small fully convolutional network
(P-Net) proposes boxes over an image pyramid, a second (R-Net, 24 x 24 crops)
rejects most, a third (O-Net, 48 x 48) places the box and five points. The weights
ship in the PyPI package ``mtcnn`` (which runs them on TensorFlow, an optional
extra we do not install); they are read here with joblib, as the package stores
them, and the three networks are built as ONNX graphs in memory (Keras layouts
turned into ONNX's: kernels HWIO -> OIHW, "same" pooling pads at the end, the
dense layers flatten a transposed feature map as the Keras port's Permute does).

The package is found through its import spec and never imported (its
``__init__`` imports TensorFlow).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.core.errors import LookalikeError

log = logging.getLogger(__name__)

#: The pyramid's step and the stages' thresholds: the method's usual values, but P-Net's
#: 0.7 instead of 0.6. On the test photos as they are, as photos of people and as
#: distant subjects (MTCNN from 40, 60 and 80 px) both find the same faces (boxes within
#: IoU 0.88), and 0.7 sends a quarter fewer boxes to R-Net: ~1.5 ms of CPU a photo of people.
SCALE_STEP = 0.709
THRESHOLDS = (0.7, 0.7, 0.7)
#: A face is kept from this final probability up: every face of the test photos, as
#: they are and as distant subjects, scored 0.986-1.0; the method's false finds on
#: them and on the bench's scenes 0.71-0.86.
MIN_SCORE = 0.95


@dataclass(frozen=True)
class MtcnnFace:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float  # O-Net's face probability
    points: tuple[tuple[float, float], ...]  # eyes, nose, mouth corners


def weights_folder() -> Path:
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise LookalikeError("The MTCNN face detector is not installed: pip install mtcnn")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "weights"


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def input(self) -> str:
        """The networks' input from RGB bytes (n, h, w, 3): (x - 127.5) / 128, channels first."""
        from onnx import TensorProto

        x = self.op("Transpose", [self.op("Cast", ["rgb"], to=TensorProto.FLOAT)], perm=[0, 3, 1, 2])
        return self.op("Mul", [self.op("Sub", [x, self.const(np.full(1, 127.5))]), self.const(np.full(1, 1 / 128))])

    def const(self, arr: np.ndarray) -> str:
        from onnx import numpy_helper

        self._n += 1
        name = f"c{self._n}"
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, np.float32), name))
        return name

    def op(self, op: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        self._n += 1
        out = f"{op.lower()}{self._n}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def prelu(self, x: str, alpha: np.ndarray) -> str:
        """PReLU as max(x, 0) + alpha * min(x, 0): the same values, and a tenth of the time
        of ONNX Runtime's PRelu kernel with a slope per channel (which took 40% of each
        network's time)."""
        neg = self.op("Mul", [self.op("Min", [x, self.const(np.zeros(1))]), self.const(alpha)])
        return self.op("Add", [self.op("Relu", [x]), neg])

    def conv_prelu(self, x: str, kernel: np.ndarray, bias: np.ndarray, alpha: np.ndarray) -> str:
        x = self.op("Conv", [x, self.const(kernel.transpose(3, 2, 0, 1)), self.const(bias)])
        return self.prelu(x, alpha.reshape(-1, 1, 1))

    def pool(self, x: str, k: int, s: int, same: bool) -> str:
        pad = {"auto_pad": "SAME_UPPER"} if same else {}
        return self.op("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], **pad)

    def dense(self, x: str, w: np.ndarray, b: np.ndarray) -> str:
        return self.op("Add", [self.op("MatMul", [x, self.const(w)]), self.const(b)])

    def flatten_keras(self, x: str) -> str:
        """Keras's Permute((2, 1, 3)) + Flatten on NHWC, from ONNX's NCHW."""
        return self.op("Flatten", [self.op("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)

    def session(self, outputs: list[str], size: int | None, threads: int) -> Any:
        import onnxruntime as ort
        from onnx import TensorProto, helper

        shape: list[str | int | None] = ["n", size, size, 3] if size else [1, "h", "w", 3]
        names = [f"out{i}" for i in range(len(outputs))]
        nodes = self.nodes + [helper.make_node("Identity", [o], [n]) for o, n in zip(outputs, names)]
        graph = helper.make_graph(
            nodes,
            "mtcnn",
            [helper.make_tensor_value_info("rgb", TensorProto.UINT8, shape)],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _load(name: str) -> list[np.ndarray]:
    import joblib

    path = weights_folder() / f"{name}.lz4"
    try:
        weights = joblib.load(path)
    except Exception as exc:  # one message for a missing or damaged file
        raise LookalikeError(f"The MTCNN weights {path} could not be read ({exc})") from None
    return [np.asarray(w, np.float32) for w in weights]


def _pnet(threads: int) -> Any:
    w, g = _load("pnet"), _Graph()
    x = g.pool(g.conv_prelu(g.input(), w[0], w[1], w[2]), 2, 2, True)
    x = g.conv_prelu(g.conv_prelu(x, w[3], w[4], w[5]), w[6], w[7], w[8])
    reg = g.op("Conv", [x, g.const(w[9].transpose(3, 2, 0, 1)), g.const(w[10])])
    prob = g.op("Softmax", [g.op("Conv", [x, g.const(w[11].transpose(3, 2, 0, 1)), g.const(w[12])])], axis=1)
    return g.session([reg, prob], None, threads)


def _rnet(threads: int) -> Any:
    w, g = _load("rnet"), _Graph()
    x = g.pool(g.conv_prelu(g.input(), w[0], w[1], w[2]), 3, 2, True)
    x = g.pool(g.conv_prelu(x, w[3], w[4], w[5]), 3, 2, False)
    x = g.flatten_keras(g.conv_prelu(x, w[6], w[7], w[8]))
    x = g.prelu(g.dense(x, w[9], w[10]), w[11])
    return g.session([g.dense(x, w[12], w[13]), g.op("Softmax", [g.dense(x, w[14], w[15])], axis=1)], 24, threads)


def _onet(threads: int) -> Any:
    w, g = _load("onet"), _Graph()
    x = g.pool(g.conv_prelu(g.input(), w[0], w[1], w[2]), 3, 2, True)
    x = g.pool(g.conv_prelu(x, w[3], w[4], w[5]), 3, 2, False)
    x = g.pool(g.conv_prelu(x, w[6], w[7], w[8]), 2, 2, True)
    x = g.flatten_keras(g.conv_prelu(x, w[9], w[10], w[11]))
    x = g.prelu(g.dense(x, w[12], w[13]), w[14])
    outs = [g.dense(x, w[15], w[16]), g.dense(x, w[17], w[18]), g.op("Softmax", [g.dense(x, w[19], w[20])], axis=1)]
    return g.session(outs, 48, threads)


def _nms(boxes: np.ndarray, scores: np.ndarray, limit: float, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (overlap over union, or over the
    smaller box). The overlaps of all pairs are computed at once (a few dozen boxes as a
    rule); only the greedy walk is a loop."""
    n = len(boxes)
    if n == 0:
        return np.zeros(0, int)
    order = np.argsort(scores)[::-1]
    if n > _NMS_MATRIX_MAX:
        return _nms_loop(boxes, order, limit, by_min)
    b = boxes[order]
    x0, y0, x1, y1 = b.T
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    w = np.maximum(0.0, np.minimum(x1[:, None], x1) - np.maximum(x0[:, None], x0) + 1)
    h = np.maximum(0.0, np.minimum(y1[:, None], y1) - np.maximum(y0[:, None], y0) + 1)
    inter = w * h
    overlap = inter / (np.minimum(area[:, None], area) if by_min else area[:, None] + area - inter)
    over = (overlap > limit).tolist()
    dropped = [False] * n
    keep = []
    for i in range(n):
        if not dropped[i]:
            keep.append(i)
            dropped = [d or o for d, o in zip(dropped, over[i])]
    return order[keep]


#: Above this many boxes the overlaps are computed one kept box at a time (memory).
_NMS_MATRIX_MAX = 1500


def _nms_loop(boxes: np.ndarray, order: np.ndarray, limit: float, by_min: bool) -> np.ndarray:
    x0, y0, x1, y1 = boxes.T
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = w * h
        overlap = inter / (np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter)
        order = rest[overlap <= limit]
    return np.asarray(keep, int)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + reg * np.stack([w, h, w, h], 1)


def _square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x0, y0 = boxes[:, 0] + (w - side) / 2, boxes[:, 1] + (h - side) / 2
    return np.stack([x0, y0, x0 + side, y0 + side], 1)


class _Levels:
    """The image at full size and box-filtered to a half, a quarter, ... (each from the
    one above, when first asked for), to cut each box from the smallest copy where it
    still spans the network's input: resizing a 400 px crop to 24 px cost more than the
    network it feeds. Cutting from copies twice that size, as before, cost ~1.8 ms more
    a photo of people for the same faces (boxes within a few per cent of their side,
    vectors within the spread of the same face blown up to a camera frame). The half
    copy also starts the pyramid."""

    def __init__(self, image: Any) -> None:
        self.image = image
        self._made: dict[int, Any] = {1: image}
        self.factors = [f for f in (1, 2, 4, 8, 16) if min(image.size) >= 8 * f]

    def __getitem__(self, f: int) -> Any:
        if f not in self._made:
            self._made[f] = self[f // 2].reduce(2)
        return self._made[f]

    def resized(self, size: tuple[int, int]) -> Any:
        """``image.resize(size, BILINEAR, reducing_gap=2.0)``, from the half copy where
        that call would reduce by two itself (the same pixels)."""
        from PIL import Image

        w, h = self.image.size
        if int(w / size[0] / 2.0) == 2 and int(h / size[1] / 2.0) == 2 and 2 in self.factors:
            return self[2].resize(size, Image.Resampling.BILINEAR, box=(0, 0, w / 2, h / 2))
        return self.image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _crops(levels: _Levels, boxes: np.ndarray, size: int) -> np.ndarray:
    """The boxes as ``size`` px RGB squares (n, size, size, 3), each cut from the
    smallest copy where it still spans ``size``; zeros where a box leaves the photo."""
    from PIL import Image

    n = len(boxes)
    sides = boxes[:, 2] - boxes[:, 0] + 1
    factor = np.ones(n, int)
    for f in levels.factors[1:]:
        factor[sides / f >= size] = f
    corners = np.round(boxes / factor[:, None]).astype(int)
    corners[:, 2:] += 1
    sheet = Image.new("RGB", (size, size * n))  # one array at the end, not one a box
    for i, (f, box) in enumerate(zip(factor.tolist(), corners.tolist())):
        sheet.paste(levels[f].crop(box).resize((size, size), Image.Resampling.BILINEAR), (0, size * i))
    return np.asarray(sheet).reshape(n, size, size, 3)


class MtcnnDetector:
    """Faces from ``min_face`` pixels up in an RGB array, with five points each."""

    def __init__(self, min_face: int = 60, threads: int = 1, min_score: float = MIN_SCORE) -> None:
        if min_face < 12:
            raise LookalikeError("MTCNN finds faces from 12 px up")
        self.min_face = int(min_face)
        self.min_score = float(min_score)
        self._p, self._r, self._o = _pnet(threads), _rnet(threads), _onet(threads)
        self._lock = threading.Lock()

    def _proposals(self, levels: _Levels, h: int, w: int, min_face: int) -> np.ndarray:
        from PIL import Image

        scale, boxes, scores = 12.0 / min_face, [], []
        level = None
        while min(h, w) * scale >= 12:
            size = (int(np.ceil(w * scale)), int(np.ceil(h * scale)))
            level = (  # each level from the one above
                levels.resized(size)
                if level is None
                else level.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
            )
            reg, prob = self._p.run(None, {"rgb": np.asarray(level)[None]})
            ys, xs = np.where(prob[0, 1] > THRESHOLDS[0])
            if len(ys):
                cells = np.stack([xs * 2, ys * 2, xs * 2 + 12, ys * 2 + 12], 1) / scale
                found = prob[0, 1][ys, xs]
                keep = _nms(cells, found, 0.5)
                boxes.append(_regress(cells[keep], reg[0][:, ys, xs].T[keep]))
                scores.append(found[keep])
            scale *= SCALE_STEP
        if not boxes:
            return np.zeros((0, 4))
        all_boxes, all_scores = np.concatenate(boxes), np.concatenate(scores)
        return _square(all_boxes[_nms(all_boxes, all_scores, 0.7)])

    def detect(self, arr: np.ndarray, min_face: int | None = None) -> list[MtcnnFace]:
        """Faces from ``min_face`` pixels (the detector's own when None) up."""
        from PIL import Image

        h, w = arr.shape[:2]
        levels = _Levels(Image.fromarray(np.ascontiguousarray(arr)))
        with self._lock:
            boxes = self._proposals(levels, h, w, max(12, int(min_face or self.min_face)))
            if len(boxes) == 0:
                return []
            reg, prob = self._r.run(None, {"rgb": _crops(levels, boxes, 24)})
            keep = prob[:, 1] > THRESHOLDS[1]
            boxes, reg, scores = boxes[keep], reg[keep], prob[keep, 1]
            kept = _nms(boxes, scores, 0.7)
            boxes = _square(_regress(boxes[kept], reg[kept]))
            if len(boxes) == 0:
                return []
            reg, marks, prob = self._o.run(None, {"rgb": _crops(levels, boxes, 48)})
        keep = prob[:, 1] > max(THRESHOLDS[2], self.min_score)
        boxes, reg, marks, scores = boxes[keep], reg[keep], marks[keep], prob[keep, 1]
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack([boxes[:, 0:1] + marks[:, 0:5] * bw, boxes[:, 1:2] + marks[:, 5:10] * bh], 2)
        boxes = _regress(boxes, reg)
        kept = _nms(boxes, scores, 0.7, by_min=True)
        return [
            MtcnnFace(
                tuple(float(v) for v in boxes[i]),  # type: ignore[arg-type]
                float(scores[i]),
                tuple((float(x), float(y)) for x, y in points[i]),
            )
            for i in kept
        ]


def dlib_box(face: MtcnnFace) -> tuple[int, int, int, int]:
    """The square box dlib's HOG detector would give the same face (left, top, right,
    bottom), where dlib's 5-point landmark model expects to start: fitted on the test
    photos' 21 faces (centre x the same; centre y at 0.57 of MTCNN's height from its
    top; side 0.94 x the geometric mean of its width and height; spread 0.04-0.08)."""
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    side = 0.94 * float(np.sqrt(max(w, 1.0) * max(h, 1.0)))
    cx, cy = (x0 + x1) / 2, y0 + 0.572 * h
    return (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
