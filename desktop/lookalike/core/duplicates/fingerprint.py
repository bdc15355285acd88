"""Perceptual fingerprints that confirm a near-duplicate.

A near-duplicate candidate comes from the vector graph (the encoder's idea of
"looks alike"), which also rates two shots of one scene, or a stereo pair, as
alike. The confirmation is a check that is sensitive to content and insensitive
to size and compression: ImageHash's 256-bit pHash (DCT of a 64x64 grey
thumbnail) and 256-bit dHash (gradient signs of a 17x16 one). Their Hamming
distances, added, are small for the same photo resized, recompressed, converted,
rotated by its EXIF tag, cropped by a few percent or colour-shifted, and large
for different shots. The threshold (``PERCEPT_LIMIT``) was set on labelled pairs
(``lookalike bench --only duplicates``; docs/duplicates.md): all positives of the
kinds that matter most at or under 104 of 512 bits except crops (at most 138), the
nearest different shot (the two views of a stereo pair) at 159.

Where they are computed: at index time by :class:`FingerprintStage` (the photo is
decoded anyway; a fingerprint costs about a millisecond there, against ~17 ms to
decode a photo again for it), and lazily, then cached in ``dup_fingerprints``, for
photos indexed before the stage existed. Those are not decoded again in bulk (a
100,000-photo library would spend ~15 minutes of two cores on it whether or not
its owner ever looks for duplicates): the finder fingerprints only the candidates
a search needs, once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.core.progress import CancelToken, Stage
from lookalike.core.stages import PhotoStage, StagePhoto

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from PIL import Image

    from lookalike.core.catalog import Catalog

log = logging.getLogger(__name__)

HASH_SIZE = 16  # 256-bit pHash and dHash
PERCEPT_BYTES = 2 * HASH_SIZE * HASH_SIZE // 8
# Summed Hamming distance (of 512 bits) at or under which a vector candidate is the
# same photo. Measured: positives up to 138 (5% crops), different shots from 159.
PERCEPT_LIMIT = 128
DECODE_SIZE = 256  # short side a lazily fingerprinted photo is decoded at
# Fingerprints cached by another version of this code are computed again.
# 2: the structure and tone of the photo, and its bits on black where it has transparency.
VERSION = 2
# Grey standard deviation (0-255, of a 64x64 thumbnail) under which a photo is flat: its
# bits say almost nothing (a gradient of zeros), so its colours must agree too.
FLAT_STRUCTURE = 6
# Mean difference (0-255) of two flat photos' 4x4 colour thumbnails at or under which
# they are one picture.
TONE_LIMIT = 8
_BITS = 2 * HASH_SIZE * HASH_SIZE // 8
_TONE = 4 * 4 * 3


@dataclass(frozen=True)
class Fingerprint:
    percept: bytes | None  # pHash bits then dHash bits; None when the photo cannot be decoded
    exif: int  # number of EXIF tags in the file (0: none)
    format: str  # what the file is (Pillow's name: JPEG, PNG, HEIF, ...), '' when unknown


def _bits(image: Image.Image) -> bytes:
    import imagehash
    import numpy as np

    p = imagehash.phash(image, hash_size=HASH_SIZE).hash
    d = imagehash.dhash(image, hash_size=HASH_SIZE).hash
    return np.packbits(np.concatenate([p.ravel(), d.ravel()])).tobytes()


def percept_of(image: Image.Image, on_black: Image.Image | None = None) -> bytes:
    """The fingerprint of an RGB image (as the app shows it: transparency on white), as
    bytes: its 512 perceptual bits; its structure (one byte: how far from flat it is);
    its tone (a 4x4 colour thumbnail); and, for a photo with transparency, the bits of
    it composited on black (``on_black``), which see what white on white hides."""
    import numpy as np
    from PIL import Image as PILImage

    grey = np.asarray(image.convert("L").resize((64, 64), PILImage.Resampling.BOX), np.float32)
    structure = bytes([min(255, round(float(grey.std())))])
    tone = np.asarray(image.convert("RGB").resize((4, 4), PILImage.Resampling.BOX), np.uint8).tobytes()
    dark = _bits(on_black) if on_black is not None else b""
    return _bits(image) + structure + tone + dark


def distance(a: bytes, b: bytes) -> int:
    """Hamming distance between two fingerprints' perceptual bits."""
    return (int.from_bytes(a[:_BITS], "little") ^ int.from_bytes(b[:_BITS], "little")).bit_count()


def judge(a: bytes, b: bytes) -> int | None:
    """The distance of two fingerprints if they are one photo, else None: their bits within
    PERCEPT_LIMIT; where either is flat, their tones within TONE_LIMIT as well; where either
    has transparency, their bits on black within PERCEPT_LIMIT too (the other's own bits
    where it has none)."""
    import numpy as np

    d = distance(a, b)
    if d > PERCEPT_LIMIT:
        return None
    if len(a) < _BITS + 1 + _TONE or len(b) < _BITS + 1 + _TONE:
        return d  # bits alone (fingerprints made without the rest)
    if min(a[_BITS], b[_BITS]) < FLAT_STRUCTURE:
        ta = np.frombuffer(a[_BITS + 1 : _BITS + 1 + _TONE], np.uint8).astype(np.int16)
        tb = np.frombuffer(b[_BITS + 1 : _BITS + 1 + _TONE], np.uint8).astype(np.int16)
        if float(np.abs(ta - tb).mean()) > TONE_LIMIT:
            return None
    da, db = a[_BITS + 1 + _TONE :], b[_BITS + 1 + _TONE :]
    if da or db:
        dark = distance(da or a, db or b)
        if dark > PERCEPT_LIMIT:
            return None
        d = max(d, dark)
    return d


def on_black(path: Path | str, image_size: tuple[int, int]) -> Image.Image | None:
    """The photo composited on black at ``image_size`` (oriented), if it has transparency;
    else None. Decoded again, so only for the few photos that have it."""
    from PIL import Image, ImageOps

    try:
        with Image.open(os.fspath(path)) as img:
            if not _has_alpha(img):
                return None
            img.draft("RGB", image_size)
            rgba = ImageOps.exif_transpose(img.convert("RGBA")).resize(image_size, Image.Resampling.BOX)
    except Exception:  # undecodable here: the white composite alone decides
        return None
    black = Image.new("RGB", rgba.size, (0, 0, 0))
    black.paste(rgba, mask=rgba.getchannel("A"))
    return black


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)


def file_facts(path: Path | str) -> tuple[int, str]:
    """(EXIF tag count, format) from the file's header; (0, '') when unreadable."""
    from PIL import Image

    from lookalike.core.imaging import register_heif

    register_heif()
    try:
        with Image.open(os.fspath(path)) as img:
            fmt = img.format or ""
            try:
                exif = img.getexif()
                # The orientation tag alone is not metadata worth keeping a copy for.
                count = len([t for t in exif if t != 0x0112]) + len(exif.get_ifd(0x8769))
            except Exception:  # a damaged EXIF block counts as none
                count = 0
            return count, fmt
    except Exception:
        return 0, ""


def fingerprint_file(path: Path | str) -> Fingerprint:
    """Decode a photo (oriented, shrunk) and fingerprint it."""
    from lookalike.core.imaging import ImageDecodeError, decode_file

    exif, fmt = file_facts(path)
    try:
        decoded = decode_file(path, target=DECODE_SIZE)
    except ImageDecodeError as exc:
        log.info("Cannot fingerprint %s: %s", path, exc)
        return Fingerprint(None, exif, fmt)
    image = decoded.image
    return Fingerprint(percept_of(image, on_black(path, image.size)), exif, fmt)


def store(conn: sqlite3.Connection, rows: Iterable[tuple[int, str, Fingerprint]]) -> None:
    """(photo id, content hash, fingerprint) rows into the cache; a photo no longer in the
    catalog with that content (deleted or changed meanwhile) is left out."""
    conn.executemany(
        "INSERT INTO dup_fingerprints(photo_id, hash, percept, exif, format, version) "
        "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM photos WHERE id = ? AND hash = ?) "
        "ON CONFLICT(photo_id) DO UPDATE SET hash = excluded.hash, percept = excluded.percept, "
        "exif = excluded.exif, format = excluded.format, version = excluded.version",
        [(pid, h, f.percept, f.exif, f.format, VERSION, pid, h) for pid, h, f in rows],
    )


def cached(catalog: Catalog, ids: Sequence[int]) -> dict[int, Fingerprint]:
    """The fingerprints the cache holds for these photos (current content only)."""
    out: dict[int, Fingerprint] = {}
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for pid, percept, exif, fmt in catalog._q(
            "SELECT f.photo_id, f.percept, f.exif, f.format FROM dup_fingerprints f JOIN photos p "
            f"ON p.id = f.photo_id AND p.hash = f.hash WHERE f.version = ? AND f.photo_id IN ({marks})",
            [VERSION, *chunk],
        ):
            out[pid] = Fingerprint(bytes(percept) if percept is not None else None, exif, fmt)
    return out


def ensure(catalog: Catalog, ids: Sequence[int], *, workers: int | None = None) -> dict[int, Fingerprint]:
    """Fingerprints of these photos, computing (in a thread pool) and caching the missing ones."""
    from concurrent.futures import ThreadPoolExecutor

    have = cached(catalog, ids)
    missing = [int(i) for i in ids if int(i) not in have]
    if not missing:
        return have
    rows = catalog.photos_by_ids(missing)
    todo = [rows[i] for i in missing if i in rows]
    with ThreadPoolExecutor(max_workers=workers or max(1, os.cpu_count() or 1)) as pool:
        prints = list(pool.map(lambda r: fingerprint_file(r.path), todo))
    if not catalog.readonly:
        with catalog.transaction() as conn:
            store(conn, [(r.id, r.hash, f) for r, f in zip(todo, prints)])
    for r, f in zip(todo, prints):
        have[r.id] = f
    return have


class FingerprintStage(PhotoStage[Fingerprint]):
    """The indexer's fingerprint step, on the image it decoded anyway (about a millisecond
    a photo). Photos indexed before it existed are not decoded again for it: the finder
    fingerprints those lazily, and only the ones some search actually needs."""

    stage = Stage.ENCODE  # counted with the photo's indexing; it never runs on its own

    def prepare(self) -> None:
        """The first fingerprint imports imagehash and SciPy's FFT (seconds on a loaded
        machine): done before the first photo, not between its encoding and its commit."""
        from PIL import Image

        percept_of(Image.new("RGB", (64, 64)))

    def process(self, photos: Sequence[StagePhoto], cancel: CancelToken) -> list[Fingerprint]:
        out: list[Fingerprint] = []
        for p in photos:
            if cancel.cancelled:
                break
            exif, fmt = file_facts(p.path)
            try:
                image = p.decoded.image
                out.append(Fingerprint(percept_of(image, on_black(p.path, image.size)), exif, fmt))
            except Exception:  # one odd image must not stop the others
                log.exception("Cannot fingerprint %s", p.path)
                out.append(Fingerprint(None, exif, fmt))
        return out

    def write(self, conn: sqlite3.Connection, ids: Sequence[int], outputs: Sequence[Fingerprint]) -> None:
        conn.executemany(
            "INSERT INTO dup_fingerprints(photo_id, hash, percept, exif, format, version) "
            "SELECT id, hash, ?, ?, ?, ? FROM photos WHERE id = ? "
            "ON CONFLICT(photo_id) DO UPDATE SET hash = excluded.hash, percept = excluded.percept, "
            "exif = excluded.exif, format = excluded.format, version = excluded.version",
            [(f.percept, f.exif, f.format, VERSION, int(pid)) for pid, f in zip(ids, outputs)],
        )
