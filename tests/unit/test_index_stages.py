"""The indexer's stage seam, with a toy stage that records each photo's decoded size:
it sees the decoded image (no decode of its own), its rows commit with the photos,
a cancelled run resumes, deletions reach it, and photos indexed before it existed
get it on the next run."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest
from PIL import Image

import lookalike.core.index.pipeline as pipeline
from lookalike.core.index.indexer import Indexer
from lookalike.core.index.stages import PhotoStage
from lookalike.core.progress import CancelToken, Stage
from lookalike.core.store.catalog import Catalog
from lookalike.core.store.vectors import VectorIndex

SIZES_TABLE = (
    "CREATE TABLE IF NOT EXISTS sizes (photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE, "
    "w INTEGER NOT NULL, h INTEGER NOT NULL, ow INTEGER NOT NULL, oh INTEGER NOT NULL)"
)


class MeanEncoder:
    """A vector from each photo's mean colour; counts the photos it saw."""

    supports_text = False
    device = "cpu"
    image_size = 64
    dimension = 4
    cpu_batch = 4
    side_by_side = True
    uses_torch = False

    def __init__(self) -> None:
        self.seen = 0
        self.short_sides: set[int] = set()
        self._lock = threading.Lock()

    def encode_images(self, images) -> np.ndarray:
        with self._lock:
            self.seen += len(images)
            self.short_sides.update(min(im.size) for im in images)
        rows = [np.array([*np.asarray(im, np.float32).mean((0, 1)), 40.0], np.float32) for im in images]
        return np.stack([r / np.linalg.norm(r) for r in rows])


class SizeStage(PhotoStage[tuple[int, int, int, int]]):
    """Records the decoded image's size and the original's, per photo."""

    stage = Stage.FACES
    image_size = 150

    def __init__(self, cancel_after: int | None = None, cancel: CancelToken | None = None) -> None:
        self.processed: list[str] = []
        self.forgotten: list[int] = []
        self.committed_ids: list[int] = []
        self.write_checks: list[tuple[bool, int, int]] = []
        self._cancel_after, self._cancel = cancel_after, cancel
        self.fail_on_write = False
        self.prepared_after: list[int] = []  # photos processed when prepare() was called

    def prepare(self):
        self.prepared_after.append(len(self.processed))

    def process(self, photos, cancel):
        out = []
        for p in photos:
            if cancel.cancelled:
                break
            img = p.decoded.image
            out.append((img.width, img.height, p.decoded.width, p.decoded.height))
            self.processed.append(p.path.name)
            if self._cancel_after is not None and len(self.processed) >= self._cancel_after:
                self._cancel.cancel()
        return out

    def write(self, conn, ids, outputs):
        if self.fail_on_write:
            raise RuntimeError("the stage's write failed")
        marks = ",".join("?" * len(ids))
        rows_here = conn.execute(f"SELECT COUNT(*) FROM photos WHERE id IN ({marks})", list(ids)).fetchone()[0]
        self.write_checks.append((conn.in_transaction, rows_here, len(ids)))
        conn.executemany(
            "INSERT OR REPLACE INTO sizes(photo_id, w, h, ow, oh) VALUES(?,?,?,?,?)",
            [(i, *o) for i, o in zip(ids, outputs)],
        )

    def pending(self, conn):
        return {r[0] for r in conn.execute("SELECT id FROM photos WHERE id NOT IN (SELECT photo_id FROM sizes)")}

    def forget(self, ids):
        self.forgotten.extend(ids)

    def committed(self, ids, outputs):
        self.committed_ids.extend(ids)


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch):
    monkeypatch.setenv("LOOKALIKE_THREADS", "1")
    monkeypatch.delenv("LOOKALIKE_ENCODE_CHUNK", raising=False)


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite3")
    with cat.transaction() as conn:
        conn.execute(SIZES_TABLE)
    yield cat
    cat.close()


def _photos(folder, n):
    folder.mkdir(exist_ok=True)
    for i in range(n):
        Image.new("RGB", (640, 480), (i * 6 % 256, 255 - i * 5, (i * 37) % 256)).save(folder / f"p{i:02d}.png")
    return folder


def _sizes(catalog) -> dict[str, tuple[int, int, int, int]]:
    with catalog.transaction() as conn:
        rows = conn.execute("SELECT p.path, s.w, s.h, s.ow, s.oh FROM sizes s JOIN photos p ON p.id = s.photo_id")
        return {bytes(r[0]).decode().rsplit("/", 1)[1]: tuple(r[1:]) for r in rows}


def test_a_stage_sees_each_decoded_image_once_and_commits_with_its_photos(tmp_path, catalog, monkeypatch):
    folder = catalog.add_folder(_photos(tmp_path / "photos", 20))
    decodes = []
    real_decode = pipeline.decode_bytes
    monkeypatch.setattr(pipeline, "decode_bytes", lambda *a, **kw: decodes.append(1) or real_decode(*a, **kw))
    other_reader = sqlite3.connect(tmp_path / "catalog.sqlite3")
    outside: list[int] = []

    class Peeking(SizeStage):
        def write(self, conn, ids, outputs):
            super().write(conn, ids, outputs)
            # Not visible to another reader until the transaction commits.
            outside.append(other_reader.execute("SELECT COUNT(*) FROM sizes").fetchone()[0])

    stage = Peeking()
    encoder = MeanEncoder()
    report = Indexer(catalog, VectorIndex(4), encoder, batch_size=8, stages=[stage]).run([folder])
    other_reader.close()
    assert report.added == 20 and report.refreshed == 0
    assert len(decodes) == 20  # one decode a photo, for the encoder and the stage together
    assert stage.prepared_after == [0]  # made ready once, before the first photo
    sizes = _sizes(catalog)
    assert len(sizes) == 20 and sorted(stage.processed) == sorted(sizes)
    # Decoded at the size the stage asked for (larger than the encoder's), the original's size kept;
    # the encoder gets its own smaller copy, as a decode at its size would have been.
    assert set(sizes.values()) == {(200, 150, 640, 480)}
    assert encoder.short_sides and all(64 <= s <= 128 for s in encoder.short_sides)
    # write() ran inside the photos' transaction: the rows were there, uncommitted.
    assert all(in_tx and here == n for in_tx, here, n in stage.write_checks)
    batch_sizes = [n for _, _, n in stage.write_checks]
    assert outside == [sum(batch_sizes[:i]) for i in range(len(batch_sizes))] and len(outside) >= 2
    assert sorted(stage.committed_ids) == sorted(catalog.all_ids().tolist())


def test_a_failing_stage_write_rolls_back_the_photos_of_its_batch(tmp_path, catalog):
    folder = catalog.add_folder(_photos(tmp_path / "photos", 12))

    class FailsSecondBatch(SizeStage):
        def write(self, conn, ids, outputs):
            self.fail_on_write = bool(self.write_checks)
            super().write(conn, ids, outputs)

    stage = FailsSecondBatch()
    with pytest.raises(RuntimeError):
        Indexer(catalog, VectorIndex(4), MeanEncoder(), batch_size=8, workers=1, stages=[stage]).run([folder])
    assert catalog.photo_count() == 8 == len(_sizes(catalog))


def test_a_cancel_inside_the_stage_resumes_on_the_next_run(tmp_path, catalog):
    folder = catalog.add_folder(_photos(tmp_path / "photos", 40))
    cancel = CancelToken()
    vectors = VectorIndex(4)
    first_stage = SizeStage(cancel_after=5, cancel=cancel)
    first = Indexer(catalog, vectors, MeanEncoder(), batch_size=16, stages=[first_stage]).run([folder], cancel=cancel)
    assert first.cancelled
    # The batch in flight is committed: all its photos, the stage's output for the first five.
    assert 5 <= first.added == catalog.photo_count() == len(vectors) < 40
    assert len(_sizes(catalog)) == 5
    second_stage = SizeStage()
    encoder = MeanEncoder()
    second = Indexer(catalog, vectors, encoder, batch_size=16, stages=[second_stage]).run([folder])
    assert second.added == 40 - first.added and second.refreshed == first.added - 5 and not second.cancelled
    assert encoder.seen == 40 - first.added  # the photos committed before are not encoded again
    assert len(_sizes(catalog)) == 40
    assert sorted(first_stage.processed + second_stage.processed) == sorted(
        p.name for p in (tmp_path / "photos").iterdir()
    )


def test_a_stage_learns_of_deleted_photos_and_moved_ones_keep_their_output(tmp_path, catalog):
    photos = _photos(tmp_path / "photos", 6)
    folder = catalog.add_folder(photos)
    vectors = VectorIndex(4)
    Indexer(catalog, vectors, MeanEncoder(), stages=[SizeStage()]).run([folder])
    gone_id = catalog.photo_by_path(photos / "p00.png").id
    moved_id = catalog.photo_by_path(photos / "p01.png").id
    changed_id = catalog.photo_by_path(photos / "p02.png").id
    (photos / "p00.png").unlink()
    (photos / "p01.png").rename(photos / "renamed.png")
    Image.new("RGB", (300, 200), "white").save(photos / "p02.png")

    stage = SizeStage()
    report = Indexer(catalog, vectors, MeanEncoder(), stages=[stage]).run([folder])
    assert report.removed == 1 and report.moved == 1 and report.updated == 1
    assert gone_id in stage.forgotten and changed_id in stage.forgotten and moved_id not in stage.forgotten
    sizes = _sizes(catalog)
    assert "p00.png" not in sizes  # its row went with the photo (ON DELETE CASCADE)
    assert sizes["renamed.png"] == (200, 150, 640, 480)  # moved: same id, output kept, not processed again
    assert sizes["p02.png"] == (300, 200, 300, 200)  # changed: a new photo, processed again
    assert stage.processed == ["p02.png"]
    with catalog.transaction() as conn:
        assert conn.execute("SELECT COUNT(*) FROM sizes WHERE photo_id = ?", (gone_id,)).fetchone()[0] == 0


def test_photos_indexed_before_a_stage_existed_get_it_on_the_next_run(tmp_path, catalog):
    folder = catalog.add_folder(_photos(tmp_path / "photos", 20))
    vectors = VectorIndex(4)
    Indexer(catalog, vectors, MeanEncoder()).run([folder])
    assert _sizes(catalog) == {}

    loads = []

    def load():
        loads.append(1)
        return MeanEncoder()

    events = []
    stage = SizeStage()
    report = Indexer(catalog, vectors, load, batch_size=8, stages=[stage]).run([folder], progress=events.append)
    assert report.refreshed == 20 and report.added == 0 and report.unchanged == 20
    assert loads == []  # no model is loaded for a stage's catch-up
    assert set(_sizes(catalog).values()) == {(200, 150, 640, 480)}
    faces = [e for e in events if e.stage is Stage.FACES]
    assert faces and faces[-1].done == faces[-1].total == 20
    # Nothing is left for the stage: the run after that decodes nothing.
    idle = SizeStage()
    again = Indexer(catalog, vectors, load, stages=[idle]).run([folder])
    assert again.refreshed == 0 and again.unchanged == 20
    assert idle.prepared_after == [] and stage.prepared_after == [0]
