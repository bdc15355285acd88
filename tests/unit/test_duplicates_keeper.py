"""Keeper rules: which photo of a duplicate group is suggested, and the reason given."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.core.duplicates.keeper import Candidate, KeeperRule, choose, format_name, parse_rules


def photo(pid: int, name: str, *, w=4000, h=3000, taken=None, exif=0, size=1_000_000, ref=False, fmt="") -> Candidate:
    path = Path("/photos") / name
    return Candidate(pid, path, format_name(path, fmt), w, h, taken, exif, size, ref)


def test_original_format_beats_more_pixels_and_a_bigger_file():
    heic = photo(1, "IMG_1.heic", w=2000, h=1500, size=900_000)
    jpeg = photo(2, "IMG_1.jpg", w=4000, h=3000, size=5_000_000)
    choice = choose([jpeg, heic])
    assert choice.keep.photo_id == 1
    assert choice.reason.startswith("original format (HEIC over JPEG)")


def test_raw_beats_heic_and_webp_is_derived():
    dng, heic, webp = photo(1, "a.dng"), photo(2, "a.heic"), photo(3, "a.webp")
    assert choose([heic, webp, dng]).keep.photo_id == 1
    assert choose([webp, photo(4, "a.png")]).keep.photo_id == 4


def test_format_is_what_the_file_is_not_its_name():
    # A PNG named .jpg is judged as PNG (an equal of JPEG), so pixels decide.
    assert format_name(Path("x.jpg"), "PNG") == "png"
    assert format_name(Path("x.heic"), "HEIF") == "heic"


def test_then_pixels_then_oldest_date_then_metadata_then_size():
    big, small = photo(1, "a.jpg", w=4000, h=3000), photo(2, "b.jpg", w=1000, h=750)
    c = choose([small, big])
    assert c.keep.photo_id == 1 and c.reason == "more pixels (4000×3000 over 1000×750)"

    old, new = photo(1, "a.jpg", taken=1_000_000.0), photo(2, "b.jpg", taken=2_000_000.0)
    c = choose([new, old])
    assert c.keep.photo_id == 1 and c.reason.startswith("oldest date taken")
    undated = photo(3, "c.jpg")
    assert choose([undated, new]).keep.photo_id == 2

    rich, bare = photo(1, "a.jpg", exif=30), photo(2, "b.jpg", exif=0)
    c = choose([bare, rich])
    assert c.keep.photo_id == 1 and "has EXIF metadata (30 tags)" in c.reason

    large, lean = photo(1, "a.jpg", size=3_000_000), photo(2, "b.jpg", size=1_000_000)
    c = choose([lean, large])
    assert c.keep.photo_id == 1 and c.reason == "larger file (3.0 MB over 1.0 MB)"


def test_a_reference_folder_always_wins():
    ref = photo(1, "small.webp", w=100, h=100, size=10, ref=True)
    best = photo(2, "IMG.dng", taken=1.0, exif=40, size=50_000_000)
    c = choose([best, ref])
    assert c.keep.photo_id == 1 and c.reason.startswith("in a reference folder")


def test_exact_copies_tie_and_the_shortest_path_is_kept():
    a, b = photo(1, "holiday/IMG_1.jpg"), photo(2, "holiday/from the card/IMG_1.jpg")
    c = choose([b, a])
    assert c.keep.photo_id == 1 and "shortest path" in c.reason
    assert [o.photo_id for o in c.others] == [2]


def test_the_user_can_change_the_order():
    heic_small = photo(1, "a.heic", w=1000, h=750)
    jpeg_big = photo(2, "a.jpg", w=4000, h=3000)
    assert choose([heic_small, jpeg_big]).keep.photo_id == 1
    rules = parse_rules("pixels")
    assert rules[0] is KeeperRule.PIXELS and len(rules) == len(KeeperRule)
    c = choose([heic_small, jpeg_big], rules)
    assert c.keep.photo_id == 2 and c.reason.startswith("more pixels")


def test_unknown_rule_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown keeper rule 'biggest'"):
        parse_rules("pixels,biggest")


@pytest.mark.parametrize(
    "copy",
    ["IMG_1 (1).jpg", "IMG_1(2).jpg", "IMG_1 copy.jpg", "IMG_1 copy 2.jpg", "IMG_1 - Copy.jpg", "Copies/IMG_1.jpg"],
)
def test_an_original_name_beats_a_copys_name_and_a_copies_folder(copy):
    """Exact copies tie on every other rule: the original's name is kept, not the shorter path."""
    original = photo(1, "Holidays 2019/IMG_1.jpg")  # the longer path
    other = photo(2, copy)
    choice = choose([other, original])
    assert choice.keep.photo_id == 1
    assert choice.reason.startswith("original name (IMG_1.jpg")


def test_a_name_rule_never_beats_more_pixels():
    small, big = photo(1, "IMG_1.jpg", w=1000, h=750), photo(2, "IMG_1 (1).jpg")
    assert choose([small, big]).keep.photo_id == 2


def test_the_photo_the_user_chose_wins_over_every_rule_and_a_reference_folder():
    best = photo(1, "IMG_1.dng", ref=True)
    chosen = Candidate(2, Path("/photos/IMG_1 (1).webp"), "webp", 100, 100, None, 0, 10, False, True)
    choice = choose([best, chosen])
    assert choice.keep.photo_id == 2 and choice.reason == "chosen by you"
    assert "name" in [r.value for r in parse_rules("name")]
