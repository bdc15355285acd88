"""CLIP's text side without torch: open_clip's tokenizer and text transformer in numpy.

A CLIP text query needs only the text tower (token embedding, twelve small
transformer blocks, a projection), yet going through open_clip costs seconds
per process: importing torch and open_clip (which pulls in torchvision and
torch's compiler stack), building the model and reading every weight. So the
first time a set of weights loads, the full encoder exports its text tower
(:func:`export_text_tower`) into the model cache, keyed by the weights'
checksum, as one flat float32 file that later processes memory-map; this
module answers text queries from it in milliseconds, with the same id,
checksum and vectors as the full encoder (a test holds them to 1e-4 of
open_clip's own text embeddings, and every export is checked the same way
before it is kept).

The tokenizer is open_clip's ``SimpleTokenizer`` (byte-level BPE over the vocab
file open_clip ships), read without importing open_clip. Its clean-up step
runs ``ftfy.fix_text``, whose import alone costs about a second; for text of
printable ASCII without ``&`` (almost every typed query) that call changes
nothing, so it is made only for other text.

The causal mask lets a query stop at its end-of-text token: every position up
to it sees only the positions before it, so the padding after it is never
computed.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import json
import logging
import os
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.runtime.nn import gelu as _gelu
from lookalike.core.runtime.nn import layer_norm as _layer_norm

if TYPE_CHECKING:
    import regex

log = logging.getLogger(__name__)

EXPORT_FORMAT = "lookalike-clip-text/1"
META_NAME = "text.json"
WEIGHTS_NAME = "text.f32"
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
# How close the export must come to open_clip's own text embeddings to be kept.
EXPORT_TOLERANCE = 1e-4
TEXT_BATCH = 32
LIST_CACHE_MIN = 16  # lists of at least this many texts are kept on disk, keyed by their content
CHECK_TEXTS = ("a photo of a dog", "", "Two people on a beach at sunset, 1999!", "café ☕ &amp; crème brûlée")


# -- tokenizer ------------------------------------------------------------------------


def open_clip_vocab_file() -> Path | None:
    """open_clip's BPE vocabulary, found without importing open_clip (nor torch)."""
    try:
        spec = importlib.util.find_spec("open_clip")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        p = Path(folder) / VOCAB_FILE
        if p.is_file():
            return p
    return None


def _bytes_to_unicode() -> dict[int, str]:
    # The byte <-> printable-character table of GPT-2's byte-level BPE, which CLIP uses.
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    out = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + n)
            n += 1
    return out


_PLAIN = frozenset(string.printable) - {"&", "\r", "\x0b", "\x0c"}
# open_clip's pattern is \p{L}+ / \p{N} / [^\s\p{L}\p{N}]+ (the `regex` module); for ASCII
# text those classes are exactly [A-Za-z], [0-9] and the rest, so the standard module serves.
_ASCII_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d|[A-Za-z]+|[0-9]|[^\sA-Za-z0-9]+"
_UNICODE_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
_SPECIAL = ("<start_of_text>", "<end_of_text>")


def _build_vocab_tables(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(token -> id, "first second" merge -> rank), as open_clip's SimpleTokenizer builds them."""
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(_bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + [m.replace(" ", "") for m in merges] + list(_SPECIAL)
    return {tok: i for i, tok in enumerate(vocab)}, {m: i for i, m in enumerate(merges)}


def _vocab_tables(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """The tables, from a marshal copy in the model cache (a fifth of the time of building them)."""
    import marshal

    from lookalike.core.runtime import models as runtime

    st = path.stat()
    cache = runtime.models_dir() / "open_clip" / f"bpe-{st.st_size}-{st.st_mtime_ns}-m{marshal.version}.marshal"
    try:
        encoder, ranks = marshal.loads(cache.read_bytes())
        if isinstance(encoder, dict) and isinstance(ranks, dict) and len(encoder) > len(ranks) > 0:
            return encoder, ranks
    except (OSError, ValueError, EOFError, TypeError):
        pass
    encoder, ranks = _build_vocab_tables(path)
    try:
        from lookalike.core.store.fsutil import atomic_path

        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            Path(tmp).write_bytes(marshal.dumps((encoder, ranks)))
    except Exception as exc:  # a read-only cache only costs building them next time
        log.debug("could not keep the BPE tables in %s: %s", cache, exc)
    return encoder, ranks


class ClipTokenizer:
    """open_clip's SimpleTokenizer (lower-case clean-up, 77-token context) without torch."""

    def __init__(self, vocab_file: Path | str | None = None, context_length: int = 77, clean: str = "lower") -> None:
        path = Path(vocab_file) if vocab_file else open_clip_vocab_file()
        if path is None:
            raise FileNotFoundError("open_clip's BPE vocabulary is not installed (package open_clip_torch)")
        if clean not in ("lower", "whitespace", "canonicalize"):
            raise ValueError(f"unknown clean-up {clean!r}")
        self.encoder, self.ranks = _vocab_tables(Path(path))
        self.byte_encoder = _bytes_to_unicode()
        self.sot_id, self.eot_id = self.encoder[_SPECIAL[0]], self.encoder[_SPECIAL[1]]
        self.context_length = int(context_length)
        self.clean = clean
        self._cache: dict[str, list[int]] = {}
        self._ascii = re.compile(_ASCII_PATTERN, re.IGNORECASE)
        self._unicode: regex.Pattern[str] | None = None

    def _cleaned(self, text: str) -> tuple[str, bool]:
        plain = all(c in _PLAIN for c in text)
        if not plain:
            import ftfy

            text = ftfy.fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
        if self.clean == "canonicalize":
            text = text.replace("_", " ").translate(str.maketrans("", "", string.punctuation)).lower()
            text = " ".join(text.split()).strip()
        else:
            text = " ".join(text.split()).strip()
            if self.clean == "lower":
                text = text.lower()
        return text, plain and text.isascii()

    def _word(self, token: str) -> list[int]:
        ids = self._cache.get(token)
        if ids is not None:
            return ids
        word = [*token[:-1], token[-1] + "</w>"]
        ranks = self.ranks
        while len(word) > 1:
            best = min((ranks.get(word[i] + " " + word[i + 1], 1 << 30), i) for i in range(len(word) - 1))
            if best[0] == 1 << 30:
                break
            first, second = word[best[1]], word[best[1] + 1]
            merged: list[str] = []
            i = 0
            while i < len(word):  # merge every occurrence of the best pair, left to right
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids = [self.encoder[w] for w in word]
        self._cache[token] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """The BPE token ids of ``text`` (no start/end tokens, no truncation)."""
        text, ascii_only = self._cleaned(text)
        if ascii_only:
            pieces = self._ascii.findall(text)
        else:
            if self._unicode is None:
                import regex

                self._unicode = regex.compile(_UNICODE_PATTERN, regex.IGNORECASE)
            pieces = self._unicode.findall(text)
        out: list[int] = []
        for piece in pieces:
            out += self._word("".join(self.byte_encoder[b] for b in piece.encode("utf-8")))
        return out

    def __call__(self, texts: Sequence[str] | str) -> np.ndarray:
        """(n, context_length) int64 ids: start, text, end, zero padding; cut to fit as open_clip does."""
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot_id, *self.encode(text), self.eot_id]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot_id
            out[row, : len(ids)] = ids
        return out


@lru_cache(maxsize=4)
def tokenizer_for(context_length: int = 77, clean: str = "lower") -> ClipTokenizer:
    return ClipTokenizer(context_length=context_length, clean=clean)


# -- the text transformer in numpy ----------------------------------------------------------

# text_cfg keys this module follows, with the values it supports (None: any value).
_SUPPORTED_TEXT_CFG: dict[str, tuple[object, ...] | None] = {
    "context_length": None,
    "vocab_size": None,
    "width": None,
    "heads": None,
    "layers": None,
    "mlp_ratio": None,
    "ls_init_value": None,
    "proj_bias": None,
    "tokenizer_kwargs": None,
    "norm_kwargs": None,
    "pool_type": ("argmax", "eos", "last", "first"),
    "proj_type": ("linear", "none"),
    "no_causal_mask": (False,),
    "embed_cls": (False,),
    "final_ln_after_pool": (False,),
    "output_tokens": (False,),
    "act_kwargs": ({}, None),
    "pad_id": None,
    "eos_id": None,
    "block_type": (None, "default"),
    "qk_norm": (False,),
    "scaled_cosine_attn": (False,),
    "scale_heads": (False,),
    "scale_attn_inner": (False,),
    "scale_attn": (False,),
    "scale_fc": (False,),
    "hf_tokenizer_name": (None, ""),
    "hf_model_name": (None, ""),
    "tokenizer_mode": (None, ""),
}


def text_tower_supported(model_cfg: dict) -> str:
    """'' when this module computes the config's text tower exactly, else the reason it does not."""
    if model_cfg.get("custom_text") or model_cfg.get("multimodal_cfg"):
        return "a custom or multimodal text tower"
    tcfg = model_cfg.get("text_cfg") or {}
    for key, value in tcfg.items():
        if key not in _SUPPORTED_TEXT_CFG:
            return f"text_cfg.{key}"
        allowed = _SUPPORTED_TEXT_CFG[key]
        if allowed is not None and value not in allowed:
            return f"text_cfg.{key}={value!r}"
    kw = tcfg.get("tokenizer_kwargs") or {}
    if set(kw) - {"clean"} or kw.get("clean", "lower") not in ("lower", "whitespace", "canonicalize"):
        return f"tokenizer_kwargs {kw!r}"
    if set(tcfg.get("norm_kwargs") or {}) - {"eps"}:
        return "norm_kwargs"
    return ""


def _quick_gelu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-1.702 * x))


@dataclass(frozen=True)
class TextTowerSpec:
    """What the numpy forward pass needs to know besides the weights."""

    context_length: int
    width: int
    heads: int
    layers: int
    dimension: int
    quick_gelu: bool
    eps: float
    pool_type: str
    eos_id: int
    clean: str
    layer_scale: bool
    proj: str  # "matrix" (x @ P), "linear" (x @ W.T + b), "none"


class NumpyClipText:
    """An exported CLIP text tower, memory-mapped: texts -> unit vectors."""

    def __init__(self, folder: Path, meta_file: Path | None = None) -> None:
        meta = json.loads((meta_file or folder / META_NAME).read_text("utf-8"))
        if meta.get("format") != EXPORT_FORMAT:
            raise ValueError(f"{folder}: not a {EXPORT_FORMAT} export")
        self.meta = meta
        self.spec = TextTowerSpec(**meta["spec"])
        flat = np.memmap(folder / WEIGHTS_NAME, dtype=np.float32, mode="r")
        if flat.size != int(meta["floats"]):
            raise ValueError(f"{folder}: {WEIGHTS_NAME} is {flat.size} floats, expected {meta['floats']}")
        self.w = {
            name: flat[off : off + int(np.prod(shape))].reshape(shape) for name, (off, shape) in meta["tensors"].items()
        }
        self.tokenizer = tokenizer_for(self.spec.context_length, self.spec.clean)
        self.dimension = self.spec.dimension
        self.folder = folder

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        if len(texts) < LIST_CACHE_MIN:
            return self._encode(texts)
        # A long list (a tag vocabulary's prompts, encoded at every indexing run) is kept.
        import hashlib

        key = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:24]
        cache = self.folder / f"texts-{key}.npy"
        try:
            hit = np.load(cache, allow_pickle=False)
            if hit.shape == (len(texts), self.dimension) and hit.dtype == np.float32:
                return hit
        except (OSError, ValueError):
            pass
        out = self._encode(texts)
        try:
            tmp = cache.with_name(cache.name + f".tmp{os.getpid()}.npy")
            np.save(tmp, out)
            os.replace(tmp, cache)
        except OSError as exc:  # a read-only cache only costs encoding them again
            log.debug("could not keep text vectors in %s: %s", cache, exc)
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        ids = self.tokenizer(texts)
        ends = ids.argmax(-1)
        order = np.argsort(ends, kind="stable")  # texts of like length share a batch: little padding
        out = np.zeros((len(texts), self.dimension), np.float32)
        # One BLAS thread: a query is a few tokens, done in milliseconds, where several threads
        # that spin while they wait took a hundred times longer on a busy machine.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            for i in range(0, len(texts), TEXT_BATCH):
                rows = order[i : i + TEXT_BATCH]
                out[rows] = self._forward(ids[rows])
        return _unit(out)

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        """Embeddings of one batch of token rows (not normalised)."""
        s, w = self.spec, self.w
        if s.pool_type == "argmax":
            at = ids.argmax(-1)
        elif s.pool_type == "eos":
            at = (ids == s.eos_id).argmax(-1)
        elif s.pool_type == "first":
            at = np.zeros(len(ids), dtype=np.int64)
        else:
            at = np.full(len(ids), ids.shape[1] - 1)
        n = int(at.max()) + 1  # causal: nothing after the pooled position matters
        ids = ids[:, :n]
        b = ids.shape[0]
        x = np.asarray(w["token_embedding"][ids.ravel()]).reshape(b, n, s.width) + w["positional_embedding"][:n]
        x = x.astype(np.float32)
        h, dh = s.heads, s.width // s.heads
        mask = np.triu(np.full((n, n), -np.inf, np.float32), 1)
        act = _quick_gelu if s.quick_gelu else _gelu
        for i in range(s.layers):
            p = f"blocks.{i}."
            y = _layer_norm(x, w[p + "ln_1.w"], w[p + "ln_1.b"], s.eps)
            qkv = (y.reshape(b * n, s.width) @ w[p + "in_proj.wt"]).reshape(b, n, -1) + w[p + "in_proj.b"]
            q, k, v = (
                qkv[..., j * s.width : (j + 1) * s.width].reshape(b, n, h, dh).transpose(0, 2, 1, 3) for j in range(3)
            )
            att = (q * np.float32(dh**-0.5)) @ k.transpose(0, 1, 3, 2) + mask
            att = np.exp(att - att.max(-1, keepdims=True))
            a = (att / att.sum(-1, keepdims=True)) @ v
            a = (a.transpose(0, 2, 1, 3).reshape(b * n, s.width) @ w[p + "out_proj.wt"]).reshape(b, n, -1)
            a = a + w[p + "out_proj.b"]
            if s.layer_scale:
                a = a * w[p + "ls_1"]
            x = x + a
            y = _layer_norm(x, w[p + "ln_2.w"], w[p + "ln_2.b"], s.eps)
            f = act(y.reshape(b * n, s.width) @ w[p + "c_fc.wt"] + w[p + "c_fc.b"]) @ w[p + "c_proj.wt"]
            f = f.reshape(b, n, -1) + w[p + "c_proj.b"]
            if s.layer_scale:
                f = f * w[p + "ls_2"]
            x = x + f
        x = _layer_norm(x, w["ln_final.w"], w["ln_final.b"], s.eps)
        pooled = x[np.arange(b), at]
        if s.proj == "matrix":
            pooled = pooled @ w["text_projection"]
        elif s.proj == "linear":
            pooled = pooled @ w["text_projection.wt"] + w["text_projection.b"]
        return pooled.astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    n[n == 0] = 1.0
    return np.ascontiguousarray(x / n, dtype=np.float32)


# -- export (needs torch; runs once per set of weights) --------------------------------------


def _text_tensors(model) -> tuple[dict[str, np.ndarray], str, bool]:
    """The text tower's weights under this module's names (matrices transposed for x @ W)."""

    def arr(t) -> np.ndarray:
        return t.detach().float().cpu().numpy()

    out = {
        "token_embedding": arr(model.token_embedding.weight),
        "positional_embedding": arr(model.positional_embedding),
        "ln_final.w": arr(model.ln_final.weight),
        "ln_final.b": arr(model.ln_final.bias),
    }
    layer_scale = False
    for i, blk in enumerate(model.transformer.resblocks):
        p = f"blocks.{i}."
        attn = blk.attn
        out[p + "ln_1.w"], out[p + "ln_1.b"] = arr(blk.ln_1.weight), arr(blk.ln_1.bias)
        out[p + "ln_2.w"], out[p + "ln_2.b"] = arr(blk.ln_2.weight), arr(blk.ln_2.bias)
        out[p + "in_proj.wt"], out[p + "in_proj.b"] = arr(attn.in_proj_weight).T, arr(attn.in_proj_bias)
        out[p + "out_proj.wt"], out[p + "out_proj.b"] = arr(attn.out_proj.weight).T, arr(attn.out_proj.bias)
        out[p + "c_fc.wt"], out[p + "c_fc.b"] = arr(blk.mlp.c_fc.weight).T, arr(blk.mlp.c_fc.bias)
        out[p + "c_proj.wt"], out[p + "c_proj.b"] = arr(blk.mlp.c_proj.weight).T, arr(blk.mlp.c_proj.bias)
        if hasattr(blk.ls_1, "gamma"):
            out[p + "ls_1"], out[p + "ls_2"] = arr(blk.ls_1.gamma), arr(blk.ls_2.gamma)
            layer_scale = True
    proj = model.text_projection
    if proj is None:
        kind = "none"
    elif hasattr(proj, "weight"):
        kind = "linear"
        out["text_projection.wt"] = arr(proj.weight).T
        out["text_projection.b"] = (
            arr(proj.bias) if proj.bias is not None else np.zeros(proj.weight.shape[0], np.float32)
        )
    else:
        kind = "matrix"
        out["text_projection"] = arr(proj)
    return out, kind, layer_scale


def export_text_tower(model, model_cfg: dict, folder: Path, *, quick_gelu: bool, extra: dict | None = None) -> bool:
    """Write ``model``'s text tower (an open_clip CLIP on CPU, float32) into ``folder``.

    The export is checked against the model's own ``encode_text`` before it is
    kept; returns whether it was written (an unsupported tower is not).
    """
    import torch

    why = text_tower_supported(model_cfg)
    if not why and type(model).__name__ != "CLIP":
        why = f"a {type(model).__name__} model"
    if not why and any(type(b.attn).__name__ != "MultiheadAttention" for b in model.transformer.resblocks):
        why = "a custom attention block"
    if why:
        log.info("CLIP text tower not exported (%s); text goes through torch", why)
        return False
    tcfg = model_cfg.get("text_cfg") or {}
    tensors, proj, layer_scale = _text_tensors(model)
    heads = int(model.transformer.resblocks[0].attn.num_heads)
    spec = TextTowerSpec(
        context_length=int(model.context_length),
        width=int(tcfg.get("width", 512)),
        heads=heads,
        layers=len(model.transformer.resblocks),
        dimension=int(model_cfg["embed_dim"]),
        quick_gelu=bool(quick_gelu),
        eps=float(model.ln_final.eps),
        pool_type=str(model.text_pool_type),
        eos_id=int(getattr(model, "text_eos_id", None) or 2),
        clean=str((tcfg.get("tokenizer_kwargs") or {}).get("clean", "lower")),
        layer_scale=layer_scale,
        proj=proj,
    )
    index: dict[str, tuple[int, list[int]]] = {}
    offset = 0
    for name, a in tensors.items():
        index[name] = (offset, list(a.shape))
        offset += a.size
    meta = {"format": EXPORT_FORMAT, "spec": spec.__dict__, "floats": offset, "tensors": index, **(extra or {})}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS_NAME + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        for a in tensors.values():
            fh.write(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    meta_new = folder / (META_NAME + f".new{os.getpid()}")
    meta_new.write_text(json.dumps(meta), "utf-8")
    os.replace(tmp, folder / WEIGHTS_NAME)
    try:  # the check reads the files just written, through the code queries take
        tower = NumpyClipText(folder, meta_new)
        ours = tower.encode(CHECK_TEXTS)
        with torch.inference_mode():
            theirs = model.encode_text(torch.from_numpy(tower.tokenizer(list(CHECK_TEXTS)))).float().numpy()
        err = float(np.abs(ours - _unit(theirs)).max())
    except Exception as exc:
        err, why = float("inf"), f"{type(exc).__name__}: {exc}"
    if not err <= EXPORT_TOLERANCE:
        log.warning("CLIP text export differs from open_clip (%s); not used", why or f"max |diff| {err:.2e}")
        meta_new.unlink(missing_ok=True)
        (folder / WEIGHTS_NAME).unlink(missing_ok=True)
        return False
    os.replace(meta_new, folder / META_NAME)
    log.info("CLIP text tower exported to %s (max |diff| %.1e against open_clip)", folder, err)
    return True


def load_text_tower(folder: Path) -> NumpyClipText | None:
    if not (folder / META_NAME).is_file():
        return None
    try:
        return NumpyClipText(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.info("CLIP text export in %s unusable: %s", folder, exc)
        return None


class ClipTextEncoder:
    """A CLIP model's text tower alone, from its export: same id, checksum and vectors
    as the full encoder, no torch. ``text_only``: callers load the full encoder for photos."""

    supports_text = True
    device = "cpu"
    text_only = True
    cpu_batch = 1
    side_by_side = True

    def __init__(self, record, tower: NumpyClipText) -> None:
        self.id = record.encoder_id
        self.weights_checksum = record.checksum
        self.dimension = int(record.dimension)
        self.image_size = int(record.image_size)
        self._tower = tower

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._tower.encode(list(texts))

    def encode_images(self, images):  # pragma: no cover - callers check text_only
        raise NotImplementedError("the text tower cannot encode photos")


def load_clip_text_encoder(name: str, model_file: Path | str | None = None) -> ClipTextEncoder | None:
    """The torch-free text tower of ``clip[:ARCH[:TAG]]`` / ``model_file``, or None when no
    load of it is remembered with its weights unchanged, or its text tower is not exported
    (the full encoder then answers, and exports it)."""
    from lookalike.core.encoders import checkpoint

    rec = checkpoint.recall_load(name, model_file)
    if rec is None:
        return None
    tower = load_text_tower(checkpoint.export_dir(rec.checksum))
    return ClipTextEncoder(rec, tower) if tower is not None else None
