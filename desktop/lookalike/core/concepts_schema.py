"""Catalog step 3: tags and concepts (the tables :mod:`lookalike.core.concepts` and
:mod:`lookalike.core.tags` keep); step 5: the index filters and browse read; step 7:
what :mod:`lookalike.core.user_tags` adds. Imports
nothing, so the catalog can import it."""

#: Statements are split on ';' (no triggers).
MIGRATION = """
CREATE TABLE IF NOT EXISTS concepts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created    REAL NOT NULL,
    updated    REAL NOT NULL,
    model      TEXT NOT NULL DEFAULT '',
    method     TEXT NOT NULL DEFAULT '',
    direction  BLOB,
    threshold  REAL,
    evaluation TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS concept_examples (
    concept_id INTEGER NOT NULL REFERENCES concepts(id) ON DELETE CASCADE,
    path       BLOB NOT NULL,
    hash       TEXT NOT NULL,
    label      INTEGER NOT NULL,
    origin     TEXT NOT NULL,
    added      REAL NOT NULL,
    PRIMARY KEY (concept_id, path)
);
CREATE TABLE IF NOT EXISTS photo_concepts (
    concept_id INTEGER NOT NULL REFERENCES concepts(id) ON DELETE CASCADE,
    photo_id   INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    score      REAL NOT NULL,
    PRIMARY KEY (concept_id, photo_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS photo_concepts_photo ON photo_concepts(photo_id);
CREATE TABLE IF NOT EXISTS photo_tags (
    tag      TEXT NOT NULL,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    score    REAL NOT NULL,
    PRIMARY KEY (tag, photo_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS photo_tags_photo ON photo_tags(photo_id);
CREATE INDEX IF NOT EXISTS photos_date ON photos(COALESCE(taken, mtime_ns / 1000000000.0));
CREATE TABLE IF NOT EXISTS photo_learned (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE
)
"""

#: Step 5: every column browsing and the filters read, in one index led by the date photos
#: are browsed by (it takes the place of step 3's date index). A filter, and the whole
#: library newest first, then read this index alone (about 100 bytes a photo) instead of
#: the photo rows, whose vectors make them 7 KB each: at 100,000 photos
#: ``shape:portrait after:2020`` found its photos in 0.13 s and takes 0.01 s; the whole
#: library newest first took 0.38 s of CPU (13 s with the rows out of the page cache) and
#: takes 0.14 s.
FILTER_INDEX = """
DROP INDEX IF EXISTS photos_date;
CREATE INDEX IF NOT EXISTS photos_browse ON photos(
    COALESCE(taken, mtime_ns / 1000000000.0), width, height, taken, mtime_ns, path, size
)
"""

#: Step 7 (:mod:`lookalike.core.user_tags`): automatic tags and imported keywords a user
#: took off a photo, by content hash, so that a re-index, a move or a model switch does not
#: put them back; and the examples found by hash (a photo that moved).
USER_TAGS = """
CREATE TABLE IF NOT EXISTS tag_removed (
    tag     TEXT NOT NULL COLLATE NOCASE,
    hash    TEXT NOT NULL,
    path    BLOB NOT NULL,
    removed REAL NOT NULL,
    PRIMARY KEY (tag, hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS concept_examples_hash ON concept_examples(hash)
"""
