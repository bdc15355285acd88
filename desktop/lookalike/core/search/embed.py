"""A parsed query -> one unit vector: text through the text tower, images from stored vectors or encoded, concepts' learned directions; weighted and summed."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.core.errors import QueryError
from lookalike.core.search.model import _CANCEL_TOLERANCE, Query, Term

if TYPE_CHECKING:
    import numpy as np

# ------------------------------------------------------------------- embedding


def _unit(vector: np.ndarray, term: Term, source: str) -> np.ndarray:
    import numpy as np

    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm == 0.0:
        raise QueryError(f"the model gives no usable vector for {term.value!r}", source, term.column)
    return vector / norm


def embed(
    query: Query,
    encode_texts: Callable[[list[str]], np.ndarray],
    encode_image_path: Callable[[Path], np.ndarray],
    concept_vector: Callable[[Term], np.ndarray] | None = None,
) -> np.ndarray:
    """The query's unit vector: the weighted sum of its terms' unit vectors, normalised.

    All distinct text terms go to ``encode_texts`` in one call (in order of
    first appearance); each image term goes to ``encode_image_path``; each
    added concept term to ``concept_vector`` (its direction in the model's
    space). Person and face terms, and subtracted concepts, only choose
    photos and add nothing here. Returns a float32 vector. Raises
    :class:`QueryError` for a query with nothing to rank by or when the terms
    cancel out (``cat - cat``).
    """
    import numpy as np

    source = query.source or str(query)
    ranked = tuple(t for t in query.terms if t.kind in ("text", "image") or (t.kind == "concept" and t.weight > 0))
    if not ranked:
        raise QueryError("empty query", source, 0)

    texts = list(dict.fromkeys(t.value for t in ranked if t.kind == "text"))
    text_rows: dict[str, np.ndarray] = {}
    if texts:
        encoded = np.asarray(encode_texts(texts), dtype=np.float64)
        if encoded.ndim != 2 or encoded.shape[0] != len(texts):
            raise ValueError(f"encode_texts returned shape {encoded.shape} for {len(texts)} texts")
        text_rows = {value: encoded[k] for k, value in enumerate(texts)}

    vectors: list[np.ndarray] = []
    for term in ranked:
        if term.kind == "text":
            raw = text_rows[term.value]
        elif term.kind == "concept":
            if concept_vector is None:
                raise QueryError(f"concepts cannot be used here: #{term.value}", source, term.column)
            raw = np.asarray(concept_vector(term), dtype=np.float64)
        else:
            raw = np.asarray(encode_image_path(Path(term.value)), dtype=np.float64)
            if raw.ndim == 2 and raw.shape[0] == 1:
                raw = raw[0]
            if raw.ndim != 1:
                raise ValueError(f"encode_image_path returned shape {raw.shape}")
        vectors.append(_unit(raw, term, source))

    dims = {v.shape[0] for v in vectors}
    if len(dims) != 1:
        raise ValueError(f"term vectors differ in dimension: {sorted(dims)}")

    weights = np.array([t.weight for t in ranked], dtype=np.float64)
    if not np.all(np.isfinite(weights)) or not np.any(weights):
        raise QueryError("the terms have no usable weight", source, 0)
    weights = weights / np.max(np.abs(weights))  # scale-free: avoids under/overflow

    total = weights @ np.stack(vectors)
    norm = float(np.linalg.norm(total))
    if not math.isfinite(norm) or norm <= _CANCEL_TOLERANCE * float(np.sum(np.abs(weights))):
        raise QueryError("the terms cancel out", source, 0)
    return (total / norm).astype(np.float32)
