"""Tags on every photo, zero-shot, from the stored vectors.

The vocabulary is about a hundred everyday words a person would file photos
under. How a photo earns a tag depends on the model (see :func:`tagger_for`).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

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
