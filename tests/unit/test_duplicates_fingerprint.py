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


def test_flat_pictures_of_other_colours_and_white_on_transparent_ones_are_told_apart(tmp_path):
    """On white, every white-on-transparent wallpaper is one blank page and every flat
    picture has the same empty bits: the tone and the bits on black tell them apart, and
    a resized copy of each still matches."""
    from PIL import Image, ImageDraw

    from lookalike.core.duplicates.fingerprint import judge

    def wallpaper(step: int, size=(480, 300)) -> Image.Image:
        img = Image.new("RGBA", size, (255, 255, 255, 0))
        draw = ImageDraw.Draw(img)
        for x in range(0, size[0], step):
            draw.rectangle([x, 0, x + step // 3, size[1]], fill=(255, 255, 255, 120))
        return img

    made = {
        "stripes-40.png": wallpaper(40),
        "stripes-90.png": wallpaper(90),
        "dark.webp": Image.new("RGB", (200, 200), (37, 31, 49)),
        "grey.webp": Image.new("RGB", (200, 200), (119, 118, 123)),
    }
    for name, img in made.items():
        img.save(tmp_path / name, lossless=True) if name.endswith(".webp") else img.save(tmp_path / name)
        img.resize((img.width // 3, img.height // 3)).save(tmp_path / f"small {name}.png")
    fp = {p.name: fingerprint_file(p).percept for p in tmp_path.iterdir()}
    assert distance(fp["dark.webp"], fp["grey.webp"]) <= PERCEPT_LIMIT  # the bits alone cannot tell
    assert distance(fp["stripes-40.png"], fp["stripes-90.png"]) <= PERCEPT_LIMIT
    for a, b in itertools.combinations(made, 2):
        assert judge(fp[a], fp[b]) is None, (a, b)
    for name in made:
        assert judge(fp[name], fp[f"small {name}.png"]) is not None, name
