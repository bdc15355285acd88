"""The offline model's network in ONNX Runtime gives the torch network's vectors."""

from __future__ import annotations

import numpy as np
import pytest

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


def _tiny_graph(path) -> np.ndarray:
    """A MatMul + GELU graph with a weight large enough to go to the weights file."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["pixels", "w"], ["h"]), helper.make_node("Relu", ["h"], ["features"])],
        "tiny",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 64])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 32])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w


def test_the_optimized_graph_is_kept_once_and_gives_the_same_outputs(tmp_path):
    from lookalike.core.runtime import models as runtime

    path = tmp_path / "image.onnx"
    w = _tiny_graph(path)
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    want = np.maximum(x @ w, 0)
    first, _ = runtime.onnx_cpu_session(path, 1)
    optimized = runtime.optimized_onnx_path(path)
    assert optimized.is_file()
    weights = list(tmp_path.glob(f"{optimized.stem}.*.data"))
    assert len(weights) == 1  # the graph's weights in their own file, mapped on later starts
    assert optimized.stat().st_size < weights[0].stat().st_size
    before = optimized.stat().st_mtime_ns
    second, _ = runtime.onnx_cpu_session(path, 1)
    assert optimized.stat().st_mtime_ns == before  # taken as saved, not made again
    for session in (first, second):
        assert np.allclose(session.run(None, {"pixels": x})[0], want, atol=1e-5)
    # a damaged saved graph is dropped, the export answers and the graph is saved anew
    optimized.write_bytes(b"not a graph")
    third, _ = runtime.onnx_cpu_session(path, 1)
    assert np.allclose(third.run(None, {"pixels": x})[0], want, atol=1e-5)
    assert len(list(tmp_path.glob(f"{optimized.stem}.*.data"))) == 1
    assert runtime.onnx_cpu_session(path, 1)[0].run(None, {"pixels": x})[0].shape == (3, 32)


def test_an_export_being_checked_leaves_no_optimized_graph(tmp_path):
    from lookalike.core.runtime import models as runtime

    path = tmp_path / "image.onnx.tmp1"
    _tiny_graph(path)
    runtime.onnx_cpu_session(path, 1, keep_optimized=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.onnx.tmp1"]


_INDEX_AND_REPORT_TORCH = """
import sys
from lookalike.cli import main
rc = main(sys.argv[1:])
print("torch imported" if "torch" in sys.modules else "no torch")
raise SystemExit(rc)
"""


@pytest.mark.slow
def test_indexing_with_the_offline_model_on_cpu_never_imports_torch(tmp_path):
    """Once the network is exported (the first load), photos go through ONNX Runtime and
    numpy alone: an index run does not pay torch's import."""
    import subprocess
    import sys

    from tests.photos import write_samples

    folder = tmp_path / "photos"
    write_samples(folder, ["cat", "coffee"])
    cmd = [sys.executable, "-c", _INDEX_AND_REPORT_TORCH, "index", str(folder), "--library", str(tmp_path / "lib")]
    cmd += ["--model", "offline", "--device", "cpu", "-q"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    write_samples(folder, ["rocket"])
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "1 added" in second.stderr
    assert second.stdout.strip() == "no torch"
