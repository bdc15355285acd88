"""A labelled set of photos with text and without, built from what pip packages ship.

Nothing is downloaded. The photos without text are real photos: scikit-image's,
scikit-learn's and matplotlib's sample photos and the face photos in
``tests/data/faces``. The photos with text are made here, each with known words
(drawn from :data:`WORDS`, a seeded choice), in four kinds:

``sign``
    A real sample photo with a painted sign put into it: a board (random colour)
    with one to three words in a random font and size, drawn flat, then warped in
    perspective by a random amount, pasted onto the photo, and the whole photo
    blurred slightly and saved as JPEG at quality 80.
``document``
    A page of lines of text (the known words among filler words from
    :data:`FILLER`), serif or sans, rendered on off-white paper, photographed-looking:
    warped in perspective onto a dark desk, lit unevenly (a gradient), slightly
    blurred, noise added, JPEG at quality 85.
``receipt``
    A narrow receipt in a monospaced font (shop name, items with prices, a
    total), rotated by up to 8 degrees onto a grey background, blurred, JPEG.
``screenshot``
    A flat window-like picture (title bar, sidebar, text in several sizes),
    saved losslessly as PNG, as a screen capture would be.

Some of the text photos are turned: a sign's words run upwards (90 degrees),
and some documents are stored sideways with an EXIF orientation tag that turns
them upright (the decoder must honour it). A few are large (a 4000 px
document) to check that huge images are handled.

:func:`build` writes the photos and returns, for each photo, the set of known
words it shows (empty for photos without text).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

#: Words put into the text photos (each photo shows a few of them) and, for the
#: ones never used, words that must find nothing.
WORDS = [
    "bakery",
    "luna",
    "harbor",
    "market",
    "invoice",
    "receipt",
    "ticket",
    "museum",
    "garden",
    "station",
    "coffee",
    "pharmacy",
    "library",
    "theatre",
    "bistro",
    "hotel",
    "airport",
    "parking",
    "exit",
    "danger",
    "closed",
    "welcome",
    "pizza",
    "sushi",
    "bank",
    "florist",
    "tailor",
    "bicycle",
    "river",
    "castle",
    "meadow",
    "lantern",
    "copper",
    "silver",
    "violet",
    "orange",
    "marble",
    "granite",
    "velvet",
    "walnut",
    "cedar",
    "maple",
    "willow",
    "falcon",
    "otter",
    "badger",
    "heron",
    "raven",
    "salmon",
    "oyster",
    "pepper",
    "ginger",
    "cinnamon",
    "basil",
    "thyme",
    "saffron",
    "vanilla",
    "cocoa",
    "quartz",
    "amber",
    "jasper",
    "cobalt",
    "crimson",
    "indigo",
    "scarlet",
    "ivory",
    "ebony",
    "pewter",
    "bronze",
    "nickel",
    "summit",
    "valley",
    "canyon",
    "glacier",
    "prairie",
    "tundra",
    "lagoon",
    "island",
    "harbour",
    "beacon",
    "compass",
    "anchor",
    "rudder",
    "sail",
    "voyage",
    "ledger",
    "budget",
    "payment",
    "refund",
    "balance",
    "deposit",
    "account",
    "confidential",
    "agenda",
    "meeting",
    "minutes",
    "report",
    "summary",
    "project",
    "deadline",
    "contract",
    "warranty",
    "manual",
    "recipe",
    "kitchen",
    "pantry",
    "cellar",
    "attic",
    "garage",
    "workshop",
    "studio",
    "gallery",
]
FILLER = [
    "the",
    "and",
    "for",
    "with",
    "this",
    "that",
    "from",
    "have",
    "will",
    "your",
    "about",
    "more",
    "when",
    "what",
    "which",
    "their",
    "there",
    "were",
    "been",
    "one",
    "all",
    "would",
    "can",
    "said",
    "each",
    "only",
    "other",
    "time",
    "very",
    "after",
    "first",
    "also",
    "new",
    "some",
    "could",
    "into",
    "than",
    "then",
    "them",
    "these",
    "may",
    "like",
    "over",
    "such",
    "our",
    "out",
]


@dataclass(frozen=True)
class TextSet:
    folder: Path
    words: dict[str, frozenset[str]] = field(default_factory=dict)  # file name -> known words shown
    kinds: dict[str, str] = field(default_factory=dict)  # file name -> sign, document, ..., none

    @property
    def used(self) -> frozenset[str]:
        return frozenset(w for ws in self.words.values() for w in ws)

    @property
    def absent(self) -> tuple[str, ...]:
        """Words of the vocabulary that no photo shows (anywhere, filler excluded)."""
        return tuple(w for w in WORDS if w not in self.used)


def _fonts() -> list[str]:
    """TrueType fonts that pip packages ship (matplotlib's DejaVu) or the system has."""
    found: list[str] = []
    try:
        import matplotlib

        base = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf"):
            if (base / name).exists():
                found.append(os.fspath(base / name))
    except Exception:
        pass
    for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"):
        if not found and Path(p).exists():
            found.append(p)
    return found


def font(size: int, rng: random.Random | None = None, mono: bool = False) -> ImageFont.FreeTypeFont:
    fonts = _fonts()
    if mono:
        fonts = [f for f in fonts if "Mono" in f] or fonts
    if fonts:
        return ImageFont.truetype(rng.choice(fonts) if rng else fonts[0], size)
    return ImageFont.load_default(size)  # type: ignore[return-value]


def _rgb(arr: np.ndarray) -> Image.Image:
    if arr.dtype != np.uint8:
        arr = (255 * (arr / max(1e-9, float(arr.max())))).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(arr[:, :, :3]))


def real_photos() -> dict[str, Image.Image]:
    """Sample photos with no legible text in them, from the installed packages."""
    out: dict[str, Image.Image] = {}
    try:
        import skimage.data as data

        for name in ("astronaut", "camera", "chelsea", "coffee", "rocket", "moon", "grass", "gravel", "coins"):
            try:
                out[name] = _rgb(getattr(data, name)())
            except Exception:
                continue
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_image

        out["china"] = _rgb(load_sample_image("china.jpg"))
        out["flower"] = _rgb(load_sample_image("flower.jpg"))
    except Exception:
        pass
    try:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
            out["grace_hopper"] = Image.open(fh).convert("RGB")
    except Exception:
        pass
    faces = Path(__file__).resolve().parents[3] / "tests" / "data" / "faces"
    for p in sorted(faces.rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
            out[f"face_{p.stem}"] = Image.open(p).convert("RGB")
    return out


def _perspective(img: Image.Image, rng: random.Random, amount: float) -> Image.Image:
    """``img`` seen at an angle: its corners moved in by up to ``amount`` of its size."""
    w, h = img.size
    d = [rng.uniform(0, amount) for _ in range(8)]
    src = [(d[0] * w, d[1] * h), (w - d[2] * w, d[3] * h), (w - d[4] * w, h - d[5] * h), (d[6] * w, h - d[7] * h)]
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    coeffs = _coeffs(src, dst)  # each output corner (moved in) shows the input's corner
    return img.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=(0, 0, 0, 0))


def _coeffs(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> list[float]:
    rows = []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=float)
    b = np.array([c for p in dst for c in p], dtype=float)
    return list(np.linalg.solve(a, b))


def _jpeg(img: Image.Image, path: Path, quality: int, exif: Image.Exif | None = None) -> None:
    img.convert("RGB").save(path, "JPEG", quality=quality, **({"exif": exif} if exif is not None else {}))


def sign(photo: Image.Image, words: list[str], rng: random.Random, *, upright: bool = True) -> Image.Image:
    """``photo`` with a sign showing ``words`` put into it."""
    photo = photo.convert("RGB")
    if max(photo.size) < 800:
        s = 800 / max(photo.size)
        photo = photo.resize((round(photo.width * s), round(photo.height * s)), Image.Resampling.BICUBIC)
    size = rng.randint(28, 56)
    f = font(size, rng)
    lines = [
        " ".join(words[i : i + 2]).upper() if rng.random() < 0.5 else " ".join(words[i : i + 2]).title()
        for i in range(0, len(words), 2)
    ]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    tw = max(int(probe.textlength(line, font=f)) for line in lines)
    pad = size // 2
    board = Image.new("RGBA", (tw + 2 * pad, len(lines) * int(size * 1.3) + 2 * pad), (0, 0, 0, 0))
    bg = tuple(rng.randint(0, 255) for _ in range(3))
    fg = (255, 255, 255) if sum(bg) < 380 else (20, 20, 20)
    draw = ImageDraw.Draw(board)
    draw.rounded_rectangle((0, 0, board.width - 1, board.height - 1), radius=pad // 2, fill=(*bg, 255))
    for n, line in enumerate(lines):
        draw.text((pad, pad + n * int(size * 1.3)), line, font=f, fill=fg)
    board = _perspective(board, rng, 0.08)
    if not upright:
        board = board.rotate(90, expand=True)
    if board.width > photo.width * 0.9 or board.height > photo.height * 0.9:
        s = min(photo.width * 0.9 / board.width, photo.height * 0.9 / board.height)
        board = board.resize((int(board.width * s), int(board.height * s)), Image.Resampling.LANCZOS)
    x = rng.randint(0, photo.width - board.width)
    y = rng.randint(0, photo.height - board.height)
    photo.paste(board, (x, y), board)
    return photo.filter(ImageFilter.GaussianBlur(0.6))


def _paper(lines: list[str], rng: random.Random, width: int, size: int, mono: bool = False) -> Image.Image:
    f = font(size, rng, mono)
    step = int(size * 1.5)
    page = Image.new("RGB", (width, step * len(lines) + 2 * size), (245, 243, 236))
    draw = ImageDraw.Draw(page)
    for n, line in enumerate(lines):
        draw.text((size, size + n * step), line, font=f, fill=(25, 25, 30))
    return page


def _lines_with(words: list[str], rng: random.Random, per_line: int, count: int) -> list[str]:
    lines = [[rng.choice(FILLER) for _ in range(per_line)] for _ in range(count)]
    for w in words:
        line = lines[rng.randrange(count)]
        line[rng.randrange(len(line))] = w
    return [" ".join(line).capitalize() for line in lines]


def document(words: list[str], rng: random.Random, *, width: int = 1400) -> Image.Image:
    """A photographed page showing ``words`` among filler."""
    size = max(18, width // 45)
    page = _paper(_lines_with(words, rng, 7, 14), rng, width, size)
    desk = Image.new("RGB", (int(page.width * 1.25), int(page.height * 1.25)), (60, 48, 40))
    warped = _perspective(page.convert("RGBA"), rng, 0.06)
    desk.paste(warped, ((desk.width - page.width) // 2, (desk.height - page.height) // 2), warped)
    arr = np.asarray(desk).astype(np.float32)
    light = np.linspace(rng.uniform(0.7, 0.9), 1.0, arr.shape[1], dtype=np.float32)[None, :, None]
    arr = arr * light + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 5, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(0.7))


def receipt(words: list[str], rng: random.Random) -> Image.Image:
    """A photographed receipt: a shop name and items with prices (the words among them)."""
    lines = [words[0].upper(), "-" * 24]
    for w in words[1:]:
        lines.append(f"{w.title():<16}{rng.randint(1, 99):>4}.{rng.randint(0, 99):02d}")
    lines += ["-" * 24, f"TOTAL{rng.randint(10, 300):>15}.{rng.randint(0, 99):02d}"]
    paper = _paper(lines, rng, 560, 26, mono=True).convert("RGBA")
    paper = paper.rotate(rng.uniform(-8, 8), expand=True, resample=Image.Resampling.BICUBIC)
    bg = Image.new("RGB", (paper.width + 200, paper.height + 200), (120, 120, 125))
    bg.paste(paper, (100, 100), paper)
    return bg.filter(ImageFilter.GaussianBlur(0.8))


def screenshot(words: list[str], rng: random.Random) -> Image.Image:
    """A window-like screen capture with the words in text of several sizes."""
    img = Image.new("RGB", (1280, 800), (250, 250, 252))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 1280, 40), fill=(52, 58, 70))
    draw.text((16, 8), f"{words[0].title()} - Notes", font=font(20), fill=(240, 240, 240))
    draw.rectangle((0, 40, 240, 800), fill=(232, 234, 238))
    for n, w in enumerate(FILLER[:8]):
        draw.text((20, 70 + 36 * n), w.title(), font=font(17), fill=(60, 60, 60))
    y = 80
    draw.text((280, y), words[0].title(), font=font(40), fill=(20, 20, 20))
    y += 70
    for line in _lines_with(words[1:], rng, 8, 8):
        draw.text((280, y), line, font=font(rng.choice((16, 18, 22))), fill=(40, 40, 40))
        y += 40
    return img


def build(folder: Path, *, seed: int = 7, per_kind: int = 12, with_none: bool = True) -> TextSet:
    """Write the labelled photos into ``folder``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    photos = real_photos()
    pool = list(WORDS)
    rng.shuffle(pool)
    keep_absent = set(pool[:25])  # never shown: they must find nothing
    usable = [w for w in pool if w not in keep_absent]
    words: dict[str, frozenset[str]] = {}
    kinds: dict[str, str] = {}
    backs = sorted(photos)

    def pick(n: int) -> list[str]:
        return rng.sample(usable, n)

    for i in range(per_kind):
        ws = pick(rng.randint(1, 3))
        name = f"sign_{i:02d}.jpg"
        back = photos[backs[i % len(backs)]] if backs else Image.new("RGB", (900, 700), (90, 120, 80))
        _jpeg(sign(back, ws, rng, upright=i % 4 != 3), folder / name, 80)
        words[name], kinds[name] = frozenset(ws), "sign"
    for i in range(per_kind):
        ws = pick(4)
        name = f"document_{i:02d}.jpg"
        img = document(ws, rng, width=3200 if i == 0 else 1400)
        exif = None
        if i % 4 == 1:  # stored sideways; the EXIF tag turns it upright
            img = img.transpose(Image.Transpose.ROTATE_90)
            exif = Image.Exif()
            exif[0x0112] = 6  # rotate 90 CW to view: undoes the ROTATE_90 (counter-clockwise) above
        _jpeg(img, folder / name, 85, exif)
        words[name], kinds[name] = frozenset(ws), "document"
    for i in range(per_kind):
        ws = pick(4)
        name = f"receipt_{i:02d}.jpg"
        _jpeg(receipt(ws, rng), folder / name, 85)
        words[name], kinds[name] = frozenset(ws), "receipt"
    for i in range(per_kind):
        ws = pick(4)
        name = f"screenshot_{i:02d}.png"
        screenshot(ws, rng).save(folder / name)
        words[name], kinds[name] = frozenset(ws), "screenshot"
    if with_none:
        for key in backs:
            name = f"photo_{key}.jpg"
            _jpeg(photos[key], folder / name, 90)
            words[name], kinds[name] = frozenset(), "none"
    return TextSet(folder, words, kinds)
