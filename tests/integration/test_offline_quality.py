"""The offline encoder on real photos: what a user would notice.

Photos are the real sample photographs of tests/photos.py, written as JPEG files
and decoded the way the indexer decodes them. Queries are ranked by cosine over
the eight photos, and arithmetic is a weighted sum normalised, as the query
engine does.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.core.index.imaging import decode_file
from tests.photos import SAMPLES

# Subjects the model can know: each maps onto ImageNet classes (tabby / tiger
# cat, espresso / cup, missile / space shuttle, moped / motor scooter, wall
# clock). The astronaut, the coins and the galaxies have no ImageNet class.
KNOWABLE = ["cat", "coffee", "rocket", "motorcycle", "clock"]
NAMES = list(SAMPLES)


@pytest.fixture(scope="module")
def library(offline_encoder, sample_dir):
    """(names, vectors, decoded images) of the sample photos, as the indexer would store them."""
    images = [decode_file(sample_dir / f"{n}.jpg", target=offline_encoder.image_size).image for n in NAMES]
    return NAMES, offline_encoder.encode_images(images), images


def ranking(vectors: np.ndarray, query: np.ndarray) -> list[str]:
    scores = vectors @ query
    return [NAMES[i] for i in np.argsort(-scores, kind="stable")]


def combine(*terms: tuple[float, np.ndarray]) -> np.ndarray:
    v = sum(w * t for w, t in terms)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("name", KNOWABLE)
def test_text_query_ranks_the_right_photo_first(offline_encoder, library, name):
    _, vectors, _ = library
    query = offline_encoder.encode_texts([SAMPLES[name][1]])[0]
    assert ranking(vectors, query)[0] == name


@pytest.mark.parametrize(
    "name,words",
    [
        ("cat", "kitten"),
        ("coffee", "espresso"),
        ("rocket", "a rocket"),
        ("motorcycle", "motorbike"),
    ],
)
def test_other_words_for_the_same_subject_also_work(offline_encoder, library, name, words):
    _, vectors, _ = library
    assert ranking(vectors, offline_encoder.encode_texts([words])[0])[0] == name


def _alter(img: Image.Image, kind: str) -> Image.Image:
    w, h = img.size
    if kind == "crop":
        return img.crop((int(w * 0.1), int(h * 0.12), int(w * 0.9), int(h * 0.92)))
    if kind == "corner":
        return img.crop((0, 0, int(w * 0.75), int(h * 0.75)))
    if kind == "resize":
        return img.resize((max(1, w // 3), max(1, h // 3)), Image.Resampling.BILINEAR)
    if kind == "flip":
        return ImageOps.mirror(img)
    if kind in ("jpeg", "all"):
        if kind == "all":
            img = ImageOps.mirror(img.crop((int(w * 0.05), int(h * 0.05), int(w * 0.9), int(h * 0.95))))
            img = img.resize((max(1, img.width // 2), max(1, img.height // 2)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=25 if kind == "jpeg" else 40)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["crop", "corner", "resize", "jpeg", "flip", "all"])
def test_altered_copy_finds_its_original_first(offline_encoder, library, kind):
    _, vectors, images = library
    copies = offline_encoder.encode_images([_alter(img, kind) for img in images])
    found = [ranking(vectors, q)[0] for q in copies]
    assert found == NAMES


def test_a_photo_is_its_own_nearest_neighbour_by_a_clear_margin(library):
    _, vectors, _ = library
    sims = vectors @ vectors.T
    np.testing.assert_allclose(np.diag(sims), 1.0, atol=1e-5)
    off = sims - 2 * np.eye(len(NAMES))
    assert off.max() < 0.8  # different photos do not look alike to it


def test_sum_of_two_subjects_ranks_both_on_top(offline_encoder, library):
    _, vectors, _ = library
    cat, coffee = offline_encoder.encode_texts(["a cat", "a cup of coffee"])
    assert set(ranking(vectors, combine((1, cat), (1, coffee)))[:2]) == {"cat", "coffee"}
    moto, rocket = offline_encoder.encode_texts(["a motorcycle", "a rocket"])
    assert set(ranking(vectors, combine((1, moto), (1, rocket)))[:2]) == {"motorcycle", "rocket"}


def test_photo_plus_words_brings_the_words_subject_up(offline_encoder, library):
    _, vectors, _ = library
    cat_photo = vectors[NAMES.index("cat")]
    before = ranking(vectors, cat_photo)
    after = ranking(vectors, combine((1, cat_photo), (1, offline_encoder.encode_texts(["a cup of coffee"])[0])))
    assert before[0] == "cat" and after[0] == "cat"
    assert after.index("coffee") == 1 < before.index("coffee")


def test_minus_a_subject_pushes_it_down(offline_encoder, library):
    _, vectors, _ = library
    coffee, cat = offline_encoder.encode_texts(["a cup of coffee", "a cat"])
    before = ranking(vectors, coffee)
    after = ranking(vectors, combine((1, coffee), (-1, cat)))
    assert after[0] == "coffee"
    assert after[-1] == "cat" and before.index("cat") < len(NAMES) - 1

    astronaut_photo = vectors[NAMES.index("astronaut")]
    rocket = offline_encoder.encode_texts(["a rocket"])[0]
    before = ranking(vectors, astronaut_photo)
    after = ranking(vectors, combine((1, astronaut_photo), (-1, rocket)))
    assert after[0] == "astronaut"
    assert after.index("rocket") > before.index("rocket")


def test_weighted_words_outweigh_the_photo(offline_encoder, library):
    _, vectors, _ = library
    moto_photo = vectors[NAMES.index("motorcycle")]
    cat = offline_encoder.encode_texts(["a cat"])[0]
    assert ranking(vectors, combine((1, moto_photo), (2, cat)))[:2] == ["cat", "motorcycle"]


def test_sees_the_right_imagenet_concepts(offline_encoder, library):
    _, _, images = library
    top = [name for name, _ in offline_encoder.top_concepts(images[NAMES.index("cat")], k=3)]
    assert set(top) <= {"tabby", "tiger cat", "Egyptian cat", "lynx"}
    top = [name for name, _ in offline_encoder.top_concepts(images[NAMES.index("coffee")], k=1)]
    assert top == ["espresso"]
