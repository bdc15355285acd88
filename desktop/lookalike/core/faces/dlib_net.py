"""dlib's face-recognition ResNet, read from its own weights file and run by ONNX Runtime.

The ``dlib-bin`` wheels are built without BLAS, so dlib's own forward pass of the
face ResNet costs 100-150 ms a face and its weights take over a second to load.
The network is small and plain (29 convolutions with folded batch norm, ReLU,
residual additions, two poolings and a 256 -> 128 linear layer), so it is read
here from ``dlib_face_recognition_resnet_model_v1.dat`` with numpy, written out
once as an ONNX graph (cached beside the other models, keyed by the weights'
sha256) and run by ONNX Runtime, which gives the same vectors (checked to 1e-4
against dlib on the test photos, tests/unit/test_face_net.py) in a few
milliseconds a face and releases the GIL while it runs.

dlib's serialization, as far as this file needs it:

* an integer is a control byte (low 4 bits: how many little-endian bytes follow;
  0x80: negative) and those bytes;
* a float is two integers, mantissa and binary exponent;
* a string is its length and its bytes; a bool is the character ``'0'`` or ``'1'``;
* a tensor is version 2, its four dimensions (samples, k, rows, columns) and raw
  little-endian float32 values; an alias tensor is version 1 and four dimensions;
* a network is written outside in: the loss layer's version, name and parameters,
  then every layer's version (2 for a computational layer, 1 for a tag or skip
  layer, 3 for the layer on the input), then the input layer, then, inside out,
  each computational layer's name and parameters followed by its bookkeeping
  (three bools and empty gradient tensors). Tags and skips write nothing more:
  which is which follows from the network's definition (``residual`` saves its
  input in a tag, ``residual_down`` also saves the block's output and skips back
  to the input, whose average pool is added to that saved output).

Where the file does not read as this network, :class:`DlibNetError` is raised and
the caller keeps dlib's own embedding.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.core.errors import LookalikeError

if TYPE_CHECKING:  # pragma: no cover
    import onnx

log = logging.getLogger(__name__)

#: Bump when the graph built from the same weights changes (the cache file's name).
GRAPH_VERSION = 1
CHIP_SIZE = 150


class DlibNetError(LookalikeError):
    """The weights file does not read as the network this module knows."""


# -- reading dlib's serialization ------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _fail(self, what: str) -> DlibNetError:
        return DlibNetError(f"unexpected dlib network file ({what} at byte {self.pos})")

    def integer(self) -> int:
        if self.pos >= len(self.data):
            raise self._fail("end of file")
        control = self.data[self.pos]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise self._fail(f"bad integer control byte {control:#x}")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        if exponent >= 32000:  # dlib's codes for inf, -inf and nan
            return {32000: math.inf, 32001: -math.inf}.get(exponent, math.nan)
        return math.ldexp(mantissa, exponent)

    def string(self) -> str:
        n = self.integer()
        if not 0 <= n <= 256:
            raise self._fail(f"string of length {n}")
        s = self.data[self.pos : self.pos + n]
        self.pos += n
        return s.decode("latin-1")

    def flag(self) -> bool:
        ch = self.data[self.pos : self.pos + 1]
        if ch not in (b"0", b"1"):
            raise self._fail("bool")
        self.pos += 1
        return ch == b"1"

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise self._fail("tensor version")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        end = self.pos + 4 * count
        if end > len(self.data):
            raise self._fail("truncated tensor")
        arr = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos = end
        return arr.reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        if self.integer() != 1:
            raise self._fail("alias tensor version")
        n, k, r, c = (self.integer() for _ in range(4))
        return n, k, r, c


@dataclass(frozen=True)
class Layer:
    """One layer of the network in forward order. ``kind``: con, affine, relu, add_prev,
    max_pool, avg_pool, fc, tag (save the current output), skip (back to the saved input)."""

    kind: str
    ints: tuple[int, ...] = ()
    weights: tuple[np.ndarray, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class DlibNet:
    mean_rgb: tuple[float, float, float]
    input_size: int
    layers: tuple[Layer, ...]


def _details(r: _Reader) -> Layer:
    name = r.string()
    if name == "con_4":
        params = r.tensor().ravel()
        filters, nr, nc, sy, sx, py, px = (r.integer() for _ in range(7))
        fshape, bshape = r.alias(), r.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.real()
        k = fshape[1]
        n_w = filters * k * nr * nc
        if fshape != (filters, k, nr, nc) or bshape[1] != filters or params.size != n_w + filters:
            raise r._fail("convolution shapes")
        w = params[:n_w].reshape(filters, k, nr, nc)
        return Layer("con", (filters, nr, nc, sy, sx, py, px), (w, params[n_w:].copy()))
    if name == "affine_":
        params = r.tensor().ravel()
        g, b = r.alias(), r.alias()
        mode = r.integer()
        k = g[1]
        if mode != 0 or params.size != 2 * k or b[1] != k:  # 0: per channel (CONV_MODE)
            raise r._fail("affine layer")
        return Layer("affine", (k,), (params[:k].copy(), params[k:].copy()))
    if name == "relu_":
        return Layer("relu")
    if name == "add_prev_":
        return Layer("add_prev")
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.integer() for _ in range(6))
        return Layer(name[:8], (nr, nc, sy, sx, py, px))
    if name == "fc_2":
        outputs, inputs = r.integer(), r.integer()
        params = r.tensor().ravel()
        w_alias, b_alias = r.alias(), r.alias()
        bias_mode = r.integer()
        for _ in range(4):
            r.real()
        if params.size != inputs * outputs or bias_mode != 1 or w_alias[:2] != (inputs, outputs):  # 1: no bias
            raise r._fail(f"fully connected layer ({b_alias})")
        return Layer("fc", (inputs, outputs), (params.reshape(inputs, outputs),))
    raise r._fail(f"layer '{name}'")


def _tail(r: _Reader, on_input: bool) -> None:
    """An add_layer's bookkeeping after its layer: three bools and empty tensors."""
    for _ in range(3):
        r.flag()
    for _ in range(3):
        r.tensor()
    if on_input:
        r.integer()  # sample expansion factor


def read_dlib_resnet(path: Path | str) -> DlibNet:
    """The face ResNet in ``path`` (dlib_face_recognition_resnet_model_v1.dat), in forward order."""
    r = _Reader(Path(path).read_bytes())
    if r.integer() != 1 or not r.string().startswith("loss_metric"):
        raise r._fail("loss layer")
    r.real(), r.real()  # margin, distance threshold (training only)
    stack: list[int] = []
    while (v := r.integer()) != 3:
        if v not in (1, 2) or len(stack) > 1000:
            raise r._fail(f"layer version {v}")
        stack.append(v)
    if r.string() != "input_rgb_image_sized":
        raise r._fail("input layer")
    mean = (r.real(), r.real(), r.real())
    nr, nc = r.integer(), r.integer()
    if nr != nc:
        raise r._fail("input size")
    layers = [_details(r)]
    _tail(r, on_input=True)
    # Runs of tag/skip layers: one is `residual`'s tag; two are `residual_down`'s
    # tag on the block's output and its skip back to the input.
    kinds = list(reversed(stack))
    i = 0
    while i < len(kinds):
        if kinds[i] == 2:
            layers.append(_details(r))
            _tail(r, on_input=False)
            i += 1
            continue
        run = 1
        while i + run < len(kinds) and kinds[i + run] == 1:
            run += 1
        if run == 1:
            layers.append(Layer("tag"))
        elif run == 2:
            layers += [Layer("tag"), Layer("skip")]
        else:
            raise r._fail(f"{run} tag/skip layers in a row")
        i += run
    if r.pos != len(r.data):
        raise r._fail("trailing bytes")
    return DlibNet((mean[0], mean[1], mean[2]), nr, tuple(layers))


# -- the ONNX graph --------------------------------------------------------------------


class _Graph:
    """ONNX nodes and weights, and the (k, rows, cols) shape of the current tensor."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, arr: np.ndarray, prefix: str) -> str:
        from onnx import numpy_helper

        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def node(self, op: str, inputs: Sequence[str], **attrs: Any) -> str:
        from onnx import helper

        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attrs))
        return out

    def window(self, op: str, x: str, shape: _Shape, ints: tuple[int, ...], *w: str) -> tuple[str, _Shape]:
        """A convolution or pooling: ``ints`` = (rows, cols, stride y, stride x, pad y, pad x)."""
        nr, nc, sy, sx, py, px = ints
        x = self.node(op, [x, *w], kernel_shape=[nr, nc], strides=[sy, sx], pads=[py, px, py, px])
        return x, (shape[0], 1 + (shape[1] + 2 * py - nr) // sy, 1 + (shape[2] + 2 * px - nc) // sx)

    def pad_to(self, x: str, shape: _Shape, full: _Shape) -> str:
        if shape == full:
            return x
        pads = [0, 0, 0, 0, 0, full[0] - shape[0], full[1] - shape[1], full[2] - shape[2]]
        return self.node("Pad", [x, self.const(np.asarray(pads, np.int64), "pads")], mode="constant")


_Shape = tuple[int, int, int]


def _conv(g: _Graph, x: str, shape: _Shape, con: Layer, affine: Layer | None) -> tuple[str, _Shape]:
    """A convolution, with the affine layer after it (dlib's frozen batch norm) folded in."""
    w, b = con.weights
    if w.shape[1] != shape[0]:
        raise DlibNetError("convolution input channels do not match")
    if affine is not None:
        gamma, beta = affine.weights
        w, b = w * gamma[:, None, None, None], b * gamma + beta
    wn, bn = g.const(w.astype(np.float32), "w"), g.const(b.astype(np.float32), "b")
    x, (_, rows, cols) = g.window("Conv", x, shape, con.ints[1:], wn, bn)
    return x, (con.ints[0], rows, cols)


def _pool(g: _Graph, x: str, shape: _Shape, layer: Layer) -> tuple[str, _Shape]:
    if layer.ints[:2] == (0, 0):  # avg_pool_everything
        return g.node("GlobalAveragePool" if layer.kind == "avg_pool" else "GlobalMaxPool", [x]), (shape[0], 1, 1)
    if layer.kind == "avg_pool" and any(layer.ints[4:]):
        raise DlibNetError("padded average pooling is not supported")
    return g.window("MaxPool" if layer.kind == "max_pool" else "AveragePool", x, shape, layer.ints)


def build_onnx(net: DlibNet) -> onnx.ModelProto:
    """An ONNX graph of ``net``: uint8 RGB chips (n, size, size, 3) -> descriptors (n, d).

    A residual addition of tensors of different sizes adds them top-left aligned, with
    zeros where one has no value, as dlib's does (a 3 x 3 block output onto the 4 x 4
    average pool of an 8 x 8 input; 32 channels onto 64)."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    size = net.input_size
    x = g.node("Cast", ["chips"], to=TensorProto.FLOAT)
    x = g.node("Transpose", [x], perm=[0, 3, 1, 2])
    x = g.node("Sub", [x, g.const(np.asarray(net.mean_rgb, np.float32).reshape(1, 3, 1, 1), "mean")])
    x = g.node("Mul", [x, g.const(np.asarray([1.0 / 256.0], np.float32), "scale")])
    shape: _Shape = (3, size, size)
    saved: list[tuple[str, _Shape]] = []  # tags, the last saved last
    layers = list(net.layers)
    out_dim = 0
    i = 0
    while i < len(layers):
        layer = layers[i]
        i += 1
        if layer.kind == "con":
            affine = layers[i] if i < len(layers) and layers[i].kind == "affine" else None
            i += affine is not None
            x, shape = _conv(g, x, shape, layer, affine)
        elif layer.kind == "affine":
            gamma, beta = layer.weights
            x = g.node("Mul", [x, g.const(gamma.reshape(1, -1, 1, 1), "gamma")])
            x = g.node("Add", [x, g.const(beta.reshape(1, -1, 1, 1), "beta")])
        elif layer.kind == "relu":
            x = g.node("Relu", [x])
        elif layer.kind in ("max_pool", "avg_pool"):
            x, shape = _pool(g, x, shape, layer)
        elif layer.kind == "tag":
            saved.append((x, shape))
        elif layer.kind == "skip":  # back to the tag before the last one, which is spent
            if len(saved) < 2:
                raise DlibNetError("skip layer without a tag")
            x, shape = saved.pop(-2)
        elif layer.kind == "add_prev":
            if not saved:
                raise DlibNetError("add_prev layer without a tag")
            y, yshape = saved.pop()
            full = (max(shape[0], yshape[0]), max(shape[1], yshape[1]), max(shape[2], yshape[2]))
            x = g.node("Add", [g.pad_to(x, shape, full), g.pad_to(y, yshape, full)])
            shape = full
        elif layer.kind == "fc":
            inputs, out_dim = layer.ints
            if shape[0] * shape[1] * shape[2] != inputs:
                raise DlibNetError("fully connected layer's inputs do not match")
            x = g.node("MatMul", [g.node("Flatten", [x], axis=1), g.const(layer.weights[0], "fc")])
        else:  # pragma: no cover - _details makes no other kind
            raise DlibNetError(f"layer kind {layer.kind}")
    if not out_dim or saved:
        raise DlibNetError("the network does not end in a linear layer")
    g.nodes.append(helper.make_node("Identity", [x], ["descriptors"]))
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_resnet",
        [helper.make_tensor_value_info("chips", TensorProto.UINT8, ["n", size, size, 3])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["n", out_dim])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="lookalike")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# -- the cached graph and its session -------------------------------------------------


def onnx_path(weights: Path) -> Path:
    """Where the graph of ``weights`` is cached (keyed by the weights' sha256)."""
    from lookalike.core.runtime.models import file_sha256, models_dir

    digest = file_sha256(weights)[:16]
    return models_dir() / "faces" / f"dlib-resnet-v1-{digest}-g{GRAPH_VERSION}.onnx"


def ensure_onnx(weights: Path) -> Path | bytes:
    """The ONNX graph of ``weights``: built once (~0.2 s) and then read from the cache;
    its bytes where the cache cannot be written (a read-only or full disk)."""
    from lookalike.core.store.fsutil import atomic_write_bytes

    target = onnx_path(weights)
    if target.exists():
        return target
    data = build_onnx(read_dlib_resnet(weights)).SerializeToString()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    except (OSError, LookalikeError) as exc:
        log.warning("could not cache the face embedding graph at %s (%s); built in memory", target, exc)
        return data
    log.info("face embedding graph written to %s", target)
    return target


def _session(model: Path | bytes, threads: int | None) -> tuple[Any, int]:
    """An ONNX Runtime CPU session set up as the encoders' are (half the cores by default)."""
    import os

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads or max(1, (os.cpu_count() or 2) // 2))
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, so, providers=["CPUExecutionProvider"]), so.intra_op_num_threads


class OnnxFaceEmbedder:
    """dlib's face ResNet on ONNX Runtime: 150 x 150 RGB chips -> 128-d descriptors."""

    def __init__(self, weights: Path, threads: int | None = None) -> None:
        model = ensure_onnx(weights)
        try:
            self._session, self.threads = _session(model, threads)
        except Exception as exc:
            if isinstance(model, bytes):
                raise
            log.warning("face embedding graph %s unreadable (%s); building it again", model, exc)  # damaged cache
            model.unlink(missing_ok=True)
            self._session, self.threads = _session(ensure_onnx(weights), threads)
        self.dimension = int(self._session.get_outputs()[0].shape[1])
        self._lock = threading.Lock()

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dimension), np.float32)
        batch = np.ascontiguousarray(np.stack([np.asarray(c, np.uint8) for c in chips]))
        with self._lock:
            (out,) = self._session.run(None, {"chips": batch})
        return np.asarray(out, np.float32)
