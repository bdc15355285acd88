"""Looking inside CLIP checkpoint files cheaply, and remembering what was found.

Three things here keep a CLIP load from redoing work on every start:

* :func:`infer_architectures`: which open_clip architectures a checkpoint's
  parameter shapes fit, worked out from the shapes and open_clip's model
  configs (plain JSON files in the package) without building any model. For a
  safetensors file the shapes come from its header alone, with no torch.
* :class:`LoadRecord` / :func:`remember_load` / :func:`recall_load`: what a
  load found (weights file and its size and time, checksum, architecture, id,
  preprocessing), kept in the model cache under the name and file the user
  asked for. A later process that finds the file unchanged takes it from
  there, and with the exports below never imports open_clip or torch; a
  changed file (size or time) is looked at again and re-hashed.
* :func:`export_dir`: where the towers exported from a set of weights live
  (``text.json``/``text.f32``, ``image.onnx``), keyed by the weights' checksum.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import struct
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from lookalike.core.runtime import models as runtime

log = logging.getLogger(__name__)

RECORD_FORMAT = 1


# -- parameter shapes -------------------------------------------------------------------------


def safetensors_shapes(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """(name -> shape, metadata) from a safetensors file's header, reading nothing else."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise ValueError("too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000:
            raise ValueError("not a safetensors header")
        header = json.loads(fh.read(n))
    meta = header.pop("__metadata__", None) or {}
    shapes = {k: tuple(int(d) for d in v["shape"]) for k, v in header.items() if isinstance(v, dict) and "shape" in v}
    return shapes, meta


def state_shapes(state: dict) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


# -- open_clip's architectures, from their JSON files -----------------------------------------


def _open_clip_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        return Path(folder)
    return None


@lru_cache(maxsize=1)
def builtin_configs() -> dict[str, dict]:
    """open_clip's model configs by name, read from the package's JSON files (no import)."""
    root = _open_clip_dir()
    out: dict[str, dict] = {}
    if root is None:
        return out
    for p in sorted((root / "model_configs").glob("*.json")):
        try:
            cfg = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
            out[p.stem] = cfg
    return out


def _blocks(shapes: dict[str, tuple], prefix: str) -> int:
    found = {k[len(prefix) :].split(".", 1)[0] for k in shapes if k.startswith(prefix)}
    return len({f for f in found if f.isdigit()})


def _text_signature_of_shapes(shapes: dict[str, tuple]) -> dict | None:
    token = shapes.get("token_embedding.weight")
    pos = shapes.get("positional_embedding")
    if token is None or pos is None or "logit_scale" not in shapes:
        return None
    proj = shapes.get("text_projection")
    proj_w = shapes.get("text_projection.weight")
    embed = proj[1] if proj is not None else (proj_w[0] if proj_w is not None else None)
    fc = shapes.get("transformer.resblocks.0.mlp.c_fc.weight")
    return {
        "embed_dim": embed,
        "vocab_size": token[0],
        "width": token[1],
        "context_length": pos[0],
        "layers": _blocks(shapes, "transformer.resblocks."),
        "mlp": fc[0] if fc else None,
        "layer_scale": "transformer.resblocks.0.ls_1.gamma" in shapes,
        "proj_bias": "text_projection.bias" in shapes,
    }


def _text_signature_of_config(cfg: dict) -> dict | None:
    t = cfg.get("text_cfg") or {}
    if t.get("hf_model_name") or cfg.get("custom_text") or cfg.get("multimodal_cfg"):
        return None  # another layout of keys (text.*): left to the model builder
    width = int(t.get("width", 512))
    return {
        "embed_dim": cfg.get("embed_dim"),
        "vocab_size": int(t.get("vocab_size", 49408)),
        "width": width,
        "context_length": int(t.get("context_length", 77)),
        "layers": int(t.get("layers", 12)),
        "mlp": int(width * float(t.get("mlp_ratio", 4.0))),
        "layer_scale": t.get("ls_init_value") is not None,
        "proj_bias": bool(t.get("proj_bias", False)),
    }


def _vision_signature_of_shapes(shapes: dict[str, tuple]) -> dict:
    if any(k.startswith("visual.trunk.") for k in shapes):
        return {"kind": "timm"}
    if "visual.layer1.0.conv1.weight" in shapes:
        attn = shapes.get("visual.attnpool.positional_embedding")
        return {
            "kind": "resnet",
            "layers": tuple(_blocks(shapes, f"visual.layer{i}.") for i in range(1, 5)),
            "width": shapes["visual.conv1.weight"][0] * 2,
            "tokens": attn[0] if attn else None,
        }
    conv1 = shapes.get("visual.conv1.weight")
    if conv1 is None or len(conv1) != 4:
        return {"kind": "unknown"}
    fc = shapes.get("visual.transformer.resblocks.0.mlp.c_fc.weight")
    pos = shapes.get("visual.positional_embedding")
    return {
        "kind": "vit",
        "width": conv1[0],
        "patch": conv1[2],
        "tokens": pos[0] if pos else None,
        "layers": _blocks(shapes, "visual.transformer.resblocks."),
        "mlp": fc[0] if fc else None,
        "layer_scale": "visual.transformer.resblocks.0.ls_1.gamma" in shapes,
        "ln_pre": "visual.ln_pre.weight" in shapes,
        "attn_pool": any(k.startswith("visual.attn_pool") for k in shapes),
    }


def _vision_signature_of_config(cfg: dict) -> dict:
    v = cfg.get("vision_cfg") or {}
    if v.get("timm_model_name"):
        return {"kind": "timm"}
    size = v.get("image_size", 224)
    size = int(size[0] if isinstance(size, (list, tuple)) else size)
    layers = v.get("layers", 12)
    if isinstance(layers, (list, tuple)):
        return {
            "kind": "resnet",
            "layers": tuple(layers),
            "width": int(v.get("width", 64)),
            "tokens": (size // 32) ** 2 + 1,
        }
    width, patch = int(v.get("width", 768)), int(v.get("patch_size", 16))
    return {
        "kind": "vit",
        "width": width,
        "patch": patch,
        "tokens": (size // patch) ** 2 + 1,
        "layers": int(layers),
        "mlp": int(width * float(v.get("mlp_ratio", 4.0))),
        "layer_scale": v.get("ls_init_value") is not None,
        "ln_pre": not v.get("no_ln_pre", False),
        "attn_pool": bool(v.get("attentional_pool", False)),
    }


def _preference(name: str) -> tuple:
    # Of architectures with the same shapes, the plain one first: QuickGELU variants
    # differ only in the activation, which weights that need it say in their config.
    return ("quickgelu" in name, len(name), name)


def infer_architectures(shapes: dict[str, tuple], configs: dict[str, dict] | None = None) -> list[str]:
    """Names of the open_clip architectures whose configs give exactly these shapes' sizes,
    most likely first. A timm vision tower cannot be told from its config alone: every
    timm architecture whose text side fits is returned, for the model builder to settle."""
    configs = builtin_configs() if configs is None else configs
    text = _text_signature_of_shapes(shapes)
    if text is None:
        return []
    vision = _vision_signature_of_shapes(shapes)
    out = []
    for name, cfg in configs.items():
        if _text_signature_of_config(cfg) != text:
            continue
        if _vision_signature_of_config(cfg) != vision:
            continue
        out.append(name)
    return sorted(out, key=_preference)


# -- what a load found, remembered --------------------------------------------------------------


def export_dir(checksum: str) -> Path:
    """Where the towers exported from the weights with this sha256 live."""
    return runtime.models_dir() / "clip-export" / checksum[:32]


@dataclass(frozen=True)
class LoadRecord:
    """What loading ``(name, model_file)`` found; enough to load it again without open_clip."""

    key: str
    weights: str
    size: int
    mtime_ns: int
    checksum: str
    encoder_id: str
    architecture: str
    dimension: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    resize_mode: str
    model_cfg: dict = field(default_factory=dict)
    format: int = RECORD_FORMAT

    def unchanged(self) -> bool:
        try:
            st = os.stat(self.weights)
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == (self.size, self.mtime_ns)


def load_key(name: str, model_file: Path | str | None) -> str:
    """The name a load is remembered under: the model name as given, and the file's real path."""
    name = (name or "clip").strip()
    base, _, rest = name.partition(":")
    f = os.fspath(Path(model_file).expanduser().resolve()) if model_file is not None else ""
    return f"{base.lower()}:{rest}|{f}"


_lock = threading.Lock()


def _records_file() -> Path:
    return runtime.models_dir() / "open_clip" / "loads.json"


def _read_records() -> dict:
    try:
        data = json.loads(_records_file().read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def recall_load(name: str, model_file: Path | str | None) -> LoadRecord | None:
    """The remembered load of ``(name, model_file)``, if its weights file is unchanged since."""
    raw = _read_records().get(load_key(name, model_file))
    if not isinstance(raw, dict) or raw.get("format") != RECORD_FORMAT:
        return None
    try:
        raw = dict(raw, mean=tuple(raw["mean"]), std=tuple(raw["std"]))
        rec = LoadRecord(**raw)
    except (TypeError, KeyError):
        return None
    return rec if rec.unchanged() else None


def remember_load(rec: LoadRecord) -> None:
    from lookalike.core.store.fsutil import atomic_write_text

    with _lock:
        table = _read_records()
        table[rec.key] = asdict(rec)
        try:
            _records_file().parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(_records_file(), json.dumps(table, indent=1, sort_keys=True))
        except Exception as exc:  # a read-only cache only costs a slower next start
            log.debug("could not remember the load of %s: %s", rec.key, exc)
