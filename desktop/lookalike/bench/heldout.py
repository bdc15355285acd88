"""Held-out tag precision: real photos the tag thresholds never saw.

The offline tagger's per-tag thresholds were set on the labelled set of
:mod:`lookalike.bench.labelled` (precision >= 0.9 there), so the precision
measured on that same set says little. ``data/debian_photos.json`` lists real
photographs shipped by Debian wallpaper packages, each labelled by looking at
it with every vocabulary tag that applies (any other tag counts as wrong).
:func:`measure` tags them at the current thresholds and counts, per tag, the
photos given it, how many rightly, and how many show it.

The photos are read where the packages install them (``/usr/share``); when
none are there the measurement is skipped with a line saying which packages
to install. Nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent / "data" / "debian_photos.json"
ROOT = Path("/usr/share")


@dataclass(frozen=True)
class Photo:
    package: str
    path: Path
    tags: frozenset[str]


def load(root: Path = ROOT, data: Path = DATA) -> tuple[list[Photo], list[str]]:
    """The labelled photos whose files are installed, and the packages none of whose photos are."""
    rows = json.loads(data.read_text())["photos"]
    here = [Photo(r["package"], root / r["path"], frozenset(r["tags"])) for r in rows]
    present = [p for p in here if p.path.is_file()]
    missing = sorted({p.package for p in here} - {p.package for p in present})
    return present, missing


def score(given: list[list[str]], truth: list[frozenset[str]], names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Per tag given or labelled at least once: photos given it, how many rightly, photos labelled with it."""
    out: dict[str, dict[str, int]] = {}
    for tags, right in zip(given, truth, strict=True):
        for t in tags:
            c = out.setdefault(t, dict(given=0, right=0, labelled=0))
            c["given"] += 1
            c["right"] += int(t in right)
        for t in right:
            out.setdefault(t, dict(given=0, right=0, labelled=0))["labelled"] += 1
    order = {t: i for i, t in enumerate(names)}
    return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


def _photo_name(p: Photo) -> str:
    """A unique file name: the wallpaper's folder for Plasma's (every size is named WxH.jpg)."""
    parts = p.path.parts
    if "wallpapers" in parts:
        return parts[parts.index("wallpapers") + 1] + p.path.suffix
    return p.path.name


def measure(work: Path, say: Callable[[str], None]) -> dict | None:
    """Index the installed held-out photos into a fresh library with the offline model,
    as ``lookalike index`` does, and score the tags the library then holds."""
    import os
    import shutil
    import subprocess
    import sys

    from lookalike.core import tags as T
    from lookalike.core.catalog import Catalog

    if not DATA.is_file():  # an installed copy without the bench's data files
        say(f"  held-out tags: skipped, {DATA} is not here")
        return None
    photos, missing = load()
    if not photos:
        say(f"  held-out tags: skipped, no photos of {', '.join(missing)} installed (apt-get install them)")
        return None
    folder, lib = work / "heldout" / "photos", work / "heldout" / "lib"
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    by_name: dict[str, Photo] = {}
    for p in photos:
        name = _photo_name(p)
        by_name[name] = p
        try:
            (folder / name).symlink_to(p.path)
        except OSError:
            shutil.copyfile(p.path, folder / name)
    cmd = [sys.executable, "-m", "lookalike", "index", str(folder), "--library", str(lib), "--model", "offline"]
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ), timeout=600)
    catalog = Catalog(lib / Catalog.FILENAME, readonly=True)
    try:
        encoder = catalog.meta().get("encoder_id", "")
        rows = catalog.query("SELECT p.path, t.tag FROM photo_tags t JOIN photos p ON p.id = t.photo_id")
    finally:
        catalog.close()
    if not encoder.startswith("offline-"):
        raise RuntimeError(f"the held-out library was indexed with {encoder!r}, not the offline model")
    given_by: dict[str, list[str]] = {name: [] for name in by_name}
    for path, tag in rows:
        given_by[Path(os.fsdecode(path)).name].append(tag)
    names = list(by_name)
    given = [given_by[n] for n in names]
    tags = score(given, [by_name[n].tags for n in names], T.TAG_NAMES)
    g = sum(c["given"] for c in tags.values())
    r = sum(c["right"] for c in tags.values())
    n = sum(c["labelled"] for c in tags.values())
    packages = sorted({p.package for p in photos})
    say(f"  held-out tags: {len(photos)} photos from {len(packages)} packages, {r} of {g} tags given right")
    if missing:
        say(f"  held-out tags: not installed: {', '.join(missing)}")
    return dict(
        photos=len(photos),
        packages=packages,
        missing=missing,
        encoder=encoder,
        tags=tags,
        given=g,
        right=r,
        labelled=n,
        # tags no ImageNet class stands for: the offline model never gives them
        out_of_reach=sorted(t for t in tags if not T.IMAGENET_TAGS.get(t)),
        per_photo={name: dict(given=sorted(given_by[name]), truth=sorted(by_name[name].tags)) for name in names},
    )


def table(d: dict) -> str:
    """Markdown: the tags given, each with its precision and recall, the micro totals, and the
    labelled tags never given."""
    lines = [
        f"Held out: {d['photos']} real photos from {len(d['packages'])} Debian packages "
        f"({', '.join(d['packages'])}), never used to set the thresholds; per tag given: photos given it, "
        "how many rightly, and how many of the photos show it.",
        "",
        "| tag | given | right | precision | labelled photos with it | recall |",
        "|---|---|---|---|---|---|",
    ]
    given = {t: c for t, c in d["tags"].items() if c["given"]}
    for t, c in sorted(given.items(), key=lambda kv: (-kv[1]["given"], -kv[1]["labelled"], kv[0])):
        rec = f"{c['right'] / c['labelled']:.2f}" if c["labelled"] else "-"
        lines.append(f"| {t} | {c['given']} | {c['right']} | {c['right'] / c['given']:.2f} | {c['labelled']} | {rec} |")
    g, r, n = d["given"], d["right"], d["labelled"]
    prec = f"{r / g:.2f}" if g else "-"
    lines.append(f"| all (micro) | {g} | {r} | {prec} | {n} | {r / n if n else 0:.2f} |")
    far = set(d.get("out_of_reach", ()))
    reach = sum(c["labelled"] for t, c in d["tags"].items() if t not in far)
    lines += [
        "",
        f"Recall over the tags the offline model can give at all: {r / reach if reach else 0:.2f} ({r} of {reach}).",
    ]
    for head, keep in (
        ("Labelled but never given", lambda t: t not in far),
        ("Out of the offline model's reach", far.__contains__),
    ):
        never = sorted(
            ((t, c["labelled"]) for t, c in d["tags"].items() if not c["given"] and keep(t)),
            key=lambda kv: (-kv[1], kv[0]),
        )
        if never:
            lines += ["", f"{head}: " + ", ".join(f"{t} ({k})" for t, k in never) + "."]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m lookalike.bench.heldout: this measurement alone
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = measure(Path(tmp), print)
        if res:
            print(table(res))
