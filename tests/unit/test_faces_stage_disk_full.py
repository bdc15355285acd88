"""A full disk met on the faces stage's own thread stops the run with its message, in
the indexer's flow: no traceback from the thread, and the photos stay pending."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from lookalike.core.errors import DiskFullError
from lookalike.core.faces.stage import FaceStage
from lookalike.core.index.imaging import DecodedPhoto
from lookalike.core.index.stages import StagePhoto
from lookalike.core.progress import CancelToken


class NoFaces:
    def analyse(self, image: Image.Image, source_size: tuple[int, int] | None = None) -> list:
        return []


class FullCatalog:
    """Every write fails as a full disk makes the catalog fail."""

    writes = 0

    @contextmanager
    def transaction(self):
        self.writes += 1
        raise DiskFullError("The disk is full: the last changes were not saved. Free some space and index again.")
        yield  # pragma: no cover


def _photo(name: str) -> StagePhoto:
    img = Image.new("RGB", (64, 48), (120, 80, 40))
    return StagePhoto(Path(name), DecodedPhoto(img, 64, 48, None))


def _stage(catalog: FullCatalog, found: list) -> FaceStage:
    return FaceStage(NoFaces, "test-model", 200, catalog, lambda ids, faces: found.append(ids), lambda ids: None)


def _wait_for_thread(stage: FaceStage) -> None:
    thread = stage._thread
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()


@pytest.mark.parametrize("raised_by", ["drain", "process"])
def test_a_full_disk_on_the_face_thread_is_raised_in_the_main_flow(caplog, raised_by):
    caplog.set_level(logging.INFO)
    catalog, found = FullCatalog(), []
    stage = _stage(catalog, found)
    cancel = CancelToken()
    tokens = stage.process([_photo("a.jpg"), _photo("b.jpg")], cancel)
    stage.write(None, [1, 2], tokens)  # the photos' rows, committed
    stage.committed([1, 2], tokens)
    _wait_for_thread(stage)  # it found the faces, could not write them, and stopped
    assert catalog.writes == 1 and found == []
    with pytest.raises(DiskFullError, match="disk is full"):
        if raised_by == "process":
            stage.process([_photo("c.jpg")], cancel)
        else:
            stage.drain()
    assert catalog.writes == 1  # nothing tried again after the disk was full
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
