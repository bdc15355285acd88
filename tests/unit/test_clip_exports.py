"""CLIP after its first load: the exported text tower (numpy) and image tower (ONNX Runtime)
give open_clip's own vectors, a new process answers without importing torch or open_clip,
a bare checkpoint's architecture comes from its shapes without building models, and what
a load found is remembered until the file changes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.core.encoders import checkpoint, clear_cache, clip_text, load_encoder
from lookalike.core.errors import UsageError
from lookalike.core.runtime import models as runtime
from tests.fixtures_models import TINY_CLIP_CONFIG, build_tiny_clip_state
from tests.photos import sample_image

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "a photo of a dog",
    "",
    "  Two   PEOPLE on a beach, at sunset 1999!!",
    "it's what they'd've done",
    "café ☕ &amp; crème brûlée",
    "naïve résumé 東京 タワー",
    "&lt;b&gt; fish &amp;amp; chips",
    "\x00ctrl\x07chars\r\nand tabs\t",
    "emoji 🐶🐱 dog+cat",
    " ".join(["word"] * 100),  # longer than the context: cut as open_clip cuts
    "x" * 300,
]


@pytest.fixture(autouse=True)
def _own_model_cache(monkeypatch):
    """Exports and remembered loads land in each test's own home. The encoders loaded
    before (the session's offline model) are put back afterwards, so later tests still
    share them."""
    from lookalike.core import encoders

    monkeypatch.delenv("LOOKALIKE_MODELS", raising=False)
    before = dict(encoders._cache)
    clear_cache()
    yield
    clear_cache()
    with encoders._cache_lock:
        encoders._cache.update(before)


def _reference_model(cfg: dict = TINY_CLIP_CONFIG, *, quick_gelu: bool = False, seed: int = 0):
    import open_clip
    import torch

    torch.manual_seed(seed)
    model = open_clip.CLIP(**cfg, quick_gelu=quick_gelu).eval()
    if cfg is TINY_CLIP_CONFIG and not quick_gelu:
        model.load_state_dict(build_tiny_clip_state(seed))
    return model


def _open_clip_text(model, texts: list[str]) -> np.ndarray:
    import open_clip
    import torch

    with torch.inference_mode():
        v = model.encode_text(open_clip.get_tokenizer("ViT-B-32")(texts)).float()
    return torch.nn.functional.normalize(v, dim=-1).numpy()


def test_tokenizer_gives_open_clips_tokens_without_torch():
    import open_clip

    ours = clip_text.ClipTokenizer()(TEXTS)
    theirs = open_clip.get_tokenizer("ViT-B-32")(TEXTS).numpy()
    assert ours.dtype == np.int64 and ours.shape == theirs.shape == (len(TEXTS), 77)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    "variant",
    ["plain", "quick_gelu", "layer_scale"],
)
def test_exported_text_tower_gives_open_clips_embeddings(tmp_path, variant):
    cfg = TINY_CLIP_CONFIG
    if variant == "layer_scale":
        cfg = {**cfg, "text_cfg": {**cfg["text_cfg"], "ls_init_value": 0.5}}
    model = _reference_model(cfg, quick_gelu=variant == "quick_gelu")
    if variant == "layer_scale":
        import torch

        with torch.no_grad():  # gammas other than their initial value, so that they matter
            for blk in model.transformer.resblocks:
                blk.ls_1.gamma.uniform_(0.2, 2.0)
                blk.ls_2.gamma.uniform_(0.2, 2.0)
    assert clip_text.export_text_tower(model, cfg, tmp_path, quick_gelu=variant == "quick_gelu")
    ours = clip_text.NumpyClipText(tmp_path).encode(TEXTS)
    theirs = _open_clip_text(model, TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), cfg["embed_dim"])
    assert float(np.abs(ours - theirs).max()) < 1e-4
    # texts differ, and so do their vectors
    assert float(np.abs(ours[0] - ours[2]).max()) > 1e-3


def test_a_tower_it_cannot_compute_is_not_exported(tmp_path):
    model = _reference_model()
    cfg = {**TINY_CLIP_CONFIG, "text_cfg": {**TINY_CLIP_CONFIG["text_cfg"], "no_causal_mask": True}}
    assert clip_text.text_tower_supported(cfg) == "text_cfg.no_causal_mask=True"
    assert not clip_text.export_text_tower(model, cfg, tmp_path, quick_gelu=False)
    assert clip_text.load_text_tower(tmp_path) is None


def test_first_load_exports_and_then_text_and_images_match_open_clip(tiny_clip_checkpoint):
    import torch

    enc = load_encoder("clip", model_file=tiny_clip_checkpoint)
    assert enc.backend == "onnxruntime" and not enc.uses_torch
    folder = checkpoint.export_dir(enc.weights_checksum)
    assert (folder / "text.f32").is_file() and (folder / "image.onnx").is_file()

    model = _reference_model()
    texts = ["a rocket", "a cup of coffee", "café"]
    assert float(np.abs(enc.encode_texts(texts) - _open_clip_text(model, texts)).max()) < 1e-4

    photos = [sample_image("rocket"), sample_image("coffee"), sample_image("cat")]
    x = runtime.images_to_tensor(photos, enc.image_size, enc._mean, enc._std)
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(model.encode_image(x), dim=-1).numpy()
    got = enc.encode_images(photos)
    assert got.shape == (3, TINY_CLIP_CONFIG["embed_dim"])
    assert float(np.abs(got - ref).max()) < 1e-4
    assert float((got * ref).sum(1).min()) > 1 - 1e-6


_CHILD = r"""
import json, sys
from lookalike.core.encoders import load_encoder
from lookalike.core.encoders.clip_text import load_clip_text_encoder
from PIL import Image
tower = load_clip_text_encoder("clip", sys.argv[1])
enc = load_encoder("clip", model_file=sys.argv[1])
out = {
    "tower": tower.encode_texts(["a rocket"]).tolist(),
    "text": enc.encode_texts(["a rocket"]).tolist(),
    "id": enc.id, "checksum": enc.weights_checksum,
    "torch_after_text": "torch" in sys.modules, "open_clip_after_text": "open_clip" in sys.modules,
}
out["image"] = enc.encode_images([Image.open(sys.argv[2]).convert("RGB")]).tolist()
out["torch_after_image"] = "torch" in sys.modules
out["open_clip_after_image"] = "open_clip" in sys.modules
print(json.dumps(out))
"""


def test_a_new_process_answers_from_the_exports_without_torch(tiny_clip_checkpoint, tmp_path):
    enc = load_encoder("clip", model_file=tiny_clip_checkpoint)
    photo = tmp_path / "rocket.jpg"
    sample_image("rocket").save(photo, quality=95)
    from lookalike.core.index.imaging import decode_file

    expected_text = enc.encode_texts(["a rocket"])
    expected_image = enc.encode_images([decode_file(photo, target=enc.image_size).image])
    env = dict(os.environ, PYTHONPATH=str(ROOT / "desktop"))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tiny_clip_checkpoint), str(photo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # nothing on a user's stderr
    out = json.loads(proc.stdout)
    assert not out["torch_after_text"] and not out["open_clip_after_text"]
    assert not out["torch_after_image"] and not out["open_clip_after_image"]
    assert (out["id"], out["checksum"]) == (enc.id, enc.weights_checksum)
    np.testing.assert_allclose(out["tower"], expected_text, atol=1e-6)
    np.testing.assert_allclose(out["text"], expected_text, atol=1e-6)
    # the child decodes with PIL directly; the vectors stay close to the parent's
    assert float((np.asarray(out["image"]) * expected_image).sum()) > 0.99


def test_a_changed_file_is_looked_at_again(tiny_clip_checkpoint, tmp_path):
    import shutil

    path = tmp_path / "copy.pt"
    shutil.copyfile(tiny_clip_checkpoint, path)
    enc = load_encoder("clip", model_file=path)
    assert checkpoint.recall_load("clip", path) is not None
    assert clip_text.load_clip_text_encoder("clip", path) is not None
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    # the remembered load no longer applies: a query cannot use the export on trust
    assert checkpoint.recall_load("clip", path) is None
    assert clip_text.load_clip_text_encoder("clip", path) is None
    clear_cache()
    again = load_encoder("clip", model_file=path)
    assert again is not enc and again.weights_checksum == enc.weights_checksum
    assert checkpoint.recall_load("clip", path) is not None


def test_checksums_are_remembered_by_path_size_and_time(tmp_path):
    import hashlib

    f = tmp_path / "weights.bin"
    f.write_bytes(b"a" * 1000)
    real = hashlib.sha256(f.read_bytes()).hexdigest()
    assert runtime.file_sha256(f) == real
    table_file = runtime.models_dir() / "checksums.json"
    table = json.loads(table_file.read_text())
    (key,) = [k for k in table if k.startswith(str(f.resolve()))]
    # Prove the next answer comes from the table, not from reading the file again.
    table[key] = "0" * 64
    table_file.write_text(json.dumps(table))
    runtime._sha_memo.clear()
    assert runtime.file_sha256(f) == "0" * 64
    f.write_bytes(b"b" * 1000)  # same size, new content and time: hashed again
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert runtime.file_sha256(f) == hashlib.sha256(b"b" * 1000).hexdigest()


@pytest.mark.parametrize("arch", ["ViT-B-32-256", "ViT-B-32", "RN50", "ViT-L-14", "ViT-B-16-plus-240"])
def test_architecture_from_shapes_builds_no_model(arch, monkeypatch):
    import open_clip
    import torch

    from lookalike.core.encoders.clip import infer_architecture

    with torch.device("meta"):
        shapes = checkpoint.state_shapes(
            open_clip.create_model(arch, pretrained=None, device="meta", load_weights=False).state_dict()
        )

    def no_building(*a, **k):
        raise AssertionError("a model was built")

    monkeypatch.setattr(open_clip, "create_model", no_building)
    got = infer_architecture(shapes)
    assert open_clip.get_model_config(got) == open_clip.get_model_config(arch)
    assert "quickgelu" not in got  # the plain architecture of two with the same shapes


def test_safetensors_header_gives_the_shapes_and_a_bare_file_loads_quietly(tmp_path, caplog):
    from safetensors.torch import save_file

    from lookalike.core.encoders.clip import register_config

    state = build_tiny_clip_state()
    path = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    shapes, _ = checkpoint.safetensors_shapes(path)
    assert shapes == checkpoint.state_shapes(state)
    register_config(TINY_CLIP_CONFIG, "tiny-quiet-test")
    with caplog.at_level(logging.INFO):
        enc = load_encoder("clip", model_file=path)
    assert enc.dimension == TINY_CLIP_CONFIG["embed_dim"]
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [r.getMessage() for r in loud]
    # what open_clip said while loading went to our log, at INFO
    assert any(r.name == "lookalike.core.encoders.clip" for r in caplog.records)


def test_a_gpu_asked_for_where_there_is_none_is_a_clear_error(tiny_clip_checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UsageError, match="no CUDA GPU"):
        load_encoder("clip", model_file=tiny_clip_checkpoint, device="cuda")


def test_long_lists_of_texts_are_batched_and_kept(tmp_path):
    model = _reference_model()
    assert clip_text.export_text_tower(model, TINY_CLIP_CONFIG, tmp_path, quick_gelu=False)
    tower = clip_text.NumpyClipText(tmp_path)
    texts = [f"a photo of {w}" for w in ("a dog", "a cat", "the sea", "two old men playing chess")] * 5
    first = tower.encode(texts)
    assert float(np.abs(first - _open_clip_text(model, texts)).max()) < 1e-4
    kept = list(tmp_path.glob("texts-*.npy"))
    assert len(kept) == 1
    np.testing.assert_array_equal(tower.encode(texts), first)
    np.save(kept[0], np.zeros_like(first))  # what comes back is what was kept, not computed again
    assert not tower.encode(texts).any()


def _reference_images(enc, photos):
    import torch

    model = _reference_model()
    x = runtime.images_to_tensor(photos, enc.image_size, enc._mean, enc._std)
    with torch.inference_mode():
        return torch.nn.functional.normalize(model.encode_image(x), dim=-1).numpy()


def test_the_first_load_times_a_bfloat16_tower_and_records_why(tiny_clip_checkpoint):
    from lookalike.core.encoders import clip_image

    enc = load_encoder("clip", model_file=tiny_clip_checkpoint)
    folder = checkpoint.export_dir(enc.weights_checksum)
    decision = clip_image.bf16_decision(folder)
    assert decision is not None
    if not clip_image.bf16_supported():
        assert decision["use"] is False and "bfloat16" in decision["why"]
        assert not (folder / clip_image.BF16_NAME).exists()
        return
    assert (folder / clip_image.BF16_NAME).is_file()
    assert 0 <= decision["max_diff"] <= clip_image.BF16_TOLERANCE
    assert decision["ms_bf16"] > 0 and decision["ms_fp32"] > 0
    assert decision["use"] == (decision["ms_bf16"] <= clip_image.BF16_GAIN * decision["ms_fp32"])


def test_a_large_run_takes_the_bfloat16_tower_and_a_small_one_does_not(tiny_clip_checkpoint, monkeypatch):
    from lookalike.core.encoders import clip_image

    if not clip_image.bf16_supported():
        pytest.skip("this CPU has no native bfloat16: the float32 tower is the only one")
    # the tiny test model is too small for bfloat16 to be measured faster: ask for it
    monkeypatch.setenv("LOOKALIKE_CLIP_PRECISION", "bf16")
    photos = [sample_image("rocket"), sample_image("coffee"), sample_image("cat")]
    enc = load_encoder("clip", model_file=tiny_clip_checkpoint)
    enc.warm_up(clip_image.BF16_MIN_PHOTOS - 1)
    assert enc.backend == "onnxruntime"
    small = enc.encode_images(photos)
    enc.warm_up(clip_image.BF16_MIN_PHOTOS)
    assert enc.backend == "torch-bf16"
    large = enc.encode_images(photos)
    ref = _reference_images(enc, photos)
    assert float(np.abs(small - ref).max()) < 1e-4
    assert 0 < float(np.abs(large - ref).max()) <= clip_image.BF16_TOLERANCE  # bfloat16, not float32
    assert float((large * ref).sum(1).min()) > 0.999


def test_float32_is_kept_when_asked(tiny_clip_checkpoint, monkeypatch):
    from lookalike.core.encoders import clip_image

    monkeypatch.setenv("LOOKALIKE_CLIP_PRECISION", "fp32")
    enc = load_encoder("clip", model_file=tiny_clip_checkpoint)
    enc.warm_up(10 * clip_image.BF16_MIN_PHOTOS)
    assert enc.backend == "onnxruntime"


def test_towers_exported_before_bfloat16_get_it_at_the_first_large_run(tiny_clip_checkpoint, monkeypatch):
    from lookalike.core.encoders import clip_image

    if not clip_image.bf16_supported():
        pytest.skip("this CPU has no native bfloat16")
    enc = load_encoder("clip", model_file=tiny_clip_checkpoint)
    folder = checkpoint.export_dir(enc.weights_checksum)
    for name in (clip_image.BF16_NAME, clip_image.BF16_DECISION):
        (folder / name).unlink()
    clear_cache()
    monkeypatch.setenv("LOOKALIKE_CLIP_PRECISION", "bf16")
    again = load_encoder("clip", model_file=tiny_clip_checkpoint)
    assert again.backend == "onnxruntime"  # from the exports, no open_clip
    again.warm_up(clip_image.BF16_MIN_PHOTOS)
    assert (folder / clip_image.BF16_DECISION).is_file() and (folder / clip_image.BF16_NAME).is_file()
    assert again.backend == "torch-bf16"
    photo = [sample_image("cat")]
    assert float((again.encode_images(photo) * _reference_images(again, photo)).sum()) > 0.999
