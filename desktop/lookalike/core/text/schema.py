"""The catalog tables of text in photos (a numbered migration in core/catalog.py).

``photo_text`` holds what was read in each photo (one row per photo read, ''
when it shows no text) and ``body``, the text normalised for matching
(:func:`lookalike.core.text.ocr.normalise`: lower case, accents taken off,
punctuation and spacing one space). ``photo_text_fts`` is an SQLite FTS5 index of ``body``
with the trigram tokenizer, so that ``text:bakery`` is a substring match over
an index, not a scan; triggers keep it in step with ``photo_text``, whose rows
go with their photo (``ON DELETE CASCADE`` fires the delete trigger).
"""

MIGRATION = """
CREATE TABLE photo_text (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    lines TEXT NOT NULL DEFAULT '[]',
    body TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE VIRTUAL TABLE photo_text_fts USING fts5(body, tokenize = 'trigram');
CREATE TRIGGER photo_text_added AFTER INSERT ON photo_text BEGIN
    INSERT INTO photo_text_fts(rowid, body) VALUES (new.photo_id, new.body);
END;
CREATE TRIGGER photo_text_removed AFTER DELETE ON photo_text BEGIN
    DELETE FROM photo_text_fts WHERE rowid = old.photo_id;
END;
"""
