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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.core.encoders import _common
from lookalike.core.errors import ModelUnavailableError, UsageError
from lookalike.core.progress import CancelToken, ProgressCallback

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

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
    return _common.models_dir() / "open_clip" / repo.replace("/", "--") / filename


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
    from lookalike.core.encoders import _download

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
        dest = _common.models_dir() / "open_clip" / "url" / filename
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
    from lookalike.core.fsutil import atomic_path

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
        folder = _common.models_dir() / "open_clip" / "configs"
        folder.mkdir(parents=True, exist_ok=True)
        cfg_file = folder / f"{name}.json"
        from lookalike.core.fsutil import atomic_write_text

        atomic_write_text(cfg_file, text)
        open_clip.add_model_config(cfg_file)
    return name


def _shape_signature(state: dict) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def _count_blocks(shapes: dict[str, tuple], prefix: str) -> int:
    found = {k[len(prefix) :].split(".", 1)[0] for k in shapes if k.startswith(prefix)}
    return len({f for f in found if f.isdigit()})


def _towers_fit(cfg: dict, shapes: dict[str, tuple]) -> bool:
    """Whether a config's towers can have these shapes, judged from the config alone."""
    vcfg, tcfg = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    timm_vision = any(k.startswith("visual.trunk.") for k in shapes)
    if timm_vision != ("timm_model_name" in vcfg):
        return False
    conv1 = shapes.get("visual.conv1.weight")
    if "timm_model_name" not in vcfg and isinstance(vcfg.get("layers"), int):
        if conv1 is None or len(conv1) != 4:
            return False
        if (vcfg.get("width", 768), vcfg.get("patch_size", 16)) != (conv1[0], conv1[2]):
            return False
        if _count_blocks(shapes, "visual.transformer.resblocks.") != vcfg["layers"]:
            return False
    text_blocks = _count_blocks(shapes, "transformer.resblocks.") or _count_blocks(
        shapes, "text.transformer.resblocks."
    )
    if text_blocks and isinstance(tcfg.get("layers"), int) and text_blocks != tcfg["layers"]:
        return False
    return True


def infer_architecture(state: dict) -> str:
    """The open_clip architecture whose parameters have exactly the checkpoint's shapes."""
    import open_clip
    import torch

    ours = _shape_signature(state)
    ignore = {"logit_bias", "text.transformer.embeddings.position_ids", "position_ids"}
    text_proj = ours.get("text_projection") or ours.get("text.text_projection")
    token = ours.get("token_embedding.weight") or ours.get("text.token_embedding.weight")
    context = ours.get("positional_embedding") or ours.get("text.positional_embedding")
    if "logit_scale" not in ours or text_proj is None or token is None:
        raise ModelUnavailableError(
            "This file is not an open_clip CLIP checkpoint (it has no text tower or logit scale)"
        )
    names = sorted(open_clip.list_models(), key=lambda n: ("quickgelu" in n, len(n), n))
    matches: list[str] = []
    for name in names:
        cfg = open_clip.get_model_config(name) or {}
        tcfg = cfg.get("text_cfg", {})
        if "hf_model_name" in tcfg or "hf_tokenizer_name" in tcfg:
            continue  # would need files from a model hub
        # Cheap checks first; only the survivors are built (on the meta device, no memory).
        if cfg.get("embed_dim") not in text_proj:
            continue
        if (tcfg.get("vocab_size", 49408), tcfg.get("width", 512)) != tuple(token):
            continue
        if context is not None and tcfg.get("context_length", 77) != context[0]:
            continue
        if not _towers_fit(cfg, ours):
            continue
        try:
            with torch.device("meta"):
                model = open_clip.create_model(
                    name,
                    pretrained=None,
                    load_weights=False,
                    device="meta",
                    pretrained_text=False,
                    pretrained_image=False,
                )
        except Exception:
            continue
        theirs = _shape_signature(model.state_dict())
        a = {k: v for k, v in ours.items() if k not in ignore}
        b = {k: v for k, v in theirs.items() if k not in ignore}
        if a == b:
            matches.append(name)
            if len(matches) > 1:
                break
    if not matches:
        raise ModelUnavailableError(
            "Cannot tell which open_clip architecture this checkpoint is; name it, e.g. --model clip:ViT-B-32"
        )
    if len(matches) > 1:
        log.warning("checkpoint fits %s; using %s (name the architecture to choose)", matches, matches[0])
    return matches[0]


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


class ClipEncoder:
    """An open_clip model: image and text towers into one space."""

    supports_text = True
    # Photos per call when indexing on CPU: a vision transformer gets cheaper a photo
    # with batch (ViT-B-32, one thread: 105 ms alone, 71 ms in eights, 68 in sixteens;
    # `lookalike bench`); eights leave two calls per commit batch to run side by side.
    cpu_batch = 8
    side_by_side = True

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
        _common.torch_setup()
        _common.report(progress, 0, None, "loading open_clip")
        try:
            import open_clip  # noqa: F401
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
        _common.check(cancel)
        _common.report(progress, 0, None, f"loading CLIP {label}")
        self.architecture = arch
        self.weights_file = weights
        quick_gelu = False
        if tag is not None:
            import open_clip

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
        import open_clip

        try:
            self._tokenizer = open_clip.get_tokenizer(arch)
        except Exception as exc:
            raise ModelUnavailableError(f"Cannot load the tokenizer of {arch}: {exc}") from None
        _common.check(cancel)
        _common.report(progress, 0, None, "checking the CLIP weights")
        self.weights_checksum = _common.file_sha256(weights)
        self.dimension = int(open_clip.get_model_config(arch)["embed_dim"])
        _common.report(progress, 1, 1, f"CLIP {label} ready")

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
        arch = infer_architecture(_checkpoint_state(path))
        log.info("%s looks like open_clip's %s", path.name, arch)
        return path, arch, _safe_label(arch), None

    def _build(self, arch: str, weights: Path, *, quick_gelu: bool = False):
        import open_clip

        try:
            # Weights trained with QuickGELU (OpenAI's, some LAION-400M) say so in their
            # published config; building the plain architecture would change their output.
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

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        return _common.encode_image_batches(
            images,
            batch_size,
            self.dimension,
            lambda batch: _common.images_to_tensor(
                batch, self.image_size, self._mean, self._std, resize_mode=self._resize_mode, interpolation=self._interp
            ),
            lambda x: self._model.encode_image(x.to(self.device, self._dtype)),
        )

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return _common.empty_rows(getattr(self, "dimension", 0))
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                tokens = self._tokenizer(texts[i : i + batch_size]).to(self.device)
                out.append(self._model.encode_text(tokens).float().cpu())
        return _common.unit_rows(torch.cat(out))

    def __repr__(self) -> str:
        return f"ClipEncoder({self.id!r}, device={self.device!r})"


def _safe_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", label).strip("-") or "custom"
