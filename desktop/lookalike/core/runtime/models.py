"""Helpers shared by the encoders: preprocessing, checksums, progress, torch set-up.

Nothing here imports torch at module level; functions that need it import it
inside (rule 2: heavy imports happen lazily).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.core.progress import CancelToken, Progress, ProgressCallback, Stage
from lookalike.core.store.paths import app_paths

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image

log = logging.getLogger(__name__)

# ImageNet statistics used by torchvision's classifiers.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def models_dir() -> Path:
    """Where downloaded weights and derived model caches live (AppPaths.cache/models).

    LOOKALIKE_MODELS overrides it, so several homes (or the tests' many
    temporary homes) can share one set of model files.
    """
    override = os.environ.get("LOOKALIKE_MODELS", "").strip()
    return Path(override).expanduser() if override else app_paths().models


def report(
    progress: ProgressCallback | None,
    done: int,
    total: int | None,
    note: str,
    rate: float = 0.0,
    *,
    stage: Stage = Stage.LOAD_MODEL,
) -> None:
    """A model's loading steps (Stage.LOAD_MODEL), or its download in bytes (Stage.DOWNLOAD)."""
    if progress is not None:
        progress(Progress(stage, done, total, rate, note))


def check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.check()


# -- checksums -----------------------------------------------------------------

_sha_lock = threading.Lock()
_sha_memo: dict[tuple[str, int, int], str] = {}


def _sha_cache_file() -> Path:
    return models_dir() / "checksums.json"


def file_sha256(path: Path | str) -> str:
    """sha256 of a file, computed once per (path, size, mtime) and remembered on disk.

    Weight files are hundreds of megabytes; hashing them on every start would
    cost seconds, so the digest is kept in ``checksums.json`` beside the models.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (os.fspath(p), st.st_size, st.st_mtime_ns)
    with _sha_lock:
        if key in _sha_memo:
            return _sha_memo[key]
        disk_key = f"{key[0]}|{key[1]}|{key[2]}"
        cache_file = _sha_cache_file()
        table: dict[str, str] = {}
        try:
            table = json.loads(cache_file.read_text("utf-8"))
            if not isinstance(table, dict):
                table = {}
        except (OSError, ValueError):
            table = {}
        digest = table.get(disk_key)
        if not (isinstance(digest, str) and len(digest) == 64):
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(4 * 1024 * 1024), b""):
                    h.update(chunk)
            digest = h.hexdigest()
            table[disk_key] = digest
            try:
                from lookalike.core.store.fsutil import atomic_write_text

                cache_file.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(cache_file, json.dumps(table, indent=0, sort_keys=True))
            except Exception as exc:  # a read-only cache only costs a re-hash next time
                log.debug("could not remember checksum of %s: %s", p, exc)
        _sha_memo[key] = digest
        return digest


def combined_sha256(parts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


# -- torch ---------------------------------------------------------------------

_torch_ready = False


def torch_setup() -> None:
    """One-time process settings for CPU inference.

    ``LOOKALIKE_THREADS`` overrides the number of intra-op threads; by default
    torch's own choice (one per physical core) is kept, which measured fastest
    (see docs/models.md).
    """
    global _torch_ready
    if _torch_ready:
        return
    import torch

    threads = os.environ.get("LOOKALIKE_THREADS", "").strip()
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    _torch_ready = True


_RESAMPLE = {"bicubic": 3, "bilinear": 2, "nearest": 0, "lanczos": 1}  # PIL.Image.Resampling values


def images_to_tensor(
    images: Sequence[Image.Image],
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    resize_size: int | None = None,
    resize_mode: str = "shortest",
    interpolation: str = "bicubic",
) -> torch.Tensor:
    """PIL images -> normalised float tensor (n, 3, size, size); see :func:`images_to_array`."""
    import torch

    return torch.from_numpy(
        images_to_array(
            images, size, mean, std, resize_size=resize_size, resize_mode=resize_mode, interpolation=interpolation
        )
    )


def images_to_array(
    images: Sequence[Image.Image],
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    resize_size: int | None = None,
    resize_mode: str = "shortest",
    interpolation: str = "bicubic",
) -> np.ndarray:
    """PIL images -> normalised float32 array (n, 3, size, size), no torch.

    ``shortest``: scale the short side to ``resize_size`` (default ``size``) and
    take the centre square; ``squash``: resize to a square ignoring the aspect;
    ``longest``: fit the long side and pad with black (CLIP's "longest" mode).
    """
    from PIL import Image

    resample = _RESAMPLE.get(interpolation, 3)
    arrays = []
    for im in images:
        if im.mode != "RGB":
            im = im.convert("RGB")
        w, h = im.size
        if resize_mode == "squash":
            im = im.resize((size, size), resample, reducing_gap=3.0)
        elif resize_mode == "longest":
            s = size / max(w, h)
            nw, nh = max(1, round(w * s)), max(1, round(h * s))
            im = im.resize((nw, nh), resample, reducing_gap=3.0)
            canvas = Image.new("RGB", (size, size))
            canvas.paste(im, ((size - nw) // 2, (size - nh) // 2))
            im = canvas
        else:
            rs = resize_size or size
            s = rs / min(w, h)
            nw, nh = max(rs, round(w * s)), max(rs, round(h * s))
            if (nw, nh) != (w, h):
                im = im.resize((nw, nh), resample, reducing_gap=3.0)
            left, top = (nw - size) // 2, (nh - size) // 2
            im = im.crop((left, top, left + size, top + size))
        arrays.append(np.asarray(im, dtype=np.uint8))
    x = np.stack(arrays).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    m = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    sd = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x - m) / sd, dtype=np.float32)


def empty_rows(dimension: int) -> np.ndarray:
    return np.zeros((0, dimension), dtype=np.float32)


def unit_rows(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """A tensor or array -> float32 numpy rows of unit length (zero rows stay zero)."""
    import sys

    torch = sys.modules.get("torch")  # a tensor means torch is imported already: never import it here
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    n[n == 0] = 1.0
    return np.ascontiguousarray(x / n, dtype=np.float32)


def encode_image_batches(images, batch_size: int, dimension: int, to_tensor, forward) -> np.ndarray:
    """Encode ``images`` in batches: ``to_tensor(batch)`` makes the model's input,
    ``forward(x)`` returns its features; the rows come back L2-normalised."""
    images = list(images)
    if not images:
        return empty_rows(dimension)
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            out.append(forward(to_tensor(images[i : i + batch_size])).float().cpu())
    return unit_rows(torch.cat(out))


def optimized_onnx_path(path: Path) -> Path:
    """Where ONNX Runtime's optimized graph of the exported ``path`` is kept (per ONNX Runtime
    version); its weights are in a file beside it that the graph names."""
    import onnxruntime as ort

    return path.with_name(f"{path.stem}.optimized-ort{ort.__version__}.onnx")


def _drop_optimized(optimized: Path) -> None:
    optimized.unlink(missing_ok=True)
    for data in optimized.parent.glob(f"{optimized.stem}.*.data"):
        data.unlink(missing_ok=True)


def onnx_cpu_session(path: Path, threads: int | None = None, *, keep_optimized: bool = True) -> tuple[Any, int]:
    """An ONNX Runtime session on the CPU for an exported tower, and its thread count.

    Half the cores by default, as a torch encoder gets on CPU (the decoders use the
    rest; the indexer runs calls side by side when they are idle); threads that wait
    sleep instead of spinning.

    The first session of an export saves ONNX Runtime's optimized graph beside it
    (the portable "extended" level: fusions, no layout for one CPU's instructions),
    its weights in a file of their own, and later sessions start from that: the graph
    work is done, and ONNX Runtime maps the weights file instead of reading and
    copying the weights out of the graph. Measured on this project's 2-core machine,
    the CLIP ViT-B-32 image tower's first session in a process took 0.75 s of CPU
    from the export, 0.36 s from the saved graph, with the same outputs and speed a
    photo. The layout passes that depend on the CPU still run at every start (they
    are quick). A saved graph that does not load is removed and the export used as
    it is. ``keep_optimized`` False (an export being checked, not kept yet): nothing
    is saved.
    """
    import onnxruntime as ort

    def options() -> Any:
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or max(1, (os.cpu_count() or 2) // 2))
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        return so

    providers = ["CPUExecutionProvider"]
    if not keep_optimized:
        so = options()
        return ort.InferenceSession(str(path), so, providers=providers), so.intra_op_num_threads
    optimized = optimized_onnx_path(path)

    def saved() -> tuple[Any, int] | None:
        """A session on the optimized graph saved before, or None (a damaged one is dropped)."""
        so = options()
        try:
            return ort.InferenceSession(str(optimized), so, providers=providers), so.intra_op_num_threads
        except Exception as exc:
            log.warning("optimized graph %s does not load (%s); using %s", optimized, exc, path.name)
            _drop_optimized(optimized)
            return None

    if optimized.is_file() and optimized.stat().st_mtime_ns >= path.stat().st_mtime_ns:
        session = saved()
        if session is not None:
            return session
    so = options()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    tmp = optimized.with_name(f"{optimized.stem}.tmp{os.getpid()}.onnx")
    so.optimized_model_filepath = str(tmp)
    # The weights' file is named by this process, so that a graph renamed into place names
    # a weights file no other process writes.
    so.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", f"{optimized.stem}.{os.getpid()}.data"
    )
    so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "4096")
    try:
        ort.InferenceSession(str(path), so, providers=providers)
        weights = optimized.with_name(f"{optimized.stem}.{os.getpid()}.data")
        for written in (weights, tmp):  # on disk before the graph that names them is renamed into place
            if written.is_file():
                with open(written, "rb") as fh:
                    os.fsync(fh.fileno())
        for stale in optimized.parent.glob(f"{optimized.stem}.*.data"):  # an earlier save's weights
            if stale != weights:
                stale.unlink(missing_ok=True)
        os.replace(tmp, optimized)
    except Exception as exc:  # a read-only cache only costs the graph work at every start
        log.debug("could not save the optimized graph of %s: %s", path, exc)
        tmp.unlink(missing_ok=True)
    if optimized.is_file():
        session = saved()
        if session is not None:
            return session
    so = options()
    return ort.InferenceSession(str(path), so, providers=providers), so.intra_op_num_threads
