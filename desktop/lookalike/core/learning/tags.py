"""Tags on every photo, zero-shot, from the stored vectors (no photo is decoded again).

The vocabulary (:data:`TAG_NAMES`) is about a hundred everyday words a person
would file photos under. How a photo earns a tag depends on the model:

* **offline model** (EfficientNet-Lite0 + MiniLM): the stored vector keeps the
  network's pooled features (its first 1280 numbers, unit length). The
  network's own classifier turns them back into the 1000 ImageNet class
  probabilities (the features' length, which the unit vector drops, is put
  back as the median over real photos: top-1 class unchanged on every photo
  we checked, probabilities within ~0.1). A tag's score is the summed
  probability of the ImageNet classes mapped onto it (:data:`IMAGENET_TAGS`:
  ``beach`` <- seashore, sandbar, swimsuits...). Tags no ImageNet class
  stands for (``sunset``, ``crowd``, ``night``...) are not given by this model.
* **CLIP**: one prompt per tag ("a photo of a dog"); a tag's score is the
  softmax over the whole vocabulary of the photo's similarities to the
  prompts, at CLIP's own temperature (100).

A photo gets the (at most :data:`MAX_TAGS`) best-scoring tags at or above
each tag's own threshold. Offline thresholds (:data:`OFFLINE_THRESHOLDS`) are
set by :mod:`lookalike.bench.tagcal` on 745 labelled images (real photos and
drawings from Debian and Python packages, labelled by looking at each): per
tag, the lowest cut whose labelled images above it are at least 93% right once
that precision is shrunk towards all tags' precision at the same cut (a tag
with little evidence leans on the pooled figure), never below :data:`FLOOR`.
The 3-point margin is what keeps precision at 0.9 on images the thresholds
were not set on: 5-fold cross-validation gives 0.955 held out. Tags are
recomputed from the stored vectors whenever the vocabulary, thresholds or
model change (:attr:`Tagger.key`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from lookalike.core.learning.matrix import LibraryMatrix
    from lookalike.core.store.catalog import Catalog

log = logging.getLogger(__name__)

MAX_TAGS = 5
FLOOR = 0.35
#: The length of EfficientNet-Lite0's pooled features, median over 31 real photos
#: (scikit-image samples and the face photos; range 12.1-18.7).
POOLED_NORM = 14.5

#: The tag vocabulary, in the order tags are listed.
TAG_NAMES: tuple[str, ...] = (
    # animals
    "dog", "cat", "bird", "horse", "fish", "insect", "butterfly", "cow", "sheep", "wildlife", "reptile", "monkey",
    "bear", "pet",
    # people
    "people", "portrait", "baby", "crowd", "wedding", "sport",
    # nature and places
    "beach", "sea", "lake", "river", "mountain", "forest", "tree", "flowers", "garden", "field", "desert", "snow",
    "sky", "sunset", "waterfall", "volcano", "island", "cliff", "park", "landscape", "rock", "cave",
    # town
    "city", "street", "building", "house", "church", "castle", "bridge", "tower", "shop", "market", "restaurant",
    "playground", "ruins", "monument",
    # indoors
    "kitchen", "bedroom", "bathroom", "living room", "office", "furniture", "interior",
    # things
    "car", "bicycle", "motorcycle", "boat", "train", "plane", "bus", "truck", "vehicle",
    "food", "fruit", "vegetables", "dessert", "drink", "coffee", "bread",
    "computer", "phone", "book", "toy", "clothes", "shoes", "bag", "glasses", "tools", "instrument", "ball",
    "clock", "bottle",
    # kinds of picture
    "document", "screenshot", "text", "night", "indoor", "outdoor", "close-up", "art", "water", "space",
)  # fmt: skip


def _r(a: int, b: int) -> tuple[int, ...]:
    return tuple(range(a, b + 1))


_CARS = (407, 436, 468, 511, 609, 627, 656, 661, 717, 751, 817, 475, 479, 581)
_BIKES = (444, 671, 870, 880)
_MOTORBIKES = (665, 670)
_BOATS = (403, 472, 484, 510, 554, 576, 625, 628, 693, 694, 724, 780, 814, 833, 871, 914)
_TRAINS = (466, 547, 565, 705, 820, 829)
_PLANES = (404, 405, 895, 908)
_BUSES = (654, 779, 874)
_TRUCKS = (555, 569, 675, 717, 734, 864, 867)
_CLOTHES = (399, 400, 411, 474, 501, 568, 578, 601, 608, 610, 614, 617, 652, 655, 689, 697, 735, 775, 834, 841, 842,
            869, 887)  # fmt: skip
_WORN = (445, 451, 452, 457, 459, 515, 552, 584, 629, 638, 639, 643, 679, 796, 808, 824, 836, 837, 903, 906, 981,
         982, 983)  # fmt: skip
_KITCHEN = (534, 544, 550, 567, 618, 647, 651, 659, 760, 766, 813, 827, 859, 891, 909, 910, 521)
_BEDROOM = (493, 520, 564, 721, 750, 894)
_BATHROOM = (434, 435, 794, 804, 861, 896, 999)
_LIVING = (548, 598, 765, 831, 851)
_OFFICE = (446, 508, 526, 527, 620, 664, 713, 742)
_SHOPS = (415, 424, 454, 467, 509, 582, 788, 860, 865)
_BUILDINGS = (425, 442, 449, 483, 497, 498, 538, 580, 660, 663, 668, 698, 727, 743, 762, 832, 853, 858, 873, 900,
              915)  # fmt: skip
_FOOD = (*_r(924, 935), *_r(936, 957), *_r(959, 965), 923, 987)
_INSTRUMENTS = (401, 402, 420, 432, 486, 513, 541, 546, 558, 566, 577, 579, 593, 594, 641, 642, 683, 684, 687, 699, 776,
                822, 875, 881, 889)  # fmt: skip
_BALLS = (429, 430, 522, 574, 722, 768, 805, 852, 890)
_LANDSCAPE = (970, 972, 974, 975, 976, 977, 978, 979, 980)

#: ImageNet-1k class indices (the classifier's order) standing for each tag.
IMAGENET_TAGS: dict[str, tuple[int, ...]] = {
    "dog": _r(151, 268),
    "cat": _r(281, 285),
    "bird": (*_r(7, 24), *_r(80, 100), *_r(127, 146)),
    "horse": (339, 603),
    "fish": (*_r(0, 6), *_r(389, 397)),
    "insect": _r(300, 326),
    "butterfly": _r(321, 326),
    "cow": (345, 346, 347),
    "sheep": (348, 349),
    "wildlife": (
        101,
        *_r(104, 106),
        *_r(147, 150),
        *_r(269, 280),
        *_r(286, 299),
        340,  # not 341 (hog): the farm pig
        *_r(342, 344),
        *_r(346, 347),
        *_r(349, 388),
    ),  # fmt: skip
    "reptile": (*_r(33, 50), *_r(52, 68)),
    "monkey": _r(365, 384),
    "bear": (*_r(294, 297), 388),
    "pet": (1, *_r(87, 90), *_r(151, 268), *_r(281, 285), 332, 333, 338),  # not 330-331: wild rabbits, hares
    "people": (*_CLOTHES, *_WORN),
    "portrait": (451, 457, 584, 629, 834, 836, 837, 903, 906, 982),
    "baby": (431, 443, 516, 520, 529, 680),
    "wedding": (982,),
    "sport": (*_BALLS, 416, 422, 450, 543, 560, 602, 702, 747, 752, 781, 795, 981),
    "beach": (445, 638, 639, 842, 977, 978),
    "sea": (460, 973, 976, 977, 978, 983, 147, 148),
    "lake": (975,),
    "mountain": (349, 672, 970, 979, 980),
    "flowers": (984, 985, 986),
    "garden": (448, 580, 621, 716),
    "field": (595, 730, 856, 866, 958, 984),
    "desert": (354,),
    "snow": (450, 537, 795, 802, 803),
    "sky": (405, 417, 701),
    "volcano": (980,),
    "cliff": (500, 972),
    "park": (562, 703, 843),
    "landscape": _LANDSCAPE,
    "rock": (649, 825),
    "city": (468, 640, 704, 829, 874, 919, 920),
    "street": (637, 640, 704, 919, 920),
    "building": (*_BUILDINGS, *_SHOPS),
    "house": (660, 706, 716, 853, 858),
    "church": (442, 497, 663, 668, 832),
    "castle": (483, 698),
    "bridge": (821, 839, 888),
    "tower": (437, 682, 900),
    "shop": _SHOPS,
    "market": (582,),
    "restaurant": (762,),
    "playground": (843,),
    "monument": (649, 682, 873),
    "kitchen": _KITCHEN,
    "bedroom": _BEDROOM,
    "bathroom": _BATHROOM,
    "living room": _LIVING,
    "office": _OFFICE,
    "furniture": (423, 453, 493, 495, 526, 532, 559, 564, 765, 831, 857, 894),
    "interior": (*_KITCHEN, *_BEDROOM, *_BATHROOM, *_LIVING, *_OFFICE),
    "car": _CARS,
    "bicycle": _BIKES,
    "motorcycle": _MOTORBIKES,
    "boat": _BOATS,
    "train": _TRAINS,
    "plane": _PLANES,
    "bus": _BUSES,
    "truck": _TRUCKS,
    "vehicle": (
        *_CARS,
        *_BIKES,
        *_MOTORBIKES,
        *_BOATS,
        *_TRAINS,
        *_PLANES,
        *_BUSES,
        *_TRUCKS,
        573,
        575,
        586,
        603,
        612,
        757,
        802,
        803,
        847,
        866,
    ),  # fmt: skip
    "food": _FOOD,
    "fruit": _r(948, 957),
    "vegetables": (*_r(936, 946), 987),
    "dessert": (927, 928, 929, 960),
    "drink": (440, 441, 503, 504, 572, 737, 898, 907, 966, 967, 969),
    "coffee": (504, 505, 550, 967),
    "bread": (415, 930, 931, 932),
    "computer": (508, 527, 590, 620, 664, 673, 782),
    "phone": (487, 528, 707),
    "book": (453, 454, 624, 917, 921),
    "toy": (611, 719, 723, 850, 865),
    "clothes": _CLOTHES,
    "shoes": (502, 514, 630, 770, 774, 788),
    "bag": (414, 636, 728, 748),
    "glasses": (836, 837),
    "tools": (477, 491, 587, 596, 677, 714, 740, 769, 783, 784, 792),
    "instrument": _INSTRUMENTS,
    "ball": _BALLS,
    "clock": (409, 530, 531, 604, 826, 835, 892),
    "bottle": (440, 720, 737, 898, 901, 907),
    "document": (446, 549, 681, 918, 922),
    "screenshot": (916,),
    "text": (916, 917, 918, 919, 921, 922),
    "art": (917,),
    "water": (562, 973, 974, 975, 977, 978),
    "space": (657, 744, 755, 812),
}

#: Per-tag thresholds for the offline model (summed class probability), written by
#: ``python -m lookalike.bench.tagcal`` from 745 labelled images (see the module's docstring;
#: ``inf``: the labelled images say the offline model does not give this tag at 0.9 precision).
OFFLINE_THRESHOLDS: dict[str, float] = {
    "dog": 0.6654,
    "cat": 0.6419,
    "bird": 0.3575,
    "horse": 0.8685,
    "fish": 0.6596,
    "insect": 0.8560,
    "butterfly": 0.6348,
    "cow": 0.6974,
    "sheep": 0.6348,
    "wildlife": 0.4803,
    "reptile": 0.9105,
    "monkey": math.inf,
    "bear": 0.8583,
    "pet": 0.6642,
    "people": 0.6983,
    "portrait": 0.7295,
    "baby": 0.6348,
    "wedding": math.inf,
    "sport": 0.6461,
    "beach": math.inf,
    "sea": math.inf,
    "lake": 0.6348,
    "mountain": 0.8612,
    "flowers": 0.6579,
    "garden": math.inf,
    "field": math.inf,
    "desert": math.inf,
    "snow": 0.6348,
    "sky": math.inf,
    "volcano": math.inf,
    "cliff": 0.6348,
    "park": 0.6348,
    "landscape": 0.7418,
    "rock": 0.8521,
    "city": math.inf,
    "street": 0.6348,
    "building": 0.6620,
    "house": 0.6348,
    "church": 0.6348,
    "castle": 0.6348,
    "bridge": 0.6348,
    "tower": 0.6348,
    "shop": 0.6348,
    "market": 0.6348,
    "restaurant": 0.6348,
    "playground": 0.6348,
    "monument": 0.8177,
    "kitchen": 0.6348,
    "bedroom": 0.6348,
    "bathroom": 0.6348,
    "living room": 0.6348,
    "office": 0.6348,
    "furniture": 0.6348,
    "interior": math.inf,
    "car": 0.6348,
    "bicycle": 0.6348,
    "motorcycle": 0.6348,
    "boat": 0.7661,
    "train": math.inf,
    "plane": 0.8073,
    "bus": 0.6348,
    "truck": 0.6348,
    "vehicle": 0.5512,
    "food": 0.5666,
    "fruit": 0.4274,
    "vegetables": 0.7201,
    "dessert": 0.6348,
    "drink": math.inf,
    "coffee": math.inf,
    "bread": math.inf,
    "computer": math.inf,
    "phone": 0.6348,
    "book": 0.6348,
    "toy": 0.6348,
    "clothes": 0.5009,
    "shoes": 0.6348,
    "bag": 0.6348,
    "glasses": 0.6348,
    "tools": 0.8998,
    "instrument": 0.9000,
    "ball": 0.6351,
    "clock": 0.6348,
    "bottle": 0.6348,
    "document": math.inf,
    "screenshot": 0.6348,
    "text": 0.6348,
    "art": 0.6348,
    "water": math.inf,
    "space": 0.6384,
}
#: ...and for CLIP (softmax over the vocabulary); not calibrated (no CLIP weights here).
CLIP_THRESHOLD = 0.3


def prompt(tag: str) -> str:
    article = "" if tag.endswith("s") or tag in ("food", "text", "art", "water", "space", "snow", "furniture") else "a "
    return f"a photo of {article}{tag}"


class Tagger:
    """Scores stored vectors against the vocabulary for one model."""

    def __init__(
        self,
        key: str,
        score: Callable[[np.ndarray], np.ndarray],
        thresholds: np.ndarray,
        dimension: int = 0,
    ) -> None:
        self.key = key
        self._score = score
        self.thresholds = thresholds
        self.dimension = dimension  # of the vectors it reads (0: any)

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        return self._score(vectors)

    def assign(self, vectors: np.ndarray) -> list[list[tuple[str, float]]]:
        """The tags of each photo: at most MAX_TAGS, best first, each at or above its threshold."""
        import numpy as np

        s = self.scores(vectors)
        ok = np.nan_to_num(s, nan=-np.inf) >= self.thresholds[None, :]
        out: list[list[tuple[str, float]]] = []
        for row, mask in zip(s, ok):
            idx = np.nonzero(mask)[0]
            idx = idx[np.argsort(-row[idx], kind="stable")][:MAX_TAGS]
            out.append([(TAG_NAMES[i], float(row[i])) for i in idx])
        return out


def _offline_fc(checksum: str) -> tuple[np.ndarray, np.ndarray]:
    """EfficientNet-Lite0's classifier (1000 x 1280 weights, 1000 biases), cached as numpy."""
    import numpy as np

    from lookalike.core.encoders import offline
    from lookalike.core.runtime import models as runtime

    path = runtime.models_dir() / "offline" / f"classifier-{checksum[:20]}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["weight"], z["bias"]
    except (OSError, ValueError, KeyError):
        pass
    import torch

    state = torch.load(str(offline.efficientnet_weights_file()), map_location="cpu", weights_only=True)
    weight = state["_fc.weight"].numpy().astype(np.float32)
    bias = state["_fc.bias"].numpy().astype(np.float32)
    try:
        from lookalike.core.store.fsutil import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, weight=weight, bias=bias)
    except Exception as exc:  # only costs time next start
        log.warning("could not save the classifier cache %s: %s", path, exc)
    return weight, bias


def imagenet_probabilities(vectors: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The 1000 ImageNet class probabilities of offline-model vectors (rows)."""
    import numpy as np

    from lookalike.core.encoders.offline import VISUAL_DIM

    v = np.asarray(vectors, dtype=np.float32)[:, :VISUAL_DIM]
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    logits = POOLED_NORM * (v @ weight.T) + bias
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


def _class_matrix() -> np.ndarray:
    """(1000, len(TAG_NAMES)) 0/1: which classes stand for which tag."""
    import numpy as np

    m = np.zeros((1000, len(TAG_NAMES)), dtype=np.float32)
    for j, tag in enumerate(TAG_NAMES):
        for c in IMAGENET_TAGS.get(tag, ()):
            m[c, j] = 1.0
    return m


def _vocabulary_key(extra: str) -> str:
    import json

    # (inf is written as a string: JSON has no infinity)
    text = json.dumps(
        [TAG_NAMES, sorted((k, list(v)) for k, v in IMAGENET_TAGS.items()), sorted((k, str(v)) for k, v in OFFLINE_THRESHOLDS.items()),
         FLOOR, POOLED_NORM, CLIP_THRESHOLD, MAX_TAGS, extra]
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def offline_tagger(checksum: str) -> Tagger:
    import numpy as np

    weight, bias = _offline_fc(checksum)
    classes = _class_matrix()
    given = classes.sum(0) > 0

    def score(vectors: np.ndarray) -> np.ndarray:
        out = imagenet_probabilities(vectors, weight, bias) @ classes
        out[:, ~given] = np.nan
        return out

    thresholds = np.array([max(FLOOR, OFFLINE_THRESHOLDS.get(t, FLOOR)) for t in TAG_NAMES], dtype=np.float32)
    from lookalike.core.encoders.offline import CONCEPT_DIM, VISUAL_DIM

    return Tagger(_vocabulary_key("offline:" + checksum), score, thresholds, VISUAL_DIM + CONCEPT_DIM)


def clip_tagger(encoder_id: str, checksum: str, encode_texts: Callable[[list[str]], np.ndarray]) -> Tagger:
    import numpy as np

    prompts = np.asarray(encode_texts([prompt(t) for t in TAG_NAMES]), dtype=np.float32)
    prompts /= np.maximum(np.linalg.norm(prompts, axis=1, keepdims=True), 1e-12)

    def score(vectors: np.ndarray) -> np.ndarray:
        logits = 100.0 * (np.asarray(vectors, dtype=np.float32) @ prompts.T)
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    thresholds = np.full(len(TAG_NAMES), CLIP_THRESHOLD, dtype=np.float32)
    return Tagger(_vocabulary_key(f"clip:{encoder_id}:{checksum}"), score, thresholds, int(prompts.shape[1]))


class Tags:
    """The tags of one library's photos, kept in the catalog's ``photo_tags``."""

    META_KEY = "tags_key"

    def __init__(
        self,
        catalog: Catalog,
        matrix: LibraryMatrix,
        encode_texts: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        self.catalog = catalog
        self.matrix = matrix
        self._encode_texts = encode_texts
        self._tagger: Tagger | None = None
        self._lock = threading.Lock()

    def tagger(self) -> Tagger | None:
        """The current model's tagger, or None when this model gives no tags."""
        with self._lock:
            meta = self.catalog.meta()
            encoder_id, checksum = meta.get("encoder_id", ""), meta.get("weights_checksum", "")
            if self._tagger is not None and f"{encoder_id}:{checksum}" == getattr(self, "_for", ""):
                return self._tagger
            tagger = None
            if encoder_id.startswith("offline-"):
                tagger = offline_tagger(checksum)
            elif encoder_id.startswith("openclip-") and self._encode_texts is not None:
                tagger = clip_tagger(encoder_id, checksum, self._encode_texts)
            self._tagger, self._for = tagger, f"{encoder_id}:{checksum}"
            return tagger

    def update(self, photo_ids: np.ndarray | None = None) -> int:
        """Tag ``photo_ids`` (default: the photos indexed since the last pass), or every
        photo when the vocabulary, thresholds or model changed. Returns how many photos
        were looked at."""
        import numpy as np

        if self.catalog.readonly:
            return 0
        tagger = self.tagger()
        if tagger is None:
            return 0
        everything = self.catalog.get_meta(self.META_KEY) != tagger.key
        if not everything and photo_ids is not None and len(photo_ids) == 0:
            return 0  # a re-scan that found nothing new: every vector stays on disk
        if everything:  # read a chunk at a time where the vectors lie: nothing of the library is kept
            return self._tag_everything(tagger)
        # only the new photos' vectors: a few photos indexed never read the whole library
        if photo_ids is None:
            from lookalike.core.learning.matrix import new_photo_ids

            photo_ids = new_photo_ids(self.catalog)
        ids, vecs = self.catalog.vectors_of(np.asarray(photo_ids, dtype=np.int64))
        if len(ids) == 0:
            return 0
        if tagger.dimension and vecs.shape[1] != tagger.dimension:
            log.warning("not tagging: the vectors have %d numbers, the model %d", vecs.shape[1], tagger.dimension)
            return 0
        rows: list[tuple[str, int, float]] = []
        for start in range(0, len(ids), 4096):
            part = slice(start, start + 4096)
            for pid, tags in zip(ids[part].tolist(), tagger.assign(vecs[part])):
                rows += [(tag, int(pid), score) for tag, score in tags]
        with self.catalog.transaction() as conn:
            conn.executemany("DELETE FROM photo_tags WHERE photo_id = ?", [(int(i),) for i in ids.tolist()])
            conn.executemany("INSERT OR REPLACE INTO photo_tags(tag, photo_id, score) VALUES(?,?,?)", rows)
            self.catalog.set_meta({self.META_KEY: tagger.key}, db=conn)
        return len(ids)

    def _tag_everything(self, tagger: Tagger) -> int:

        ids = self.matrix.ids()
        rows: list[tuple[str, int, float]] = []
        for start in range(0, len(ids), 4096):
            part = ids[start : start + 4096]
            vecs = self.matrix.rows(part)
            if tagger.dimension and vecs.shape[1] != tagger.dimension:
                log.warning("not tagging: the vectors have %d numbers, the model %d", vecs.shape[1], tagger.dimension)
                return 0
            for pid, tags in zip(part.tolist(), tagger.assign(vecs)):
                rows += [(tag, int(pid), score) for tag, score in tags]
        with self.catalog.transaction() as conn:
            conn.execute("DELETE FROM photo_tags")
            conn.executemany("INSERT OR REPLACE INTO photo_tags(tag, photo_id, score) VALUES(?,?,?)", rows)
            self.catalog.set_meta({self.META_KEY: tagger.key}, db=conn)
        return int(len(ids))

    def counts(self) -> list[tuple[str, int]]:
        """Every tag of the vocabulary with how many photos have it (vocabulary order)."""
        got = dict(self.catalog.query("SELECT tag, COUNT(*) FROM photo_tags GROUP BY tag"))
        return [(t, int(got.get(t, 0))) for t in TAG_NAMES]

    def of(self, photo_id: int) -> list[tuple[str, float]]:
        rows = self.catalog.query(
            "SELECT tag, score FROM photo_tags WHERE photo_id = ? ORDER BY score DESC", (int(photo_id),)
        )
        return [(r[0], float(r[1])) for r in rows]

    def photo_ids(self, tag: str) -> np.ndarray:
        import numpy as np

        rows = self.catalog.query("SELECT photo_id FROM photo_tags WHERE tag = ?", (tag,))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
