"""Keywords people already gave their photos, read as user tags; the user's tags written back.

Read at index time, never writing the photo:

* XMP ``dc:subject`` embedded in the file (JPEG APP1, PNG iTXt, TIFF, WebP...: the XMP
  packet is found in the file's first :data:`HEAD` bytes);
* IPTC keywords (IIM record 2, dataset 25), through Pillow;
* a sidecar: ``photo.jpg.xmp`` (digiKam, darktable) or ``photo.xmp`` (Lightroom).

Written by ``lookalike tag export --xmp``: the user's tags as ``dc:subject`` (and
digiKam's ``TagsList``) in the ``photo.jpg.xmp`` sidecar digiKam and darktable read.
An existing sidecar keeps everything it held (its keywords too); only the tags are
added, and the file is replaced whole (write-temp, fsync, rename).
"""

from __future__ import annotations

import io
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.core.fsutil import atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.user_tags import UserTags

log = logging.getLogger(__name__)

#: How much of a photo is read looking for its XMP packet.
HEAD = 1 << 20
#: Keywords read from one photo, at most (a file stuffed with keywords is not a library).
MAX_KEYWORDS = 64

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
X = "adobe:ns:meta/"
DIGIKAM = "http://www.digikam.org/ns/1.0/"
_PACKET = re.compile(rb"<x:xmpmeta[\s>].*?</x:xmpmeta>", re.DOTALL)


def sidecars(photo: Path) -> tuple[Path, Path]:
    """Where a photo's sidecar may be: ``photo.jpg.xmp`` (digiKam, darktable), ``photo.xmp`` (Lightroom)."""
    return photo.with_name(photo.name + ".xmp"), photo.with_suffix(".xmp")


def _clean(words: Iterable[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for w in words:
        name = " ".join(str(w).split())
        # a hierarchical keyword (Lightroom "Places|Holland|windmill") is its last part
        name = name.split("|")[-1].strip()
        if not name or len(name) > 80 or name.startswith(("#", "@")) or any(c in name for c in "\"'"):
            continue
        if name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
    return out[:MAX_KEYWORDS]


def xmp_subjects(packet: bytes) -> list[str]:
    """The ``dc:subject`` keywords of an XMP packet (empty when it cannot be read)."""
    try:
        root = ET.fromstring(packet)
    except ET.ParseError:
        return []
    words: list[str] = []
    for subject in root.iter(f"{{{DC}}}subject"):
        words += [li.text or "" for li in subject.iter(f"{{{RDF}}}li")]
    for desc in root.iter(f"{{{RDF}}}Description"):  # the attribute form: dc:subject="a"
        value = desc.get(f"{{{DC}}}subject")
        if value:
            words.append(value)
    return words


def _embedded_xmp(path: Path) -> list[str]:
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD)
    except OSError:
        return []
    m = _PACKET.search(head)
    return xmp_subjects(m.group(0)) if m else []


def _iptc(path: Path) -> list[str]:
    from PIL import Image, IptcImagePlugin

    try:
        with Image.open(path) as im:
            info = IptcImagePlugin.getiptcinfo(im) or {}
    except Exception:  # (any file Pillow cannot read simply has no IPTC keywords)
        return []
    raw = info.get((2, 25))
    if raw is None:
        return []
    words = []
    for item in raw if isinstance(raw, list) else [raw]:
        try:
            words.append(bytes(item).decode("utf-8"))
        except UnicodeDecodeError:
            words.append(bytes(item).decode("latin-1"))
    return words


def read_keywords(photo: Path) -> list[str]:
    """Every keyword the photo carries: embedded XMP, IPTC, and its sidecars."""
    photo = Path(photo)
    words = _embedded_xmp(photo) + _iptc(photo)
    for sidecar in sidecars(photo):
        if sidecar.suffix.lower() == ".xmp" and sidecar != photo and sidecar.is_file():
            try:
                if sidecar.stat().st_size <= 16 * HEAD:
                    words += xmp_subjects(sidecar.read_bytes())
            except OSError:
                pass
    return _clean(words)


# -------------------------------------------------------------------- writing


def _namespaces(data: bytes) -> None:
    for _, (prefix, uri) in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
        if prefix and not re.fullmatch(r"ns\d+", prefix):
            try:
                ET.register_namespace(prefix, uri)
            except ValueError:
                pass


def _new_packet() -> ET.Element:
    root = ET.Element(f"{{{X}}}xmpmeta")
    rdf = ET.SubElement(root, f"{{{RDF}}}RDF")
    ET.SubElement(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    return root


def _set_list(desc: ET.Element, tag: str, kind: str, words: list[str]) -> None:
    old = desc.find(tag)
    have = [li.text or "" for li in old.iter(f"{{{RDF}}}li")] if old is not None else []
    merged = _clean([*have, *words])
    if old is not None:
        desc.remove(old)
    node = ET.SubElement(desc, tag)
    seq = ET.SubElement(node, f"{{{RDF}}}{kind}")
    for w in merged:
        ET.SubElement(seq, f"{{{RDF}}}li").text = w


def sidecar_bytes(existing: bytes | None, tags: list[str]) -> bytes:
    """A sidecar holding ``existing`` (if any) with ``tags`` added to its keywords."""
    for prefix, uri in (("x", X), ("rdf", RDF), ("dc", DC), ("digiKam", DIGIKAM)):
        ET.register_namespace(prefix, uri)
    root = None
    if existing:
        try:
            _namespaces(existing)
            root = ET.fromstring(existing)
        except ET.ParseError:
            root = None
        if root is None:
            raise ValueError("the sidecar is not XMP that can be read")
    if root is None or root.tag != f"{{{X}}}xmpmeta":
        root = root if root is not None and root.find(f"{{{RDF}}}Description") is not None else _new_packet()
    desc = next(root.iter(f"{{{RDF}}}Description"), None)
    if desc is None:
        rdf = next(root.iter(f"{{{RDF}}}RDF"))
        desc = ET.SubElement(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    attr = desc.attrib.pop(f"{{{DC}}}subject", None)
    _set_list(desc, f"{{{DC}}}subject", "Bag", ([attr] if attr else []) + tags)
    _set_list(desc, f"{{{DIGIKAM}}}TagsList", "Seq", tags)
    ET.indent(root, space=" ")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body + '\n<?xpacket end="w"?>\n').encode()


def export_sidecars(user_tags: UserTags, names: list[str] | None = None) -> tuple[int, int]:
    """Write the user's tags (all, or ``names``) into each tagged photo's ``photo.jpg.xmp``.
    Returns (sidecars written, photos tagged). A sidecar that cannot be read as XMP is left
    as it is and said (a warning), never replaced."""
    concepts = user_tags.concepts
    wanted = [concepts.get(n).name for n in names] if names else [c.name for c in concepts.list()]
    per_photo: dict[int, list[str]] = {}
    for name in wanted:
        for pid in user_tags.photo_ids(name).tolist():
            per_photo.setdefault(int(pid), []).append(name)
    rows = user_tags.catalog.photos_by_ids(list(per_photo))
    written = 0
    for pid, tags in per_photo.items():
        row = rows.get(pid)
        if row is None or not row.path.exists():
            continue
        target = sidecars(row.path)[0]
        try:
            existing = target.read_bytes() if target.exists() else None
            data = sidecar_bytes(existing, sorted(tags, key=str.casefold))
        except (OSError, ValueError) as exc:
            log.warning("left %s as it is: %s", target, exc)
            continue
        if data != existing:
            atomic_write_bytes(target, data)
            written += 1
    return written, len(per_photo)


def import_keywords(user_tags: UserTags, photo_ids: Iterable[int]) -> int:
    """Read the keywords of these (newly indexed) photos as the user's tags, except those the
    user took off the photo. Each tag that gained photos learns once. Returns photos tagged."""
    rows = user_tags.catalog.photos_by_ids([int(i) for i in photo_ids])
    found: dict[str, list[int]] = {}
    shown: dict[str, str] = {}
    for pid, row in rows.items():
        if not os.path.isfile(row.path):
            continue
        for word in read_keywords(row.path):
            if user_tags.removed(word.lower(), row.hash):
                continue
            found.setdefault(word.casefold(), []).append(pid)
            shown.setdefault(word.casefold(), word)
    tagged: set[int] = set()
    for key, pids in found.items():
        try:
            user_tags.add(shown[key], pids, origin="keyword")
        except Exception as exc:  # (a keyword that cannot be a tag is skipped, said)
            log.warning("keyword %r not read as a tag: %s", shown[key], exc)
            continue
        tagged.update(pids)
    return len(tagged)
