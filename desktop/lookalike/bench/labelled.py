"""A labelled set of real photos for tags and concepts, built from what pip packages ship.

Nothing is downloaded: scikit-image's sample photos, matplotlib's and
scikit-learn's sample photos, the face photos in ``tests/data/faces``
(six real people, as people-concepts), the 24 coins of scikit-image's
``coins`` photo cut apart (each coin its own photo: a "coin" concept), and
scikit-image's LFW subset (100 real faces and 100 real non-face patches from
the same photos, 25 x 25 pixels, enlarged).

:func:`build` writes the photos into a folder and returns where they are and
what they show: the vocabulary tags that apply to each photo of the tag set
(every other tag counts as wrong), and the members of each concept.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

FACES = Path(os.environ.get("LOOKALIKE_FACES", Path(__file__).resolve().parents[3] / "tests" / "data" / "faces"))

#: Vocabulary tags that apply to each sample photo (anything else would be wrong).
SAMPLE_TAGS: dict[str, tuple[str, ...]] = {
    "astronaut": ("people", "portrait", "clothes"),
    "camera": ("people", "outdoor", "field", "park", "tools"),
    "chelsea": ("cat", "pet"),
    "coffee": ("coffee", "drink", "food"),
    "rocket": ("space", "sky", "night", "outdoor", "tower"),
    "stereo_motorcycle": ("motorcycle", "vehicle", "indoor"),
    "clock": ("clock",),
    "page": ("document", "text"),
    "text": ("text", "street"),
    "moon": ("space", "night", "rock"),
    "hubble_deep_field": ("space", "night"),
    "grass": ("field", "garden", "park"),
    "gravel": ("rock",),
    "retina": (),
    "immunohistochemistry": (),
    "grace_hopper": ("people", "portrait", "clothes"),
    "china": ("building", "tower", "sky", "lake", "water", "tree", "outdoor", "landscape", "church"),
    "flower": ("flowers", "close-up", "garden"),
}
#: A plain text query for each concept, to compare learning with.
CONCEPT_TEXT = {
    "coin": "a coin",
    "face": "a face",
    "obama": "Barack Obama",
    "kit_harington": "Kit Harington",
    "alex_lacamoire": "Alex Lacamoire",
}


@dataclass(frozen=True)
class Labelled:
    folder: Path
    tags: dict[str, frozenset[str]]  # relative path -> tags that apply (the tag set)
    concepts: dict[str, tuple[str, ...]]  # concept -> relative paths of its members
    text: dict[str, str] = field(default_factory=dict)

    def paths(self) -> list[str]:
        seen = dict.fromkeys(self.tags)
        for members in self.concepts.values():
            seen.update(dict.fromkeys(members))
        for p in sorted(self.folder.rglob("*")):
            if p.is_file() and p.suffix in (".png", ".jpg"):
                seen.setdefault(p.relative_to(self.folder).as_posix(), None)
        return list(seen)


def _rgb(arr) -> np.ndarray:
    arr = np.asarray(arr[0] if isinstance(arr, tuple) else arr)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return np.ascontiguousarray(arr[:, :, :3])


def _samples() -> dict[str, np.ndarray]:
    import skimage.data as data

    out: dict[str, np.ndarray] = {}
    for name in SAMPLE_TAGS:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            out[name] = _rgb(loader())
        except Exception:  # a sample that needs a download is left out
            continue
    try:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
            out["grace_hopper"] = _rgb(np.asarray(Image.open(fh).convert("RGB")))
    except Exception:
        pass
    try:
        from sklearn.datasets import load_sample_image

        out["china"] = _rgb(load_sample_image("china.jpg"))
        out["flower"] = _rgb(load_sample_image("flower.jpg"))
    except Exception:
        pass
    return out


def _coins() -> list[np.ndarray]:
    """The 24 coins of scikit-image's coins photo, each cut out on its own (4 rows of 6)."""
    import skimage.data as data
    from skimage import filters, measure, morphology

    img = data.coins()
    mask = img > filters.threshold_otsu(img)
    mask = morphology.closing(mask, morphology.disk(3))
    regions = [r for r in measure.regionprops(measure.label(mask)) if 600 <= r.area <= 6000]
    out = []
    for r in sorted(regions, key=lambda r: (round(r.centroid[0] / 60), r.centroid[1])):
        y0, x0, y1, x1 = r.bbox
        pad = 4
        crop = img[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad]
        out.append(_rgb(crop))
    return out


def build(folder: Path, *, lfw: bool = True) -> Labelled:
    """Write the labelled photos into ``folder`` (created; rewritten if present)."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    tags: dict[str, frozenset[str]] = {}
    concepts: dict[str, list[str]] = {}

    (folder / "samples").mkdir()
    for name, arr in _samples().items():
        rel = f"samples/{name}.jpg"
        Image.fromarray(arr).save(folder / rel, quality=92)
        tags[rel] = frozenset(SAMPLE_TAGS[name])

    (folder / "coins").mkdir()
    for i, arr in enumerate(_coins()):
        rel = f"coins/coin_{i:02d}.png"
        Image.fromarray(arr).resize((arr.shape[1] * 3, arr.shape[0] * 3), Image.BICUBIC).save(folder / rel)
        tags[rel] = frozenset()
        concepts.setdefault("coin", []).append(rel)

    labels = json.loads((FACES / "labels.json").read_text())["photos"]
    for rel_src, people in sorted(labels.items()):
        rel = f"faces/{rel_src}"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FACES / rel_src, folder / rel)
        tags[rel] = frozenset({"people", "clothes"} | ({"portrait"} if len(people) == 1 else set()))
        for person in people:
            concepts.setdefault(person, []).append(rel)

    if lfw:
        import skimage.data as data

        faces = data.lfw_subset()
        (folder / "lfw").mkdir()
        for i, arr in enumerate(faces):
            kind = "face" if i < 100 else "other"
            rel = f"lfw/{kind}_{i:03d}.png"
            Image.fromarray(_rgb(arr)).resize((100, 100), Image.BICUBIC).save(folder / rel)
            if kind == "face":
                concepts.setdefault("face", []).append(rel)
                tags[rel] = frozenset({"people", "portrait"})
    return Labelled(
        folder,
        tags,
        {k: tuple(v) for k, v in concepts.items()},
        {k: v for k, v in CONCEPT_TEXT.items() if k in concepts},
    )
