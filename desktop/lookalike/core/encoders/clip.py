"""CLIP through open_clip: pretrained weights fetched on first use, or a local checkpoint.

Names: ``clip`` is the default architecture and weights (``DEFAULT_ARCH`` /
``DEFAULT_TAG``, chosen in docs/models.md); ``clip:ARCH`` picks another open_clip
architecture with its first published weights, ``clip:ARCH:TAG`` names both.

Where weights come from, in order:

1. ``model_file`` (a file or a folder the user names). Its architecture is the
   first of: a config embedded in the file (our own format, below), an
   ``open_clip_config.json`` beside the file or inside the folder (the layout
   of a Hugging Face open_clip repository), the ARCH of ``clip:ARCH``, or the
   open_clip architecture whose parameter shapes match the file's.
2. A copy already on disk: the Hugging Face cache (where open_clip itself puts
   downloads) or our own cache (``AppPaths.models/open_clip``).
3. A download into our cache, with progress, cancel and bounded timeouts; with
   no network this fails within seconds with a one-line ModelUnavailableError.

Every route ends in the same two calls: build the architecture with
``open_clip.create_model(..., load_weights=False)`` and load the file with
``open_clip.load_checkpoint``.

Our own checkpoint format (what ``save_checkpoint`` writes) is a torch file
holding a dict::

    {"format": "lookalike-clip/1",
     "architecture": "ViT-B-32",            # a display name
     "open_clip_config": {"model_cfg": {...}, "preprocess_cfg": {...}},
     "state_dict": {...}}

which open_clip's own loader also reads (it takes ``state_dict`` out of a dict).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.core.encoders import checkpoint
from lookalike.core.errors import ModelUnavailableError, UsageError
from lookalike.core.progress import CancelToken, ProgressCallback
from lookalike.core.runtime import models as runtime

if TYPE_CHECKING:  # pragma: no cover
    from open_clip import CLIP, CustomTextCLIP
    from PIL import Image

    from lookalike.core.encoders.clip_image import Bf16ImageTower, OnnxImageTower
    from lookalike.core.encoders.clip_text import NumpyClipText

log = logging.getLogger(__name__)

NAME = "clip"
# The default: best published zero-shot ImageNet accuracy per CPU second among
# permissively licensed open_clip weights (docs/models.md has the comparison).
DEFAULT_ARCH = "ViT-B-32-256"
DEFAULT_TAG = "datacomp_s34b_b86k"
# Where those weights live, so that the registry can tell whether they are on
# disk without importing open_clip (a test checks this against open_clip).
DEFAULT_HF_REPO = "laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K"
HF_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
DEFAULT_DOWNLOAD_MB = 605

CHECKPOINT_FORMAT = "lookalike-clip/1"
CONFIG_NAME = "open_clip_config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
HINT = "Connect to the internet once, or pick a downloaded checkpoint with --model-file."


@dataclass(frozen=True)
class ClipSpec:
    arch: str | None  # None: default, or inferred from a model file
    tag: str | None


def parse_spec(name: str) -> ClipSpec:
    """``clip`` / ``clip:ARCH`` / ``clip:ARCH:TAG`` -> ClipSpec."""
    parts = name.split(":")
    if parts[0].strip().lower() != NAME or len(parts) > 3 or any(not p.strip() for p in parts[1:]):
        raise UsageError(f"'{name}': expected clip, clip:ARCH or clip:ARCH:TAG")
    arch = parts[1].strip() if len(parts) > 1 else None
    tag = parts[2].strip() if len(parts) > 2 else None
    return ClipSpec(arch, tag)


# -- finding weights on disk without importing open_clip -------------------------


def _hf_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def _hf_cached_file(repo: str, filename: str) -> Path | None:
    """A file of ``repo`` already in the Hugging Face cache (any snapshot), read-only lookup."""
    root = _hf_hub_cache() / ("models--" + repo.replace("/", "--"))
    snapshots = root / "snapshots"
    try:
        ref = (root / "refs" / "main").read_text("utf-8").strip()
        p = snapshots / ref / filename
        if p.is_file():
            return p
    except OSError:
        pass
    try:
        for snap in sorted(snapshots.iterdir()):
            p = snap / filename
            if p.is_file():
                return p
    except OSError:
        pass
    return None


def _our_copy(repo: str, filename: str) -> Path:
    return runtime.models_dir() / "open_clip" / repo.replace("/", "--") / filename


def cached_weights(repo: str, filenames: Sequence[str]) -> Path | None:
    for fn in filenames:
        p = _hf_cached_file(repo, fn)
        if p is not None:
            return p
        ours = _our_copy(repo, fn)
        if ours.is_file():
            return ours
    return None


def default_weights_on_disk() -> bool:
    return cached_weights(DEFAULT_HF_REPO, HF_WEIGHT_NAMES) is not None


# -- resolving pretrained tags ---------------------------------------------------


def _sources_for_tag(arch: str, tag: str) -> tuple[list[tuple[str, str]], str]:
    """([(hf repo, filename), ...] to try in order, plain URL or '') for open_clip's (arch, tag)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        known = open_clip.list_pretrained_tags_by_model(arch)
        if not known:
            raise UsageError(f"open_clip publishes no weights for '{arch}'; name a checkpoint with --model-file")
        raise UsageError(f"open_clip has no weights '{tag}' for {arch}; known: {', '.join(known)}")
    hub = cfg.get("hf_hub") or ""
    if hub:
        # open_clip writes "org/repo/" for the default file name, "org/repo/file" otherwise.
        repo, filename = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
        names: list[str] = []
        if not filename or filename == HF_WEIGHT_NAMES[1]:
            names = list(HF_WEIGHT_NAMES)
        else:
            if filename.endswith((".bin", ".pth")):
                names.append(filename.rsplit(".", 1)[0] + ".safetensors")
            names.append(filename)
        return [(repo, n) for n in names], ""
    return [], cfg.get("url", "")


def _pretrained_file(arch: str, tag: str, progress, cancel) -> Path:
    """The weights of open_clip's (arch, tag): from a cache, else downloaded into ours."""
    from lookalike.core.runtime import download as _download

    hub_files, url = _sources_for_tag(arch, tag)
    what = f"the CLIP weights {arch} ({tag})"
    if hub_files:
        repo = hub_files[0][0]
        found = cached_weights(repo, [fn for _, fn in hub_files])
        if found is not None:
            return found
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        last_error: Exception | None = None
        for repo, fn in hub_files:
            try:
                return _download.fetch(
                    f"{endpoint}/{repo}/resolve/main/{fn}",
                    _our_copy(repo, fn),
                    what=what,
                    hint=HINT,
                    progress=progress,
                    cancel=cancel,
                )
            except _download.NotFoundOnServer as exc:
                last_error = exc
                continue
        raise ModelUnavailableError(f"Cannot download {what}: {last_error}")
    if url:
        filename = url.rstrip("/").rsplit("/", 1)[-1]
        prefix = ""
        if "openaipublic" in url:
            prefix = url.split("/")[-2]
        elif "mlfoundations" in url:
            prefix = os.path.splitext(filename)[0].split("-")[-1]
        dest = runtime.models_dir() / "open_clip" / "url" / filename
        if dest.is_file():
            return dest
        return _download.fetch(url, dest, what=what, hint=HINT, sha256_prefix=prefix, progress=progress, cancel=cancel)
    raise ModelUnavailableError(f"open_clip names no download for {what}")


# -- checkpoints -------------------------------------------------------------------


def _load_torch_file(path: Path):
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        raise ModelUnavailableError(f"The model file {path} does not exist") from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelUnavailableError(f"{path.name} is not a checkpoint Lookalike can read ({first})") from None


def _checkpoint_header(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(open_clip config embedded in the file or None, architecture name embedded or None)."""
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as fh:
                meta = fh.metadata() or {}
            cfg = json.loads(meta["open_clip_config"]) if "open_clip_config" in meta else None
        except Exception as exc:
            raise ModelUnavailableError(f"{path.name} is not a safetensors file Lookalike can read ({exc})") from None
        return cfg, meta.get("architecture")
    obj = _load_torch_file(path)
    if not isinstance(obj, dict):
        return None, None
    cfg = obj.get("open_clip_config")
    arch = obj.get("architecture")
    return (cfg if isinstance(cfg, dict) else None), (arch if isinstance(arch, str) else None)


def _checkpoint_state(path: Path) -> dict[str, Any]:
    """The state dict of a checkpoint file (tensors memory-mapped where possible)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = _load_torch_file(path)
    if isinstance(obj, torch.jit.ScriptModule):
        return dict(obj.state_dict())
    if not isinstance(obj, dict):
        raise ModelUnavailableError(f"{path.name} holds a {type(obj).__name__}, not a state dict")
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict) or not state:
        raise ModelUnavailableError(f"{path.name} holds no weights")
    if next(iter(state)).startswith("module."):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def save_checkpoint(
    path: Path | str, state_dict: dict, model_cfg: dict, *, architecture: str, preprocess_cfg: dict | None = None
) -> Path:
    """Write a self-describing checkpoint (our format): weights plus the open_clip config."""
    import torch

    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "architecture": architecture,
        "open_clip_config": {"model_cfg": model_cfg, "preprocess_cfg": dict(preprocess_cfg or {})},
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    }
    from lookalike.core.store.fsutil import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, str(tmp))
    return path


_register_lock = threading.Lock()


def register_config(model_cfg: dict, name: str | None = None) -> str:
    """Teach open_clip an architecture given as a config dict; returns its name there."""
    import open_clip

    text = json.dumps(model_cfg, sort_keys=True)
    if name is None or (open_clip.get_model_config(name) not in (None, model_cfg)):
        name = "lookalike-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    with _register_lock:
        if open_clip.get_model_config(name) == model_cfg:
            return name
        folder = runtime.models_dir() / "open_clip" / "configs"
        folder.mkdir(parents=True, exist_ok=True)
        cfg_file = folder / f"{name}.json"
        from lookalike.core.store.fsutil import atomic_write_text

        atomic_write_text(cfg_file, text)
        open_clip.add_model_config(cfg_file)
    return name


def _known_configs() -> dict[str, dict]:
    """Every architecture open_clip knows now: its own JSON files and configs registered since."""
    import open_clip

    return {name: open_clip.get_model_config(name) or {} for name in open_clip.list_models()}


def _fits_on_meta(name: str, shapes: dict[str, tuple]) -> bool:
    """Whether open_clip's ``name`` has exactly these parameter shapes, built on the meta device
    (no memory, no weights): only for towers whose shapes a config does not spell out (timm)."""
    import open_clip
    import torch

    ignore = {"logit_bias", "text.transformer.embeddings.position_ids", "position_ids"}
    try:
        with torch.device("meta"), _library_logs_to_ours():
            model = open_clip.create_model(
                name, pretrained=None, load_weights=False, device="meta", pretrained_text=False, pretrained_image=False
            )
    except Exception:
        return False
    theirs = checkpoint.state_shapes(model.state_dict())
    return {k: v for k, v in shapes.items() if k not in ignore} == {k: v for k, v in theirs.items() if k not in ignore}


def infer_architecture(state_or_shapes: dict) -> str:
    """The open_clip architecture whose parameters have exactly the checkpoint's shapes.

    Worked out from the shapes and the architectures' configs (no model is built),
    except that timm image towers, which a config does not spell out, are compared
    by building the few candidates on the meta device.
    """
    shapes = {k: tuple(v) if isinstance(v, (tuple, list)) else tuple(v.shape) for k, v in state_or_shapes.items()}
    shapes = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in shapes.items()}
    if "logit_scale" not in shapes or not (
        ("text_projection" in shapes or "text_projection.weight" in shapes or "text.text_projection" in shapes)
        and ("token_embedding.weight" in shapes or "text.token_embedding.weight" in shapes)
    ):
        raise ModelUnavailableError(
            "This file is not an open_clip CLIP checkpoint (it has no text tower or logit scale)"
        )
    configs = _known_configs()
    matches = checkpoint.infer_architectures(shapes, configs)
    if matches and any(k.startswith("visual.trunk.") for k in shapes):
        matches = [m for m in matches if _fits_on_meta(m, shapes)][:2]
    elif "text.token_embedding.weight" in shapes:  # a custom text tower: keys a config does not spell out
        embed = (shapes.get("text.text_projection") or (0, 0))[-1]
        custom = [n for n, c in configs.items() if c.get("custom_text") and c.get("embed_dim") == embed]
        matches = [m for m in sorted(custom, key=lambda n: ("quickgelu" in n, len(n), n)) if _fits_on_meta(m, shapes)]
    if not matches:
        raise ModelUnavailableError(
            "Cannot tell which open_clip architecture this checkpoint is; name it, e.g. --model clip:ViT-B-32"
        )
    same = [m for m in matches if configs.get(m) == configs.get(matches[0])]
    if len(same) < len(matches):
        log.info("checkpoint fits %s; using %s (name the architecture to choose)", matches, matches[0])
    return matches[0]


@contextmanager
def _library_logs_to_ours():
    """While open_clip works on this thread, what it logs on the root logger (e.g. "No
    pretrained weights loaded ... initialized randomly" for every model built before
    its weights are loaded) goes to this module's log at INFO: shown with -v, never
    on a user's stderr otherwise."""
    me = threading.get_ident()

    class Divert(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.thread != me:
                return True
            log.info("open_clip: %s", record.getMessage())
            return False

    divert = Divert()
    root = logging.getLogger()
    root.addFilter(divert)
    try:
        yield
    finally:
        root.removeFilter(divert)


def _find_weights_in_dir(folder: Path) -> Path:
    for fn in (*HF_WEIGHT_NAMES, "model.safetensors", "pytorch_model.bin"):
        if (folder / fn).is_file():
            return folder / fn
    files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if len(files) == 1:
        return files[0]
    raise ModelUnavailableError(f"No single weights file in {folder}: name the file itself")


def _preprocess_for(arch: str, tag: str | None, cfg_pre: dict | None) -> dict:
    """open_clip's preprocessing for an architecture (from its weights' published config)."""
    import open_clip

    pre: dict = {}
    if tag:
        pre.update(open_clip.get_pretrained_cfg(arch, tag) or {})
    elif cfg_pre is None:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if tags:
            pre.update(open_clip.get_pretrained_cfg(arch, tags[0]) or {})
    if cfg_pre:
        pre.update(cfg_pre)
    keys = ("mean", "std", "interpolation", "resize_mode", "size")
    return {k: pre[k] for k in keys if k in pre}


# -- the encoder ---------------------------------------------------------------------


def spec_name(spec: ClipSpec) -> str:
    """The model name a spec came from: clip, clip:ARCH or clip:ARCH:TAG."""
    return ":".join([NAME, *(p for p in (spec.arch, spec.tag) if p)])


class ClipEncoder:
    """An open_clip model: image and text towers into one space.

    The first load of a set of weights goes through open_clip and torch, exports
    the text tower (numpy, :mod:`clip_text`) and on CPU the image tower (ONNX
    Runtime, :mod:`clip_image`) beside the weights' checksum, and remembers what
    it found (:mod:`checkpoint`). Later loads of the unchanged file on CPU take
    the exports and import neither open_clip nor torch.
    """

    supports_text = True
    # Photos per call when indexing on CPU: a vision transformer gets cheaper a photo
    # with batch (ViT-B-32, one thread: 105 ms alone, 71 ms in eights, 68 in sixteens;
    # `lookalike bench`); eights leave two calls per commit batch to run side by side.
    cpu_batch = 8
    side_by_side = True  # ONNX Runtime sessions and torch modules both take calls from several threads

    def __init__(
        self,
        spec: ClipSpec | None = None,
        *,
        model_file: Path | str | None = None,
        device: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        from lookalike.core.encoders.base import pick_device

        spec = spec or ClipSpec(None, None)
        self.device = pick_device(device)
        self._model: CLIP | CustomTextCLIP | None = None
        self._onnx: OnnxImageTower | None = None
        self._onnx_file: Path | None = None
        self._bf16: Bf16ImageTower | None = None
        self._bf16_tried = False
        self._load_lock = threading.RLock()
        self._text: NumpyClipText | None = None
        self._spec_args = (spec, model_file)
        self.uses_torch = True
        self.backend = "torch"
        self._key = (spec_name(spec), model_file)
        rec = checkpoint.recall_load(*self._key)
        if rec is not None and self._load_exports(rec):
            runtime.report(progress, 1, 1, f"CLIP {rec.architecture} ready")
            return
        self._load_with_open_clip(spec, model_file, progress, cancel)

    # -- loading --------------------------------------------------------------------------

    def _load_exports(self, rec: checkpoint.LoadRecord) -> bool:
        """Take a remembered load's exports: its text tower (False when there is none), and on
        CPU its ONNX image tower; without one, torch loads with the first photo to encode."""
        from lookalike.core.encoders import clip_image, clip_text

        folder = checkpoint.export_dir(rec.checksum)
        text = clip_text.load_text_tower(folder)
        if text is None:
            return False
        onnx = folder / clip_image.ONNX_NAME
        if self.device == "cpu" and onnx.is_file() and clip_image.onnxruntime_available():
            # The session (about 0.7 s) starts with the first photo: a text query never needs it.
            self._onnx_file = onnx
            self.uses_torch = False
            self.backend = "onnxruntime"
        self._text = text
        self._set_from_record(rec)
        return True

    def _image_tower(self):
        """The ONNX Runtime session, started on first use; None: images go through torch
        (the model loaded now if it was not)."""
        if self._onnx is not None or (self._onnx_file is None and self._model is not None):
            return self._onnx
        with self._load_lock:
            if self._onnx is None and self._onnx_file is not None:
                from lookalike.core.encoders.clip_image import OnnxImageTower

                try:
                    self._onnx = OnnxImageTower(self._onnx_file)
                except Exception as exc:
                    log.warning("exported image tower %s unusable (%s); using torch", self._onnx_file, exc)
                    self._onnx_file = None
                    self.uses_torch = True
                    self.backend = "torch"
            if self._onnx is None and self._model is None:
                self._load_with_open_clip(*self._spec_args, None, None)
        return self._onnx

    def warm_up(self, photos: int = 0) -> None:
        """Start the image tower now (the indexer calls it on a thread of its own once a run
        has ``photos`` to encode, so that it starts while the photos are decoded): on CPU,
        for a run of at least ``BF16_MIN_PHOTOS``, the bfloat16 tower where it was measured
        faster (:mod:`clip_image`), else the ONNX Runtime session."""
        try:
            if self._bf16_tower(photos) is None:
                self._image_tower()
        except Exception:  # the first photo to encode tries again and reports it
            log.debug("image tower not started ahead", exc_info=True)

    def _bf16_tower(self, photos: int):
        """The bfloat16 tower when a run of ``photos`` should use it (loaded now), else None.
        Weights whose towers were exported before it existed are loaded once through
        open_clip to make and time it (a few seconds, at the first large run)."""
        from lookalike.core.encoders import clip_image

        if self._bf16 is not None:
            return self._bf16
        setting = clip_image.precision_setting()
        if (
            self._bf16_tried
            or self.device != "cpu"
            or setting == "fp32"
            or photos < clip_image.BF16_MIN_PHOTOS
            or not getattr(self, "weights_checksum", "")
        ):
            return None
        with self._load_lock:
            if self._bf16 is not None or self._bf16_tried:
                return self._bf16
            self._bf16_tried = True
            folder = checkpoint.export_dir(self.weights_checksum)
            decision = clip_image.bf16_decision(folder)
            if decision is None and clip_image.bf16_supported():
                self._load_with_open_clip(*self._spec_args, None, None)  # exports and times it
                decision = clip_image.bf16_decision(folder)
            traced = folder / clip_image.BF16_NAME
            if not traced.is_file() or not (setting == "bf16" or (decision or {}).get("use")):
                return None
            try:
                self._bf16 = clip_image.Bf16ImageTower(traced)
            except Exception as exc:
                log.warning("bfloat16 image tower %s unusable (%s); using float32", traced, exc)
                return None
            self.backend = "torch-bf16"
            log.info("CLIP image tower in bfloat16 for this run (%s)", decision)
            return self._bf16

    def _set_from_record(self, rec: checkpoint.LoadRecord) -> None:
        self.id = rec.encoder_id
        self.architecture = rec.architecture
        self.weights_file = Path(rec.weights)
        self.weights_checksum = rec.checksum
        self.dimension = int(rec.dimension)
        self.image_size = int(rec.image_size)
        self._mean, self._std = tuple(rec.mean), tuple(rec.std)
        self._interp, self._resize_mode = rec.interpolation, rec.resize_mode

    def _load_with_open_clip(self, spec: ClipSpec, model_file, progress, cancel) -> None:
        runtime.torch_setup()
        runtime.report(progress, 0, None, "loading open_clip")
        try:
            with _library_logs_to_ours():
                import open_clip
        except ImportError:  # pragma: no cover - a dependency
            raise ModelUnavailableError("CLIP needs the package open_clip_torch; install it") from None

        cfg_pre: dict | None = None
        tag: str | None = None
        if model_file is not None:
            weights, arch, label, cfg_pre = self._resolve_file(Path(model_file), spec)
            self.id = f"openclip-{label}-file"
        else:
            arch = spec.arch or DEFAULT_ARCH
            if spec.arch is None:
                tag = spec.tag or DEFAULT_TAG
            else:
                import open_clip

                if open_clip.get_model_config(arch) is None:
                    raise UsageError(f"open_clip knows no architecture '{arch}'")
                tags = open_clip.list_pretrained_tags_by_model(arch)
                tag = spec.tag or (tags[0] if tags else None)
                if tag is None:
                    raise UsageError(
                        f"open_clip publishes no weights for '{arch}'; name a checkpoint with --model-file"
                    )
            weights = _pretrained_file(arch, tag, progress, cancel)
            label = arch
            self.id = f"openclip-{arch}-{tag}"
        runtime.check(cancel)
        runtime.report(progress, 0, None, f"loading CLIP {label}")
        self.architecture = arch
        self.weights_file = weights
        quick_gelu = False
        import open_clip

        if tag is not None:
            quick_gelu = bool((open_clip.get_pretrained_cfg(arch, tag) or {}).get("quick_gelu"))
        self._model = self._build(arch, weights, quick_gelu=quick_gelu)
        pre = _preprocess_for(arch, tag, cfg_pre)
        size = getattr(self._model.visual, "image_size", pre.get("size", 224))
        if isinstance(size, (tuple, list)):
            size = int(size[0])
        self.image_size = int(size)
        self._mean = tuple(pre.get("mean", (0.48145466, 0.4578275, 0.40821073)))
        self._std = tuple(pre.get("std", (0.26862954, 0.26130258, 0.27577711)))
        self._interp = str(pre.get("interpolation", "bicubic"))
        self._resize_mode = str(pre.get("resize_mode", "shortest"))
        try:
            with _library_logs_to_ours():
                self._tokenizer = open_clip.get_tokenizer(arch)
        except Exception as exc:
            raise ModelUnavailableError(f"Cannot load the tokenizer of {arch}: {exc}") from None
        runtime.check(cancel)
        runtime.report(progress, 0, None, "checking the CLIP weights")
        self.weights_checksum = runtime.file_sha256(weights)
        model_cfg = open_clip.get_model_config(arch) or {}
        self.dimension = int(model_cfg["embed_dim"])
        self._export(model_cfg, quick_gelu, progress)
        runtime.report(progress, 1, 1, f"CLIP {label} ready")

    def _export(self, model_cfg: dict, quick_gelu: bool, progress) -> None:
        """Export the towers once per set of weights (so later starts skip open_clip and
        torch), use them from now on, and remember this load."""
        from lookalike.core.encoders import clip_image, clip_text

        if self._model is None or self._dtype != _torch_float32():
            return
        folder = checkpoint.export_dir(self.weights_checksum)
        try:
            text = clip_text.load_text_tower(folder)
            if text is None:
                runtime.report(progress, 0, None, "preparing CLIP text queries")
                if clip_text.export_text_tower(self._model, model_cfg, folder, quick_gelu=quick_gelu):
                    text = clip_text.load_text_tower(folder)
            onnx = folder / clip_image.ONNX_NAME
            if self.device == "cpu" and not onnx.is_file() and clip_image.onnxruntime_available():
                runtime.report(progress, 0, None, "preparing the CLIP image tower for ONNX Runtime")
                clip_image.export_image_tower(self._model, folder, self.image_size)
            if (
                self.device == "cpu"
                and clip_image.precision_setting() != "fp32"
                and clip_image.bf16_decision(folder) is None
            ):
                runtime.report(progress, 0, None, "timing the CLIP image tower in bfloat16")
                clip_image.export_bf16_tower(self._model, folder, self.image_size)
        except Exception as exc:  # only speed is at stake: the torch model still answers
            log.warning("could not export the CLIP towers to %s: %s", folder, exc)
            return
        if text is not None:
            self._text = text
        if self.device == "cpu" and onnx.is_file():
            try:
                self._onnx = clip_image.OnnxImageTower(onnx)
            except Exception as exc:
                log.info("exported image tower %s unusable: %s", onnx, exc)
            else:
                self.backend = "onnxruntime"
                self._onnx_file = onnx
        if self._text is not None and self._onnx is not None:
            self._model = None  # both towers answer from the exports: the torch copy can go
            self.uses_torch = False
        st = self.weights_file.stat()
        checkpoint.remember_load(
            checkpoint.LoadRecord(
                key=checkpoint.load_key(*self._key),
                weights=os.fspath(self.weights_file.resolve()),
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                checksum=self.weights_checksum,
                encoder_id=self.id,
                architecture=self.architecture,
                dimension=self.dimension,
                image_size=self.image_size,
                mean=tuple(float(v) for v in self._mean),
                std=tuple(float(v) for v in self._std),
                interpolation=self._interp,
                resize_mode=self._resize_mode,
                model_cfg=model_cfg,
            )
        )

    def _resolve_file(self, path: Path, spec: ClipSpec):
        """(weights file, open_clip architecture name, display label, preprocess cfg)."""
        path = path.expanduser()
        if not path.exists():
            raise ModelUnavailableError(f"The model file {path} does not exist")
        folder_cfg = None
        if path.is_dir():
            if (path / CONFIG_NAME).is_file():
                folder_cfg = path / CONFIG_NAME
            path = _find_weights_in_dir(path)
        elif (path.parent / CONFIG_NAME).is_file():
            folder_cfg = path.parent / CONFIG_NAME
        embedded, embedded_arch = _checkpoint_header(path)
        if folder_cfg is not None and embedded is None:
            try:
                embedded = json.loads(folder_cfg.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise ModelUnavailableError(f"{folder_cfg} is not readable JSON: {exc}") from None
        if embedded is not None:
            model_cfg = embedded.get("model_cfg", embedded)
            if not all(k in model_cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
                raise ModelUnavailableError(f"The open_clip config of {path.name} lacks embed_dim/vision_cfg/text_cfg")
            arch = register_config(model_cfg, embedded_arch or spec.arch)
            label = embedded_arch or spec.arch or arch
            return path, arch, _safe_label(label), embedded.get("preprocess_cfg", {})
        if spec.arch:
            import open_clip

            if open_clip.get_model_config(spec.arch) is None:
                raise UsageError(f"open_clip knows no architecture '{spec.arch}'")
            return path, spec.arch, _safe_label(spec.arch), None
        if path.suffix == ".safetensors":
            try:  # the header alone holds the shapes: the weights are read once, when loaded
                shapes = checkpoint.safetensors_shapes(path)[0]
            except (OSError, ValueError) as exc:
                raise ModelUnavailableError(
                    f"{path.name} is not a safetensors file Lookalike can read ({exc})"
                ) from None
        else:
            shapes = checkpoint.state_shapes(_checkpoint_state(path))
        arch = infer_architecture(shapes)
        log.info("%s looks like open_clip's %s", path.name, arch)
        return path, arch, _safe_label(arch), None

    def _build(self, arch: str, weights: Path, *, quick_gelu: bool = False):
        import open_clip

        try:
            # Weights trained with QuickGELU (OpenAI's, some LAION-400M) say so in their
            # published config; building the plain architecture would change their output.
            with _library_logs_to_ours():
                model = open_clip.create_model(
                    arch,
                    pretrained=None,
                    load_weights=False,
                    device="cpu",
                    pretrained_text=False,
                    pretrained_image=False,
                    force_quick_gelu=quick_gelu,
                )
        except Exception as exc:
            raise ModelUnavailableError(f"Cannot build the open_clip architecture {arch}: {exc}") from None
        try:
            with _library_logs_to_ours():
                open_clip.load_checkpoint(model, str(weights))
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ModelUnavailableError(f"{weights.name} does not fit the architecture {arch}: {first}") from None
        if "timm_model_name" in ((open_clip.get_model_config(arch) or {}).get("vision_cfg") or {}):
            try:
                from timm.utils.model import reparameterize_model

                model = reparameterize_model(model)
            except Exception as exc:  # pragma: no cover - only speed is at stake
                log.debug("no reparameterisation for %s: %s", arch, exc)
        model = model.eval().to(self.device)
        if self.device.startswith("cuda"):
            model = model.half()
        self._dtype = next(model.parameters()).dtype
        return model

    # -- encoding -------------------------------------------------------------------------

    def _pixels(self, batch: Sequence[Image.Image]) -> np.ndarray:
        return runtime.images_to_array(
            batch, self.image_size, self._mean, self._std, resize_mode=self._resize_mode, interpolation=self._interp
        )

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        with self._load_lock:  # a warm-up still loading a tower: this waits for it
            pass
        tower = self._bf16 if self._bf16 is not None else self._image_tower()
        if tower is not None:
            from lookalike.core.encoders.clip_image import encode_with

            return encode_with(tower, images, self._pixels, batch_size, self.dimension)
        import torch

        model = self._model
        assert model is not None  # no image tower: _image_tower() loaded the torch model
        pin = self.device.startswith("cuda")
        return runtime.encode_image_batches(
            images,
            batch_size,
            self.dimension,
            lambda batch: torch.from_numpy(self._pixels(batch)),
            lambda x: model.encode_image((x.pin_memory() if pin else x).to(self.device, self._dtype, non_blocking=pin)),
        )

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return runtime.empty_rows(getattr(self, "dimension", 0))
        if self._text is not None:
            return self._text.encode(texts)
        assert self._model is not None  # no exported text tower: the torch model answers
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                tokens = self._tokenizer(texts[i : i + batch_size]).to(self.device)
                out.append(self._model.encode_text(tokens).float().cpu())
        return runtime.unit_rows(torch.cat(out))

    def __repr__(self) -> str:
        return f"ClipEncoder({self.id!r}, device={self.device!r}, {self.backend})"


def _torch_float32():
    import torch

    return torch.float32


def _safe_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", label).strip("-") or "custom"
