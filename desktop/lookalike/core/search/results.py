"""What a search returns: one ranked photo, with whether it matches and how surely."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SearchResult:
    rank: int
    path: Path
    score: float
    photo_id: int
    width: int | None
    height: int | None
    taken: float | None
    size: int
    match: bool | None = None  # set by SearchEngine.answer: whether the photo is what was asked for
    confidence: float | None = None  # ...and how sure, 0-1 (lookalike.core.search.answer)
