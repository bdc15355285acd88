"""Which photo of a group to keep, and why.

Rules, in order unless the user orders them otherwise: original formats over
derived ones (RAW/DNG > HEIC/AVIF > TIFF > JPEG/PNG > WebP/GIF/BMP), more pixels,
the oldest date taken, richer metadata (more EXIF tags), an original name (not
``name (1).jpg``, ``name copy.jpg``, ``name - Copy.jpg`` or in a ``Copies`` folder),
the larger file. The photo the user chose (a click on its card) always wins, then
a photo in a folder the user marked as a reference. The reason given is the first
rule that sets the keeper apart from the runner-up.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class KeeperRule(StrEnum):
    FORMAT = "format"
    PIXELS = "pixels"
    DATE = "date"
    METADATA = "metadata"
    NAME = "name"
    SIZE = "size"


DEFAULT_RULES: tuple[KeeperRule, ...] = (
    KeeperRule.FORMAT,
    KeeperRule.PIXELS,
    KeeperRule.DATE,
    KeeperRule.METADATA,
    KeeperRule.NAME,
    KeeperRule.SIZE,
)

# The names file managers, browsers and cameras give a copy: 'a (1).jpg', 'a(2).jpg',
# 'a copy.jpg', 'a copy 2.jpg', 'a - Copy.jpg', 'a - Copy (3).jpg', 'Copy of a.jpg', 'a_copy.jpg'.
_COPY_STEM = re.compile(
    r"(?:\s?\(\d+\)|[\s_-]+copy(?:[\s_]*\(?\d+\)?)?|\s-\s?copy(?:\s?\(\d+\))?)$|^copy of\s", re.IGNORECASE
)
_COPY_FOLDERS = frozenset({"copies", "copy", "duplicates", "backup copies"})


def copy_marks(path: Path) -> int:
    """How a path says it is a copy: 1 for a copy's name, 1 for a folder of copies (0: an original)."""
    marks = 1 if _COPY_STEM.search(Path(path).stem) else 0
    if any(part.lower() in _COPY_FOLDERS for part in Path(path).parent.parts):
        marks += 1
    return marks


# Lower is more original. Camera raw formats first, then what phones write, then
# the formats photos are exported to.
_FORMAT_RANK: dict[str, int] = {
    **dict.fromkeys(
        (
            "dng",
            "cr2",
            "cr3",
            "nef",
            "nrw",
            "arw",
            "srf",
            "sr2",
            "orf",
            "rw2",
            "raf",
            "pef",
            "srw",
            "x3f",
            "raw",
            "3fr",
        ),
        0,
    ),
    **dict.fromkeys(("heic", "heif", "avif"), 1),
    **dict.fromkeys(("tif", "tiff"), 2),
    **dict.fromkeys(("jpg", "jpeg", "jpe", "jfif", "png"), 3),
    **dict.fromkeys(("webp", "gif", "bmp"), 4),
}
_PILLOW_NAMES = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}
_PILLOW_NAMES.update({"HEIF": "heic", "AVIF": "avif", "MPO": "jpeg"})
_SUFFIX_NAMES = {"jpg": "jpeg", "jpe": "jpeg", "jfif": "jpeg", "tif": "tiff", "heif": "heic"}


def format_name(path: Path, detected: str = "") -> str:
    """The photo's format as a short lower-case name: what the file is, else its suffix."""
    if detected:
        return _PILLOW_NAMES.get(detected.upper(), detected.lower())
    suffix = path.suffix.lower().lstrip(".")
    return _SUFFIX_NAMES.get(suffix, suffix) or "?"


def format_rank(name: str) -> int:
    return _FORMAT_RANK.get(name, 5)


@dataclass(frozen=True)
class Candidate:
    """What the rules look at for one photo of a group."""

    photo_id: int
    path: Path
    format: str  # format_name()
    width: int | None
    height: int | None
    taken: float | None
    exif: int  # EXIF tags
    size: int  # bytes
    reference: bool  # in a folder marked as reference
    chosen: bool = False  # the user chose it as the keeper of its group

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)


@dataclass(frozen=True)
class Choice:
    keep: Candidate
    others: tuple[Candidate, ...]
    reason: str


def _key(c: Candidate, rule: KeeperRule) -> float:
    """Smaller is better."""
    if rule is KeeperRule.FORMAT:
        return format_rank(c.format)
    if rule is KeeperRule.PIXELS:
        return -c.pixels
    if rule is KeeperRule.DATE:
        return c.taken if c.taken is not None else float("inf")
    if rule is KeeperRule.METADATA:
        return -c.exif
    if rule is KeeperRule.NAME:
        return copy_marks(c.path)
    return -c.size


def _describe(rule: KeeperRule, keep: Candidate, other: Candidate) -> str:
    if rule is KeeperRule.FORMAT:
        return f"original format ({keep.format.upper()} over {other.format.upper()})"
    if rule is KeeperRule.PIXELS:
        return f"more pixels ({keep.width}×{keep.height} over {other.width}×{other.height})"
    if rule is KeeperRule.DATE:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(keep.taken)) if keep.taken is not None else "?"
        if other.taken is None:
            return f"has a date taken ({when}), the other has none"
        return f"oldest date taken ({when})"
    if rule is KeeperRule.METADATA:
        if other.exif == 0:
            return f"has EXIF metadata ({_tags(keep.exif)}), the other has none"
        return f"richer metadata ({_tags(keep.exif)} of EXIF over {other.exif})"
    if rule is KeeperRule.NAME:
        return f"original name ({keep.path.name}; {_copy_sign(other.path)})"
    return f"larger file ({_bytes(keep.size)} over {_bytes(other.size)})"


def _copy_sign(path: Path) -> str:
    if _COPY_STEM.search(path.stem):
        return f"{path.name} is a copy's name"
    return f"{path.parent.name}/ holds copies"


def _tags(n: int) -> str:
    return f"{n} tag" if n == 1 else f"{n} tags"


def _bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def choose(members: Sequence[Candidate], rules: Sequence[KeeperRule] = DEFAULT_RULES) -> Choice:
    """The keeper of a group by the rules, with the reason; ties go to the shortest path, then by name."""
    if len(members) < 2:
        raise ValueError("a group has at least two photos")

    def order(c: Candidate) -> tuple:
        return (
            not c.chosen,
            not c.reference,
            *(_key(c, r) for r in rules),
            len(os.fsencode(c.path)),
            os.fsencode(c.path),
        )

    ranked = sorted(members, key=order)
    keep = ranked[0]
    if keep.chosen:
        return Choice(keep, tuple(ranked[1:]), "chosen by you")
    if keep.reference and not ranked[1].reference:
        return Choice(keep, tuple(ranked[1:]), f"in a reference folder ({keep.path.parent})")
    reason = ""
    for other in ranked[1:]:  # the best photo the rules tell apart from the keeper
        rule = next((r for r in rules if _key(keep, r) != _key(other, r)), None)
        if rule is not None:
            reason = _describe(rule, keep, other)
            break
    tie = all(_key(keep, r) == _key(ranked[1], r) for r in rules)
    if not reason:
        reason = "all alike by the rules; kept the one with the shortest path"
    elif tie:
        reason += "; of its equals, the one with the shortest path"
    if keep.reference:
        reason = f"in a reference folder; {reason}"
    return Choice(keep, tuple(ranked[1:]), reason)


def parse_rules(text: str) -> tuple[KeeperRule, ...]:
    """'pixels,format,...' -> rules; the rules not named follow in their usual order."""
    named: list[KeeperRule] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        try:
            rule = KeeperRule(part)
        except ValueError:
            choices = ", ".join(r.value for r in KeeperRule)
            raise ValueError(f"unknown keeper rule {part!r} (choose from {choices})") from None
        if rule not in named:
            named.append(rule)
    return tuple(named) + tuple(r for r in DEFAULT_RULES if r not in named)
