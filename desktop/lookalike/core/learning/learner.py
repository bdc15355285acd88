"""Tags and concepts of one library together: what the engine holds and calls after each
indexing run, so that new photos get their tags and concepts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.learning.concepts import Concepts
from lookalike.core.learning.matrix import LibraryMatrix, new_photo_ids
from lookalike.core.learning.tags import Tags

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.store.catalog import Catalog
    from lookalike.core.store.vectors import VectorIndex


@dataclass(frozen=True)
class LearnReport:
    photos: int  # photos looked at
    tagged: int
    concepts: int


class Learner:
    """Tags and concepts of one library together: what the facade holds and calls after
    each indexing run, so that new photos get their tags and concepts."""

    def __init__(
        self,
        catalog: Catalog,
        encode_texts: Callable[[list[str]], np.ndarray] | None = None,
        vectors: Callable[[], VectorIndex | None] | None = None,
    ) -> None:
        """``vectors``: the library's vector index (None while it has no model), where
        learning reads vectors; without it, from the catalog."""

        self.catalog = catalog
        self.matrix = LibraryMatrix(catalog, vectors)
        self.tags = Tags(catalog, self.matrix, encode_texts)
        self.concepts = Concepts(catalog, matrix=self.matrix)
        from lookalike.core.learning.user_tags import UserTags

        self.user_tags = UserTags(catalog, self.concepts, self.tags)

    def update(self) -> LearnReport:
        if self.catalog.readonly:
            return LearnReport(0, 0, 0)
        new = new_photo_ids(self.catalog)
        self.concepts.ensure_current()
        if len(new):  # keywords the photos already carry (XMP, IPTC, sidecars) are the user's tags
            from lookalike.core.learning.keywords import import_keywords

            import_keywords(self.user_tags, new.tolist())
        tagged = self.tags.update(new)
        scored = self.concepts.update(new)
        with self.catalog.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO photo_learned(photo_id) VALUES(?)", [(int(i),) for i in new])
        return LearnReport(int(len(new)), tagged, scored)
