"""Keywords people already gave their photos (embedded XMP, IPTC, digiKam/darktable and
Lightroom sidecars), made here by exiftool, read as user tags at index time without
writing the photo; and `tag export --xmp` sidecars read back by exiftool."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from lookalike.core.learning.keywords import export_sidecars, read_keywords, sidecar_bytes
from lookalike.core.learning.learner import Learner
from lookalike.core.store.catalog import Catalog, NewPhoto

EXIFTOOL = shutil.which("exiftool")


def exiftool(*args) -> str:
    proc = subprocess.run([EXIFTOOL, *map(str, args)], capture_output=True, text=True, check=True)
    return proc.stdout


def _jpeg(path, colour=(200, 40, 40)):
    Image.new("RGB", (32, 24), colour).save(path, quality=90)
    return path


@pytest.fixture
def photos(tmp_path):
    if EXIFTOOL is None:
        pytest.skip("exiftool is not installed")
    d = tmp_path / "photos"
    d.mkdir()
    a = _jpeg(d / "mill.jpg")
    exiftool("-q", "-overwrite_original", "-XMP-dc:Subject=windmill", "-XMP-dc:Subject=Holland", a)
    b = _jpeg(d / "iptc.jpg", (10, 200, 10))
    exiftool("-q", "-overwrite_original", "-IPTC:Keywords=tulips", "-IPTC:Keywords=Holland", b)
    c = _jpeg(d / "side.jpg", (10, 10, 200))  # digiKam/darktable's photo.jpg.xmp
    exiftool("-q", "-XMP-dc:Subject=canal", "-o", d / "side.jpg.xmp", c)
    e = _jpeg(d / "lr.jpg", (90, 90, 90))  # Lightroom's photo.xmp, with a hierarchical keyword
    exiftool("-q", "-XMP-dc:Subject=Places|Delft", "-o", d / "lr.xmp", e)
    plain = _jpeg(d / "plain.jpg", (1, 2, 3))
    return {"mill": a, "iptc": b, "side": c, "lr": e, "plain": plain}


def _catalog_of(photos, tmp_path) -> tuple[Catalog, list[int]]:
    """A catalog holding these photos (random vectors: keywords need no model)."""
    cat = Catalog(tmp_path / "catalog.sqlite3")
    cat.set_meta({"encoder_id": "test-model", "weights_checksum": "abc"})
    folder = cat.add_folder(photos["mill"].parent)
    rng = np.random.default_rng(0)
    ids = cat.commit_batch(
        added=[
            NewPhoto(
                p.resolve(),
                folder.id,
                p.stat().st_size,
                p.stat().st_mtime_ns,
                k,
                32,
                24,
                None,
                rng.standard_normal(8).astype(np.float32),
            )  # fmt: skip
            for k, p in photos.items()
        ]
    )
    return cat, ids


def test_keywords_are_read_from_xmp_iptc_and_sidecars(photos):
    assert read_keywords(photos["mill"]) == ["windmill", "Holland"]
    assert read_keywords(photos["iptc"]) == ["tulips", "Holland"]
    assert read_keywords(photos["side"]) == ["canal"]
    assert read_keywords(photos["lr"]) == ["Delft"]
    assert read_keywords(photos["plain"]) == []


def test_indexing_reads_keywords_as_user_tags_and_never_writes_the_photo(photos, tmp_path):
    before = {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in photos.items()}
    cat, ids = _catalog_of(photos, tmp_path)
    try:
        by = dict(zip(photos, ids))
        learner = Learner(cat)
        learner.update()
        ut = learner.user_tags
        assert ut.photo_ids("holland").tolist() == sorted([by["mill"], by["iptc"]])
        assert ut.photo_ids("windmill").tolist() == [by["mill"]]
        assert ut.photo_ids("canal").tolist() == [by["side"]]
        assert ut.photo_ids("delft").tolist() == [by["lr"]]
        assert ut.of(by["plain"]) == ([], [])
        # a keyword the user took off is not read back at the next index
        ut.remove("windmill", [by["mill"]])
        with cat.transaction() as conn:
            conn.execute("DELETE FROM photo_learned")
        learner.update()
        assert ut.photo_ids("windmill").tolist() == []
        assert by["mill"] in ut.photo_ids("holland").tolist()
    finally:
        cat.close()
    assert {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in photos.items()} == before
    assert sorted(x.name for x in photos["mill"].parent.iterdir() if x.suffix == ".xmp") == ["lr.xmp", "side.jpg.xmp"]


def test_exported_sidecars_are_read_back_and_keep_what_they_held(photos, tmp_path):
    cat, _ = _catalog_of(photos, tmp_path)
    try:
        learner = Learner(cat)
        learner.update()
        ut = learner.user_tags
        ut.add("my bike", [photos["plain"], photos["side"]])
        photo_bytes = photos["side"].read_bytes()
        # darktable's sidecar of side.jpg already holds a rating: it stays
        exiftool("-q", "-overwrite_original", "-XMP-xmp:Rating=4", photos["side"].parent / "side.jpg.xmp")
        written, tagged = export_sidecars(ut)
        assert tagged == 5 and written == 5
        assert export_sidecars(ut) == (0, 5)  # nothing changed: nothing rewritten
        read = json.loads(exiftool("-j", "-XMP-dc:Subject", "-XMP-xmp:Rating", photos["side"].parent / "side.jpg.xmp"))
        assert sorted(read[0]["Subject"]) == ["canal", "my bike"] and read[0]["Rating"] == 4
        plain = json.loads(exiftool("-j", "-XMP-dc:Subject", photos["plain"].with_name("plain.jpg.xmp")))
        assert plain[0]["Subject"] == "my bike"
        assert read_keywords(photos["plain"]) == ["my bike"]
        assert photos["side"].read_bytes() == photo_bytes
    finally:
        cat.close()


def test_a_sidecar_that_is_not_xmp_is_never_replaced():
    with pytest.raises(ValueError):
        sidecar_bytes(b"not xml at all <", ["x"])
    out = sidecar_bytes(None, ["a", "b"])
    assert b"<rdf:li>a</rdf:li>" in out and out.startswith(b"<?xpacket")
