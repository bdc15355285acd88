"""Real photos for tests: scikit-image's bundled sample photographs, written as files.

Each is a real photograph with a subject the ImageNet-trained offline model
knows (a tabby cat, a coffee cup, a rocket, an astronaut, a motorbike, a
wall clock, a galaxy field...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# name -> (skimage loader, what a person would type to find it)
SAMPLES: dict[str, tuple[str, str]] = {
    "cat": ("chelsea", "a cat"),
    "coffee": ("coffee", "a cup of coffee"),
    "rocket": ("rocket", "a rocket on the launch pad"),
    "astronaut": ("astronaut", "an astronaut in a space suit"),
    "motorcycle": ("stereo_motorcycle", "a motorcycle"),
    "clock": ("clock", "a wall clock"),
    "coins": ("coins", "old coins"),
    "galaxies": ("hubble_deep_field", "galaxies in deep space"),
}


def sample_array(name: str) -> np.ndarray:
    import skimage.data

    loader = getattr(skimage.data, SAMPLES[name][0])
    arr = loader()
    if isinstance(arr, tuple):  # stereo_motorcycle -> (left, right, disparity)
        arr = arr[0]
    return np.asarray(arr)


def sample_image(name: str) -> Image.Image:
    img = Image.fromarray(sample_array(name))
    return img.convert("RGB")


def write_samples(folder: Path, names: list[str] | None = None, quality: int = 92) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names or list(SAMPLES):
        path = folder / f"{name}.jpg"
        sample_image(name).save(path, quality=quality)
        out[name] = path
    return out


# The 18 face photos of 6 people (MIT, face_recognition's examples; licence and
# labels beside them), kept in the repository so a clone alone runs the tests.
FACES = Path(__file__).resolve().parent / "data" / "faces"
