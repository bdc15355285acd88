"""dlib's face ResNet read from its weights file and run by ONNX Runtime: the same
vectors as dlib's own code on the real test photos, a cached graph, clear failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.core.faces import dlib_net
from lookalike.core.faces.model import _MODEL_FILES, DEFAULT_WORKING_SIZE, DlibFaceModel, model_folder, working_array
from tests.photos import FACES


def _weights() -> Path:
    return model_folder() / _MODEL_FILES["embedding"]


@pytest.fixture(scope="module")
def chips() -> list[np.ndarray]:
    """Every face of the test photos, aligned by dlib as the face model aligns them."""
    import dlib

    photos = sorted(p for p in FACES.rglob("*") if p.suffix in (".jpg", ".png"))
    if not photos:
        pytest.skip(f"the face test photos are not at {FACES}")
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(model_folder() / _MODEL_FILES["landmarks"]))
    out = []
    for p in photos:
        arr = working_array(ImageOps.exif_transpose(Image.open(p)), DEFAULT_WORKING_SIZE)
        for rect in detector.run(arr, 0, -0.2)[0]:
            out.append(dlib.get_face_chip(arr, landmarks(arr, rect), size=150, padding=0.25))
    return out


@pytest.mark.slow
def test_onnx_vectors_equal_dlibs_on_every_test_face(chips):
    import dlib

    assert len(chips) >= 20  # every labelled face, and the unlabelled child
    reference = np.asarray(dlib.face_recognition_model_v1(str(_weights())).compute_face_descriptor(chips))
    ours = dlib_net.OnnxFaceEmbedder(_weights()).embed(chips)
    assert ours.shape == reference.shape == (len(chips), 128)
    assert np.abs(ours - reference).max() <= 1e-4
    # One at a time gives the same as a batch.
    assert np.abs(dlib_net.OnnxFaceEmbedder(_weights()).embed(chips[:1])[0] - reference[0]).max() <= 1e-4


def test_the_network_reads_as_dlibs_resnet():
    net = dlib_net.read_dlib_resnet(_weights())
    kinds = [layer.kind for layer in net.layers]
    assert net.input_size == 150
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert kinds[-1] == "fc" and net.layers[-1].ints == (256, 128)
    assert np.allclose(net.mean_rgb, (122.782, 117.001, 104.298), atol=1e-3)


def test_the_graph_is_cached_by_the_weights_checksum_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_MODELS", str(tmp_path / "models"))
    path = dlib_net.ensure_onnx(_weights())
    assert isinstance(path, Path) and path.parent == tmp_path / "models" / "faces"
    stamp = path.stat().st_mtime_ns
    assert dlib_net.ensure_onnx(_weights()) == path and path.stat().st_mtime_ns == stamp  # read, not rebuilt
    chip = np.full((150, 150, 3), 128, np.uint8)
    good = dlib_net.OnnxFaceEmbedder(_weights()).embed([chip])
    path.write_bytes(b"not an onnx graph")
    again = dlib_net.OnnxFaceEmbedder(_weights()).embed([chip])
    assert np.array_equal(good, again)
    assert path.stat().st_size > 20_000_000


def test_a_damaged_weights_file_is_a_clear_error(tmp_path):
    data = _weights().read_bytes()
    bad = tmp_path / "cut.dat"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(dlib_net.DlibNetError, match="unexpected dlib network file"):
        dlib_net.read_dlib_resnet(bad)
    other = tmp_path / "landmarks.dat"
    other.write_bytes((model_folder() / _MODEL_FILES["landmarks"]).read_bytes()[:4096])
    with pytest.raises(dlib_net.DlibNetError):
        dlib_net.read_dlib_resnet(other)


@pytest.mark.slow
def test_the_face_model_finds_the_same_faces_with_either_embedding():
    photo = FACES / "groups" / "obama_and_biden.jpg"
    if not photo.exists():
        pytest.skip("no face test photos")
    image = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
    fast = DlibFaceModel(embedding="onnx").analyse(image)
    slow = DlibFaceModel(embedding="dlib").analyse(image)
    assert len(fast) == len(slow) >= 2
    for a, b in zip(fast, slow):
        assert a.box == b.box and a.quality == b.quality
        assert np.abs(a.vector - b.vector).max() <= 1e-4


def test_the_detector_read_back_from_its_saved_copy_finds_the_same_faces(tmp_path, monkeypatch):
    import dlib

    from lookalike.core.faces.model import _frontal_detector

    photo = FACES / "groups" / "kit_with_rose.jpg"
    if not photo.exists():
        pytest.skip("no face test photos")
    monkeypatch.setenv("LOOKALIKE_MODELS", str(tmp_path / "models"))
    arr = working_array(ImageOps.exif_transpose(Image.open(photo)), DEFAULT_WORKING_SIZE)
    built = _frontal_detector(dlib)  # built from dlib's own copy, and saved
    saved = list((tmp_path / "models" / "faces").glob("dlib-*-frontal-face-detector.svm"))
    assert len(saved) == 1
    read = _frontal_detector(dlib)  # read back from the saved copy
    a, b = built.run(arr, 0, -0.2), read.run(arr, 0, -0.2)
    assert len(a[0]) == len(b[0]) >= 2
    assert [str(r) for r in a[0]] == [str(r) for r in b[0]] and np.allclose(a[1], b[1]) and list(a[2]) == list(b[2])
    saved[0].write_bytes(b"damaged")
    again = _frontal_detector(dlib)  # a damaged copy: built again
    assert [str(r) for r in again.run(arr, 0, -0.2)[0]] == [str(r) for r in a[0]]
