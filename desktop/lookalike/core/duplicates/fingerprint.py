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

from lookalike.core.index.stages import PhotoStage, StagePhoto
from lookalike.core.progress import CancelToken, Stage

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from PIL import Image

    from lookalike.core.store.catalog import Catalog

log = logging.getLogger(__name__)

HASH_SIZE = 16  # 256-bit pHash and dHash
PERCEPT_BYTES = 2 * HASH_SIZE * HASH_SIZE // 8
# Summed Hamming distance (of 512 bits) at or under which a vector candidate is the
# same photo. Measured: positives up to 138 (5% crops), different shots from 159.
PERCEPT_LIMIT = 128
DECODE_SIZE = 256  # short side a lazily fingerprinted photo is decoded at
# Fingerprints cached by another version of this code are computed again.
VERSION = 1


@dataclass(frozen=True)
class Fingerprint:
    percept: bytes | None  # pHash bits then dHash bits; None when the photo cannot be decoded
    exif: int  # number of EXIF tags in the file (0: none)
    format: str  # what the file is (Pillow's name: JPEG, PNG, HEIF, ...), '' when unknown


def percept_of(image: Image.Image) -> bytes:
    """The 512 perceptual bits of an RGB image, as bytes."""
    import imagehash
    import numpy as np

    p = imagehash.phash(image, hash_size=HASH_SIZE).hash
    d = imagehash.dhash(image, hash_size=HASH_SIZE).hash
    return np.packbits(np.concatenate([p.ravel(), d.ravel()])).tobytes()


def distance(a: bytes, b: bytes) -> int:
    """Hamming distance between two fingerprints' bits."""
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).bit_count()


def file_facts(path: Path | str) -> tuple[int, str]:
    """(EXIF tag count, format) from the file's header; (0, '') when unreadable."""
    from PIL import Image

    from lookalike.core.index.imaging import register_heif

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
    from lookalike.core.index.imaging import ImageDecodeError, decode_file

    exif, fmt = file_facts(path)
    try:
        decoded = decode_file(path, target=DECODE_SIZE)
    except ImageDecodeError as exc:
        log.info("Cannot fingerprint %s: %s", path, exc)
        return Fingerprint(None, exif, fmt)
    return Fingerprint(percept_of(decoded.image), exif, fmt)


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
                out.append(Fingerprint(percept_of(p.decoded.image), exif, fmt))
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
