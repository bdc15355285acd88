"""The indexing pipeline on its own: the last photos of a run are encoded side by side
on the cores the decoders have left, and every vector still lands on its own photo."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from lookalike.core.index.indexer import Indexer
from lookalike.core.store.catalog import Catalog
from lookalike.core.store.vectors import VectorIndex


class ColourEncoder:
    """A vector from each photo's mean colour, recording the threads it ran on."""

    supports_text = False
    device = "cpu"
    image_size = 64
    dimension = 4
    cpu_batch = 1
    side_by_side = True
    uses_torch = False

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


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to encode side by side")
def test_batches_gathered_to_encode_side_by_side_are_committed_one_by_one(tmp_path, catalog):
    """What a kill can lose stays the batch in flight: when the indexer gathers several
    commit batches for the encoder (it is behind the decoders), each is committed as soon
    as it is encoded, and calls start only on the oldest uncommitted batches."""
    colours = _photos(tmp_path / "photos", 48)
    folder = catalog.add_folder(tmp_path / "photos")
    committed = []

    class Counting(ColourEncoder):
        def encode_images(self, images):
            with self._lock:
                self.uncommitted = getattr(self, "uncommitted", []) + [sum(self.sizes) + len(images) - sum(committed)]
            return super().encode_images(images)

    encoder = Counting(delay=0.05)  # far slower than decoding: the decoded photos wait
    encoder.cpu_batch = 4
    indexer = Indexer(catalog, VectorIndex(4), encoder, batch_size=4, workers=2)
    indexer.on_commit = lambda: committed.append(catalog.photo_count() - sum(committed))
    report = indexer.run([folder])
    assert report.added == 48
    assert encoder.most_running >= 2  # calls on two batches ran side by side: they were gathered
    assert max(committed) == 4 and sum(committed) == 48  # one commit a batch
    assert max(encoder.uncommitted) <= 4 * indexer.encode.share.calls_at_once
    _assert_own_vectors(catalog, colours)


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


def test_an_encoder_that_wants_one_call_at_a_time_gets_it(tmp_path, catalog):
    colours = _photos(tmp_path / "photos", 40)
    folder = catalog.add_folder(tmp_path / "photos")
    encoder = ColourEncoder(delay=0.03)
    encoder.side_by_side = False
    report = Indexer(catalog, VectorIndex(4), encoder, batch_size=16).run([folder])
    assert report.added == 40
    assert encoder.most_running == 1
    _assert_own_vectors(catalog, colours)


# -- the steps on their own ----------------------------------------------------------


def _scanned(path, folder_id, size=10, mtime=20):
    from lookalike.core.index.scan import ScannedFile

    return ScannedFile(path, folder_id, size, mtime)


def test_the_plan_tells_new_changed_unchanged_and_gone_photos_apart(tmp_path, catalog):
    from lookalike.core.index.pipeline import make_plan
    from lookalike.core.index.scan import ScanResult
    from lookalike.core.store.catalog import FailureRow, NewPhoto

    folder = catalog.add_folder(tmp_path)
    v = np.ones(4, np.float32)
    same, changed, gone = (tmp_path / n for n in ("same.jpg", "changed.jpg", "gone.jpg"))
    ids = catalog.commit_batch(
        added=[NewPhoto(p, folder.id, 10, 20, h, 1, 1, None, v) for p, h in ((same, "a"), (changed, "b"), (gone, "c"))]
    )
    bad, bad_edited, bad_gone = (tmp_path / n for n in ("bad.jpg", "bad2.jpg", "bad3.jpg"))
    catalog.commit_batch(failures=[FailureRow(p, folder.id, "damaged", 10, 20) for p in (bad, bad_edited, bad_gone)])
    new = tmp_path / "new.jpg"
    found = ScanResult(
        files=[
            _scanned(same, folder.id),
            _scanned(changed, folder.id, mtime=21),
            _scanned(new, folder.id),
            _scanned(bad, folder.id),
            _scanned(bad_edited, folder.id, size=11),
        ],
        scanned=[folder],
    )
    plan = make_plan(found, catalog, keep_unchanged=True)
    assert [(j.file.path, j.old_id, j.old_hash) for j in plan.jobs] == [
        (changed, ids[1], "b"),
        (new, None, None),
        (bad_edited, None, None),  # a failure is tried again once its file changed, not before
    ]
    assert plan.unchanged == {ids[0]: same} and plan.unchanged_count == 1
    assert plan.gone == {ids[2]: "c"} and plan.gone_by_hash() == {"c": ids[2]}
    assert plan.stale_failures == [bad_gone]
    # Without stages to feed, the unchanged photos are only counted.
    assert make_plan(found, catalog).unchanged == {}


def test_each_decode_outcome_lands_in_its_batch(tmp_path):
    from lookalike.core.index.imaging import decode_file
    from lookalike.core.index.pipeline import Batches, Job, Outcome, Sizes, Tally, Views

    twin = tmp_path / "twin.png"
    Image.new("RGB", (40, 30), "red").save(twin)
    decoded = Views({64: decode_file(twin, 64)})
    tally = Tally()
    batches = Batches({"h-moved": 7}, Sizes.of(64), tally)
    batches.take(Outcome(Job(_scanned(tmp_path / "a.jpg", 1), old_id=1), vanished=True))
    batches.take(Outcome(Job(_scanned(tmp_path / "b.jpg", 1), old_id=2), error="damaged"))
    batches.take(Outcome(Job(_scanned(tmp_path / "c.jpg", 1, size=5, mtime=6), old_id=3), "h", same_content=True))
    batches.take(Outcome(Job(_scanned(tmp_path / "moved.jpg", 1)), "h-moved", reuse=True))
    batches.take(Outcome(Job(_scanned(twin, 1)), "h-moved", reuse=True))  # the same content again: a new photo
    batches.take(Outcome(Job(_scanned(tmp_path / "d.png", 1)), "h-d", decoded=decoded))
    rows = batches.take_rows()
    assert rows.vanished == [1] and rows.vanished_paths == [tmp_path / "a.jpg"]
    assert [(f.path, f.reason) for f in rows.failures] == [(tmp_path / "b.jpg", "damaged")] and rows.dropped == [2]
    assert rows.touched == [(3, 5, 6)]
    assert [(m.photo_id, m.file.path) for m in rows.moved] == [(7, tmp_path / "moved.jpg")]
    ready = batches.take_ready()
    assert [(r.job.file.path, r.hash) for r in ready] == [(twin, "h-moved"), (tmp_path / "d.png", "h-d")]
    assert ready[0].decoded.at(64).image.size == decoded.at(64).image.size == (40, 30)
    assert (tally.removed, tally.failed, tally.moved) == (1, 1, 1)
    assert len(batches.take_rows()) == 0 and batches.take_ready() == []


def test_the_cpu_share_follows_the_encoders_preferences(monkeypatch):
    from lookalike.core.index.stages import CpuShare

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    encoder = ColourEncoder()
    encoder.cpu_batch = 8
    share = CpuShare.for_encoder(encoder, None, None)
    assert (share.batch_size, share.encode_chunk, share.encode_threads, share.workers) == (16, 8, 4, 5)
    monkeypatch.setenv("LOOKALIKE_ENCODE_CHUNK", "3")
    assert CpuShare.for_encoder(encoder, 32, 2) == CpuShare(32, 3, 4, 2)
    encoder.device = "cuda:0"  # a GPU: whole batches, no thread share, decoders on all but one core
    assert CpuShare.for_encoder(encoder, None, None) == CpuShare(128, 128, None, 7)


def test_each_stage_gets_the_photo_near_its_own_size_from_one_decode():
    from lookalike.core.index.imaging import DecodedPhoto
    from lookalike.core.index.pipeline import Sizes, fit

    photo = DecodedPhoto(Image.new("RGB", (1008, 756), "blue"), 4032, 3024, None)
    # Halved while the short side stays at least the size asked for (as the JPEG draft
    # scales would have done), then scaled down when still over twice it.
    assert fit(photo, 224).image.size == (504, 378)
    assert fit(photo, 700) is photo
    assert fit(photo, 64).image.size == (126, 95)  # an eighth at most, as the codec
    assert fit(photo, 32).image.size == (42, 32)
    assert (fit(photo, 32).width, fit(photo, 32).height) == (4032, 3024)
    assert Sizes.of(224, 0, 700, 224).sizes == (700, 224) and Sizes.of().sizes == (224,)


def test_the_encoder_warms_up_aside_only_when_a_run_has_photos_for_it(tmp_path, catalog):
    """A run with photos to encode starts what the encoder loads on its first photo (the
    CLIP image tower) on a thread of its own, before the photos are decoded, saying how
    many photos the run has; a
    run that finds nothing new neither loads the encoder nor warms it up."""

    class Warming(ColourEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.warmed_on: list[str] = []
            self.warm_done = threading.Event()

        def warm_up(self, photos: int = 0) -> None:
            self.warmed_on.append(threading.current_thread().name)
            self.photos = photos
            self.warm_done.set()

    colours = _photos(tmp_path / "photos", 5)
    folder = catalog.add_folder(tmp_path / "photos")
    made: list[Warming] = []

    def load() -> Warming:
        made.append(Warming())
        return made[-1]

    assert Indexer(catalog, VectorIndex(4), load).run([folder]).added == 5
    assert len(made) == 1 and made[0].warmed_on == ["encoder-warm-up"]
    assert made[0].photos == 5  # how many photos the run has for it (CLIP picks its tower by that)
    _assert_own_vectors(catalog, colours)
    indexer = Indexer(catalog, VectorIndex(4), load)
    assert indexer.run([folder]).unchanged == 5
    assert len(made) == 1  # nothing new: no model loaded, nothing warmed
    assert indexer.encode._warming is None
