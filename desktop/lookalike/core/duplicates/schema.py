"""The duplicate finder's tables: catalog migration 4.

``dup_fingerprints``  a photo's perceptual hashes, EXIF tag count and format, keyed
                      by photo id (a changed file is a new photo, a deleted one takes
                      its row with it).
``dup_kept``          "keep all" decisions: the content hashes of a group the user
                      kept whole. A group whose members all fall within one decision
                      does not come back; one with a new copy does.
``dup_reference``     folders whose photos always win as the keeper.
``trash_runs``        one row per trash action; ``undone`` once restored.
``trash_journal``     one row per file a run meant to move: written (state 'intent')
                      before the move, completed ('trashed', with where it went, and
                      the photo's catalog row removed in the same transaction) after.
                      The photo's row (vector included) is kept here so an undo puts
                      it back without encoding again.
``trash_rows``        (migration 8) beside a journal row, every catalog row that went with
                      its photo (faces and their names, tags, concepts, fingerprints, the
                      keeper chosen), so an undo puts the photo back whole.
``dup_keeper``        (migration 8) the photo the user chose to keep in its group, by a
                      click on its card: it wins over every rule while it is in the group.
"""

from __future__ import annotations

MIGRATION = """
CREATE TABLE IF NOT EXISTS dup_fingerprints (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    hash     TEXT NOT NULL,
    percept  BLOB,
    exif     INTEGER NOT NULL DEFAULT 0,
    format   TEXT NOT NULL DEFAULT '',
    version  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dup_kept (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind   TEXT NOT NULL,
    hashes TEXT NOT NULL,
    at     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dup_reference (
    path  BLOB PRIMARY KEY,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trash_runs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    started  REAL NOT NULL,
    finished REAL,
    undone   REAL
);
CREATE TABLE IF NOT EXISTS trash_journal (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     INTEGER NOT NULL REFERENCES trash_runs(id),
    state      TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    path       BLOB NOT NULL,
    photo_id   INTEGER,
    dev        INTEGER,
    ino        INTEGER,
    trash_dir  BLOB,
    trashed_as BLOB,
    folder_id  INTEGER,
    size       INTEGER,
    mtime_ns   INTEGER,
    hash       TEXT,
    width      INTEGER,
    height     INTEGER,
    taken      REAL,
    vector     BLOB,
    at         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trash_journal_run ON trash_journal(run_id);
CREATE INDEX IF NOT EXISTS trash_journal_state ON trash_journal(state)
"""


#: Migration 8: what an undo needs to restore a photo whole, and the keeper a user chose.
MIGRATION_RESTORE = """
CREATE TABLE IF NOT EXISTS trash_rows (
    journal_id INTEGER PRIMARY KEY REFERENCES trash_journal(id) ON DELETE CASCADE,
    rows       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dup_keeper (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    hashes   TEXT NOT NULL,
    at       REAL NOT NULL
)
"""
