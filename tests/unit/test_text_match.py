"""How text read in a photo is matched: case, accents, punctuation, glued words."""

from __future__ import annotations

import sqlite3

from lookalike.core.text.ocr import normalise
from lookalike.core.text.schema import MIGRATION
from lookalike.core.text.store import filter_sql, whole_word_ids, words_keys


def test_normalise_folds_case_accents_and_punctuation():
    assert normalise("Café de la GARE, 7-19!") == "cafe de la gare 7 19"
    assert normalise("Straße") == "strasse"
    assert normalise("   ") == ""


def test_several_words_are_also_looked_for_glued():
    assert words_keys("Luna  Bakery") == ["luna bakery", "lunabakery"]
    assert words_keys("bakery") == ["bakery"]


def _db(texts: dict[int, str]) -> sqlite3.Connection:
    from lookalike.core.catalog import _statements

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    for stmt in _statements(MIGRATION):
        db.execute(stmt)
    for pid, text in texts.items():
        db.execute("INSERT INTO photos(id) VALUES (?)", (pid,))
        db.execute(
            "INSERT INTO photo_text(photo_id, text, body, version) VALUES (?, ?, ?, 1)", (pid, text, normalise(text))
        )
    return db


def _ids(db: sqlite3.Connection, phrase: str) -> set[int]:
    sql, args = filter_sql(phrase)
    return {r[0] for r in db.execute(f"SELECT id FROM photos WHERE {sql}", args)}


def test_the_index_finds_substrings_not_across_a_space_and_follows_deletes():
    db = _db({1: "LANTERNOYSTER", 2: "there on the hill", 3: "Café au lait", 4: "Luna Bakery"})
    assert _ids(db, "oyster") == {1}  # glued by the reader
    assert _ids(db, "heron") == set()  # "there on": not across a space
    assert _ids(db, "CAFÉ") == {3} and _ids(db, "cafe") == {3}
    assert _ids(db, "luna bakery") == {4} and _ids(db, "lantern oyster") == {1}  # or glued
    assert _ids(db, "lunabakery") == set()  # one word is not looked for across a space
    assert _ids(db, "au") == {3}  # short: a scan, same answer
    assert whole_word_ids(lambda sql, args: db.execute(sql, args).fetchall(), "lait", limit=10) == {3}
    assert whole_word_ids(lambda sql, args: db.execute(sql, args).fetchall(), "lai", limit=10) == set()
    db.execute("DELETE FROM photo_text WHERE photo_id = 1")  # the trigger keeps the index in step
    assert _ids(db, "oyster") == set()
    assert db.execute("SELECT COUNT(*) FROM photo_text_fts").fetchone()[0] == 3
