"""Realistic camera files for the indexing benchmark.

Each file is a 12-megapixel (4032x3024) JPEG made from a real photograph
(scikit-image's bundled samples): a random crop, flip and exposure shift,
upscaled, with sensor-like grain so that the entropy-coded data, and so the
decode cost, is like a phone's (about 3-4 MB at quality 90), and an EXIF
block like a camera writes (make, model, date taken, exposure, orientation).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

CAMERA_SIZE = (4032, 3024)  # 12.2 megapixels, a phone's main camera
_SOURCES = (
    "chelsea",
    "coffee",
    "rocket",
    "astronaut",
    "stereo_motorcycle",
    "clock",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "cat",
    "colorwheel",
)


def _source_photos() -> list[np.ndarray]:
    out = []
    try:
        import skimage.data as data
    except ImportError:  # pragma: no cover - scikit-image is in the test/bench extras
        data = None
    for name in _SOURCES if data is not None else ():
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            arr = loader()
        except Exception:  # a sample that needs a download (pooch) is skipped
            continue
        if isinstance(arr, tuple):
            arr = arr[0]
        arr = np.asarray(arr)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.ndim != 3 or arr.shape[2] < 3 or min(arr.shape[:2]) < 200:
            continue
        out.append(np.ascontiguousarray(arr[:, :, :3].astype(np.uint8)))
    if not out:  # no sample photos here: smooth random scenes stand in
        rng = np.random.default_rng(0)
        for _ in range(4):
            small = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
            out.append(np.asarray(Image.fromarray(small).resize((600, 450), Image.Resampling.BICUBIC)))
    return out


def _exif(i: int, rng: np.random.Generator) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Lookalike Bench"  # Make
    exif[0x0110] = "Phone 12MP"  # Model
    exif[0x0131] = "bench 1.0"  # Software
    taken = time.strftime("%Y:%m:%d %H:%M:%S", time.gmtime(1_600_000_000 + i * 3_613))
    exif[0x0132] = taken  # DateTime
    # One in eight is stored sideways, as phones do when held in portrait.
    exif[0x0112] = 6 if i % 8 == 7 else 1
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = taken  # DateTimeOriginal
    sub[0x9004] = taken  # DateTimeDigitized
    sub[0x829A] = (1, int(rng.choice([60, 120, 250, 500])))  # ExposureTime
    sub[0x829D] = (18, 10)  # FNumber
    sub[0x8827] = int(rng.choice([50, 100, 200, 400]))  # ISO
    sub[0x920A] = (43, 10)  # FocalLength
    return exif


def make_camera_jpegs(
    folder: Path, count: int, *, seed: int = 0, quality: int = 90, size: tuple[int, int] = CAMERA_SIZE
) -> list[Path]:
    """Write ``count`` camera-like JPEGs into ``folder`` (reused if already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = _source_photos()
    rng = np.random.default_rng(seed)
    w, h = size
    # One grain tile, rolled to a new offset for every photo.
    grain = rng.normal(0, 5.0, size=(h, w)).astype(np.float32)
    paths = []
    for i in range(count):
        path = folder / f"IMG_{i:05d}.jpg"
        paths.append(path)
        if path.exists() and path.stat().st_size > 0:
            continue
        src = sources[i % len(sources)]
        sh, sw = src.shape[:2]
        ch, cw = int(sh * rng.uniform(0.7, 1.0)), int(sw * rng.uniform(0.7, 1.0))
        y, x = rng.integers(0, sh - ch + 1), rng.integers(0, sw - cw + 1)
        crop = src[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        img = Image.fromarray(np.ascontiguousarray(crop)).resize((w, h), Image.Resampling.BICUBIC)
        arr = np.asarray(img, dtype=np.float32) * rng.uniform(0.85, 1.15)
        g = np.roll(grain, (int(rng.integers(0, h)), int(rng.integers(0, w))), axis=(0, 1))
        arr += g[:, :, None]
        arr = np.clip(arr, 0, 255).astype(np.uint8)
        tmp = path.with_suffix(".tmp")
        Image.fromarray(arr).save(tmp, "JPEG", quality=quality, exif=_exif(i, rng).tobytes(), subsampling="4:2:0")
        tmp.rename(path)
    return paths
