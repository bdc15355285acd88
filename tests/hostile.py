"""A corpus of bad and odd files, generated on the spot, with what should happen to each.

``build_corpus(root)`` writes good photos (real sample photographs, varied)
and at least 25 kinds of hostile or unusual input beside them, and returns a
:class:`Case` per file saying whether the library should hold it as a photo,
list it as unreadable (with words the reason must contain), or leave it out.

Three kinds need the test's help at run time and are made by helpers here:
a file with no read permission (:func:`make_unreadable`; meaningless for root,
so the index must run as another user), a file deleted between scan and
decode, and a file still being written (:func:`write_partially`).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from tests.photos import sample_image

Expect = Literal["photo", "failure", "ignored"]


@dataclass(frozen=True)
class Case:
    kind: str  # a short name for the kind of input
    path: Path
    expect: Expect
    reason: tuple[str, ...] = ()  # for failures: words (lower case) the reason must contain, any of
    note: str = ""


# Words that mean a reason was written for a programmer, not a person.
JARGON = (
    "error:",
    "exception",
    "traceback",
    "errno",
    "oserror",
    "valueerror",
    "syntaxerror",
    "keyerror",
    "indexerror",
    "struct.error",
    "cannot identify image file",
    "b'",
    "0x",
    "none",
    "nonetype",
    "unpack",
    "decoder",
    "<",
    ">",
)


def jargon_in(reason: str) -> list[str]:
    low = reason.lower()
    return [w for w in JARGON if w in low]


# -- building blocks ----------------------------------------------------------


def good_image(i: int, size: int = 160) -> Image.Image:
    """A real photograph, cropped and tinted differently for every ``i``."""
    from tests.photos import SAMPLES

    names = list(SAMPLES)
    img = sample_image(names[i % len(names)])
    w, h = img.size
    rng = np.random.default_rng(i)
    cw, ch = int(w * rng.uniform(0.55, 0.9)), int(h * rng.uniform(0.55, 0.9))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((x, y, x + cw, y + ch))
    img.thumbnail((size, size))
    arr = np.asarray(img, dtype=np.float32) * rng.uniform(0.8, 1.1, size=3)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=kw.pop("quality", 90), **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, *, rows: int = 1) -> bytes:
    """A PNG whose header claims ``width``×``height`` (8-bit grey) with ``rows`` rows of data."""
    raw = (b"\x00" + b"\x00" * width) * rows
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(raw, 9))
        + png_chunk(b"IEND", b"")
    )


def png_zeros(width: int, height: int) -> bytes:
    """A real, complete grey PNG of ``width``×``height`` black pixels: tiny on disk, huge decoded."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def jpeg_with_exif(img: Image.Image, exif_payload: bytes) -> bytes:
    """A JPEG with an APP1 Exif segment holding ``exif_payload`` verbatim."""
    data = jpeg_bytes(img)
    app1 = b"Exif\x00\x00" + exif_payload
    seg = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return data[:2] + seg + data[2:]


def tiff_orientation_exif(orientation: int) -> bytes:
    """A little-endian TIFF header with one IFD entry: Orientation = ``orientation``."""
    return (
        b"II*\x00"
        + struct.pack("<I", 8)
        + struct.pack("<H", 1)
        + struct.pack("<HHII", 0x0112, 3, 1, orientation)
        + struct.pack("<I", 0)
    )


def write_partially(path: Path, data: bytes, fraction: float = 0.5) -> bytes:
    """Write the first part of ``data`` to ``path`` (a file still being written); return the rest."""
    cut = max(1, int(len(data) * fraction))
    path.write_bytes(data[:cut])
    return data[cut:]


def make_unreadable(path: Path) -> None:
    os.chmod(path, 0)


def long_name_dir(root: Path, total: int = 250) -> Path:
    """A folder under ``root`` such that a photo inside it has a path of about ``total`` characters."""
    d = root / ("deep_" + "d" * 60) / ("deeper_" + "e" * 60)
    d.mkdir(parents=True, exist_ok=True)
    return d


# -- the corpus -----------------------------------------------------------------


def build_corpus(root: Path, n_good: int = 12) -> list[Case]:
    """Write the corpus under ``root`` (created) and return its cases.

    The file for the "no read permission" kind is written readable; call
    :func:`make_unreadable` on it when the test can honour it.
    """
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(kind: str, name: str | Path, data: bytes | None, expect: Expect, *reason: str, note: str = "") -> Path:
        p = root / name if not isinstance(name, Path) else name
        if data is not None:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        cases.append(Case(kind, p, expect, tuple(r.lower() for r in reason), note))
        return p

    # Good photos mixed in.
    for i in range(n_good):
        add("good", f"good_{i:02d}.jpg", jpeg_bytes(good_image(i)), "photo")

    g = good_image(100)
    gj = jpeg_bytes(g)

    # 1-5: not images at all, or not whole ones.
    add("truncated JPEG", "truncated.jpg", gj[: len(gj) // 2], "failure", "truncated")
    add("zero bytes", "empty.jpg", b"", "failure", "empty")
    add("random bytes named .jpg", "noise.jpg", np.random.default_rng(1).bytes(20_000), "failure", "not an image")
    add(
        "HTML named .jpg",
        "page.jpg",
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not found</body></html>\n",
        "failure",
        "html",
    )
    add("PNG claiming 50000x50000", "bomb.png", png_claiming(50000, 50000), "failure", "2,500 megapixels")
    # 6-14: odd but real images.
    add("CMYK JPEG", "cmyk.jpg", jpeg_bytes(good_image(101).convert("CMYK")), "photo")
    buf = io.BytesIO()
    arr16 = np.asarray(good_image(102).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(arr16).save(buf, "PNG")  # mode I;16
    add("16-bit PNG", "deep16.png", buf.getvalue(), "photo")
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 30, 30)).save(buf, "PNG")
    add("1x1 image", "one_pixel.png", buf.getvalue(), "photo")
    buf = io.BytesIO()
    frames = [good_image(103 + k).resize((96, 96)).convert("P") for k in range(3)]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    add("animated GIF", "anim.gif", buf.getvalue(), "photo")
    buf = io.BytesIO()
    frames = [good_image(106 + k).resize((96, 96)) for k in range(3)]
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)
    add("animated WebP", "anim.webp", buf.getvalue(), "photo")
    buf = io.BytesIO()
    pal = good_image(109).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal.info["transparency"] = 0
    pal.save(buf, "PNG", transparency=0)
    add("palette with transparency", "palette_alpha.png", buf.getvalue(), "photo")
    buf = io.BytesIO()
    la = good_image(110).convert("L")
    la.putalpha(Image.linear_gradient("L").resize(la.size))
    la.save(buf, "PNG")
    add("grey+alpha", "grey_alpha.png", buf.getvalue(), "photo")
    add(
        "bogus EXIF orientation",
        "bogus_orientation.jpg",
        jpeg_with_exif(good_image(111), tiff_orientation_exif(77)),
        "photo",
    )
    add(
        "corrupt EXIF",
        "corrupt_exif.jpg",
        jpeg_with_exif(good_image(112), b"II*\x00" + struct.pack("<I", 0xFFFFFF00) + b"\xde\xad" * 40),
        "photo",
    )
    # 15: no read permission (made unreadable by the test when it can honour it).
    add("no read permission", "locked.jpg", jpeg_bytes(good_image(113)), "failure", "permission denied")
    # 16-19: things in the file system that are not files.
    broken = root / "broken_link.jpg"
    os.symlink(root / "no_such_target.jpg", broken)
    add("broken symlink", broken, None, "failure", "broken symbolic link")
    loop_a, loop_b = root / "loop_a.jpg", root / "loop_b.jpg"
    os.symlink(loop_b, loop_a)
    os.symlink(loop_a, loop_b)
    add("symlink loop", loop_a, None, "failure", "loop")
    cases.append(Case("symlink loop", loop_b, "failure", ("loop",)))
    d = root / "x.jpg"
    d.mkdir()
    add(
        "a directory named x.jpg",
        d / "inside_dir_named_jpg.jpg",
        jpeg_bytes(good_image(114)),
        "photo",
        note="the folder is walked into, not read as a photo",
    )
    fifo = root / "y.jpg"
    os.mkfifo(fifo)
    add("FIFO named y.jpg", fifo, None, "failure", "named pipe")
    # 20-21: names.
    odd = os.fsencode(root) + b"/caf\xe9_latin1_\xff.jpg"
    with open(odd, "wb") as fh:
        fh.write(jpeg_bytes(good_image(115)))
    add("non-UTF-8 file name", Path(os.fsdecode(odd)), None, "photo")
    deep = long_name_dir(root)
    stem_len = 250 - len(os.fspath(deep)) - 1 - len(".jpg")
    if stem_len < 8:  # the root itself is already long: make the name as long as the OS allows
        stem_len = 200
    longp = deep / ("L" * min(stem_len, 250) + ".jpg")
    add("250-character path", longp, jpeg_bytes(good_image(116)), "photo", note=f"{len(os.fspath(longp))} characters")
    # More odd input a photo folder really holds.
    buf = io.BytesIO()
    good_image(117).save(buf, "PNG")
    add("PNG named .jpg", "really_png.jpg", buf.getvalue(), "photo")
    add(
        "JPEG header claiming 60000x60000",
        "huge_header.jpg",
        _jpeg_with_size(gj, 60000, 60000),
        "failure",
        "3,600 megapixels",
    )
    add(
        "text file named .png",
        "notes.png",
        b"shopping list:\n- milk\n- eggs\n" * 20,
        "failure",
        "text file",
        "not an image",
    )
    sparse = root / "sparse_huge.jpg"
    with open(sparse, "wb") as fh:
        fh.truncate(600 * 2**20)  # 600 MiB of nothing, no disk used
    add("600 MiB sparse file named .jpg", sparse, None, "failure", "too large")
    add("grey JPEG", "grey.jpg", jpeg_bytes(good_image(118).convert("L")), "photo")
    add("progressive JPEG", "progressive.jpg", jpeg_bytes(good_image(119), progressive=True), "photo")
    add("EXIF rotated JPEG", "rotated.jpg", jpeg_with_exif(good_image(120), tiff_orientation_exif(6)), "photo")
    buf = io.BytesIO()
    Image.fromarray(np.tile(np.asarray(good_image(121).resize((64, 8))), (1, 200, 1))).save(buf, "PNG")
    add("panorama 12800x8", "panorama.png", buf.getvalue(), "photo", note="extreme aspect ratio")
    add(
        "60000x2 strip (aspect-ratio bomb)",
        "strip.png",
        png_zeros(60000, 2),
        "photo",
        note="a few hundred bytes; scaled up to a model's input it would take gigabytes",
    )
    add(
        "big PNG of zeros (12000x12000)",
        "huge_zeros.png",
        png_zeros(12000, 12000),
        "photo",
        note="144 megapixels, a few hundred KB on disk",
    )
    add("PNG with corrupt data (bad CRC)", "bad_crc.png", _break_png_crc(good_image(122)), "failure", "damaged")
    add("shell metacharacters in the name", "$(touch PWNED); rm -rf ~ `id`.jpg", jpeg_bytes(good_image(123)), "photo")
    add("newline in the name", "line\nbreak.jpg", jpeg_bytes(good_image(124)), "photo")
    add("upper-case suffix", "SHOUT.JPEG", jpeg_bytes(good_image(125)), "photo")
    add("duplicate content", "good_00_copy.jpg", (root / "good_00.jpg").read_bytes(), "photo")
    add("symlink to a photo", root / "link_to_good.jpg", None, "photo")
    os.symlink(root / "good_01.jpg", root / "link_to_good.jpg")
    os.symlink(root, root / "link_to_self")  # a folder symlink loop: never followed
    add("symlink to its own folder", root / "link_to_self", None, "ignored", note="not followed")
    add("hidden file", ".hidden.jpg", jpeg_bytes(good_image(126)), "ignored", note="dot files are skipped")
    add(
        "MP4 named .jpg",
        "clip.jpg",
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 4000,
        "failure",
        "video",
    )
    add(
        "SVG named .png",
        "drawing.png",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        "failure",
        "svg",
    )
    add("TIFF", "scan.tif", _save(good_image(127), "TIFF"), "photo")
    add("BMP", "paint.bmp", _save(good_image(128), "BMP"), "photo")
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        add("HEIC", "phone.heic", _save(good_image(129), "HEIF"), "photo")
    except Exception:  # pragma: no cover - encoder not built into this pillow-heif
        pass
    return cases


def _save(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the SOF marker of a JPEG to claim another size."""
    i = 2
    out = bytearray(data)
    while i < len(out) - 9:
        if out[i] != 0xFF:
            i += 1
            continue
        marker = out[i + 1]
        length = struct.unpack(">H", out[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            out[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(out)
        i += 2 + length
    raise ValueError("no SOF marker")


def _break_png_crc(img: Image.Image) -> bytes:
    data = bytearray(_save(img, "PNG"))
    idat = data.find(b"IDAT")
    size = struct.unpack(">I", data[idat - 4 : idat])[0]
    mid = idat + 4 + size // 2
    data[mid : mid + 64] = b"\xa5" * 64  # garbage inside the compressed data; its CRC no longer matches
    return bytes(data)


def kinds(cases: list[Case]) -> list[str]:
    """The distinct kinds of hostile or odd input (good photos not counted)."""
    out: list[str] = []
    for c in cases:
        if c.kind != "good" and c.kind not in out:
            out.append(c.kind)
    return out
