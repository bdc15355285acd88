"""Catalog step 3: tags and concepts (the tables :mod:`lookalike.core.concepts` and
:mod:`lookalike.core.tags` keep). Imports nothing, so the catalog can import it."""

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
