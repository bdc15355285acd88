"""The perceptual check that confirms a near-duplicate, on real photos and their altered copies."""

from __future__ import annotations

import itertools

import pytest

from lookalike.bench.dupset import Alteration, build
from lookalike.core.duplicates.fingerprint import PERCEPT_LIMIT, distance, fingerprint_file

pytestmark = pytest.mark.slow  # writes and decodes ~80 photos


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    photos = build(
        tmp_path_factory.mktemp("dupset"),
        faces=False,
        only={"astronaut", "chelsea", "coffee", "motorcycle_left", "motorcycle_right", "brick", "gravel"},
    )
    prints = {p.path: fingerprint_file(p.path).percept for p in photos}
    return photos, prints


def test_altered_copies_are_within_the_limit(labelled):
    photos, prints = labelled
    by_source = {}
    for p in photos:
        by_source.setdefault(p.source, {})[p.alteration] = p.path
    crops_within = []
    for source, copies in by_source.items():
        original = prints[copies[None]]
        for how in Alteration:
            d = distance(original, prints[copies[how]])
            if how is Alteration.CROP:
                crops_within.append(d <= PERCEPT_LIMIT)
            else:
                assert d <= PERCEPT_LIMIT, f"{source} {how}: {d}"
    assert sum(crops_within) >= 0.8 * len(crops_within)


def test_different_shots_of_one_scene_are_beyond_it(labelled):
    photos, prints = labelled
    originals = [p for p in photos if p.alteration is None]
    assert {"motorcycle_left", "astronaut_shot1", "astronaut_shot2"} <= {p.source for p in originals}
    for a, b in itertools.combinations(originals, 2):
        same_scene = a.group == b.group
        d = distance(prints[a.path], prints[b.path])
        assert d > PERCEPT_LIMIT, f"{a.source} vs {b.source} ({'same scene' if same_scene else 'other'}): {d}"


def test_an_undecodable_file_has_no_fingerprint(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a photo")
    fp = fingerprint_file(bad)
    assert fp.percept is None and fp.exif == 0
