"""The text: filter over the catalog's full-text index, combined with free text, other
filters and subtraction; the rows follow their photos (moved, changed, deleted).

The text rows here are written as the text stage writes them (``store.write``), so these
tests need no OCR run; tests/integration/test_text_stage.py reads real photos."""

from __future__ import annotations

import os
import shutil

import pytest

from lookalike.core.errors import QueryError
from lookalike.core.search import SearchEngine
from lookalike.core.text import store
from lookalike.core.text.ocr import Line, TextRead

pytestmark = pytest.mark.slow

TEXTS = {
    "coffee.jpg": "LUNA BAKERY\nEspresso 2.40\nCroissant 1.80",
    "cat.jpg": "Meeting agenda — CONFIDENTIAL",
    "clock.jpg": "Café de la Gare\nopen 7-19\nWIFIFREE",
    "rocket.jpg": "",
}


def names(results):
    return {r.path.name for r in results}


def _write_texts(engine: SearchEngine, photo_dir) -> None:
    ids = {p.name: engine.catalog.photo_by_path(p).id for p in photo_dir.iterdir()}
    reads = {n: TextRead(tuple(Line(t, 0.9) for t in text.split("\n") if t)) for n, text in TEXTS.items()}
    with engine.catalog.transaction() as conn:
        store.write(conn, [ids[n] for n in reads], list(reads.values()))


@pytest.fixture
def engine(tmp_path, photo_dir):
    eng = SearchEngine.open(tmp_path / "lib", writer=True)
    eng.index([photo_dir])
    _write_texts(eng, photo_dir)
    yield eng
    eng.close()


def test_words_phrases_case_accents_and_prefixes(engine):
    assert names(engine.search("text:bakery")) == {"coffee.jpg"}
    assert names(engine.search("text:BAKERY")) == {"coffee.jpg"}
    assert names(engine.search('text:"luna bakery"')) == {"coffee.jpg"}
    assert names(engine.search('text:"bakery luna"')) == set()  # the words in that order
    assert names(engine.search("text:cafe")) == {"clock.jpg"}  # Café, accent aside
    assert names(engine.search("text:croiss*")) == {"coffee.jpg"}
    assert names(engine.search("text:croiss")) == {"coffee.jpg"}  # words glued or cut by the reader still match
    assert names(engine.search("text:nowhere")) == set()
    assert names(engine.search("text:daconf")) == set()  # not across two words (agenda — confidential)
    assert names(engine.search('text:"wifi free"')) == {"clock.jpg"}  # words the reader glued together
    assert names(engine.search("text:7")) == {"clock.jpg"}  # a short word: no index, still found


def test_text_filter_with_free_text_filters_and_subtraction(engine, photo_dir):
    # free text ranks inside the photos the filter chooses
    assert names(engine.search("a cup of coffee text:bakery")) == {"coffee.jpg"}
    assert names(engine.search("a cat text:bakery")) == {"coffee.jpg"}
    # subtracted: every photo but the confidential one
    everyone = names(engine.search("a cat", k=50))
    assert "cat.jpg" in everyone
    assert names(engine.search("a cat - text:confidential", k=50)) == everyone - {"cat.jpg"}
    # with other filters: all must hold
    assert names(engine.search("text:bakery kind:jpeg")) == {"coffee.jpg"}
    assert names(engine.search("text:bakery kind:png")) == set()
    assert names(engine.search("text:bakery year:1990")) == set()
    assert names(engine.search(f"text:bakery in:{photo_dir}")) == {"coffee.jpg"}
    # two text: filters: both words
    assert names(engine.search("text:luna text:espresso")) == {"coffee.jpg"}
    assert names(engine.search("text:luna text:gare")) == set()


def test_matched_words_are_shown_for_a_text_query(engine):
    results = engine.search("text:espresso")
    matched = engine.text_matches("text:espresso", [r.photo_id for r in results])
    assert list(matched.values()) == [["Espresso 2.40"]]
    assert engine.text_matches("a cat", [r.photo_id for r in results]) == {}


@pytest.mark.parametrize(
    ("query", "column"),
    [("text:", 5), ("a cat text:", 11), ('text:""', 5), ("dog text:!!", 9), ("text:bakery - year:2020", 12)],
)
def test_malformed_text_filter_is_an_error_with_its_column(engine, query, column):
    with pytest.raises(QueryError) as err:
        engine.search(query)
    assert err.value.column == column


def test_a_moved_photo_keeps_its_text_a_changed_one_is_read_again_a_deleted_one_loses_it(engine, photo_dir):
    os.makedirs(photo_dir / "sub")
    shutil.move(photo_dir / "coffee.jpg", photo_dir / "sub" / "renamed.jpg")
    engine.index([photo_dir])
    assert names(engine.search("text:bakery")) == {"renamed.jpg"}
    # changed content: a new photo, its old text gone, waiting to be read
    shutil.copyfile(photo_dir / "rocket.jpg", photo_dir / "cat.jpg")
    engine.index([photo_dir])
    assert names(engine.search("text:confidential")) == set()
    with engine.catalog.transaction() as conn:
        assert engine.catalog.photo_by_path(photo_dir / "cat.jpg").id in store.pending(conn)
    # deleted: the row and its index entry go
    os.remove(photo_dir / "clock.jpg")
    engine.index([photo_dir])
    assert names(engine.search("text:gare")) == set()
    fts = engine.catalog.query("SELECT COUNT(*) FROM photo_text_fts WHERE photo_text_fts MATCH '\"gare\"'")
    assert fts[0][0] == 0


def test_free_text_puts_photos_whose_text_holds_the_words_first(engine):
    assert [r.path.name for r in engine.search("gare", k=3)][0] == "clock.jpg"
    assert [r.path.name for r in engine.search("luna bakery", k=3)][0] == "coffee.jpg"
    # whole words only: "agend" is not "agenda"; and likeness still ranks the rest
    plain = [r.path.name for r in engine.search("agend", k=8)]
    assert plain == [r.path.name for r in engine.search("agend - text:zzzz", k=8)]
    assert [r.path.name for r in engine.search("a cat", k=3)][0] == "cat.jpg"
