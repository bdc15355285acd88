"""The offline model's text side without torch: MiniLM in numpy.

A text query on the offline model needs only MiniLM (six small transformer
layers) and the concept mean. Importing torch costs seconds per process
(`lookalike bench`: the floor of a cold `lookalike search`), while this
numpy forward pass answers a query in milliseconds. So the command line and
the window search text with this, and load the full encoder only when a photo
has to be encoded. Its vectors equal the torch encoder's to float precision
(a test compares them), and it reports the same id and weights checksum.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lookalike.core.encoders import offline
from lookalike.core.encoders._minilm import MAX_TOKENS, bundled_model_dir
from lookalike.core.encoders.base import l2_normalize
from lookalike.core.runtime.nn import gelu as _gelu
from lookalike.core.runtime.nn import layer_norm as _layer_norm

log = logging.getLogger(__name__)


class NumpyMiniLM:
    """all-MiniLM-L6-v2 (mean pooling, unit length) as plain numpy."""

    def __init__(self, model_dir: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        d = Path(model_dir or bundled_model_dir())
        cfg = json.loads((d / "config.json").read_text("utf-8"))
        self.tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=int(cfg.get("pad_token_id", 0)), pad_token="[PAD]")
        w = {k: v.astype(np.float32, copy=False) for k, v in load_file(str(d / "model.safetensors")).items()}
        self.heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.dimension = int(cfg["hidden_size"])
        e = "embeddings."
        self.word = w[e + "word_embeddings.weight"]
        self.pos = w[e + "position_embeddings.weight"]
        self.segment0 = w[e + "token_type_embeddings.weight"][0]
        self.ln = (w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"])
        self.layers = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."

            def lin(name: str, p: str = p) -> tuple[np.ndarray, np.ndarray]:
                # The transposed view: BLAS multiplies by it as it is, no copy of the weights.
                return w[p + name + ".weight"].T, w[p + name + ".bias"]

            self.layers.append(
                dict(
                    q=lin("attention.self.query"),
                    k=lin("attention.self.key"),
                    v=lin("attention.self.value"),
                    o=lin("attention.output.dense"),
                    ln1=(w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                    up=lin("intermediate.dense"),
                    down=lin("output.dense"),
                    ln2=(w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        enc = self.tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in enc], dtype=np.int64)
        keep = np.asarray([e.attention_mask for e in enc], dtype=np.float32)
        b, n = ids.shape
        h, dh = self.heads, self.dimension // self.heads
        x = _layer_norm(self.word[ids] + self.pos[:n][None] + self.segment0, *self.ln, self.eps)
        bias = np.where(keep > 0, 0.0, -1e30).astype(np.float32)[:, None, None, :]
        for L in self.layers:

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(b, n, h, dh).transpose(0, 2, 1, 3)

            q = split(x @ L["q"][0] + L["q"][1])
            k = split(x @ L["k"][0] + L["k"][1])
            v = split(x @ L["v"][0] + L["v"][1])
            s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            a = (s / s.sum(-1, keepdims=True)) @ v
            a = a.transpose(0, 2, 1, 3).reshape(b, n, self.dimension)
            x = _layer_norm(x + a @ L["o"][0] + L["o"][1], *L["ln1"], self.eps)
            f = _gelu(x @ L["up"][0] + L["up"][1]) @ L["down"][0] + L["down"][1]
            x = _layer_norm(x + f, *L["ln2"], self.eps)
        pooled = (x * keep[..., None]).sum(1) / np.maximum(keep.sum(1, keepdims=True), 1e-9)
        return l2_normalize(pooled)


class OfflineTextEncoder:
    """The offline encoder's text tower alone: same id, checksum and vectors, no torch."""

    id = offline.ENCODER_ID
    supports_text = True
    image_size = offline.IMAGE_SIZE
    dimension = offline.VISUAL_DIM + offline.CONCEPT_DIM
    device = "cpu"
    text_only = True

    def __init__(self, concept_mean: np.ndarray, weights_checksum: str) -> None:
        self.weights_checksum = weights_checksum
        self._mean = concept_mean.astype(np.float32)
        self._model = NumpyMiniLM()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if texts:
            q = self._model.encode(texts) - self._mean
            out[:, offline.VISUAL_DIM :] = l2_normalize(q)
        return l2_normalize(out)

    def encode_images(self, images):  # pragma: no cover - callers check text_only
        raise NotImplementedError("the text tower cannot encode photos")


_cached: OfflineTextEncoder | None = None


def load_offline_text_encoder() -> OfflineTextEncoder | None:
    """The torch-free text tower, or None when its concept cache is not built yet
    (the full encoder builds it on first load)."""
    global _cached
    if _cached is not None:
        return _cached
    if not offline.is_available():
        return None
    checksum = offline.recipe_checksum()
    path = offline.concept_cache_path(checksum)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if arr.shape != (1000, offline.CONCEPT_DIM) or not np.isfinite(arr).all():
        return None
    _cached = OfflineTextEncoder(arr.mean(0), checksum)
    return _cached
