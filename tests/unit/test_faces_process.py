"""The face model run in a child process (as the window runs it) finds what it finds in process."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.core.faces.isolated import ProcessFaceModel, start_face_model
from lookalike.core.faces.loading import load_face_model
from lookalike.core.faces.model import FaceModel
from tests.photos import FACES


def _open(rel: str) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(FACES / rel)).convert("RGB")


@pytest.mark.slow
def test_the_child_process_gives_the_same_faces_as_the_model_in_process():
    if not (FACES / "labels.json").exists():
        pytest.skip(f"the face test photos are not at {FACES}")
    photos = list(json.loads((FACES / "labels.json").read_text())["photos"])[:3]
    here = load_face_model()
    child = start_face_model(here.working_size)
    try:
        assert isinstance(child, ProcessFaceModel) and isinstance(child, FaceModel)
        assert child.record == here.record
        for rel in photos:
            image = _open(rel)
            mine, theirs = here.analyse(image), child.analyse(image)
            assert len(theirs) == len(mine) > 0, rel
            for a, b in zip(mine, theirs):
                assert (a.box, a.landmarks, a.quality, a.size_px) == (b.box, b.landmarks, b.quality, b.size_px)
                np.testing.assert_array_equal(a.vector, b.vector)
        assert child.analyse(Image.new("RGB", (20, 400))) == []  # no face fits: answered here
        # A child that dies (killed, or crashed in dlib) is replaced: the next photo still gets its faces.
        os.kill(child._pool.submit(os.getpid).result(), signal.SIGKILL)
        again = child.analyse(_open(photos[0]))
        assert [f.box for f in again] == [f.box for f in here.analyse(_open(photos[0]))]
    finally:
        child.close()
