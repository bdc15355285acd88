"""A photo's text in the catalog, and which photos hold given words.

The rows are written by :class:`~lookalike.core.text.stage.TextStage` inside the
indexer's transactions; the ``text:`` filter's SQL comes from :func:`filter_sql`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from lookalike.core.text.ocr import VERSION, Line, TextRead, normalise

#: Shortest word the trigram index answers; shorter ones are a scan of the text rows.
_INDEXED = 3


@dataclass(frozen=True)
class PhotoText:
    """What the catalog holds for one photo."""

    photo_id: int
    text: str  # the lines read, joined by newlines; '' when it shows none
    lines: tuple[Line, ...]


def write(conn: sqlite3.Connection, ids: Sequence[int], reads: Sequence[TextRead]) -> None:
    """Record what was read in these photos (a photo read again replaces its row)."""
    rows = []
    for pid, read in zip(ids, reads):
        lines = [[line.text, round(line.score, 3), [list(p) for p in line.box]] for line in read.lines]
        rows.append((int(pid), read.text, json.dumps(lines), normalise(read.text), VERSION))
    conn.executemany("DELETE FROM photo_text WHERE photo_id = ?", [(r[0],) for r in rows])
    conn.executemany(
        "INSERT INTO photo_text(photo_id, text, lines, body, version) "
        "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM photos WHERE id = ?)",
        [(*r, r[0]) for r in rows],
    )


def pending(conn: sqlite3.Connection) -> set[int]:
    """Photos not read yet (or read by an older version of the reader)."""
    return {
        r[0]
        for r in conn.execute(
            "SELECT id FROM photos WHERE id NOT IN (SELECT photo_id FROM photo_text WHERE version >= ?)", (VERSION,)
        )
    }


def text_of(rows: Sequence[tuple]) -> PhotoText | None:
    if not rows:
        return None
    pid, text, lines = rows[0]
    parsed = tuple(Line(t, float(s), tuple((int(x), int(y)) for x, y in box)) for t, s, box in json.loads(lines))
    return PhotoText(int(pid), text, parsed)


TEXT_OF_SQL = "SELECT photo_id, text, lines FROM photo_text WHERE photo_id = ?"
COUNTS_SQL = "SELECT COUNT(*), SUM(text != '') FROM photo_text"


def words_keys(phrase: str) -> list[str]:
    """The forms a ``text:`` value is looked for in (see :func:`normalise`): the words as
    written and, for several words, also glued together (the recogniser drops spaces)."""
    key = normalise(phrase)
    keys = [key] if key else []
    if " " in key:
        keys.append(key.replace(" ", ""))
    return keys


def filter_sql(phrase: str) -> tuple[str, list[object]]:
    """An SQL condition on ``photos.id`` choosing the photos whose text holds ``phrase``
    (anywhere in the text, even inside a longer word; case, accents and punctuation
    aside). A value ending in ``*`` means the same (a prefix is a substring)."""
    keys = words_keys(phrase)
    if all(len(k) >= _INDEXED for k in keys):
        match = " OR ".join('"' + k.replace('"', '""') + '"' for k in keys)
        return "id IN (SELECT rowid FROM photo_text_fts WHERE photo_text_fts MATCH ?)", [match]
    return "id IN (SELECT photo_id FROM photo_text WHERE instr(body, ?) > 0)", [keys[0]]


def matched_lines(text: PhotoText, phrases: Sequence[str]) -> list[str]:
    """The lines of a photo's text that hold any of ``phrases`` (what a ``text:`` result shows)."""
    keys = [k for p in phrases for k in words_keys(p)]
    return [line.text for line in text.lines if any(k in normalise(line.text) for k in keys)]


def whole_word_ids(query, words: str, *, limit: int) -> set[int]:
    """Photos whose text holds ``words`` as whole words, in order (``cat`` is not
    ``catalog``); ``query`` runs SQL on the catalog. Words under 3 characters: none."""
    key = normalise(words)
    if len(key) < _INDEXED:
        return set()
    sql, args = filter_sql(key)  # a condition on "id": here the text rows' photo_id
    rows = query(f"SELECT photo_id, body FROM photo_text WHERE photo_{sql} LIMIT ?", [*args, limit])
    padded = f" {key} "
    return {int(pid) for pid, body in rows if padded in f" {body} "}
