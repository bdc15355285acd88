"""MTCNN on ONNX Runtime, the default face detector, against dlib's HOG detector on the
real test photos: the same faces, placed so that their vectors agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.core.errors import LookalikeError
from lookalike.core.faces import mtcnn_net
from lookalike.core.faces.model import MIN_CLUSTER_QUALITY, DlibFaceModel, distances, working_array
from tests.photos import FACES


def _photos() -> list[Path]:
    photos = sorted(p for p in FACES.rglob("*") if p.suffix in (".jpg", ".png"))
    if not photos:
        pytest.skip(f"the face test photos are not at {FACES}")
    return photos


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.slow
def test_mtcnn_finds_the_faces_hog_finds_and_their_vectors_agree():
    hog, mtcnn = DlibFaceModel(detector="hog"), DlibFaceModel(detector="mtcnn")
    assert mtcnn.detector_name == "mtcnn"
    gaps = []
    for photo in _photos():
        image = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
        theirs, ours = hog.analyse(image), mtcnn.analyse(image)
        assert len(ours) == len(theirs), photo.name  # nothing more, nothing less
        for face in theirs:
            match = max(ours, key=lambda f: _iou(face.box, f.box))
            assert _iou(face.box, match.box) > 0.5, photo.name
            if face.quality >= MIN_CLUSTER_QUALITY:
                assert match.quality >= MIN_CLUSTER_QUALITY, photo.name
                gaps.append(float(distances(face.vector, match.vector)[0, 0]))
    # Libraries with faces found by either detector keep one person's faces together:
    # the same face's two vectors are far closer than dlib's 0.6 between people.
    assert len(gaps) >= 19 and max(gaps) < 0.12 and float(np.median(gaps)) < 0.07


def test_a_face_comes_with_five_points_inside_its_box_and_a_dlib_box_around_them():
    photo = FACES / "obama" / "obama.jpg"
    if not photo.exists():
        pytest.skip("no face test photos")
    arr = working_array(ImageOps.exif_transpose(Image.open(photo)), 1024)
    (face,) = mtcnn_net.MtcnnDetector(60).detect(arr)
    x0, y0, x1, y1 = face.box
    assert face.score >= mtcnn_net.MIN_SCORE and 100 < x1 - x0 < arr.shape[1]
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.points
    assert x0 < lx < nx < rx < x1 and y0 < ly < ny < mly < y1 and abs(ly - ry) < 0.1 * (y1 - y0)
    left, top, right, bottom = mtcnn_net.dlib_box(face)
    assert right - left == pytest.approx(bottom - top, abs=1)  # square, as HOG's
    assert left < lx and rx < right and top < ly and max(mly, mry) < bottom


def test_nothing_is_found_in_a_grey_image_or_below_the_smallest_face():
    detector = mtcnn_net.MtcnnDetector(60)
    assert detector.detect(np.full((600, 800, 3), 128, np.uint8)) == []
    assert detector.detect(np.full((40, 50, 3), 128, np.uint8)) == []  # under the smallest face
    with pytest.raises(LookalikeError):
        mtcnn_net.MtcnnDetector(8)


def test_without_the_mtcnn_weights_the_default_model_falls_back_to_hog(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(mtcnn_net, "weights_folder", lambda: tmp_path / "missing")
    model = DlibFaceModel()
    assert model.detector_name == "hog"
    assert "using dlib's HOG detector" in caplog.text
    with pytest.raises(LookalikeError, match="MTCNN"):
        DlibFaceModel(detector="mtcnn")
