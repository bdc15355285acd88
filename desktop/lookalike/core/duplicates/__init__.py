"""Duplicates: exact copies, near-duplicates and similar shots; keeper rules; the trash.

- :mod:`.fingerprint`: perceptual hashes (ImageHash pHash + dHash) that confirm a
  near-duplicate, computed at index time by a stage and lazily for older photos.
- :mod:`.finding`: candidate pairs from the vector graph's neighbours, confirmed,
  grouped so that every pair in a group is a duplicate (complete linkage).
- :mod:`.keeper`: which photo of a group to keep, and why.
- :mod:`.trash`: moving the others to the system trash through a journal, and undo.
- :mod:`.service`: :class:`~.service.Duplicates`, the facade the CLI and window call.

Nothing is imported here: the catalog imports :mod:`.schema` for its migration.
"""
