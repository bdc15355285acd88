"""Derive desktop/lookalike/resources/imagenet_words.json from WordNet 3.0.

The offline model's classifier knows the 1000 ImageNet-1k classes, each a WordNet
noun synset (its id ``n`` + the synset's offset in WordNet 3.0's data.noun). For every
English noun whose everyday senses have ImageNet classes at or below them in the
hyponym hierarchy ("food" -> pizza, banana...; "vehicle" -> the cars, boats, planes),
the file lists those classes. Senses: the ones SemCor saw (index.noun's tagsense_cnt,
most frequent first), else the first sense; when none of those reaches an ImageNet
class, the first sense that does. Irregular plurals come from noun.exc.

    python tools/imagenet_words.py [/usr/share/wordnet] [imagenet_synsets.txt]

Reads Debian's ``wordnet-base`` and the ImageNet-1k synset list timm ships (the wnids
in the classifier's order). WordNet's licence is written beside the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "desktop" / "lookalike" / "resources" / "imagenet_words.json"
LICENCE = ROOT / "desktop" / "lookalike" / "resources" / "WORDNET-LICENSE"


def main() -> None:
    wn = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet")
    if len(sys.argv) > 2:
        synsets = Path(sys.argv[2])
    else:
        import timm

        synsets = Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt"
    wnids = synsets.read_text().split()
    assert len(wnids) == 1000
    cls = {int(w[1:]): i for i, w in enumerate(wnids)}
    hypo = _hyponyms(wn)
    words = _words(wn, cls, hypo)
    _write(wn, words)


def _hyponyms(wn: Path) -> dict[int, list[int]]:
    hypo: dict[int, list[int]] = {}
    for line in (wn / "data.noun").read_text("latin-1").splitlines():
        if line.startswith("  "):
            continue
        head = line.split(" | ")[0].split()
        off = int(head[0])
        nwords = int(head[3], 16)
        rest = head[4 + 2 * nwords :]
        nptr = int(rest[0])
        ptrs = rest[1 : 1 + 4 * nptr]
        for j in range(nptr):
            sym, target, pos = ptrs[4 * j], int(ptrs[4 * j + 1]), ptrs[4 * j + 2]
            if pos == "n" and sym in ("~", "~i"):
                hypo.setdefault(off, []).append(target)
    return hypo


def _words(wn: Path, cls: dict[int, int], hypo: dict[int, list[int]]) -> dict[str, list[int]]:
    memo: dict[int, frozenset[int]] = {}

    def below(off: int) -> frozenset[int]:
        if off in memo:
            return memo[off]
        memo[off] = frozenset()  # (no cycles in WordNet's nouns; guards anyway)
        out = set()
        if off in cls:
            out.add(cls[off])
        for h in hypo.get(off, ()):
            out |= below(h)
        memo[off] = frozenset(out)
        return memo[off]

    sys.setrecursionlimit(20000)
    words: dict[str, list[int]] = {}
    for line in (wn / "index.noun").read_text("latin-1").splitlines():
        if line.startswith("  "):
            continue
        f = line.split()
        lemma, nsyn, nptr = f[0], int(f[2]), int(f[3])
        tagged = int(f[5 + nptr])
        offs = [int(x) for x in f[6 + nptr : 6 + nptr + nsyn]]
        got: set[int] = set()
        for off in offs[: max(tagged, 1)]:
            got |= below(off)
        for off in offs if not got else ():  # no everyday sense is an ImageNet kind: the first that is
            if below(off):
                got = set(below(off))
                break
        if got:
            words[lemma.replace("_", " ")] = sorted(got)
    return words


def _write(wn: Path, words: dict[str, list[int]]) -> None:
    plurals = {}
    for line in (wn / "noun.exc").read_text("latin-1").splitlines():
        f = line.split()
        if len(f) >= 2 and f[1].replace("_", " ") in words:
            plurals[f[0].replace("_", " ")] = f[1].replace("_", " ")
    doc = {
        "about": "English nouns -> the ImageNet-1k classes (classifier indices) at or below their everyday "
        "senses in WordNet 3.0's hyponym hierarchy; derived by tools/imagenet_words.py from Debian's "
        "wordnet-base. WordNet 3.0 Copyright 2006 by Princeton University (licence: WORDNET-LICENSE).",
        "words": words,
        "plurals": plurals,
    }
    OUT.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n")
    text = Path("/usr/share/doc/wordnet-base/copyright").read_text()
    LICENCE.write_text(
        "The word list imagenet_words.json is derived from WordNet 3.0.\n\n" + text[text.index("License: WordNet3.0") :]
    )
    print(f"{len(words)} words, {len(plurals)} irregular plurals -> {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
