"""The face model on real photos: what is found, where, and how good it is."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

from lookalike.core.faces.loading import load_face_model
from lookalike.core.faces.model import MIN_CLUSTER_QUALITY, FaceModel, distances
from lookalike.core.index.imaging import decode_bytes
from tests.photos import FACES


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return load_face_model()


@pytest.fixture(scope="module")
def labels() -> dict[str, list[str]]:
    if not (FACES / "labels.json").exists():
        pytest.skip(f"the face test photos are not at {FACES}")
    return json.loads((FACES / "labels.json").read_text())["photos"]


def _open(rel: str) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(FACES / rel)).convert("RGB")


def test_the_model_is_the_protocol_and_records_itself(model):
    assert isinstance(model, FaceModel)
    rec = model.record
    assert rec.model_id == "dlib-resnet-v1" and rec.dimension == 128 and len(rec.weights_checksum) == 32


@pytest.mark.slow
def test_every_labelled_face_is_found(model, labels):
    for rel, who in labels.items():
        faces = model.analyse(_open(rel))
        assert len(faces) >= len(who), rel
        good = [f for f in faces if f.quality >= MIN_CLUSTER_QUALITY]
        assert len(good) == len(who), (rel, [f.quality for f in faces])
        for f in faces:
            x0, y0, x1, y1 = f.box
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
            assert f.vector.shape == (128,) and f.vector.dtype == np.float32
            assert len(f.landmarks) == 5
        assert [f.box[0] for f in faces] == sorted(f.box[0] for f in faces)  # left to right


def test_same_person_is_near_other_people_far(model):
    if not FACES.exists():
        pytest.skip("no face test photos")
    a = model.analyse(_open("obama/obama.jpg"))[0].vector
    b = model.analyse(_open("obama/obama2.jpg"))[0].vector
    c = model.analyse(_open("kit_harington/kit1.jpg"))[0].vector
    d = distances(np.stack([a]), np.stack([b, c]))[0]
    assert d[0] < model.threshold < d[1]


def test_a_face_in_an_exif_rotated_portrait_is_found_where_it_is(model):
    if not FACES.exists():
        pytest.skip("no face test photos")
    upright = _open("rose_leslie/rose2.jpg")
    # Stored sideways, as a phone held in portrait writes it: orientation 6 means
    # "rotate 90 degrees clockwise to view", so the pixels are turned the other way.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=92, exif=exif.tobytes())
    decoded = decode_bytes(buf.getvalue(), 700)
    assert decoded.image.size[0] < decoded.image.size[1]  # portrait again
    found = model.analyse(decoded.image)
    assert len(found) == 1 and found[0].quality >= MIN_CLUSTER_QUALITY
    expected = model.analyse(upright)[0].box
    assert np.allclose(found[0].box, expected, atol=0.03)


def test_nothing_to_find(model):
    assert model.analyse(Image.new("RGB", (1, 1), (200, 10, 10))) == []
    assert model.analyse(Image.new("RGB", (1600, 1200), (128, 128, 128))) == []
    assert model.analyse(Image.new("L", (40, 30), 0)) == []
    import skimage.data

    for name in ("coffee", "rocket", "coins"):
        arr = np.asarray(getattr(skimage.data, name)())
        img = Image.fromarray(arr).convert("RGB")
        assert model.analyse(img) == [], name


def test_blurred_and_tiny_faces_are_kept_out_of_grouping(model):
    if not FACES.exists():
        pytest.skip("no face test photos")
    photo = _open("obama/obama.jpg")
    sharp = model.analyse(photo)[0]
    assert sharp.quality >= MIN_CLUSTER_QUALITY
    blurred = model.analyse(photo.filter(ImageFilter.GaussianBlur(4)))
    assert blurred and all(f.quality < MIN_CLUSTER_QUALITY for f in blurred)
    # The same face farther and farther away: a face small enough that its aligned
    # chip is an upsampled blur is kept out; every face kept in is recognisable.
    for k in (3, 4, 5, 6, 8):
        small = photo.resize((photo.width // k, photo.height // k))
        frame = Image.new("RGB", (1024, 768), (90, 100, 110))
        frame.paste(small, (100, 100))
        for f in model.analyse(frame):
            if f.quality >= MIN_CLUSTER_QUALITY:
                assert distances(f.vector[None], sharp.vector[None])[0, 0] < 0.5 * model.threshold
            if k >= 6:
                assert f.quality < MIN_CLUSTER_QUALITY
