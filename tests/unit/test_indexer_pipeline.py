"""The indexing pipeline on its own: the last photos of a run are encoded side by side
on the cores the decoders have left, and every vector still lands on its own photo."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from lookalike.core.catalog import Catalog
from lookalike.core.indexer import Indexer
from lookalike.core.vectors import VectorIndex


class ColourEncoder:
    """A vector from each photo's mean colour, recording the threads it ran on."""

    supports_text = False
    device = "cpu"
    image_size = 64
    dimension = 4
    cpu_batch = 1
    side_by_side = True

    def __init__(self, delay: float = 0.0) -> None:
        self.threads: list[str] = []
        self.sizes: list[int] = []
        self.delay = delay
        self.running = self.most_running = 0
        self._lock = threading.Lock()

    @staticmethod
    def vector(rgb) -> np.ndarray:
        v = np.array([*rgb, 40.0], np.float32)
        return v / np.linalg.norm(v)

    def encode_images(self, images) -> np.ndarray:
        with self._lock:
            self.threads.append(threading.current_thread().name)
            self.sizes.append(len(images))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(self.delay)
            return np.stack([self.vector(np.asarray(im.convert("RGB"), np.float32).mean((0, 1))) for im in images])
        finally:
            with self._lock:
                self.running -= 1


def _photos(folder, n):
    folder.mkdir()
    colours = {}
    for i in range(n):
        rgb = (i * 6 % 256, 255 - i * 5, (i * 37) % 256)
        path = folder / f"p{i:02d}.png"
        Image.new("RGB", (80, 60), rgb).save(path)
        colours[path] = rgb
    return colours


def _assert_own_vectors(catalog, colours) -> None:
    for path, rgb in colours.items():
        np.testing.assert_allclose(catalog.vector(catalog.photo_by_path(path).id), ColourEncoder.vector(rgb), atol=1e-3)


@pytest.fixture(autouse=True)
def _torch_threads_left_alone(monkeypatch):
    monkeypatch.setenv("LOOKALIKE_THREADS", "1")  # leave torch's thread count alone
    monkeypatch.delenv("LOOKALIKE_ENCODE_CHUNK", raising=False)


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite3")
    yield cat
    cat.close()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to encode side by side")
def test_the_last_photos_are_encoded_in_parallel_and_keep_their_own_vectors(tmp_path, catalog):
    colours = _photos(tmp_path / "photos", 40)
    folder = catalog.add_folder(tmp_path / "photos")
    encoder = ColourEncoder(delay=0.03)
    indexer = Indexer(catalog, VectorIndex(4), encoder, batch_size=16)
    report = indexer.run([folder])
    assert report.added == 40 and report.failed == 0
    # The decoders (fast here) run out of photos while the encoder is still busy:
    # its calls then run side by side on the encode threads.
    assert encoder.most_running >= 2
    assert any(name.startswith("encode") for name in encoder.threads)
    _assert_own_vectors(catalog, colours)
    assert indexer.encode._pool is None  # the encode threads are gone with the run


@pytest.mark.parametrize("cpu_batch", [1, 4])
def test_photos_go_to_the_encoder_in_the_size_it_asks_for(tmp_path, catalog, cpu_batch):
    colours = _photos(tmp_path / "photos", 20)
    folder = catalog.add_folder(tmp_path / "photos")
    encoder = ColourEncoder()
    encoder.cpu_batch = cpu_batch
    report = Indexer(catalog, VectorIndex(4), encoder, batch_size=16).run([folder])
    assert report.added == 20
    assert max(encoder.sizes) == cpu_batch and sum(encoder.sizes) == 20
    _assert_own_vectors(catalog, colours)


def test_cancel_stops_between_encoder_calls_and_the_next_run_finishes(tmp_path, catalog):
    """A cancel during a batch stops after the calls already running; what they encoded
    is committed, the rest is left for the next run, which then finishes the folder."""
    from lookalike.core.progress import CancelToken

    colours = _photos(tmp_path / "photos", 40)
    folder = catalog.add_folder(tmp_path / "photos")
    cancel = CancelToken()

    class Cancelling(ColourEncoder):
        def encode_images(self, images):
            out = super().encode_images(images)
            if len(self.sizes) >= 3:
                cancel.cancel()
            return out

    encoder = Cancelling()
    encoder.cpu_batch = 2
    vectors = VectorIndex(4)
    first = Indexer(catalog, vectors, encoder, batch_size=16).run([folder], cancel=cancel)
    assert first.cancelled and 0 < first.added < 40
    assert catalog.photo_count() == first.added == len(vectors)
    second = Indexer(catalog, vectors, ColourEncoder(), batch_size=16).run([folder])
    assert second.added == 40 - first.added and not second.cancelled
    _assert_own_vectors(catalog, colours)
