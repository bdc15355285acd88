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

from lookalike.core.runtime import models as runtime

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

ONNX_NAME = "image.onnx"
FAILED_NAME = "image.onnx.failed"  # an export that failed, and with which torch
# Rows of the export and of the torch model, both normalised, must agree to this.
EXPORT_TOLERANCE = 1e-4

# The tower in bfloat16 (TorchScript), for CPUs that compute bfloat16 natively (AVX512-BF16,
# AMX): ViT-B-32 at 256 px on this project's 2-core Zen 4 test machine costs 35 ms a photo
# there against 60 in ONNX Runtime at float32, its rows within 0.0016 of float32's (cosine
# 0.99995). It is used for runs of at least BF16_MIN_PHOTOS photos, and only when it was
# measured faster than the float32 tower on this machine when it was exported; fewer photos
# go through ONNX Runtime, whose session starts in 0.4 s where importing torch takes 1.2.
BF16_NAME = "image.bf16.pt"
BF16_DECISION = "image.bf16.json"
BF16_TOLERANCE = 5e-3
BF16_MIN_PHOTOS = 48
BF16_GAIN = 0.85  # used when it takes at most this share of float32's time


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


def precision_setting() -> str:
    """``LOOKALIKE_CLIP_PRECISION``: ``auto`` (the default: bfloat16 where it was measured
    faster), ``fp32`` (never bfloat16) or ``bf16`` (bfloat16 whenever its export exists)."""
    value = os.environ.get("LOOKALIKE_CLIP_PRECISION", "").strip().lower() or "auto"
    return value if value in ("auto", "fp32", "bf16") else "auto"


def bf16_supported() -> bool:
    """Whether this CPU computes bfloat16 natively (torch's oneDNN says so)."""
    try:
        import torch

        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # an older torch, a build without oneDNN
        return False


def _per_photo_ms(run, batch: int, rounds: int = 3) -> float:
    import time

    run()  # warm
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - t0) * 1000 / batch)
    return best


def export_bf16_tower(model, folder: Path, image_size: int) -> dict:
    """Trace ``model.visual`` in bfloat16 into ``folder`` when this CPU computes bfloat16
    natively, check it against the float32 model, time it against the float32 tower (the
    ONNX export when there is one, else torch) on one thread each, and record what was
    found in BF16_DECISION (``use``: whether it is faster). Returns that record."""
    import json

    import torch

    from lookalike.core.store.fsutil import atomic_path, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    decision: dict = {"torch": torch.__version__, "use": False}

    def record(**kv) -> dict:
        decision.update(kv)
        atomic_write_text(folder / BF16_DECISION, json.dumps(decision, indent=1))
        level = logging.INFO if decision["use"] else logging.DEBUG
        log.log(level, "CLIP image tower in bfloat16: %s", decision)
        return decision

    if not bf16_supported():
        return record(why="this CPU has no native bfloat16")
    import copy

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        x = torch.randn(8, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
        xb = x.to(torch.bfloat16)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            visual = copy.deepcopy(model.visual).eval().to(torch.bfloat16)
            traced = torch.jit.freeze(torch.jit.trace(visual, xb[:2]).eval())
            ref = model.visual(x).float().numpy()
            ours = traced(xb).float().numpy()
            err = float(np.abs(_unit(ours) - _unit(ref)).max())
            if not err <= BF16_TOLERANCE:
                return record(why=f"rows differ from float32 by {err:.2e}", max_diff=err)
            ms_bf16 = _per_photo_ms(lambda: traced(xb), len(x))
            onnx = folder / ONNX_NAME
            if onnx.is_file():
                tower = OnnxImageTower(onnx, threads=1, keep_optimized=False)
                ms_fp32 = _per_photo_ms(lambda: tower.run(x.numpy()), len(x))
            else:
                ms_fp32 = _per_photo_ms(lambda: model.visual(x), len(x))
        with atomic_path(folder / BF16_NAME) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.save's notice that torch.export is newer
            torch.jit.save(traced, str(tmp))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return record(why=f"{type(exc).__name__}: {first}")
    finally:
        torch.set_num_threads(threads)
    return record(
        use=ms_bf16 <= BF16_GAIN * ms_fp32,
        ms_bf16=round(ms_bf16, 2),
        ms_fp32=round(ms_fp32, 2),
        max_diff=err,
    )


def bf16_decision(folder: Path) -> dict | None:
    import json

    try:
        return json.loads((folder / BF16_DECISION).read_text("utf-8"))
    except (OSError, ValueError):
        return None


class Bf16ImageTower:
    """The traced bfloat16 tower: normalised float32 pixels in, float32 features out. It runs
    on ``threads`` torch threads a call (calls may run side by side, as ONNX Runtime's do)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import torch

        self.threads = int(threads or max(1, (os.cpu_count() or 2) // 2))
        torch.set_num_threads(self.threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's notice that torch.export is newer
            self._module = torch.jit.load(str(path), map_location="cpu")
        self._torch = torch

    def run(self, pixels: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(torch.bfloat16)
            return self._module(x).float().numpy()


class OnnxImageTower:
    """An exported image tower: normalised pixel arrays (n, 3, s, s) -> features (n, d)."""

    def __init__(self, path: Path, threads: int | None = None, *, keep_optimized: bool = True) -> None:
        self._session, self.threads = runtime.onnx_cpu_session(path, threads, keep_optimized=keep_optimized)
        self._input = self._session.get_inputs()[0].name

    def run(self, pixels: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: np.ascontiguousarray(pixels, dtype=np.float32)})[0]


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    n[n == 0] = 1.0
    return (x / n).astype(np.float32)


def encode_with(
    tower: OnnxImageTower | Bf16ImageTower,
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
