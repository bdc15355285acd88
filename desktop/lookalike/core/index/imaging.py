"""Safe image decoding: EXIF orientation, JPEG draft mode, size guard, HEIC/AVIF.

Every decode that can fail raises :class:`ImageDecodeError` with a reason a
person understands; the indexer records it as a failure and goes on.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# Photos we index, by suffix (lower case). HEIC/HEIF/AVIF through pillow-heif.
PHOTO_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".avif"}
)

# The decompression-bomb guard: refuse anything over this many pixels (about
# 180 megapixels, larger than any camera sensor sold today) before decoding.
MAX_PIXELS = 180_000_000
# And never read a file larger than this into memory.
MAX_FILE_BYTES = 512 * 1024 * 1024

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow warns about what it tolerates (corrupt EXIF, odd chunks); a photo it can
# decode is fine by us, and the warnings would only clutter the terminal.
# (catch_warnings() is not thread-safe, so the decode workers cannot use it.)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# Images this large (after JPEG draft scaling) cost hundreds of MB while they
# decode, so only one decodes at a time however many decode workers run: memory
# stays bounded by the workers' small photos plus one large one.
LARGE_DECODE_PIXELS = 40_000_000
# The thinnest image handed to an encoder, long side over short side (see _limit_aspect).
MAX_ASPECT = 20
_large_decode = threading.Lock()

_heif_registered: bool | None = None


def register_heif() -> bool:
    """Teach Pillow HEIC/HEIF/AVIF via pillow-heif (once). False if unavailable."""
    global _heif_registered
    if _heif_registered is None:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            try:
                pillow_heif.register_avif_opener()  # type: ignore[attr-defined,unused-ignore]  # older pillow-heif only
            except AttributeError:  # newer pillow-heif: AVIF is in Pillow itself
                pass
            _heif_registered = True
        except Exception as exc:  # pragma: no cover - depends on the platform
            log.warning("HEIC/AVIF support unavailable: %s", exc)
            _heif_registered = False
    return _heif_registered


class ImageDecodeError(Exception):
    """A photo that cannot be read; ``str()`` is the reason for the user."""


class FileVanishedError(ImageDecodeError):
    """The file was there a moment ago and is gone now (deleted or renamed meanwhile)."""


@dataclass(frozen=True)
class DecodedPhoto:
    image: Image.Image  # RGB, oriented, shrunk to about the requested size
    width: int  # the original's size, after orientation
    height: int
    taken: float | None  # EXIF DateTimeOriginal as a UNIX timestamp (local time), if any


def is_photo_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in PHOTO_SUFFIXES


def read_file_bytes(path: Path | str) -> bytes:
    """Read a regular file whole, with reasons a person understands on failure."""
    p = os.fspath(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileVanishedError("the file disappeared before it could be read") from None
    except PermissionError:
        raise ImageDecodeError("permission denied: the file is not readable by you") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageDecodeError("a symbolic link loop, not a file") from None
        raise ImageDecodeError(f"cannot open the file: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ImageDecodeError(f"{kind}, not a photo")
        if st.st_size == 0:
            raise ImageDecodeError("the file is empty (0 bytes)")
        if st.st_size > MAX_FILE_BYTES:
            raise ImageDecodeError(f"the file is too large to be a photo ({st.st_size / 2**20:.0f} MiB)")
        chunks = []
        remaining = st.st_size
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 8 * 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ImageDecodeError(f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _exif_taken(img: Image.Image) -> float | None:
    try:
        exif = img.getexif()
    except Exception:
        return None
    value = None
    try:
        sub = exif.get_ifd(0x8769)  # Exif IFD
        value = sub.get(0x9003) or sub.get(0x9004)  # DateTimeOriginal, DateTimeDigitized
    except Exception:
        pass
    value = value or exif.get(0x0132)  # DateTime
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return datetime.strptime(str(value).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S").timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _oriented_size(img: Image.Image, size: tuple[int, int] | None = None) -> tuple[int, int]:
    w, h = size or img.size
    try:
        orientation = img.getexif().get(0x0112)
    except Exception:
        orientation = None
    if orientation in (5, 6, 7, 8):
        return h, w
    return w, h


def _draft(img: Image.Image, w0: int, h0: int, target: int) -> None:
    """Ask the JPEG codec for at least ``target`` on the short side; it picks the scale."""
    scale = max(1, min(w0, h0) // target)
    if scale > 1:
        img.draft("RGB", (max(1, w0 // scale), max(1, h0 // scale)))


def decode_bytes(data: bytes, target: int | None = 256, name: str = "") -> DecodedPhoto:
    """Decode ``data`` into an RGB image whose short side is about ``target``.

    JPEGs decode in draft mode (the codec scales by 1/2, 1/4 or 1/8 while
    decoding), so a 12-megapixel photo costs a fraction of a full decode.
    """
    register_heif()
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        w0, h0 = img.size
        if w0 * h0 > MAX_PIXELS:
            raise ImageDecodeError(_too_many_pixels(f"{w0}×{h0} pixels", w0 * h0))
        if w0 <= 0 or h0 <= 0:
            raise ImageDecodeError("the image has no pixels")
        if target and img.format == "JPEG":
            _draft(img, w0, h0, target)
        if getattr(img, "is_animated", False):
            img.seek(0)
        large = img.size[0] * img.size[1] > LARGE_DECODE_PIXELS
        with _large_decode if large else nullcontext():
            img.load()
            # EXIF only after load(): PNG's getexif() loads the pixels itself and a
            # failure there must not be swallowed (it left a damaged image "loaded").
            width, height = _oriented_size(img, (w0, h0))
            taken = _exif_taken(img)
            if large and target and min(img.size) > 2 * target:
                # Shrink before any copy (orientation, RGB) of the full-size pixels.
                try:
                    img.thumbnail(_fit_short_side(img.size, target), Image.Resampling.BILINEAR, reducing_gap=2.0)
                except (ValueError, OSError):  # a mode resize cannot handle: shrink after RGB
                    pass
            try:
                img = ImageOps.exif_transpose(img)
            except Exception:  # a bogus orientation tag is not worth a failure
                pass
            img = _to_rgb(img)
            if target and min(img.size) > 2 * target:
                img.thumbnail(_fit_short_side(img.size, target), Image.Resampling.BILINEAR, reducing_gap=2.0)
            img = _limit_aspect(img)
        return DecodedPhoto(img, width, height, taken)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        m = re.search(r"\((\d+) pixels\)", str(exc))
        claimed = int(m.group(1)) if m else 0
        raise ImageDecodeError(
            _too_many_pixels(f"{claimed / 1e6:,.0f} megapixels", claimed)
            if claimed
            else "the image is too large to decode safely (a decompression bomb?)"
        ) from None
    except UnidentifiedImageError:
        kind = _sniff_kind(data)
        raise ImageDecodeError(f"not an image Lookalike can read ({kind})") from None
    except MemoryError:
        raise ImageDecodeError("not enough memory to decode this image") from None
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        TypeError,
        KeyError,
        struct.error,
        zlib.error,
    ) as exc:
        msg = str(exc) or exc.__class__.__name__
        log.debug("Cannot decode %s: %r", name or "an image", exc)
        if "truncated" in msg or "broken data stream" in msg or isinstance(exc, EOFError):
            raise ImageDecodeError("the file is truncated or damaged (incomplete image data)") from None
        raise ImageDecodeError(
            "the image data is damaged and cannot be decoded (a corrupt file, or not what its name says)"
        ) from None


def _too_many_pixels(claim: str, pixels: int) -> str:
    return (
        f"the image claims {claim}, more than the {MAX_PIXELS // 1_000_000} megapixels "
        "Lookalike accepts (too large to decode safely: a decompression bomb?)"
    )


def _limit_aspect(img: Image.Image) -> Image.Image:
    """Keep the middle of an image thinner than MAX_ASPECT: the encoders scale the short
    side up to their input size, so a 60000×3 strip (a few hundred bytes on disk) would
    become 4.5 million pixels wide there - gigabytes. No photo is that thin, and the
    encoders look at the middle anyway."""
    w, h = img.size
    if w > MAX_ASPECT * h:
        keep = MAX_ASPECT * h
        left = (w - keep) // 2
        return img.crop((left, 0, left + keep, h))
    if h > MAX_ASPECT * w:
        keep = MAX_ASPECT * w
        top = (h - keep) // 2
        return img.crop((0, top, w, top + keep))
    return img


def _fit_short_side(size: tuple[int, int], target: int) -> tuple[int, int]:
    w, h = size
    s = target / min(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any mode -> RGB; transparency is composited on white (how photos are viewed)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float32)
        hi = float(arr.max()) or 1.0
        img = Image.fromarray((arr * (255.0 / max(hi, 255.0 if hi <= 255 else hi))).astype("uint8"))
        return img.convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return img.convert("RGB")


def _sniff_kind(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:200]:
        return "it is an HTML page"
    if head.startswith(b"<?xml") or head.startswith(b"<svg"):
        return "it is an XML/SVG document"
    if head.startswith(b"%pdf"):
        return "it is a PDF document"
    if head.startswith(b"pk\x03\x04"):
        return "it is a ZIP archive"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"):
            return "a HEIC/AVIF image this installation cannot decode"
        return "it is a video, MP4 or MOV"
    if data[:4] == b"RIFF" and data[8:12] in (b"AVI ", b"WAVE"):
        return "it is a video or sound file"
    if data[:3] == b"ID3" or data[:4] == b"OggS" or data[:4] == b"fLaC":
        return "it is a sound file"
    if data[:2] == b"\x1f\x8b" or data[:6] == b"7z\xbc\xaf\x27\x1c" or data[:4] == b"Rar!":
        return "it is a compressed archive"
    if data[:4] == b"\x7fELF" or data[:2] == b"MZ":
        return "it is a program"
    sample = data[:512]
    text: str | None
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:  # a sample cut inside a character is still text
        text = sample[: exc.start].decode("utf-8") if exc.start >= len(sample) - 3 else None
    if text and all(c.isprintable() or c in "\t\r\n\f" for c in text):
        return "it is a text file"
    return "unknown file format"


def decode_file(path: Path | str, target: int | None = 256) -> DecodedPhoto:
    return decode_bytes(read_file_bytes(path), target, name=os.fspath(path))
