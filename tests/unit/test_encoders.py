"""The encoder registry, the Encoder protocol, checkpoints and downloads (no network, ever)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.core.encoders import (
    DEFAULT_ENCODER,
    Encoder,
    available_encoders,
    clear_cache,
    load_encoder,
)
from lookalike.core.errors import ModelUnavailableError, UsageError
from lookalike.core.progress import Cancelled, CancelToken, Stage
from tests.fixtures_models import TINY_CLIP_ARCH, TINY_CLIP_CONFIG, build_tiny_clip_state
from tests.photos import sample_image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_model_cache(monkeypatch):
    """These tests check where model files land: each gets the cache inside its own home."""
    monkeypatch.delenv("LOOKALIKE_MODELS", raising=False)


@pytest.fixture
def no_model_caches(monkeypatch, _private_home):
    """Empty HF / torch caches inside the private home (the developer's are never consulted)."""
    for var in ("HF_HOME", "HF_HUB_CACHE", "TORCH_HOME", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    return _private_home


def assert_unit_rows(x: np.ndarray, n: int, d: int) -> None:
    assert x.shape == (n, d)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


# -- registry --------------------------------------------------------------------


def test_importing_the_registry_loads_no_torch():
    code = (
        "import sys\n"
        "import lookalike.core.encoders as e\n"
        "infos = e.available_encoders()\n"
        "heavy = [m for m in ('torch', 'open_clip', 'torchvision', 'sentence_transformers', 'transformers')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import os\n"
        "assert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'\n"
        "print(','.join(i.name for i in infos))\n"
    )
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "offline,clip,resnet50"


def test_available_encoders_tell_what_works_offline(no_model_caches):
    infos = {i.name: i for i in available_encoders()}
    assert DEFAULT_ENCODER == "offline"
    assert list(infos) == ["offline", "clip", "resnet50"]
    assert infos["offline"].offline and infos["offline"].supports_text
    assert "1000" in infos["offline"].note and "CLIP" in infos["offline"].note
    assert not infos["clip"].offline and infos["clip"].supports_text
    assert not infos["resnet50"].offline and not infos["resnet50"].supports_text


def test_weights_already_in_the_standard_caches_count_as_offline(no_model_caches, monkeypatch):
    from lookalike.core.encoders import clip, resnet

    hub = no_model_caches / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    snap = hub / ("models--" + clip.DEFAULT_HF_REPO.replace("/", "--")) / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "open_clip_model.safetensors").write_bytes(b"x")
    ckpt = resnet.torch_hub_checkpoints()
    ckpt.mkdir(parents=True)
    (ckpt / resnet.WEIGHTS_FILE).write_bytes(b"x")
    infos = {i.name: i for i in available_encoders()}
    assert infos["clip"].offline and infos["resnet50"].offline


def test_unknown_encoder_name_lists_the_valid_ones():
    with pytest.raises(UsageError) as err:
        load_encoder("dalle")
    msg = str(err.value)
    assert "dalle" in msg and "offline" in msg and "clip" in msg and "resnet50" in msg
    with pytest.raises(UsageError):
        load_encoder("offline:big")
    with pytest.raises(UsageError, match="only"):
        load_encoder("offline", model_file="/nowhere.pt")


def test_default_clip_weights_are_where_open_clip_says():
    import open_clip

    from lookalike.core.encoders import clip

    cfg = open_clip.get_pretrained_cfg(clip.DEFAULT_ARCH, clip.DEFAULT_TAG)
    assert cfg["hf_hub"].rstrip("/") == clip.DEFAULT_HF_REPO
    assert open_clip.get_model_config(clip.DEFAULT_ARCH) is not None
    assert clip._sources_for_tag(clip.DEFAULT_ARCH, clip.DEFAULT_TAG)[0] == [
        (clip.DEFAULT_HF_REPO, name) for name in clip.HF_WEIGHT_NAMES
    ]
    hub, _ = clip._sources_for_tag("ViT-B-32", "openai")
    assert hub and all(repo and "/" in repo and name in clip.HF_WEIGHT_NAMES for repo, name in hub)


def test_resnet_weights_are_torchvisions():
    from torchvision.models import ResNet50_Weights

    from lookalike.core.encoders import resnet

    w = ResNet50_Weights.IMAGENET1K_V2
    assert w.url == resnet.WEIGHTS_URL and w.url.endswith(resnet.WEIGHTS_FILE)
    t = w.transforms()
    assert list(t.crop_size) == [resnet.IMAGE_SIZE] and list(t.resize_size) == [resnet.RESIZE_SIZE]


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("clip", (None, None)),
        ("clip:ViT-B-32", ("ViT-B-32", None)),
        ("CLIP:ViT-B-32:laion2b_s34b_b79k", ("ViT-B-32", "laion2b_s34b_b79k")),
    ],
)
def test_clip_names_pick_architecture_and_weights(spec, expected):
    from lookalike.core.encoders.clip import parse_spec

    s = parse_spec(spec)
    assert (s.arch, s.tag) == expected


def test_clip_name_errors_are_usage_errors():
    from lookalike.core.encoders.clip import parse_spec

    for bad in ("clip:", "clip::x", "clip:a:b:c"):
        with pytest.raises(UsageError):
            parse_spec(bad)
    with pytest.raises(UsageError, match="no architecture"):
        load_encoder("clip:NoSuchNet")
    with pytest.raises(UsageError, match="known"):
        load_encoder("clip:ViT-B-32:no_such_tag")


# -- the offline encoder's protocol ----------------------------------------------


def test_offline_encoder_keeps_the_protocol(offline_encoder):
    enc = offline_encoder
    assert isinstance(enc, Encoder)
    assert enc.id == "offline-efficientnet_lite0+minilm-l6-v2"
    assert enc.dimension == 1280 + 384 and enc.image_size == 224 and enc.supports_text
    assert len(enc.weights_checksum) == 64 and int(enc.weights_checksum, 16) >= 0
    assert enc.device == "cpu"
    images = [sample_image("cat"), sample_image("coins").convert("L"), Image.new("RGB", (5, 300), "red")]
    assert_unit_rows(enc.encode_images(images), 3, enc.dimension)
    texts = enc.encode_texts(["a cat", "", "x" * 5000])
    assert_unit_rows(texts, 3, enc.dimension)
    assert not texts[:, :1280].any(), "text lands in the concept part only"
    assert enc.encode_images([]).shape == (0, enc.dimension)
    assert enc.encode_texts([]).shape == (0, enc.dimension)


def test_offline_encoder_is_deterministic_and_batch_independent(offline_encoder):
    imgs = [sample_image("cat"), sample_image("rocket")]
    both = offline_encoder.encode_images(imgs)
    one = offline_encoder.encode_images(imgs[1:])
    np.testing.assert_allclose(both[1], one[0], atol=1e-5)
    texts = offline_encoder.encode_texts(["a cat", "a dog"])
    np.testing.assert_allclose(offline_encoder.encode_texts(["a dog"])[0], texts[1], atol=1e-5)
    assert not np.allclose(texts[0], texts[1]), "different words, different vectors"


def test_offline_network_folded_for_inference_computes_the_same_function(offline_encoder):
    """Batch norms folded into the convolutions, padding moved into them, channels-last:
    the features and class scores are those of the network as published."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    from torch import nn

    from lookalike.core.encoders import offline as off
    from lookalike.core.runtime import models as runtime

    plain = EfficientNet.from_name("efficientnet-lite0")
    plain.load_state_dict(torch.load(str(off.efficientnet_weights_file()), map_location="cpu", weights_only=True))
    plain.eval()
    fast = offline_encoder._net
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    imgs = [sample_image("cat"), sample_image("rocket"), sample_image("coffee")]
    x = runtime.images_to_tensor(imgs, off.IMAGE_SIZE, off.MEAN, off.STD)
    with torch.inference_mode():
        want = plain.extract_features(x).mean((2, 3))
        want_logits = plain._fc(want)
    got, got_logits = offline_encoder.image_parts(imgs)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_logits, want_logits.numpy(), rtol=1e-4, atol=1e-3)
    assert (got_logits.argmax(1) == want_logits.numpy().argmax(1)).all()


def test_loading_twice_gives_the_same_object(offline_encoder):
    assert load_encoder("offline") is offline_encoder
    assert load_encoder() is offline_encoder
    assert load_encoder("offline", device="cpu") is offline_encoder


def test_first_load_reports_progress_and_caches_concepts_on_disk(offline_encoder, _private_home):
    from lookalike.core.encoders import offline as off

    seen = []
    enc = off.OfflineEncoder("cpu", progress=seen.append)  # a fresh load in this test's private home
    assert seen and seen[-1].done == seen[-1].total and all(p.stage is Stage.LOAD_MODEL for p in seen)
    assert any("first run only" in p.note for p in seen)
    path = enc._concept_cache_path()
    assert path.is_file() and path.parent == _private_home / "cache" / "models" / "offline"
    assert not [p for p in path.parent.iterdir() if p.name != path.name], "no temporary files left"
    arr = np.load(path)
    assert arr.shape == (1000, 384) and arr.dtype == np.float32
    assert enc.weights_checksum == offline_encoder.weights_checksum
    np.testing.assert_allclose(enc.encode_texts(["a cat"]), offline_encoder.encode_texts(["a cat"]), atol=1e-5)

    # A damaged cache is recomputed, never trusted: with a cancelled token the
    # recomputation stops at once instead of returning the garbage.
    path.write_bytes(b"garbage")
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        enc._concept_texts(None, token)
    with pytest.raises(Cancelled):
        off.OfflineEncoder("cpu", cancel=token)


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(monkeypatch):
    from lookalike.core.encoders._minilm import MiniLM, bundled_model_dir

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    texts = ["a cat", "A photo of a tabby cat on a sofa!", "", "café au lait", "word " * 400]
    ours = MiniLM().encode(texts)
    ref = SentenceTransformer(str(bundled_model_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


# -- CLIP from a local checkpoint ---------------------------------------------------


def test_tiny_clip_checkpoint_loads_and_encodes(tiny_clip_checkpoint):
    enc = load_encoder("clip", model_file=tiny_clip_checkpoint)
    assert isinstance(enc, Encoder)
    assert enc.dimension == TINY_CLIP_CONFIG["embed_dim"] and enc.image_size == 32 and enc.supports_text
    assert TINY_CLIP_ARCH in enc.id
    assert enc.weights_checksum == hashlib.sha256(tiny_clip_checkpoint.read_bytes()).hexdigest()
    imgs = enc.encode_images([sample_image("cat"), sample_image("coffee"), Image.new("L", (40, 10))])
    assert_unit_rows(imgs, 3, 32)
    texts = enc.encode_texts(["a cat", "a cup of coffee"])
    assert_unit_rows(texts, 2, 32)
    assert not np.allclose(texts[0], texts[1])
    np.testing.assert_allclose(enc.encode_images([sample_image("cat")])[0], imgs[0], atol=1e-5)
    assert load_encoder("clip", model_file=tiny_clip_checkpoint) is enc


def test_hugging_face_layout_and_shape_inference_load_the_same_weights(tiny_clip_checkpoint, tmp_path):
    import torch

    from lookalike.core.encoders.clip import register_config

    reference = load_encoder("clip", model_file=tiny_clip_checkpoint)
    probe = [sample_image("rocket")]
    expected_img = reference.encode_images(probe)
    expected_txt = reference.encode_texts(["a rocket"])
    state = build_tiny_clip_state()

    # A Hugging Face open_clip repository: weights with open_clip_config.json beside them.
    repo = tmp_path / "hf-repo"
    repo.mkdir()
    torch.save(state, repo / "open_clip_pytorch_model.bin")
    (repo / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP_CONFIG}))
    for target in (repo, repo / "open_clip_pytorch_model.bin"):
        enc = load_encoder("clip", model_file=target)
        np.testing.assert_allclose(enc.encode_images(probe), expected_img, atol=1e-5)
        np.testing.assert_allclose(enc.encode_texts(["a rocket"]), expected_txt, atol=1e-5)

    # A bare state dict of an architecture open_clip knows: named, or found by its shapes.
    name = register_config(TINY_CLIP_CONFIG, "tiny-test-registered")
    bare = tmp_path / "bare.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, bare)
    import open_clip

    from lookalike.core.encoders.clip import infer_architecture

    assert open_clip.get_model_config(infer_architecture(state)) == TINY_CLIP_CONFIG
    for spec in (f"clip:{name}", "clip"):
        enc = load_encoder(spec, model_file=bare)
        np.testing.assert_allclose(enc.encode_images(probe), expected_img, atol=1e-5)


def test_bad_checkpoints_are_clear_errors(tmp_path, tiny_clip_checkpoint):
    import torch

    with pytest.raises(ModelUnavailableError, match="does not exist"):
        load_encoder("clip", model_file=tmp_path / "missing.pt")
    junk = tmp_path / "notes.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ModelUnavailableError, match="notes.pt"):
        load_encoder("clip", model_file=junk)
    odd = tmp_path / "odd.pt"
    torch.save({"state_dict": {"weight": torch.zeros(3, 3)}}, odd)
    with pytest.raises(ModelUnavailableError, match="not an open_clip CLIP checkpoint"):
        load_encoder("clip", model_file=odd)
    bare = tmp_path / "tiny-bare.pt"
    torch.save(build_tiny_clip_state(), bare)
    with pytest.raises(ModelUnavailableError, match="does not fit the architecture ViT-S-32-alt"):
        load_encoder("clip:ViT-S-32-alt", model_file=bare)


# -- ResNet-50 ---------------------------------------------------------------------


def test_resnet_from_the_torch_cache_encodes_images_and_refuses_text(no_model_caches):
    import torch
    import torchvision

    from lookalike.core.encoders import resnet

    torch.manual_seed(0)
    ckpt = resnet.torch_hub_checkpoints()
    ckpt.mkdir(parents=True)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), ckpt / resnet.WEIGHTS_FILE)
    enc = load_encoder("resnet50")
    assert isinstance(enc, Encoder) and not enc.supports_text
    assert_unit_rows(enc.encode_images([sample_image("cat"), sample_image("coins")]), 2, 2048)
    with pytest.raises(UsageError) as err:
        enc.encode_texts(["a cat"])
    assert "image-only" in str(err.value) and "offline" in str(err.value) and "CLIP" in str(err.value)
    clear_cache()


# -- downloads ------------------------------------------------------------------------


@pytest.fixture
def blocked_network(monkeypatch):
    """Every outgoing connection fails at once (names resolve, connects do not)."""

    def fake_getaddrinfo(host, port, *a, **k):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.7", port or 443))]

    def refuse(self, address):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("name,host", [("clip", "huggingface.co"), ("resnet50", "download.pytorch.org")])
def test_download_fails_clearly_offline(no_model_caches, blocked_network, name, host):
    with pytest.raises(ModelUnavailableError) as err:
        load_encoder(name)
    msg = str(err.value)
    assert "\n" not in msg and host in msg and "out of reach" in msg
    assert "network is unreachable" in msg
    assert ("--model-file" in msg) if name == "clip" else ("offline" in msg)


def test_download_stall_times_out(no_model_caches, monkeypatch):
    from lookalike.core.runtime import download as _download

    def stall(self, address):
        raise TimeoutError("timed out")

    monkeypatch.setattr(
        socket, "getaddrinfo", lambda h, p, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.7", 443))]
    )
    monkeypatch.setattr(socket.socket, "connect", stall)
    with pytest.raises(ModelUnavailableError, match="timed out"):
        _download.fetch("https://example.invalid/w.bin", no_model_caches / "w.bin", what="test weights")
    assert not (no_model_caches / "w.bin").exists()


@pytest.fixture
def local_server(tmp_path):
    """A loopback HTTP server serving ``payload`` at /w.bin (404 elsewhere)."""
    payload = bytes(range(256)) * 4096 * 3  # 3 MiB, several chunks

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/w.bin":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", payload
    srv.shutdown()
    srv.server_close()


def test_fetch_downloads_with_progress_and_checksum(local_server, tmp_path):
    from lookalike.core.runtime import download as _download

    base, payload = local_server
    seen = []
    sha = hashlib.sha256(payload).hexdigest()
    out = _download.fetch(
        f"{base}/w.bin", tmp_path / "d" / "w.bin", what="test weights", sha256_prefix=sha[:8], progress=seen.append
    )
    assert out.read_bytes() == payload
    assert seen[-1].done == len(payload) == seen[-1].total
    with pytest.raises(_download.NotFoundOnServer):
        _download.fetch(f"{base}/nope.bin", tmp_path / "nope.bin", what="test weights")
    with pytest.raises(ModelUnavailableError, match="damaged"):
        _download.fetch(f"{base}/w.bin", tmp_path / "bad.bin", what="test weights", sha256_prefix="00000000")
    assert not (tmp_path / "bad.bin").exists() and not (tmp_path / "nope.bin").exists()


def test_fetch_can_be_cancelled_and_leaves_nothing(local_server, tmp_path):
    from lookalike.core.runtime import download as _download

    base, _ = local_server
    token = CancelToken()

    def cancel_on_first(p):
        if p.done > 0:
            token.cancel()

    with pytest.raises(Cancelled):
        _download.fetch(
            f"{base}/w.bin", tmp_path / "w.bin", what="test weights", progress=cancel_on_first, cancel=token
        )
    assert list(tmp_path.iterdir()) == []


def test_resnet_encoder_folded_for_inference_computes_the_same_function(tmp_path):
    """ResNet-50 loaded from a weights file (random, with batch-norm statistics that make
    the folding matter) gives the pooled features of torchvision's network as is."""
    import torch
    import torchvision

    from lookalike.core.encoders import resnet
    from lookalike.core.runtime import models as runtime

    torch.manual_seed(0)
    plain = torchvision.models.resnet50(weights=None)
    for m in plain.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    weights = tmp_path / "resnet50.pth"
    torch.save(plain.state_dict(), weights)
    enc = resnet.ResNetEncoder("cpu", weights=weights)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in enc._net.modules())
    imgs = [sample_image("cat"), sample_image("rocket")]
    plain.fc = torch.nn.Identity()
    plain.eval()
    x = runtime.images_to_tensor(
        imgs,
        resnet.IMAGE_SIZE,
        runtime.IMAGENET_MEAN,
        runtime.IMAGENET_STD,
        resize_size=resnet.RESIZE_SIZE,
        interpolation="bilinear",
    )
    with torch.inference_mode():
        want = torch.nn.functional.normalize(plain(x), dim=-1).numpy()
    got = enc.encode_images(imgs)
    assert got.shape == (2, resnet.DIMENSION)
    np.testing.assert_allclose(got, want, atol=1e-4)
