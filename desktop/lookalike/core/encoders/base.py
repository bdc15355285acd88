"""The Encoder protocol every model implements, and device selection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image


@dataclass(frozen=True)
class EncoderInfo:
    """What the registry knows about an encoder before loading it."""

    name: str  # the user-facing name, e.g. "offline", "clip", "resnet50"
    description: str
    supports_text: bool
    offline: bool  # usable with no network right now (weights on disk)
    note: str = ""  # e.g. "knows ~1000 ImageNet concepts"


@runtime_checkable
class Encoder(Protocol):
    """A loaded model that turns photos (and maybe text) into unit vectors.

    ``id`` names the model and its weights (architecture + pretrained tag);
    ``weights_checksum`` identifies the exact weights; a library records both
    and refuses to mix vectors of two models.
    """

    id: str
    weights_checksum: str
    dimension: int
    supports_text: bool
    device: str
    image_size: int  # the square side the model wants; decoders shrink to about this

    # Batch preferences, read by the indexer. Every encoder declares them (one that
    # subclasses Encoder inherits these values, the usual ones).
    cpu_batch: int = 1  # photos per call when indexing on CPU (on a GPU a whole commit batch goes in one call)
    side_by_side: bool = True  # calls may run at once on separate threads (each on its share of torch's threads)
    uses_torch: bool = True  # torch's threads are set to the encoder's share while indexing; False: its runtime
    # (ONNX Runtime, numpy) was given its share when it loaded, and torch is left alone

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB PIL images -> float32 array (n, dimension), rows L2-normalised."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Strings -> float32 array (n, dimension), rows L2-normalised.

        Raises UsageError on an image-only encoder.
        """
        ...


def pick_device(requested: str | None = None) -> str:
    """CUDA, then Apple MPS, then CPU; ``requested`` ("cpu", "cuda", "cuda:1", "mps") overrides.

    The CPU needs no asking, nor does a Linux machine without a GPU's device files:
    importing torch to find that out costs seconds at every start.
    """
    if requested == "cpu" or (requested in (None, "", "auto") and _no_gpu_here()):
        return "cpu"
    import torch

    from lookalike.core.errors import UsageError

    if requested and requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"--device {requested}: no CUDA GPU is available here")
        if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError("--device mps: Apple MPS is not available here")
        if requested not in ("cpu", "mps") and not requested.startswith("cuda"):
            raise UsageError(f"--device {requested}: expected cpu, cuda, cuda:N or mps")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _no_gpu_here() -> bool:
    """True on Linux when no NVIDIA, AMD (ROCm) or WSL GPU device file exists."""
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return False
    return not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg"))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    n[n == 0] = 1.0
    return (x / n).astype(np.float32, copy=False)
