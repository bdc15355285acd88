"""CLIP's image tower in ONNX Runtime: exported once per set of weights, loaded in a second.

On this project's 2-core test machine a ViT-B-32 photo cost the same in ONNX
Runtime as in torch on one thread, and less on two (torch's threads spin
against the decoders); what ONNX Runtime changes is the start: a new process
loads the exported tower in about 0.7 s, where torch and open_clip take
5-8 s to import and build the model before a single photo is encoded. The
export (``image.onnx`` beside the text export, keyed by the weights'
checksum) is checked against the torch model it came from before it is kept.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.encoders import _common

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

ONNX_NAME = "image.onnx"
FAILED_NAME = "image.onnx.failed"  # an export that failed, and with which torch
# Rows of the export and of the torch model, both normalised, must agree to this.
EXPORT_TOLERANCE = 1e-4


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def export_image_tower(model, folder: Path, image_size: int) -> bool:
    """Write ``model.visual`` (an open_clip model on CPU, float32) as ONNX into ``folder``,
    checked against torch on a batch of random images; returns whether it was kept."""
    import torch

    if not onnxruntime_available():
        return False

    class Visual(torch.nn.Module):
        def __init__(self, visual) -> None:
            super().__init__()
            self.visual = visual

        def forward(self, pixels):
            return self.visual(pixels)

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ONNX_NAME
    failed = folder / FAILED_NAME
    if failed.is_file() and failed.read_text("utf-8", "replace").split("\n", 1)[0] == torch.__version__:
        return False  # tried with this torch already: not again at every start
    tmp = folder / f"{ONNX_NAME}.tmp{os.getpid()}"
    x = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        # nn.MultiheadAttention's inference fast path is one fused op that ONNX lacks.
        torch.backends.mha.set_fastpath_enabled(False)
        with warnings.catch_warnings(record=True) as caught, torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("always")
            torch.onnx.export(
                Visual(model.visual).eval(),
                (x,),
                str(tmp),
                input_names=["pixels"],
                output_names=["features"],
                dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
        for w in caught:
            log.debug("onnx export: %s", w.message)
        with torch.no_grad():
            ref = model.visual(x).float().numpy()
        ours = OnnxImageTower(tmp, threads=1, keep_optimized=False).run(x.numpy())
        err = float(np.abs(_unit(ours) - _unit(ref)).max())
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        log.info("CLIP image tower not exported to ONNX (%s: %s); images go through torch", type(exc).__name__, first)
        tmp.unlink(missing_ok=True)
        failed.write_text(f"{torch.__version__}\n{type(exc).__name__}: {first}\n", "utf-8")
        return False
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    if not err <= EXPORT_TOLERANCE:
        log.warning("CLIP image export differs from torch (max |diff| %.2e); not used", err)
        tmp.unlink(missing_ok=True)
        failed.write_text(f"{torch.__version__}\nmax |diff| {err:.2e}\n", "utf-8")
        return False
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    log.info("CLIP image tower exported to %s (max |diff| %.1e against torch)", target, err)
    return True


class OnnxImageTower:
    """An exported image tower: normalised pixel arrays (n, 3, s, s) -> features (n, d)."""

    def __init__(self, path: Path, threads: int | None = None, *, keep_optimized: bool = True) -> None:
        self._session, self.threads = _common.onnx_cpu_session(path, threads, keep_optimized=keep_optimized)
        self._input = self._session.get_inputs()[0].name

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: np.ascontiguousarray(pixels, dtype=np.float32)})[0]


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    n[n == 0] = 1.0
    return (x / n).astype(np.float32)


def encode_with(
    tower: OnnxImageTower,
    images: Sequence[Image.Image],
    to_array,
    batch_size: int,
    dimension: int,
) -> np.ndarray:
    images = list(images)
    if not images:
        return np.zeros((0, dimension), np.float32)
    out = [tower.run(to_array(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    return np.ascontiguousarray(_unit(np.concatenate(out)), dtype=np.float32)
