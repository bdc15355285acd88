"""The offline model's network in ONNX Runtime gives the torch network's vectors."""

from __future__ import annotations

import numpy as np

from tests.photos import sample_image


def test_onnx_runtime_and_torch_give_the_same_photo_vectors(offline_encoder):
    enc = offline_encoder
    assert enc._onnx is not None  # on CPU with ONNX Runtime installed, photos go through it
    photos = [sample_image(n) for n in ("cat", "coffee", "rocket", "astronaut")]
    fast = enc.encode_images(photos)
    parts_fast = enc.image_parts(photos)
    onnx, enc._onnx = enc._onnx, None
    try:
        ref = enc.encode_images(photos)
        parts_ref = enc.image_parts(photos)
    finally:
        enc._onnx = onnx
    assert fast.shape == ref.shape == (4, enc.dimension)
    assert float(np.abs(fast - ref).max()) < 1e-5
    for a, b in zip(parts_fast, parts_ref, strict=True):
        assert float(np.abs(a - b).max()) < 1e-4
    # and the photos still differ from one another
    assert float((fast[0] * fast[1]).sum()) < 0.99
