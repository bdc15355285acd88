"""Catalog tables of People (migration 2). Statements are split on ';'.

* ``people``: one row per person, named or not; ``hidden`` is the user's.
* ``faces``: every face found, with its box and landmarks (fractions of the
  oriented photo), quality, the face model's vector and its person.
  ``confirmed`` = 1 when a user put the face in its person (naming it, "this
  is...", a merge, a confirmed suggestion): confirmed faces are the person's
  references and grouping never moves them. ``suggested_id`` is a person the
  face may be (shown for the user to confirm or reject). ``grouped`` = 0 until
  grouping has looked at the face (a run killed between the commit of faces
  and their grouping groups them next time).
* ``face_scans``: photos whose faces were looked for, and with which model
  (a photo with no face has a row too, so it is not looked at again).
* ``face_rejections``: "not this person" - the face never joins that person.
* ``carried_faces``: decisions brought from the library of the image model
  before a switch, waiting for their face to be found here (core/faces/carry.py).

``faces.taken`` is the photo's date taken (else its file time) when its faces
were found, so that ``faces_person`` covers a person's photos in date order: a
person query reads neither a face row nor a photo row.

Everything is keyed by ``photos(id)`` with ON DELETE CASCADE: a deleted photo's
faces go with it, a moved photo keeps its id and so its faces and their names.
"""

MIGRATION = """
CREATE TABLE IF NOT EXISTS people (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name    TEXT COLLATE NOCASE UNIQUE,
    hidden  INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    photo_id     INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    model        TEXT NOT NULL,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    landmarks    BLOB NOT NULL,
    quality      REAL NOT NULL,
    vector       BLOB NOT NULL,
    person_id    INTEGER REFERENCES people(id) ON DELETE SET NULL,
    confirmed    INTEGER NOT NULL DEFAULT 0,
    suggested_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
    grouped      INTEGER NOT NULL DEFAULT 0,
    taken        REAL
);
CREATE INDEX IF NOT EXISTS faces_photo ON faces(photo_id);
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id, photo_id, confirmed, quality, taken);
CREATE INDEX IF NOT EXISTS faces_suggested ON faces(suggested_id);
CREATE INDEX IF NOT EXISTS faces_ungrouped ON faces(grouped) WHERE grouped = 0;
CREATE TABLE IF NOT EXISTS face_scans (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    model    TEXT NOT NULL,
    faces    INTEGER NOT NULL,
    at       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS face_rejections (
    face_id   INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (face_id, person_id)
);
CREATE TABLE IF NOT EXISTS carried_faces (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    hash      TEXT NOT NULL,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    person    TEXT NOT NULL,
    name      TEXT,
    hidden    INTEGER NOT NULL DEFAULT 0,
    confirmed INTEGER NOT NULL DEFAULT 0,
    rejected  INTEGER NOT NULL DEFAULT 0,
    person_id INTEGER REFERENCES people(id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS carried_faces_hash ON carried_faces(hash)
"""

TABLES = ("people", "faces", "face_scans", "face_rejections", "carried_faces")
INDEXES = ("faces_photo", "faces_person", "faces_suggested", "faces_ungrouped", "carried_faces_hash")
