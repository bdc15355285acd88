"""The query language: text -> terms -> one vector.

A query is a flat sum of weighted terms::

    a dog on a beach
    dog + city
    haircut - man
    2*beach + ./me.jpg - 0.5 * crowd
    "t-shirt" - 'logo' + "~/Pictures/my holiday.jpg"

Grammar (whitespace is allowed between any two pieces)::

    query  := [sign] term (sign term)*
    sign   := '+' | '-'
    term   := [number '*'] body
    body   := quoted | path | text

Terms
    * **text** is free text: words with spaces, running up to the next sign
      (see "Where a sign separates terms" below) or the end of the query.
      Leading and trailing whitespace is dropped; the inside is kept as is.
      Quote characters inside free text are ordinary characters (``don't``),
      and so is anything else except ``*``, which is kept for weights: text
      that needs a ``*`` must be quoted.
    * **quoted** text is ``"..."`` or ``'...'``. A backslash escapes a quote
      character or a backslash (``"say \\"cheese\\""``); any other backslash
      is kept as written, so ``"C:\\Users"`` works. Quoted text is kept
      verbatim (no trimming) but must not be blank.
    * an **image** is unquoted text beginning with ``./``, ``../``, ``~/`` or
      ``/``, running to the next separating sign like free text does (so
      ``./my photo.jpg + dog`` names ``my photo.jpg``), or quoted text that
      begins with one of those prefixes or names an existing file. An image
      term must name an existing file. Relative paths are resolved against
      ``base_dir`` (the current folder by default), ``~/`` against the home
      folder, and the term stores the absolute path.

Weights
    ``2*dog``, ``0.5 * dog``, ``1e-1*dog``, ``.5*dog``: an unsigned decimal
    number and ``*`` before the body. The sign before the term is folded into
    the weight, so ``- 2*crowd`` has weight -2.0. Weights must be finite,
    non-zero and within [-100, 100]. A term takes one weight.

Where a sign separates terms
    A ``+`` or ``-`` outside quotes separates terms when

    1. it begins the query or a term (just after another sign or a ``*``), or
    2. it has whitespace on at least one side, or is the last character of
       the query.

    So a sign glued to non-space characters on *both* sides belongs to the
    text: ``t-shirt``, ``black-and-white``, ``e-mail``, ``x+y`` are one term
    each, while ``dog -cat``, ``dog- cat`` and ``dog - cat`` are two. The
    same rule ends unquoted paths, so ``./my-photo.jpg`` is one path and
    ``./photo - copy.jpg`` must be quoted. Text that ends in a sign
    (``C++``) or puts a space next to one must be quoted: ``"C++"``. After
    quoted text only whitespace and a sign (glued or not) may follow.

Errors
    Every problem raises :class:`~lookalike.core.errors.QueryError` with a
    reason and the 0-based column it points at (always within
    ``[0, len(text)]``). :func:`parse` raises nothing else for any string.
    Limits: at most 10,000 characters and 64 terms.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lookalike.core.errors import QueryError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "MAX_WEIGHT",
    "Query",
    "Term",
    "embed",
    "parse",
]

MAX_QUERY_LENGTH = 10_000
MAX_TERMS = 64
MAX_WEIGHT = 100.0

#: A weighted sum shorter than this fraction of the sum of |weights| is taken
#: to mean that the terms cancel out.
_CANCEL_TOLERANCE = 1e-5

_SIGNS = "+-"
_QUOTES = "\"'"
_PATH_PREFIXES = ("./", "../", "~/", "/")
_WEIGHT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

TermKind = Literal["text", "image"]


@dataclass(frozen=True)
class Term:
    """One weighted part of a query.

    ``value`` is the text for a text term and the absolute path for an image
    term. ``column`` is the 0-based index in the query where the term begins
    (its weight, if any, else its body; the sign before it is not part of
    it). Columns do not take part in equality, so a query re-parsed from its
    canonical string equals the original.
    """

    kind: TermKind
    value: str
    weight: float
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Query:
    """A parsed query: its terms in order and the text they came from."""

    terms: tuple[Term, ...]
    source: str = field(default="", compare=False)

    def with_term(self, term: Term) -> Query:
        """This query with ``term`` appended (``source`` becomes the canonical text)."""
        if len(self.terms) >= MAX_TERMS:
            text = str(self)
            raise QueryError(f"more than {MAX_TERMS} terms", text, len(text))
        terms = self.terms + (term,)
        return Query(terms, _render(terms))

    @property
    def is_empty(self) -> bool:
        return not self.terms

    @property
    def has_text(self) -> bool:
        return any(t.kind == "text" for t in self.terms)

    @property
    def has_image(self) -> bool:
        return any(t.kind == "image" for t in self.terms)

    def __str__(self) -> str:
        """The canonical text of this query; ``parse(str(q)) == q`` for parsed queries."""
        return _render(self.terms)


# --------------------------------------------------------------------- lexing


@dataclass(frozen=True)
class _Raw:
    """A term as written, before paths are checked against the file system."""

    kind: Literal["text", "quoted", "path"]
    value: str
    weight: float
    column: int  # where the term begins (weight or body)
    body_column: int  # where the body begins


def _skip_space(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i].isspace():
        i += 1
    return i


def _separates(text: str, j: int) -> bool:
    """Whether the sign at ``text[j]``, met inside unquoted text, separates terms."""
    return j == 0 or j + 1 == len(text) or text[j - 1].isspace() or text[j + 1].isspace()


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """The unescaped content of the quoted string at ``text[i]`` and the index after it."""
    quote = text[i]
    n = len(text)
    out: list[str] = []
    j = i + 1
    while j < n:
        ch = text[j]
        if ch == "\\" and j + 1 < n and text[j + 1] in "\\\"'":
            out.append(text[j + 1])
            j += 2
            continue
        if ch == quote:
            return "".join(out), j + 1
        out.append(ch)
        j += 1
    raise QueryError("unclosed quote", text, i)


def _shorten(token: str, limit: int = 24) -> str:
    return token if len(token) <= limit else token[: limit - 1] + "\u2026"


def _read_weight(text: str, i: int) -> tuple[float, str, int] | None:
    """A ``number *`` prefix at ``text[i]``: (weight, its text, index after ``*``), or None."""
    m = _WEIGHT.match(text, i)
    if m is None:
        return None
    j = _skip_space(text, m.end())
    if j >= len(text) or text[j] != "*":
        return None
    token = m.group()
    try:
        weight = float(token)
    except ValueError:  # pragma: no cover - the pattern only admits floats
        raise QueryError("weight must be a number", text, i) from None
    if not math.isfinite(weight):
        raise QueryError(f"weight {_shorten(token)} is not finite", text, i)
    return weight, token, j + 1


def _check_weight(weight: float, token: str, text: str, column: int) -> None:
    if weight == 0:
        raise QueryError("a weight of 0 removes the term", text, column)
    if abs(weight) > MAX_WEIGHT:
        lo, hi = -int(MAX_WEIGHT), int(MAX_WEIGHT)
        raise QueryError(f"weight {_shorten(token)} is outside [{lo}, {hi}]", text, column)


def _lex(text: str) -> list[_Raw]:
    """Split ``text`` into raw terms; raises QueryError on any syntax problem."""
    n = len(text)
    if n > MAX_QUERY_LENGTH:
        raise QueryError(
            f"query is longer than {MAX_QUERY_LENGTH} characters",
            text,
            MAX_QUERY_LENGTH,
        )
    i = _skip_space(text, 0)
    if i >= n:
        raise QueryError("empty query", text, 0)

    terms: list[_Raw] = []
    sign = 1.0
    after = ""  # the operator just read ('+', '-') or '' at the start
    if text[i] in _SIGNS:
        after = text[i]
        sign = -1.0 if text[i] == "-" else 1.0
        i += 1

    while True:
        i = _skip_space(text, i)
        start = i
        if i >= n or text[i] in _SIGNS:
            if after:
                raise QueryError(f"expected a term after '{after}'", text, i)
            raise QueryError("expected a term", text, i)  # pragma: no cover
        if len(terms) >= MAX_TERMS:
            raise QueryError(f"more than {MAX_TERMS} terms", text, start)

        weight = sign
        weight_token = "1"
        weighted = False
        read = _read_weight(text, i)
        if read is not None:
            magnitude, weight_token, i = read
            weighted = True
            weight = sign * magnitude
            i = _skip_space(text, i)
            if i >= n or text[i] in _SIGNS:
                raise QueryError("expected a term after '*'", text, i)
        shown = ("-" if sign < 0 else "") + weight_token
        _check_weight(weight, shown, text, start)

        body = i
        if text[i] in _QUOTES:
            value, i = _read_quoted(text, i)
            if not value.strip():
                raise QueryError("empty quoted text", text, body)
            terms.append(_Raw("quoted", value, weight, start, body))
            i = _skip_space(text, i)
            if i >= n:
                return terms
            if text[i] not in _SIGNS:
                raise QueryError("expected '+' or '-' after the quoted text", text, i)
        else:
            j = i
            while j < n and not (text[j] in _SIGNS and _separates(text, j)):
                j += 1
            value = text[i:j].rstrip()
            if value.startswith(_PATH_PREFIXES):
                terms.append(_Raw("path", value, weight, start, body))
            else:
                star = value.find("*")
                if star >= 0:
                    if weighted:
                        raise QueryError("a term takes only one weight", text, i + star)
                    if not value[:star].strip():
                        raise QueryError("expected a weight before '*'", text, i + star)
                    raise QueryError("weight must be a number", text, i)
                terms.append(_Raw("text", value, weight, start, body))
            i = j
            if i >= n:
                return terms

        # text[i] is a separating sign
        after = text[i]
        sign = -1.0 if after == "-" else 1.0
        i += 1


# ------------------------------------------------------------------- resolving


def _absolute(raw: str, base_dir: Path | None, text: str, column: int) -> str:
    """``raw`` as an absolute, normalised path string."""
    path = raw
    if path == "~" or path.startswith(("~/", "~" + os.sep)):
        expanded = os.path.expanduser(path)
        if expanded.startswith("~"):
            raise QueryError("cannot find the home folder for '~'", text, column)
        path = expanded
    try:
        if not os.path.isabs(path):
            base = os.fspath(base_dir) if base_dir is not None else os.getcwd()
            path = os.path.join(os.path.abspath(base), path)
        return os.path.normpath(path)
    except (OSError, ValueError) as exc:
        raise QueryError(f"cannot use the path {raw!r}: {exc}", text, column) from None


def _is_file(path: str) -> bool:
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):  # pragma: no cover - isfile swallows these
        return False


def _exists(path: str) -> bool:
    try:
        return os.path.exists(path)
    except (OSError, ValueError):  # pragma: no cover
        return False


def _image(raw: _Raw, base_dir: Path | None, text: str) -> Term:
    path = _absolute(raw.value, base_dir, text, raw.body_column)
    if not _is_file(path):
        if _exists(path):
            raise QueryError(f"not a file: {raw.value}", text, raw.body_column)
        raise QueryError(f"no such file: {raw.value}", text, raw.body_column)
    return Term("image", path, raw.weight, raw.column)


def _quoted_names_file(value: str, base_dir: Path | None) -> bool:
    try:
        path = value
        if not os.path.isabs(path):
            base = os.fspath(base_dir) if base_dir is not None else os.getcwd()
            path = os.path.join(base, path)
        return _is_file(path)
    except (OSError, ValueError):
        return False


def parse(text: str, *, base_dir: Path | None = None) -> Query:
    """Parse a query (see the module's docstring for the language).

    Relative image paths are resolved against ``base_dir`` (default: the
    current folder) and stored absolute. Raises :class:`QueryError` for any
    problem, and nothing else for any string.
    """
    raws = _lex(text)
    terms: list[Term] = []
    for raw in raws:
        if raw.kind == "text":
            terms.append(Term("text", raw.value, raw.weight, raw.column))
        elif raw.kind == "path" or raw.value.startswith(_PATH_PREFIXES) or _quoted_names_file(raw.value, base_dir):
            terms.append(_image(raw, base_dir, text))
        else:
            terms.append(Term("text", raw.value, raw.weight, raw.column))
    return Query(tuple(terms), text)


# ------------------------------------------------------------------ rendering


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lexes_as(value: str, kind: str) -> bool:
    """Whether ``value`` written bare reads back as one ``kind`` term equal to it."""
    try:
        raws = _lex(value)
    except QueryError:
        return False
    return len(raws) == 1 and raws[0].kind == kind and raws[0].value == value and raws[0].weight == 1.0


def _render_body(term: Term) -> str:
    kind = "path" if term.kind == "image" else "text"
    if _lexes_as(term.value, kind):
        return term.value
    return _quote(term.value)


def _render_weight(magnitude: float) -> str:
    if magnitude.is_integer() and magnitude < 1e16:
        return str(int(magnitude))
    return repr(magnitude)


def _render(terms: tuple[Term, ...]) -> str:
    parts: list[str] = []
    for index, term in enumerate(terms):
        weight = term.weight
        negative = weight < 0 or (weight == 0 and math.copysign(1.0, weight) < 0)
        magnitude = abs(weight)
        body = _render_body(term)
        piece = body if magnitude == 1.0 else f"{_render_weight(magnitude)}*{body}"
        if index == 0:
            parts.append(("-" if negative else "") + piece)
        else:
            parts.append((" - " if negative else " + ") + piece)
    return "".join(parts)


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
) -> np.ndarray:
    """The query's unit vector: the weighted sum of its terms' unit vectors, normalised.

    All distinct text terms go to ``encode_texts`` in one call (in order of
    first appearance); each image term goes to ``encode_image_path``. Returns
    a float32 vector. Raises :class:`QueryError` for an empty query or when
    the terms cancel out (``cat - cat``).
    """
    import numpy as np

    source = query.source or str(query)
    if query.is_empty:
        raise QueryError("empty query", source, 0)

    texts = list(dict.fromkeys(t.value for t in query.terms if t.kind == "text"))
    text_rows: dict[str, np.ndarray] = {}
    if texts:
        encoded = np.asarray(encode_texts(texts), dtype=np.float64)
        if encoded.ndim != 2 or encoded.shape[0] != len(texts):
            raise ValueError(f"encode_texts returned shape {encoded.shape} for {len(texts)} texts")
        text_rows = {value: encoded[k] for k, value in enumerate(texts)}

    vectors: list[np.ndarray] = []
    for term in query.terms:
        if term.kind == "text":
            raw = text_rows[term.value]
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

    weights = np.array([t.weight for t in query.terms], dtype=np.float64)
    if not np.all(np.isfinite(weights)) or not np.any(weights):
        raise QueryError("the terms have no usable weight", source, 0)
    weights = weights / np.max(np.abs(weights))  # scale-free: avoids under/overflow

    total = weights @ np.stack(vectors)
    norm = float(np.linalg.norm(total))
    if not math.isfinite(norm) or norm <= _CANCEL_TOLERANCE * float(np.sum(np.abs(weights))):
        raise QueryError("the terms cancel out", source, 0)
    return (total / norm).astype(np.float32)
