"""Duplicates end to end on real photos: finding each kind, keep all, trash, undo, safety.

The trash is always a temporary folder: HOME and XDG_DATA_HOME point into the
test's tmp_path (send2trash's freedesktop trash follows them), never the real one.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.bench.dupset import Alteration, altered, jpeg_bytes, shifted_shots
from lookalike.core.duplicates.finding import DuplicateKind
from lookalike.core.duplicates.service import Duplicates, Member
from lookalike.core.search import SearchEngine

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def skimage_photo(name: str) -> Image.Image:
    import skimage.data

    if name.startswith("motorcycle"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return Image.fromarray(left if name.endswith("left") else right).convert("RGB")
    return Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")


def exif_taken(when: str) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(0x8769)[0x9003] = when  # DateTimeOriginal
    return exif.tobytes()


def write_library_photos(folder: Path) -> None:
    """A cat with copies (exact, resized, recompressed, EXIF-rotated), a coffee cup and its
    exact copy, a stereo pair taken a second apart, two shots of one scene an hour apart."""
    folder.mkdir(parents=True)
    cat = skimage_photo("chelsea")
    (folder / "cat.jpg").write_bytes(jpeg_bytes(cat, 95, exif_taken("2020:05:01 10:00:00")))
    shutil.copy(folder / "cat.jpg", folder / "cat copy.jpg")
    for how, name in ((Alteration.RESIZE, "cat_small"), (Alteration.JPEG60, "cat_q60"), (Alteration.ROTATE, "cat_rot")):
        data, suffix = altered(cat, how, original_is_png=False)
        (folder / f"{name}{suffix}").write_bytes(data)
    coffee = skimage_photo("coffee")
    (folder / "coffee.jpg").write_bytes(jpeg_bytes(coffee, 92))
    shutil.copy(folder / "coffee.jpg", folder / "coffee (1).jpg")
    for side, when in (("left", "2021:07:04 12:00:00"), ("right", "2021:07:04 12:00:01")):
        (folder / f"motorcycle_{side}.jpg").write_bytes(
            jpeg_bytes(skimage_photo(f"motorcycle_{side}"), 92, exif_taken(when))
        )
    for i, (shot, when) in enumerate(
        zip(shifted_shots(skimage_photo("astronaut")), ("2019:01:01 09:00:00", "2019:01:01 10:00:00"))
    ):
        (folder / f"astronaut_shot{i + 1}.jpg").write_bytes(jpeg_bytes(shot, 92, exif_taken(when)))


@pytest.fixture(scope="module")
def template(tmp_path_factory, offline_encoder) -> Path:
    folder = tmp_path_factory.mktemp("dup-template") / "photos"
    write_library_photos(folder)
    return folder


@pytest.fixture
def trash_home(tmp_path, monkeypatch) -> Path:
    """HOME and the freedesktop trash inside tmp_path; returns the trash folder."""
    from send2trash import plat_other

    home = tmp_path / "home"
    data = home / ".local" / "share"
    data.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data / "Trash"))
    return data / "Trash"


@pytest.fixture
def library(tmp_path, template, trash_home):
    photos = tmp_path / "photos"
    shutil.copytree(template, photos)
    lib = tmp_path / "lib"
    with SearchEngine.open(lib, writer=True, create=True) as engine:
        report = engine.index([photos])
        assert report.added == len(list(photos.iterdir()))
    return photos, lib


def names(paths) -> set[str]:
    return {Path(p).name for p in paths}


def member_names(g) -> set[str]:
    return names(m.path for m in g.members)


def test_exact_and_near_groups_and_different_shots_stay_apart(library):
    photos, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        groups = Duplicates(engine).groups()
    by_kind = {(g.kind, frozenset(member_names(g))) for g in groups}
    assert (DuplicateKind.EXACT, frozenset({"coffee.jpg", "coffee (1).jpg"})) in by_kind
    assert (
        DuplicateKind.NEAR,
        frozenset({"cat.jpg", "cat copy.jpg", "cat_small.jpg", "cat_q60.jpg", "cat_rot.jpg"}),
    ) in by_kind
    assert len(groups) == 2  # the stereo pair and the two shots of one scene are not duplicates
    cat = next(g for g in groups if g.kind is DuplicateKind.NEAR)
    # Full size, the oldest date and EXIF: the original, not the exact copy with a longer name.
    assert cat.keep.path.name == "cat.jpg" and cat.reason
    assert cat.as_json()["keep"] == str(photos / "cat.jpg")


def test_fingerprints_come_from_indexing_and_lazily_for_older_photos(library):
    _, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        count = engine.catalog.query("SELECT COUNT(*) FROM dup_fingerprints WHERE percept IS NOT NULL")[0][0]
        assert count == engine.catalog.photo_count()  # the indexer's stage wrote them
        dups = Duplicates(engine)
        first = {frozenset(member_names(g)) for g in dups.groups()}
        assert dups.last_stats.candidates > 0
        assert dups.last_stats.extra["searched"] == 0  # every candidate came from the saved graph's links
        # A library indexed before the stage existed: the finder fills in what it needs.
        with engine.catalog.transaction() as conn:
            conn.execute("DELETE FROM dup_fingerprints")
        again = {frozenset(member_names(g)) for g in dups.groups()}
        assert again == first
        filled = engine.catalog.query("SELECT COUNT(*) FROM dup_fingerprints")[0][0]
        assert 0 < filled == dups.last_stats.fingerprinted < engine.catalog.photo_count()


def test_similar_shots_are_bursts_seconds_apart(library):
    _, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        similar = Duplicates(engine).groups([DuplicateKind.SIMILAR])
    sets = [member_names(g) for g in similar]
    assert {"motorcycle_left.jpg", "motorcycle_right.jpg"} in sets
    assert not any({"astronaut_shot1.jpg", "astronaut_shot2.jpg"} <= s for s in sets)  # an hour apart
    assert all(g.kind is DuplicateKind.SIMILAR for g in similar)


def test_keep_all_is_remembered_until_a_new_copy_arrives(library):
    photos, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        dups = Duplicates(engine)
        cat = next(g for g in dups.groups() if g.kind is DuplicateKind.NEAR)
        dups.keep_all(cat)
        assert [g.kind for g in dups.groups()] == [DuplicateKind.EXACT]
    with SearchEngine.open(lib, writer=True) as engine:  # a new session still remembers
        assert [g.kind for g in Duplicates(engine).groups()] == [DuplicateKind.EXACT]
        data, _ = altered(skimage_photo("chelsea"), Alteration.WEBP, original_is_png=False)
        (photos / "cat.webp").write_bytes(data)
        engine.index([photos])
        groups = Duplicates(engine).groups()
    cat = next(g for g in groups if g.kind is DuplicateKind.NEAR)
    assert "cat.webp" in member_names(cat) and len(cat.members) == 6


def trashed_files(trash: Path) -> set[str]:
    return names((trash / "files").iterdir()) if (trash / "files").exists() else set()


def search_names(engine, photo: Path, k: int = 20) -> set[str]:
    return names(r.path for r in engine.search(str(photo), k=k))


def test_trash_then_undo(library, trash_home):
    photos, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        dups = Duplicates(engine)
        cat = next(g for g in dups.groups() if g.kind is DuplicateKind.NEAR)
        others = names(m.path for m in cat.others)
        before_ids = {m.path.name: m.photo_id for m in cat.members}
        assert others <= search_names(engine, photos / "cat.jpg")
        report = dups.trash_others([cat])
        assert names(m.path for m in report.moved) == others and not report.left
        assert trashed_files(trash_home) == others
        for name in others:
            assert not (photos / name).exists()
            info = (trash_home / "info" / f"{name}.trashinfo").read_text()
            assert f"Path={photos / name}".replace(" ", "%20") in info
        assert (photos / "cat.jpg").exists()
        # Gone from the library and from search results at once.
        assert not others & search_names(engine, photos / "cat.jpg")
        assert engine.catalog.photo_count() == 11 - len(others)
        assert dups.can_undo()
        undo = dups.undo()
        assert names(undo.restored) == others and not undo.failed
        assert trashed_files(trash_home) == set()
        assert not list((trash_home / "info").iterdir())
        assert others <= search_names(engine, photos / "cat.jpg")
        for name in others:
            row = engine.catalog.photo_by_path(photos / name)
            assert row is not None and row.id == before_ids[name]
        assert not dups.can_undo()


def test_a_trashed_name_already_in_the_trash_gets_a_new_name_and_undo_finds_it(library, trash_home):
    photos, lib = library
    (trash_home / "files").mkdir(parents=True)
    (trash_home / "info").mkdir()
    (trash_home / "files" / "coffee (1).jpg").write_bytes(b"someone else's file")
    (trash_home / "info" / "coffee (1).jpg.trashinfo").write_text("[Trash Info]\nPath=/elsewhere/coffee (1).jpg\n")
    with SearchEngine.open(lib, writer=True) as engine:
        dups = Duplicates(engine)
        coffee = next(g for g in dups.groups() if g.kind is DuplicateKind.EXACT)
        report = dups.trash_others([coffee])
        assert report.moved[0].trashed_as.name == "coffee (1) 1.jpg"
        dups.undo()
    assert (photos / "coffee (1).jpg").exists() and (photos / "coffee.jpg").exists()
    assert (trash_home / "files" / "coffee (1).jpg").read_bytes() == b"someone else's file"


def test_a_changed_file_or_keeper_is_left_alone(library, trash_home):
    photos, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        dups = Duplicates(engine)
        groups = dups.groups()
        cat = next(g for g in groups if g.kind is DuplicateKind.NEAR)
        coffee = next(g for g in groups if g.kind is DuplicateKind.EXACT)
        # Same size and time, other bytes: only the content hash tells.
        victim = next(m.path for m in cat.others if m.path.name == "cat_q60.jpg")
        st = victim.stat()
        data = bytearray(victim.read_bytes())
        data[-3] ^= 0xFF
        victim.write_bytes(bytes(data))
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
        # The coffee keeper is edited: its copy must stay.
        with open(coffee.keep.path, "ab") as fh:
            fh.write(b"\0")
        report = dups.trash_others([cat, coffee])
    left = {x.path.name: x.reason for x in report.left}
    assert "content changed" in left["cat_q60.jpg"]
    assert "photo to keep" in left[coffee.others[0].path.name]
    assert victim.exists() and coffee.others[0].path.exists()
    assert names(m.path for m in report.moved) == {"cat copy.jpg", "cat_small.jpg", "cat_rot.jpg"}


def test_a_drive_without_a_trash_never_loses_a_file(library, monkeypatch):
    from lookalike.core.duplicates import trash

    photos, lib = library

    def no_trash(path):
        raise trash.NoTrashError("the drive at /media/card has no trash folder this user can write to")

    monkeypatch.setattr(trash, "trash_dir_for", no_trash)
    with SearchEngine.open(lib, writer=True) as engine:
        dups = Duplicates(engine)
        coffee = next(g for g in dups.groups() if g.kind is DuplicateKind.EXACT)
        report = dups.trash_others([coffee])
        assert not report.moved
        assert "not deleted" in report.left[0].reason and "no trash" in report.left[0].reason
        assert engine.catalog.photo_by_path(coffee.others[0].path) is not None
    assert (photos / "coffee (1).jpg").exists()


_CHILD = """
import sys
from pathlib import Path
from lookalike.core.search import SearchEngine
from lookalike.core.duplicates.service import Duplicates
with SearchEngine.open(Path(sys.argv[1]), writer=True) as engine:
    dups = Duplicates(engine)
    dups.trash_others(dups.groups())
print("finished")
"""


@pytest.mark.parametrize("point", ["after-intent:2", "after-move:2", "after-move:3"])
def test_sigkill_mid_run_leaves_each_file_in_place_or_in_the_trash(library, trash_home, point):
    photos, lib = library
    with SearchEngine.open(lib, writer=True) as engine:
        others = {m.path.name for g in Duplicates(engine).groups() for m in g.others}
    assert len(others) == 5
    env = {
        **os.environ,
        "HOME": os.environ["HOME"],
        "XDG_DATA_HOME": os.environ["XDG_DATA_HOME"],
        "LOOKALIKE_TRASH_KILL": point,
        "PYTHONPATH": str(ROOT / "desktop"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(lib)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    in_trash = trashed_files(trash_home)
    in_place = {n for n in others if (photos / n).exists()}
    assert in_trash | in_place == others and not in_trash & in_place
    expected_moved = int(point.split(":")[1]) - (1 if point.startswith("after-intent") else 0)
    assert len(in_trash) == expected_moved
    with SearchEngine.open(lib, writer=True) as engine:
        dups = Duplicates(engine)  # settles the journal
        states = dict(engine.catalog.query("SELECT state, COUNT(*) FROM trash_journal GROUP BY state"))
        assert "intent" not in states and states.get("trashed") == len(in_trash)
        for n in others:
            assert (engine.catalog.photo_by_path(photos / n) is not None) == (n in in_place)
        assert not in_trash & search_names(engine, photos / "cat.jpg")
        assert not list((trash_home / "info").glob("*.trashinfo")) or in_trash  # no orphan entries
        assert len(list((trash_home / "info").glob("*.trashinfo"))) == len(in_trash)
        undo = dups.undo()
        assert names(undo.restored) == in_trash
    assert all((photos / n).exists() for n in others)


def lookalike(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lookalike", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def test_command_line_lists_trashes_and_undoes(library, trash_home):
    import json

    photos, lib = library
    env = {
        "HOME": os.environ["HOME"],
        "XDG_DATA_HOME": os.environ["XDG_DATA_HOME"],
        "PYTHONPATH": str(ROOT / "desktop"),
    }
    proc = lookalike("duplicates", "--library", lib, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    groups = json.loads(proc.stdout)
    assert [set(g) for g in groups] == [{"kind", "keep", "others", "reason"}] * 2
    assert {g["kind"] for g in groups} == {"exact", "near"}
    exact = next(g for g in groups if g["kind"] == "exact")
    assert names([exact["keep"], *exact["others"]]) == {"coffee.jpg", "coffee (1).jpg"}

    proc = lookalike("duplicates", "--library", lib, "--trash", env=env)  # no terminal to ask, no --yes
    assert proc.returncode == 2 and "--yes" in proc.stderr
    assert trashed_files(trash_home) == set()

    # Exact copies only: the coffee cup's, and the cat's byte-for-byte copy (on its own now).
    proc = lookalike("duplicates", "--library", lib, "--kind", "exact", "--trash", "--yes", env=env)
    assert proc.returncode == 0, proc.stderr
    moved = {photos / "coffee (1).jpg", photos / "cat copy.jpg"}
    lines = proc.stdout.splitlines()
    assert {x for x in lines if x.startswith("moved")} == {f"moved to the trash: {p}" for p in moved}
    assert any(x.startswith("exact    keep   ") for x in lines)  # the groups are shown first
    assert trashed_files(trash_home) == names(moved)
    assert not any(p.exists() for p in moved)

    proc = lookalike("duplicates", "--library", lib, "--undo", env=env)
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.splitlines()) == {f"restored: {p}" for p in moved}
    assert all(p.exists() for p in moved) and trashed_files(trash_home) == set()

    proc = lookalike("duplicates", "--library", lib, "--rules", "biggest", env=env)
    assert proc.returncode == 2 and "unknown keeper rule" in proc.stderr and "Traceback" not in proc.stderr


def _rows_of(engine, photo_id: int) -> dict[str, list]:
    """Every catalog row that goes with a photo (its own, and through ON DELETE CASCADE)."""
    from lookalike.core.duplicates.trash import snapshot

    with engine.catalog.transaction() as conn:
        saved = json.loads(snapshot(conn, photo_id))
    for _table, rows in saved:
        for r in rows:
            r.pop("indexed", None)
    return {t: sorted(rows, key=lambda r: json.dumps(r, sort_keys=True)) for t, rows in saved}


def test_undo_in_another_session_makes_the_photo_searchable_and_whole_again(library, trash_home):
    """Trash and undo as two commands would (each its own opening of the library): the
    restored copy is found again by an image query with itself, and comes back with its
    face and that face's name, its tags, its concept scores and its fingerprint."""
    photos, lib = library
    copy = photos / "coffee (1).jpg"
    with SearchEngine.open(lib, writer=True) as engine:
        row = engine.catalog.photo_by_path(copy)
        with engine.catalog.transaction() as conn:
            person = conn.execute("INSERT INTO people(name, created) VALUES('Ada', 0)").lastrowid
            face = conn.execute(
                "INSERT INTO faces(photo_id, model, x0, y0, x1, y1, landmarks, quality, vector, person_id, confirmed)"
                " VALUES(?, 'm', 0.1, 0.1, 0.5, 0.5, x'00', 0.9, x'0000803f', ?, 1)",
                (row.id, person),
            ).lastrowid
            conn.execute("INSERT INTO face_rejections(face_id, person_id) VALUES(?, ?)", (face, person))
            conn.execute("INSERT INTO photo_tags(tag, photo_id, score) VALUES('cup', ?, 0.9)", (row.id,))
        before = _rows_of(engine, row.id)
        assert {"faces", "face_rejections", "photo_tags", "dup_fingerprints"} <= set(before)
    with SearchEngine.open(lib, writer=True) as engine:
        dups = Duplicates(engine)
        coffee = next(g for g in dups.groups() if g.kind is DuplicateKind.EXACT)
        assert copy in {m.path for m in coffee.others}
        dups.trash_others([coffee])
        assert engine.catalog.query("SELECT COUNT(*) FROM faces WHERE photo_id = ?", (row.id,))[0][0] == 0
    with SearchEngine.open(lib, writer=True) as engine:
        assert copy.name not in search_names(engine, copy.parent / "coffee.jpg")
        Duplicates(engine).undo()
    with SearchEngine.open(lib, writer=True) as engine:
        assert copy.exists()
        assert {"coffee.jpg", copy.name} <= search_names(engine, copy, k=3)
        assert _rows_of(engine, row.id) == before
        name = engine.catalog.query(
            "SELECT p.name FROM faces f JOIN people p ON p.id = f.person_id WHERE f.photo_id = ?", (row.id,)
        )
        assert name == [("Ada",)]


def test_index_repairs_a_photo_the_graph_lost(library):
    """A photo in the catalog but marked deleted in the saved graph (what an undo left before
    the fix): `index` says nothing changed on disk, and puts it back in the graph."""
    from lookalike.core.vectors import VectorIndex

    photos, lib = library
    lost = photos / "coffee (1).jpg"
    with SearchEngine.open(lib, writer=True) as engine:
        pid = engine.catalog.photo_by_path(lost).id
        vectors = engine.vectors()
        vectors.delete([pid])  # the graph alone loses it; the catalog keeps it
        vectors.save(lib, engine.catalog.generation())
    side = json.loads((lib / VectorIndex.SIDECAR).read_text())
    side.pop("live_digest", None)  # as a graph saved before the check existed
    (lib / VectorIndex.SIDECAR).write_text(json.dumps(side))
    with SearchEngine.open(lib, writer=False) as engine:
        assert lost.name not in search_names(engine, lost, k=3)
    with SearchEngine.open(lib, writer=True) as engine:
        report = engine.index()
        assert report.added == report.updated == report.removed == 0
    with SearchEngine.open(lib, writer=False) as engine:
        assert lost.name in search_names(engine, lost, k=3)


def test_a_symlink_and_its_target_are_one_file_never_two_copies(tmp_path, template, trash_home):
    """`a/w.jpg` links to `photos_real/Wood_original.jpg`, both folders indexed: no group
    offers either for the trash, and a group that pairs them anyway leaves both in place."""
    from lookalike.core.duplicates.service import DuplicateGroup

    real, links = tmp_path / "photos_real", tmp_path / "a"
    real.mkdir()
    links.mkdir()
    shutil.copy(template / "coffee.jpg", real / "Wood_original.jpg")
    (links / "w.jpg").symlink_to(real / "Wood_original.jpg")
    shutil.copy(template / "cat.jpg", real / "cat.jpg")
    lib = tmp_path / "lib"
    with SearchEngine.open(lib, writer=True, create=True) as engine:
        assert engine.index([real, links]).added == 3
        dups = Duplicates(engine)
        assert not [g for g in dups.groups() if "w.jpg" in member_names(g)]
        # Paired by hand, the link kept (the shortest path, as the finder used to choose):
        rows = {r.path.name: r for r in engine.catalog.photos_by_ids(engine.catalog.all_ids().tolist()).values()}
        link, target = rows["w.jpg"], rows["Wood_original.jpg"]
        member = functools.partial(Member, format="jpeg", width=1, height=1, taken=None, exif=0, reference=False)
        group = DuplicateGroup(
            DuplicateKind.EXACT,
            member(link.id, link.path, size=link.size, hash=link.hash),
            (member(target.id, target.path, size=target.size, hash=target.hash),),
            "shortest path",
        )
        report = dups.trash_others([group])
    assert not report.moved and "same file" in report.left[0].reason
    assert (real / "Wood_original.jpg").is_file() and (links / "w.jpg").exists()
    assert trashed_files(trash_home) == set()


def test_a_copy_reached_through_a_folder_that_became_a_link_is_not_trashed_outside_the_library(
    tmp_path, template, trash_home
):
    photos, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    (photos / "sub").mkdir(parents=True)
    shutil.copy(template / "coffee.jpg", photos / "coffee.jpg")
    shutil.copy(template / "coffee.jpg", photos / "sub" / "coffee (1).jpg")
    lib = tmp_path / "lib"
    with SearchEngine.open(lib, writer=True, create=True) as engine:
        engine.index([photos])
    # After indexing, the folder is moved out and a link left in its place.
    shutil.move(photos / "sub", elsewhere)
    (photos / "sub").symlink_to(elsewhere)
    with SearchEngine.open(lib, writer=True) as engine:
        dups = Duplicates(engine)
        groups = [g for g in dups.groups() if g.kind is DuplicateKind.EXACT]
        assert len(groups) == 1
        report = dups.trash_others(groups)
    assert not report.moved and "outside every library folder" in report.left[0].reason
    assert (elsewhere / "coffee (1).jpg").is_file() and (photos / "coffee.jpg").is_file()
    assert trashed_files(trash_home) == set()


def _white_on_transparent(kind: str, size=(640, 400)) -> Image.Image:
    """A wallpaper drawn as MATE's are: white strokes at partial alpha on a transparent
    background (on white, each is a blank white page; on a desktop each looks different)."""
    from PIL import ImageDraw

    img = Image.new("RGBA", size, (255, 255, 255, 0))
    draw = ImageDraw.Draw(img)
    w, h = size
    if kind == "stripes":
        for x in range(0, w, 40):
            draw.rectangle([x, 0, x + 16, h], fill=(255, 255, 255, 110))
    elif kind == "waves":
        for y in range(0, h, 50):
            draw.line([(x, y + 20 * np.sin(x / 40)) for x in range(0, w, 4)], fill=(255, 255, 255, 140), width=9)
    elif kind == "rings":
        for r in range(20, 400, 45):
            draw.ellipse([w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r], outline=(255, 255, 255, 120), width=12)
    else:  # "corner": a soft glow in one corner
        for r in range(300, 0, -20):
            draw.ellipse([-r, -r, r, r], fill=(255, 255, 255, int(150 * (1 - r / 300))))
    return img


def test_flat_and_transparent_pictures_are_not_duplicates(tmp_path, template, trash_home):
    photos = tmp_path / "walls"
    photos.mkdir()
    for kind in ("stripes", "waves", "rings", "corner"):
        _white_on_transparent(kind).save(photos / f"{kind}.png")
    Image.new("RGB", (256, 256), (37, 31, 49)).save(photos / "flat-dark.webp", lossless=True)
    Image.new("RGB", (256, 256), (119, 118, 123)).save(photos / "flat-light.webp", lossless=True)
    # Real copies among them still group: a flat picture resized, a transparent one made smaller.
    Image.new("RGB", (128, 128), (37, 31, 49)).save(photos / "flat-dark small.png")
    _white_on_transparent("waves").resize((320, 200)).save(photos / "waves small.png")
    lib = tmp_path / "lib"
    with SearchEngine.open(lib, writer=True, create=True) as engine:
        engine.index([photos])
        dups = Duplicates(engine)
        groups = dups.groups()
        assert sorted(sorted(member_names(g)) for g in groups) == [
            ["flat-dark small.png", "flat-dark.webp"],
            ["waves small.png", "waves.png"],
        ]
        report = dups.trash_others(groups)
    # (the PNG is kept over the WebP: the original format rule)
    assert names(m.path for m in report.moved) == {"flat-dark.webp", "waves small.png"}
    assert all((photos / f"{k}.png").exists() for k in ("stripes", "waves", "rings", "corner"))
    assert (photos / "flat-light.webp").exists() and (photos / "flat-dark small.png").exists()
