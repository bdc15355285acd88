"""A face-embedding network the user supplies as ONNX: dlib's faces, the user's vectors,
under an id and checksum of its own that never mix with dlib's. The networks here
have random weights, made by the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.core.errors import LookalikeError
from lookalike.core.faces.loading import load_face_model
from lookalike.core.faces.model import FACE_MODEL_ENV, DlibFaceModel, working_array
from lookalike.core.faces.onnx_model import ARCFACE_EYES, OnnxFaceModel, eye_aligned_chip
from tests.photos import FACES

GROUP = FACES / "groups" / "obama_and_biden.jpg"


def _linear_model(path: Path, size: int, dim: int, *, nchw: bool = True, seed: int = 0) -> np.ndarray:
    """An ONNX network chip -> Flatten -> MatMul(W) with random W; returns W (flattened
    in the layout of the chip it takes)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).normal(size=(3 * size * size, dim)).astype(np.float32)
    shape = ["n", 3, size, size] if nchw else ["n", size, size, 3]
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["chip"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "w"], ["vec"])],
        "random_face_net",
        [helper.make_tensor_value_info("chip", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("vec", TensorProto.FLOAT, ["n", dim])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w


@pytest.fixture(scope="module")
def group() -> Image.Image:
    if not GROUP.exists():
        pytest.skip(f"the face test photos are not at {FACES}")
    return ImageOps.exif_transpose(Image.open(GROUP)).convert("RGB")


def _eyes(face, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray([(x * w, y * h) for x, y in face.landmarks])
    return tuple(sorted((pts[0:2].mean(0), pts[2:4].mean(0)), key=lambda p: p[0]))  # type: ignore[return-value]


def test_a_users_model_finds_dlibs_faces_and_gives_its_own_vectors(tmp_path, group):
    from lookalike.core.runtime.models import file_sha256

    path = tmp_path / "arcface-like.onnx"
    w = _linear_model(path, 112, 32)
    model = OnnxFaceModel(path)
    dlib_faces = DlibFaceModel().analyse(group)
    faces = model.analyse(group)
    assert len(faces) == len(dlib_faces) >= 2
    arr = working_array(group, model.working_size)
    h, wd = arr.shape[:2]
    for mine, theirs in zip(faces, dlib_faces):
        assert (mine.box, mine.landmarks, mine.quality) == (theirs.box, theirs.landmarks, theirs.quality)
        assert mine.vector.shape == (32,) and abs(float(np.linalg.norm(mine.vector)) - 1.0) < 1e-5
        # The vector is the network on the eye-aligned chip, fed as (pixel - 127.5) / 127.5, RGB, NCHW.
        chip = eye_aligned_chip(arr, *_eyes(mine, wd, h), 112)
        x = ((chip.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1).reshape(-1)
        want = x @ w
        assert np.allclose(mine.vector, want / np.linalg.norm(want), atol=1e-4)
    rec = model.record
    assert rec.name == "onnx" and rec.dimension == 32 and rec.weights_checksum == file_sha256(path)
    assert rec.model_id.startswith("onnx-arcface-like-") and rec.model_id != DlibFaceModel().record.model_id
    assert model.threshold == pytest.approx(1.12)


def test_settings_beside_the_model_change_how_a_chip_is_fed_and_are_part_of_its_checksum(tmp_path, group):
    path = tmp_path / "sface-like.onnx"
    w = _linear_model(path, 150, 16, nchw=False, seed=1)
    plain = OnnxFaceModel(path)
    path.with_suffix(".json").write_text(
        json.dumps({"channels": "bgr", "mean": 0, "std": 1, "align": "dlib", "normalize": False, "threshold": 0.9})
    )
    model = OnnxFaceModel(path)
    assert model.weights_checksum != plain.weights_checksum and model.id != plain.id
    assert model.threshold == 0.9
    import dlib

    from lookalike.core.faces.model import _MODEL_FILES, model_folder

    arr = working_array(group, model.working_size)
    face = model.analyse(group)[0]
    # Its chip is dlib's 150 px chip (the same as the default model embeds), fed raw in BGR, NHWC.
    landmarks = dlib.shape_predictor(str(model_folder() / _MODEL_FILES["landmarks"]))
    h, wd = arr.shape[:2]
    x0, y0, x1, y1 = face.box
    rect = dlib.rectangle(round(x0 * wd), round(y0 * h), round(x1 * wd) - 1, round(y1 * h) - 1)
    chip = dlib.get_face_chip(arr, landmarks(arr, rect), size=150, padding=0.25)
    want = chip[..., ::-1].astype(np.float32).reshape(-1) @ w
    assert np.allclose(face.vector, want, rtol=1e-4, atol=1e-2)


def test_the_eye_aligned_chip_puts_the_eyes_where_the_template_has_them():
    arr = np.zeros((400, 500, 3), np.uint8)
    left, right = np.array([180.0, 220.0]), np.array([290.0, 170.0])  # a tilted, off-centre face
    for x, y in (left, right):
        arr[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2] = 255
    chip = eye_aligned_chip(arr, left, right, 112)
    grey = chip.astype(float).sum(2)
    for ex, ey in ARCFACE_EYES:
        y, x = np.unravel_index(np.argmax(grey[int(ey) - 8 : int(ey) + 9, int(ex) - 8 : int(ex) + 9]), (17, 17))
        assert abs(x - 8 + int(ex) - ex) <= 1.5 and abs(y - 8 + int(ey) - ey) <= 1.5


def test_the_user_chooses_the_model_and_a_library_of_dlib_faces_refuses_it(tmp_path, monkeypatch):
    from lookalike.core.faces.people import ModelMismatchError, People
    from lookalike.core.store.library import Library

    path = tmp_path / "mine.onnx"
    _linear_model(path, 112, 24)
    library = Library(tmp_path / "lib", writer=True, create=True)
    try:
        assert People(library).model().record.model_id == "dlib-resnet-v1"  # recorded with dlib's
        monkeypatch.setenv(FACE_MODEL_ENV, str(path))
        chosen = load_face_model()
        assert isinstance(chosen, OnnxFaceModel) and chosen.dimension == 24
        with pytest.raises(ModelMismatchError, match="cannot mix"):
            People(library).model()
    finally:
        library.close()


def test_a_file_that_is_not_a_face_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("not a network")
    with pytest.raises(LookalikeError, match="not a usable ONNX model"):
        OnnxFaceModel(bad)
    with pytest.raises(LookalikeError, match="does not exist"):
        OnnxFaceModel(tmp_path / "missing.onnx")
    with pytest.raises(LookalikeError, match="unknown face model"):
        load_face_model("resnet-9000")
    path = tmp_path / "m.onnx"
    _linear_model(path, 112, 8)
    path.with_suffix(".json").write_text(json.dumps({"colour": "bgr"}))
    with pytest.raises(LookalikeError, match="unknown settings"):
        OnnxFaceModel(path)


@pytest.mark.slow
def test_in_the_window_the_users_model_runs_in_a_child_process_with_the_same_faces(tmp_path, group):
    from lookalike.core.faces.isolated import ProcessFaceModel, start_face_model

    path = tmp_path / "child.onnx"
    _linear_model(path, 112, 20)
    here = OnnxFaceModel(path)
    child = start_face_model(here.working_size, here.detector_name, str(path))
    try:
        assert isinstance(child, ProcessFaceModel)
        assert child.record == here.record and child.threshold == here.threshold and child.dimension == 20
        a, b = here.analyse(group), child.analyse(group)
        assert [f.box for f in a] == [f.box for f in b]
        assert np.allclose(np.stack([f.vector for f in a]), np.stack([f.vector for f in b]), atol=1e-6)
    finally:
        child.close()


@pytest.mark.slow
def test_a_library_indexed_with_the_users_model_keeps_its_faces_under_its_id(tmp_path, monkeypatch, offline_encoder):
    import shutil

    from lookalike.core.engine import SearchEngine

    rels = ["obama/obama.jpg", "obama/obama2.jpg", "groups/obama_and_biden.jpg"]
    if not all((FACES / r).exists() for r in rels):
        pytest.skip("no face test photos")
    photos = tmp_path / "photos"
    for rel in rels:
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(FACES / rel, photos / rel)
    path = tmp_path / "mine.onnx"
    _linear_model(path, 112, 24, seed=3)
    monkeypatch.setenv(FACE_MODEL_ENV, str(path))
    expected_id = OnnxFaceModel(path).id
    with SearchEngine.open(tmp_path / "lib", writer=True, create=True, model="offline") as engine:
        engine.index([photos])
        people = engine.people()
        assert people.record() is not None and people.record().model_id == expected_id
        assert people.record().dimension == 24
        rows = engine.catalog.query("SELECT model, length(vector) FROM faces")
        assert len(rows) == 5 and {r[0] for r in rows} == {expected_id} and {r[1] for r in rows} == {24 * 4}
        assert len(people.faces_in_photo(photos / "groups" / "obama_and_biden.jpg")) == 3
        assert people.people(include_hidden=True)  # grouped into people, whatever the random vectors say


@pytest.mark.slow
def test_indexing_a_library_of_dlib_faces_with_the_users_model_stops_with_a_clear_error(
    tmp_path, monkeypatch, offline_encoder
):
    import shutil

    from lookalike.core.engine import SearchEngine
    from lookalike.core.errors import ModelMismatchError

    if not (FACES / "obama" / "obama.jpg").exists():
        pytest.skip("no face test photos")
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy2(FACES / "obama" / "obama.jpg", photos / "a.jpg")
    with SearchEngine.open(tmp_path / "lib", writer=True, create=True, model="offline") as engine:
        engine.index([photos])
    path = tmp_path / "mine.onnx"
    _linear_model(path, 112, 24)
    monkeypatch.setenv(FACE_MODEL_ENV, str(path))
    shutil.copy2(FACES / "obama" / "obama2.jpg", photos / "b.jpg")
    with SearchEngine.open(tmp_path / "lib", writer=True, model="offline") as engine:
        with pytest.raises(ModelMismatchError, match="cannot mix"):
            engine.index([photos])
        rows = engine.catalog.query("SELECT model, COUNT(*) FROM faces GROUP BY model")
        assert rows == [("dlib-resnet-v1", 1)]  # the dlib faces are kept; none of the other model's
        scanned = engine.catalog.query("SELECT COUNT(*) FROM face_scans")[0][0]
        assert scanned == 1  # the new photo is not marked as looked at: its faces stay pending
