"""Words a person reads: counted nouns ("1 photo", "2 photos"), one helper everywhere."""

from __future__ import annotations

# Plurals that are not the noun with an "s".
_IRREGULAR = {"person": "people", "face": "faces", "query image": "query images", "copy": "copies"}


def plural(noun: str) -> str:
    """The plural of ``noun`` ("photo" → "photos", "person" → "people")."""
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def counted(n: int, noun: str, many: str | None = None) -> str:
    """``n`` and the noun in the number it takes: "1 photo", "0 photos", "1,234 photos".

    ``many``: the plural, when it is not the regular one (see :func:`plural`)."""
    word = noun if n == 1 else (many or plural(noun))
    return f"{n:,} {word}"
