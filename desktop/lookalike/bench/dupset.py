"""Labelled photo pairs for setting and checking the duplicate finder's thresholds.

Real photos (scikit-image's and scikit-learn's sample photographs, the faces test
set when it is there) are written as files, each with altered copies a user's
folders fill with: resized, recompressed at JPEG quality 60, converted to PNG and
WebP, rotated by an EXIF orientation tag (pixels turned, the tag turning them back),
cropped by 5%, colour-shifted. Those are the positives. Hard negatives are
different photos of the same kind of scene: two photos of one person, two shots
cut from one big photo with their frames shifted by a fifth, the two views of a
stereo pair, textures of the same material.

The timed set (:func:`build_bursts`) is for similar shots: each photo carries the
date it was taken (EXIF DateTimeOriginal). Bursts of shifted and zoomed shots of one
scene, seconds apart, are the positives; the same scene hours later, other scenes
seconds apart and another photo of the same person seconds apart are the hard
negatives.
"""

from __future__ import annotations

import io
import itertools
import json
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from lookalike.bench.labelled import FACES

FACES_DIR = Path(os.environ.get("LOOKALIKE_FACES_DIR", FACES))


class Alteration(StrEnum):
    RESIZE = "resized"
    JPEG60 = "recompressed q60"
    PNG = "format png"
    WEBP = "format webp"
    ROTATE = "exif rotation"
    CROP = "5% crop"
    COLOUR = "colour shift"


class NegativeKind(StrEnum):
    SAME_PERSON = "same person, other photo"
    SHIFTED_SHOT = "same scene, shifted shot"
    STEREO = "stereo pair"
    TEXTURE = "same material"
    OTHER = "other photos"


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    source: str  # photos with the same source are near-duplicates of each other
    alteration: Alteration | None  # None: the original
    group: str  # a hard-negative family: photos of one family but other sources are hard negatives
    family_kind: NegativeKind = NegativeKind.OTHER


@dataclass(frozen=True)
class LabelledPair:
    a: int
    b: int
    positive: bool
    kind: str  # an Alteration for positives (original vs altered), NegativeKind for negatives


# skimage.data loaders of real photographs -> hard-negative family
_SKIMAGE = {
    "astronaut": "astronaut",
    "chelsea": "chelsea",
    "coffee": "coffee",
    "rocket": "rocket",
    "hubble_deep_field": "hubble",
    "retina": "retina",
    "immunohistochemistry": "ihc",
    "camera": "camera",
    "coins": "coins",
    "moon": "moon",
    "clock": "clock",
    "brick": "texture",
    "grass": "texture",
    "gravel": "texture",
}


def _real_photos(faces: bool = True) -> Iterator[tuple[str, Image.Image, str, NegativeKind]]:
    """(name, RGB image, family, family kind) for every real photo at hand."""
    import skimage.data

    for loader, family in _SKIMAGE.items():
        arr = np.asarray(getattr(skimage.data, loader)())
        kind = NegativeKind.TEXTURE if family == "texture" else NegativeKind.OTHER
        yield loader, Image.fromarray(arr).convert("RGB"), family, kind
    left, right, _ = skimage.data.stereo_motorcycle()
    yield "motorcycle_left", Image.fromarray(left).convert("RGB"), "motorcycle", NegativeKind.STEREO
    yield "motorcycle_right", Image.fromarray(right).convert("RGB"), "motorcycle", NegativeKind.STEREO
    try:
        from sklearn.datasets import load_sample_images

        for name, arr in zip(("china", "flower"), load_sample_images().images):
            yield name, Image.fromarray(arr).convert("RGB"), name, NegativeKind.OTHER
    except ImportError:  # pragma: no cover - scikit-learn is optional
        pass
    labels = FACES_DIR / "labels.json"
    if faces and labels.exists():
        for rel, people in json.loads(labels.read_text())["photos"].items():
            with Image.open(FACES_DIR / rel) as img:
                family = "person:" + people[0] if len(people) == 1 else "group:" + rel
                yield Path(rel).stem, img.convert("RGB"), family, NegativeKind.SAME_PERSON


def shifted_shots(img: Image.Image) -> list[Image.Image]:
    """Two shots of one scene: frames of 70% of the photo, shifted by 15% of it both ways
    (a fifth of the frame), as when the camera moved between two photos."""
    w, h = img.size
    fw, fh = int(w * 0.7), int(h * 0.7)
    dx, dy = int(w * 0.15), int(h * 0.15)
    return [img.crop((0, 0, fw, fh)), img.crop((dx, dy, dx + fw, dy + fh))]


def jpeg_bytes(img: Image.Image, quality: int = 92, exif: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    if exif is None:
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, "JPEG", quality=quality, exif=exif)
    return buf.getvalue()


def altered(img: Image.Image, how: Alteration, original_is_png: bool) -> tuple[bytes, str]:
    """The altered copy's file bytes and suffix."""
    w, h = img.size
    if how is Alteration.RESIZE:
        return jpeg_bytes(img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS), 90), ".jpg"
    if how is Alteration.JPEG60:
        return jpeg_bytes(img, 60), ".jpg"
    if how is Alteration.PNG:
        if original_is_png:  # the original is a PNG already: the format change is to JPEG
            return jpeg_bytes(img, 90), ".jpg"
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue(), ".png"
    if how is Alteration.WEBP:
        buf = io.BytesIO()
        img.save(buf, "WEBP", quality=80)
        return buf.getvalue(), ".webp"
    if how is Alteration.ROTATE:
        # The pixels stored turned a quarter; orientation 6 ("rotate 90 CW to display")
        # turns them back, so a viewer shows the same photo.
        stored = img.transpose(Image.Transpose.ROTATE_90)
        exif = Image.Exif()
        exif[0x0112] = 6
        return jpeg_bytes(stored, 92, exif.tobytes()), ".jpg"
    if how is Alteration.CROP:
        left, top = int(w * 0.03), int(h * 0.03)
        right, bottom = w - int(w * 0.02), h - int(h * 0.02)
        return jpeg_bytes(img.crop((left, top, right, bottom)), 90), ".jpg"
    if how is Alteration.COLOUR:
        out = ImageEnhance.Color(img).enhance(1.35)
        out = ImageEnhance.Brightness(out).enhance(1.08)
        r, g, b = out.split()
        r = r.point(lambda v: min(255, int(v * 1.06)))
        b = b.point(lambda v: int(v * 0.94))
        return jpeg_bytes(Image.merge("RGB", (r, g, b)), 90), ".jpg"
    raise ValueError(how)


def build(folder: Path, *, faces: bool = True, only: Collection[str] | None = None) -> list[LabelledPhoto]:
    """Write the labelled photos under ``folder``; returns them in a fixed order.
    ``only``: the names of the real photos to use (all by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    photos: list[LabelledPhoto] = []

    def add(name: str, img: Image.Image, family: str, kind: NegativeKind, source_png: bool) -> None:
        original = folder / f"{name}{'.png' if source_png else '.jpg'}"
        if source_png:
            img.save(original, "PNG")
        else:
            original.write_bytes(jpeg_bytes(img, 95))
        photos.append(LabelledPhoto(original, name, None, family, kind))
        for how in Alteration:
            data, suffix = altered(img, how, source_png)
            path = folder / f"{name}~{how.name.lower()}{suffix}"
            path.write_bytes(data)
            photos.append(LabelledPhoto(path, name, how, family, kind))

    for i, (name, img, family, kind) in enumerate(_real_photos(faces)):
        if only is not None and name not in only:
            continue
        add(name, img, family, kind, source_png=i % 2 == 0)
        if min(img.size) >= 400 and kind is NegativeKind.OTHER:
            for j, shot in enumerate(shifted_shots(img)):
                add(f"{name}_shot{j + 1}", shot, family, NegativeKind.SHIFTED_SHOT, source_png=False)
    return photos


def pairs(photos: list[LabelledPhoto]) -> list[LabelledPair]:
    """Every pair of the set, labelled. Positives of two altered copies are kind "both altered"."""
    out: list[LabelledPair] = []
    for i, j in itertools.combinations(range(len(photos)), 2):
        a, b = photos[i], photos[j]
        if a.source == b.source:
            altered = [p.alteration for p in (a, b) if p.alteration is not None]
            kind = str(altered[0]) if len(altered) == 1 else "both altered"
            out.append(LabelledPair(i, j, True, kind))
        elif a.group == b.group:
            kinds = {a.family_kind, b.family_kind}
            kind = NegativeKind.SHIFTED_SHOT if NegativeKind.SHIFTED_SHOT in kinds else a.family_kind
            out.append(LabelledPair(i, j, False, str(kind)))
        else:
            out.append(LabelledPair(i, j, False, str(NegativeKind.OTHER)))
    return out


# -- similar shots (bursts) -----------------------------------------------------------


class BurstKind(StrEnum):
    """Pair kinds of the timed set: the first two are similar shots, the rest hard negatives."""

    BURST = "burst: shifted or zoomed shot, 2-5 s apart"
    STEREO = "stereo pair, 1 s apart"
    HOURS_APART = "same scene, hours apart"
    OTHER_SCENE = "other scene, seconds apart"
    SAME_PERSON = "same person, other photo, seconds apart"
    OTHER = "other photos, minutes or hours apart"


BURST_POSITIVES = (BurstKind.BURST, BurstKind.STEREO)
BURST_START = datetime(2024, 6, 1, 10, 0, 0)  # local time, as cameras write it
SCENE_STEP = 7  # seconds from one scene's burst to the next one's
SHOT_OFFSETS = (0, 2, 5)  # seconds into a burst
LATER = 3 * 3600  # the same scene shot again, hours later
SECONDS_APART = 60  # photos of other scenes (or other photos of a person) at most this far apart


@dataclass(frozen=True)
class TimedPhoto:
    path: Path
    scene: str  # "" for the faces photos: each is a scene of its own
    burst: str  # photos of one burst are similar shots of each other
    taken: float  # UNIX time of the EXIF DateTimeOriginal written (read back as local time)
    people: tuple[str, ...] = ()


def burst_shots(img: Image.Image) -> list[Image.Image]:
    """Three shots of one scene as a burst takes them, each the frame of 80% of the photo:
    the camera moved by 4% and 8% of the photo (5-10% of the frame) between the first two
    and the last, which is zoomed in by a ninth as well; and one shot of the same scene
    from elsewhere (12% away), for the same scene hours later."""
    w, h = img.size
    fw, fh = int(w * 0.8), int(h * 0.8)

    def frame(x: float, y: float, zoom: float = 1.0) -> Image.Image:
        cw, ch = int(fw / zoom), int(fh / zoom)
        left = int(w * x) + (fw - cw) // 2
        top = int(h * y) + (fh - ch) // 2
        return img.crop((left, top, left + cw, top + ch)).resize((fw, fh), Image.Resampling.LANCZOS)

    return [frame(0.04, 0.04), frame(0.08, 0.06), frame(0.10, 0.10, zoom=1.125), frame(0.16, 0.0)]


def _write_timed(path: Path, img: Image.Image, taken: datetime) -> float:
    exif = Image.Exif()
    stamp = taken.strftime("%Y:%m:%d %H:%M:%S")
    exif[0x0132] = stamp  # DateTime
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = stamp  # DateTimeOriginal
    path.write_bytes(jpeg_bytes(img, 92, exif.tobytes()))
    return taken.timestamp()


def build_bursts(folder: Path, *, faces: bool = True) -> list[TimedPhoto]:
    """Write the timed photos under ``folder``: for each real photo of a scene, a burst of
    three shots (:func:`burst_shots`) and a fourth shot of it three hours later; scene
    after scene, 2 s from one burst's last shot to the next one's first; the stereo
    pair's two views 1 s apart; with ``faces``, the faces test set's photos 2 s apart
    in turn (each person's photos one after another)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: list[TimedPhoto] = []
    scenes = [
        (name, img)
        for name, img, _family, kind in _real_photos(faces=False)
        if kind is not NegativeKind.STEREO and min(img.size) >= 300
    ]
    for i, (name, img) in enumerate(scenes):
        start = BURST_START + timedelta(seconds=SCENE_STEP * i)
        *shots, later = burst_shots(img)
        for j, (shot, offset) in enumerate(zip(shots, SHOT_OFFSETS)):
            path = folder / f"{name}_burst{j + 1}.jpg"
            out.append(TimedPhoto(path, name, name, _write_timed(path, shot, start + timedelta(seconds=offset))))
        path = folder / f"{name}_later.jpg"
        out.append(TimedPhoto(path, name, name + ":later", _write_timed(path, later, start + timedelta(seconds=LATER))))
    clock = BURST_START + timedelta(seconds=SCENE_STEP * len(scenes) + 600)
    import skimage.data

    for j, view in enumerate(skimage.data.stereo_motorcycle()[:2]):
        path = folder / f"motorcycle_{'right' if j else 'left'}.jpg"
        img = Image.fromarray(np.asarray(view)).convert("RGB")
        out.append(TimedPhoto(path, "motorcycle", "motorcycle", _write_timed(path, img, clock + timedelta(seconds=j))))
    labels = FACES_DIR / "labels.json"
    if faces and labels.exists():
        clock += timedelta(seconds=600)
        for k, (rel, people) in enumerate(json.loads(labels.read_text())["photos"].items()):
            path = folder / f"face_{Path(rel).stem}.jpg"
            with Image.open(FACES_DIR / rel) as img:
                taken = _write_timed(path, img.convert("RGB"), clock + timedelta(seconds=2 * k))
            out.append(TimedPhoto(path, "", "face:" + rel, taken, tuple(people)))
    return out


def burst_pairs(photos: list[TimedPhoto]) -> list[LabelledPair]:
    """Every pair of the timed set, labelled with a :class:`BurstKind`."""
    out: list[LabelledPair] = []
    for i, j in itertools.combinations(range(len(photos)), 2):
        a, b = photos[i], photos[j]
        if a.burst == b.burst:
            kind = BurstKind.STEREO if a.scene == "motorcycle" else BurstKind.BURST
        elif a.scene and a.scene == b.scene:
            kind = BurstKind.HOURS_APART
        elif set(a.people) & set(b.people):
            kind = BurstKind.SAME_PERSON
        elif abs(a.taken - b.taken) <= SECONDS_APART:
            kind = BurstKind.OTHER_SCENE
        else:
            kind = BurstKind.OTHER
        out.append(LabelledPair(i, j, kind in BURST_POSITIVES, str(kind)))
    return out
