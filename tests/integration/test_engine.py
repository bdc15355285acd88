"""The engine end to end on real photos with the offline model: index, search, keep current."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from PIL import Image

from lookalike.core.engine import SearchEngine
from lookalike.core.errors import LibraryLockedError, LookalikeError, ModelMismatchError, QueryError
from lookalike.core.store.vectors import VectorIndex

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(tmp_path):
    eng = SearchEngine.open(tmp_path / "lib", writer=True)
    yield eng
    eng.close()


def names(results):
    return [r.path.name for r in results]


def test_text_queries_rank_the_right_photo_first(engine, photo_dir):
    report = engine.index([photo_dir])
    assert report.added == 8 and report.failed == 0
    assert names(engine.search("a cat", k=3))[0] == "cat.jpg"
    assert names(engine.search("a cup of coffee", k=3))[0] == "coffee.jpg"
    assert names(engine.search("a motorcycle", k=3))[0] == "motorcycle.jpg"
    scores = [r.score for r in engine.search("a cat", k=8)]
    assert scores == sorted(scores, reverse=True)


def test_image_query_and_arithmetic(engine, photo_dir, tmp_path):
    engine.index([photo_dir])
    # An altered copy (crop, flip, recompress) outside the library finds its original.
    img = Image.open(photo_dir / "rocket.jpg")
    w, h = img.size
    img.crop((w // 10, h // 10, w - w // 10, h - h // 10)).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        tmp_path / "query.jpg", quality=60
    )
    assert names(engine.search(str(tmp_path / "query.jpg"), k=2))[0] == "rocket.jpg"
    # "more like this" on a photo already indexed reuses its stored vector.
    res = engine.search(str(photo_dir / "coffee.jpg"), k=1)
    assert names(res) == ["coffee.jpg"] and res[0].score == pytest.approx(1.0, abs=1e-4)
    # Subtracting a concept pushes its photo down.
    base = names(engine.search(f"{photo_dir / 'astronaut.jpg'}", k=8))
    minus = names(engine.search(f"{photo_dir / 'astronaut.jpg'} - rocket", k=8))
    assert minus.index("rocket.jpg") > base.index("rocket.jpg")


def test_second_run_is_incremental_and_follows_changes(engine, photo_dir):
    engine.index([photo_dir])
    again = engine.index()
    assert (again.encoded, again.unchanged) == (0, 8)

    # A rename keeps its vector: no encode.
    os.rename(photo_dir / "cat.jpg", photo_dir / "chelsea the cat.jpg")
    moved = engine.index()
    assert (moved.moved, moved.encoded, moved.removed) == (1, 0, 0)
    assert names(engine.search("a cat", k=1)) == ["chelsea the cat.jpg"]

    # A changed photo is encoded again; a deleted one leaves the results.
    Image.open(photo_dir / "clock.jpg").rotate(90, expand=True).save(photo_dir / "clock.jpg")
    future = time.time() + 5
    os.utime(photo_dir / "clock.jpg", (future, future))
    (photo_dir / "coins.jpg").unlink()
    changed = engine.index()
    assert changed.updated == 1 and changed.removed == 1 and changed.encoded == 1
    assert "coins.jpg" not in names(engine.search("old coins", k=8))
    assert engine.status().photos == 7


def test_bad_files_are_listed_not_fatal(engine, photo_dir):
    (photo_dir / "empty.jpg").write_bytes(b"")
    (photo_dir / "page.jpg").write_text("<!doctype html><html><body>not a photo</body></html>")
    data = (photo_dir / "coffee.jpg").read_bytes()
    (photo_dir / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (photo_dir / ".hidden.jpg").write_bytes(data)
    (photo_dir / "._cat.jpg").write_bytes(b"resource fork")
    report = engine.index([photo_dir])
    assert report.added == 8
    reasons = {f.path.name: f.reason for f in engine.failures()}
    assert set(reasons) == {"empty.jpg", "page.jpg", "truncated.jpg"}
    assert "empty" in reasons["empty.jpg"]
    assert "HTML" in reasons["page.jpg"]
    assert "truncated" in reasons["truncated.jpg"] or "damaged" in reasons["truncated.jpg"]
    # Unchanged bad files are not retried on every run.
    assert engine.index().failed == 0


def test_excludes_and_folder_restriction(engine, photo_dir):
    sub = photo_dir / "space"
    sub.mkdir()
    for n in ("rocket", "astronaut", "galaxies"):
        shutil.move(photo_dir / f"{n}.jpg", sub / f"{n}.jpg")
    (photo_dir / "drafts").mkdir()
    shutil.copy(sub / "rocket.jpg", photo_dir / "drafts" / "rocket-copy.jpg")
    engine.index([photo_dir], excludes=["drafts"])
    assert engine.status().photos == 8
    inside = engine.search("a cat", k=10, folder=sub)
    assert {r.path.parent for r in inside} == {sub} and len(inside) == 3
    assert all(r.score >= 0.3 for r in engine.search("a cat", k=10, min_score=0.3))


def test_one_writer_at_a_time_readers_welcome(engine, photo_dir, tmp_path):
    engine.index([photo_dir])
    with pytest.raises(LibraryLockedError, match="being updated by another Lookalike"):
        SearchEngine.open(tmp_path / "lib", writer=True)
    with SearchEngine.open(tmp_path / "lib") as reader:
        assert names(reader.search("a cat", k=1)) == ["cat.jpg"]
        with pytest.raises(LookalikeError):
            reader.index([photo_dir])


def test_another_model_is_refused(engine, photo_dir, tmp_path, tiny_clip_checkpoint):
    engine.index([photo_dir])
    engine.close()
    with pytest.raises(ModelMismatchError, match="never mix"):
        with SearchEngine.open(tmp_path / "lib", model_file=tiny_clip_checkpoint, writer=True) as other:
            other.index()


def test_graph_is_repaired_from_the_catalog(engine, photo_dir, tmp_path):
    engine.index([photo_dir])
    engine.close()
    graph = tmp_path / "lib" / VectorIndex.GRAPH
    graph.write_bytes(b"\0" * 100)
    with SearchEngine.open(tmp_path / "lib") as reader:
        assert names(reader.search("a cat", k=1)) == ["cat.jpg"]


def test_bad_query_points_at_the_column(engine, photo_dir):
    engine.index([photo_dir])
    with pytest.raises(QueryError) as err:
        engine.search("cat + ")
    assert err.value.column >= 4
    with pytest.raises(QueryError, match="no such file"):
        engine.search("./nowhere/x.jpg")


def test_folder_offline_keeps_its_photos(engine, photo_dir, tmp_path):
    engine.index([photo_dir])
    away = tmp_path / "unplugged"
    os.rename(photo_dir, away)
    report = engine.index()
    assert report.removed == 0 and photo_dir in report.offline_folders
    assert engine.status().photos == 8
    assert [f.online for f in engine.folders()] == [False]
    os.rename(away, photo_dir)
    back = engine.index()
    assert back.encoded == 0 and [f.online for f in engine.folders()] == [True]
