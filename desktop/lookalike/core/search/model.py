"""The query language: text -> terms -> one vector.

This module is the language's shape: terms, filters, the parsed query, the lexer and
the canonical text; :mod:`lookalike.core.search.parse` turns text into a query and
:mod:`lookalike.core.search.embed` a query into one vector.

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

People and concepts
    * ``@name`` or ``@"two words"`` is a **person** (named in People);
      ``@./photo.jpg`` (any image path, quoted or not) is a **face** term: the
      person whose face is in that photo. Person terms only choose photos: a
      photo must show every person added and none subtracted (``@alice @bob``,
      ``beach - @bob``). They take no weight.
    * ``#name`` or ``#"two words"`` is a **concept** the user taught. It
      chooses the photos the concept accepts (``- #receipts`` leaves them out)
      and, added, also ranks by the concept (``#luna + beach``; ``2*#luna``).
    * An unquoted name runs to the next whitespace or separating sign.
      ``@`` and ``#`` begin such a term only at the start of a word and when
      a name follows at once; ``me@home`` and a lone ``#`` are text.

Filters
    ``key:value`` at the start of a word, where key is one of ``after``,
    ``before``, ``year``, ``in``, ``kind``, ``shape``, ``min``, ``tag``, ``text``
    (any case). The value runs to the next whitespace or separating sign, or
    is quoted (``in:"~/My Pictures"``). A filter may stand anywhere, even
    inside free text (``dog year:2023 on grass`` is the text ``dog on grass``
    and a filter); it applies to the whole query, never changes a score and
    takes no sign (but ``text:``) or weight. Dates are ``YYYY``, ``YYYY-MM`` or
    ``YYYY-MM-DD`` in local time; ``after:P`` keeps photos from the start of
    P on, ``before:P`` those before it, ``year:Y`` those within Y (a photo's
    date is when it was taken, else its file's time). ``in:`` takes a folder
    (relative to ``base_dir``); ``kind:`` one or more of jpeg, png, heic,
    webp, gif, tiff, bmp, avif (``kind:png,heic``); ``shape:`` portrait,
    landscape or square; ``min:`` a size as ``2mp`` or ``1920x1080``;
    ``tag:`` a tag: the user's own (:mod:`lookalike.core.learning.user_tags`) or one of the
    automatic vocabulary (:mod:`lookalike.core.learning.tags`);
    ``text:`` words the photo's text holds (``text:bakery``,
    ``text:"luna bakery"``; case, accents, spaces and punctuation aside, as
    read by :mod:`lookalike.core.text`), and it alone may be subtracted
    (``screenshot - text:confidential`` leaves those photos out). Repeated
    ``in:``, ``kind:``, ``shape:`` and ``year:`` filters mean any of them;
    everything else must all hold. A query may be filters alone: it lists
    the photos they choose, newest first.

Errors
    Every problem raises :class:`~lookalike.core.errors.QueryError` with a
    reason and the 0-based column it points at (always within
    ``[0, len(text)]``). :func:`parse` raises nothing else for any string.
    Limits: at most 10,000 characters, 64 terms and 64 filters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from lookalike.core.errors import QueryError

if TYPE_CHECKING:
    pass


MAX_QUERY_LENGTH = 10_000
MAX_TERMS = 64
MAX_FILTERS = 64
MAX_WEIGHT = 100.0

#: A weighted sum shorter than this fraction of the sum of |weights| is taken
#: to mean that the terms cancel out.
_CANCEL_TOLERANCE = 1e-5

_SIGNS = "+-"
_QUOTES = "\"'"
_MARKS = "@#"
_PATH_PREFIXES = ("./", "../", "~/", "/")
_WEIGHT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

TermKind = Literal["text", "image", "person", "face", "concept"]
#: Terms that add a vector to the query's sum (persons and faces only choose photos).
VECTOR_KINDS: frozenset[str] = frozenset({"text", "image", "concept"})


class FilterKey(StrEnum):
    AFTER = "after"
    BEFORE = "before"
    YEAR = "year"
    IN = "in"
    KIND = "kind"
    SHAPE = "shape"
    MIN = "min"
    TAG = "tag"
    TEXT = "text"


class Shape(StrEnum):
    PORTRAIT = "portrait"
    LANDSCAPE = "landscape"
    SQUARE = "square"


#: ``kind:`` names and the file suffixes (lower case, no dot) each one covers.
KINDS: dict[str, tuple[str, ...]] = {
    "jpeg": ("jpg", "jpeg", "jpe", "jfif"),
    "png": ("png",),
    "heic": ("heic", "heif"),
    "webp": ("webp",),
    "gif": ("gif",),
    "tiff": ("tif", "tiff"),
    "bmp": ("bmp",),
    "avif": ("avif",),
}
_KIND_ALIASES = {suffix: name for name, suffixes in KINDS.items() for suffix in suffixes}
_FILTER_KEY = re.compile(r"(after|before|year|in|kind|shape|min|tag|text):", re.IGNORECASE)
_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{1,2})(?:-([0-9]{1,2}))?)?")
_MEGAPIXELS = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)mp", re.IGNORECASE)
_PIXELS = re.compile(r"([0-9]{1,6})x([0-9]{1,6})", re.IGNORECASE)


@dataclass(frozen=True)
class Term:
    """One weighted part of a query.

    ``value`` is the text for a text term, the absolute path for an image or
    face term, and the name for a person or concept term. ``column`` is the
    0-based index in the query where the term begins (its weight, if any, else
    its body; the sign before it is not part of it). Columns do not take part
    in equality, so a query re-parsed from its canonical string equals the
    original.
    """

    kind: TermKind
    value: str
    weight: float
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Filter:
    """One ``key:value`` filter. ``value`` is canonical: a folder's absolute
    path for ``in:``, lower case names otherwise (``kind:jpg`` is ``jpeg``)."""

    key: FilterKey
    value: str
    column: int = field(default=0, compare=False)
    exclude: bool = False  # ``- text:word``: the photos it chooses are left out

    def __str__(self) -> str:
        return ("- " if self.exclude else "") + f"{self.key}:{_render_value(self.value, self.key)}"


@dataclass(frozen=True)
class Query:
    """A parsed query: its terms in order, its filters, and the text they came from."""

    terms: tuple[Term, ...]
    source: str = field(default="", compare=False)
    filters: tuple[Filter, ...] = ()

    def with_term(self, term: Term) -> Query:
        """This query with ``term`` appended (``source`` becomes the canonical text)."""
        if len(self.terms) >= MAX_TERMS:
            text = str(self)
            raise QueryError(f"more than {MAX_TERMS} terms", text, len(text))
        terms = self.terms + (term,)
        return Query(terms, _render(terms, self.filters), self.filters)

    def with_filter(self, item: Filter) -> Query:
        """This query with ``item`` added (an equal filter already there is kept once)."""
        if item in self.filters:
            return self
        if len(self.filters) >= MAX_FILTERS:
            text = str(self)
            raise QueryError(f"more than {MAX_FILTERS} filters", text, len(text))
        filters = self.filters + (item,)
        return Query(self.terms, _render(self.terms, filters), filters)

    def without_filter(self, item: Filter) -> Query:
        filters = tuple(f for f in self.filters if f != item)
        return Query(self.terms, _render(self.terms, filters), filters)

    @property
    def is_empty(self) -> bool:
        """No terms (there may still be filters: see :attr:`is_browse`)."""
        return not self.terms

    @property
    def is_browse(self) -> bool:
        """Nothing to rank by (only filters, persons, subtracted concepts): the photos
        the query chooses are listed newest first."""
        return not any(t.kind in ("text", "image") or (t.kind == "concept" and t.weight > 0) for t in self.terms)

    @property
    def has_text(self) -> bool:
        return any(t.kind == "text" for t in self.terms)

    @property
    def has_image(self) -> bool:
        return any(t.kind == "image" for t in self.terms)

    @property
    def has_vector_terms(self) -> bool:
        """Whether any term adds to the query's vector (the opposite of :attr:`is_browse`)."""
        return not self.is_browse

    def filters_of(self, key: FilterKey) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.key == key)

    def terms_of(self, *kinds: str) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.kind in kinds)

    def __str__(self) -> str:
        """The canonical text of this query; ``parse(str(q)) == q`` for parsed queries."""
        return _render(self.terms, self.filters)


# --------------------------------------------------------------------- lexing


@dataclass(frozen=True)
class _Raw:
    """A term as written, before paths are checked against the file system."""

    kind: Literal["text", "quoted", "path", "person", "face", "concept"]
    value: str
    weight: float
    column: int  # where the term begins (weight or body)
    body_column: int  # where the body begins


@dataclass(frozen=True)
class _RawFilter:
    key: FilterKey
    value: str  # as written (unquoted)
    column: int  # where the key begins
    value_column: int
    exclude: bool = False


def _skip_space(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i].isspace():
        i += 1
    return i


def _separates(text: str, j: int) -> bool:
    """Whether the sign at ``text[j]``, met inside unquoted text, separates terms."""
    return j == 0 or j + 1 == len(text) or text[j - 1].isspace() or text[j + 1].isspace()


def _word_start(text: str, j: int) -> bool:
    return j == 0 or text[j - 1].isspace()


def _mark_at(text: str, j: int) -> bool:
    """Whether ``text[j]`` is an ``@`` or ``#`` that begins a person or concept term."""
    if text[j] not in _MARKS or j + 1 >= len(text):
        return False
    nxt = text[j + 1]
    return not nxt.isspace() and not (nxt in _SIGNS and _separates(text, j + 1))


def _filter_at(text: str, j: int) -> FilterKey | None:
    m = _FILTER_KEY.match(text, j)
    return FilterKey(m.group(1).lower()) if m else None


def _token_end(text: str, i: int) -> int:
    """The end of an unquoted name or value at ``text[i]``: the next whitespace or separating sign."""
    n = len(text)
    j = i
    while j < n and not text[j].isspace() and not (text[j] in _SIGNS and _separates(text, j)):
        j += 1
    return j


def _read_token(text: str, i: int, what: str) -> tuple[str, bool, int]:
    """A name or value at ``text[i]``: (its text, whether quoted, index after it)."""
    n = len(text)
    if i < n and text[i] in _QUOTES:
        value, j = _read_quoted(text, i)
        if not value.strip():
            raise QueryError(f"empty quoted {what}", text, i)
        if j < n and not text[j].isspace() and not (text[j] in _SIGNS and _separates(text, j)):
            raise QueryError(f"expected a space or a sign after the quoted {what}", text, j)
        return value, True, j
    j = _token_end(text, i)
    return text[i:j], False, j


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


class _Lexer:
    """Splits a query into raw terms and filters; raises QueryError on any syntax problem."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.terms: list[_Raw] = []
        self.filters: list[_RawFilter] = []

    def add_term(self, raw: _Raw) -> None:
        if len(self.terms) >= MAX_TERMS:
            raise QueryError(f"more than {MAX_TERMS} terms", self.text, raw.column)
        self.terms.append(raw)

    def read_filter(self, key: FilterKey, i: int, exclude: bool = False) -> int:
        """Reads ``key:value`` at ``text[i]``; returns the index after it."""
        text = self.text
        start = i + len(key) + 1
        if start >= len(text) or text[start].isspace() or (text[start] in _SIGNS and _separates(text, start)):
            raise QueryError(f"expected a value after '{text[i:start]}'", text, start)
        value, quoted, j = _read_token(text, start, "value")
        if len(self.filters) >= MAX_FILTERS:
            raise QueryError(f"more than {MAX_FILTERS} filters", text, i)
        self.filters.append(_RawFilter(key, value, i, start + (1 if quoted else 0), exclude))
        return j

    def read_mark(self, i: int, weight: float, start: int) -> int:
        """Reads ``@name``, ``@path`` or ``#name`` at ``text[i]``; returns the index after it."""
        text = self.text
        mark = text[i]
        value, quoted, j = _read_token(text, i + 1, "name")
        if mark == "#":
            kind: Literal["person", "face", "concept"] = "concept"
        else:
            kind = "face" if value.startswith(_PATH_PREFIXES) else "person"
            if weight not in (1.0, -1.0):
                raise QueryError("a person takes no weight", text, start)
        self.add_term(_Raw(kind, value, weight, start, i + 1))
        return j

    def read_text(self, i: int, weight: float, start: int, weighted: bool) -> int:
        """Reads free text (or an unquoted path) with any filters inside it."""
        text = self.text
        n = len(text)
        pieces: list[str] = []
        seg = i
        j = i
        while j < n:
            ch = text[j]
            if ch in _SIGNS and _separates(text, j):
                break
            if _word_start(text, j) and j > i:
                if _mark_at(text, j):
                    break
                key = _filter_at(text, j)
                if key is not None:
                    pieces.append(text[seg:j])
                    j = seg = self.read_filter(key, j)
                    continue
            j += 1
        pieces.append(text[seg:j])
        if len(pieces) == 1:
            value = pieces[0].rstrip()
        else:
            value = " ".join(p.strip() for p in pieces if p.strip())
        if value.startswith(_PATH_PREFIXES):
            self.add_term(_Raw("path", value, weight, start, i))
            return j
        star = value.find("*")
        if star >= 0:
            at = text.find("*", i)
            if weighted:
                raise QueryError("a term takes only one weight", text, at)
            if not value[:star].strip():
                raise QueryError("expected a weight before '*'", text, at)
            raise QueryError("weight must be a number", text, i)
        self.add_term(_Raw("text", value, weight, start, i))
        return j

    def read_quoted(self, i: int, weight: float, start: int) -> int:
        """Reads quoted text; only a sign, or after a space a person, concept or filter, may follow it."""
        text = self.text
        n = len(text)
        value, j = _read_quoted(text, i)
        if not value.strip():
            raise QueryError("empty quoted text", text, i)
        self.add_term(_Raw("quoted", value, weight, start, i))
        k = _skip_space(text, j)
        if k >= n or text[k] in _SIGNS or (k > j and (_mark_at(text, k) or _filter_at(text, k))):
            return k
        raise QueryError("expected '+' or '-' after the quoted text", text, k)

    def read_weight(self, i: int, sign: float) -> tuple[float, bool, int]:
        """The term's weight (its sign folded in), whether one was written, and where its body begins."""
        text = self.text
        n = len(text)
        start = i
        weight, weight_token, weighted = sign, "1", False
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
        return weight, weighted, i

    def run(self) -> tuple[list[_Raw], list[_RawFilter]]:
        text = self.text
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

        sign = 1.0
        after = ""  # the operator just read ('+', '-') or '' at the start or after a space
        sign_column = i
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
            weight, weighted, i = self.read_weight(i, sign)

            key = _filter_at(text, i)
            if key is not None:
                if weighted:
                    raise QueryError("a filter takes no weight", text, start)
                if sign < 0 and key != FilterKey.TEXT:
                    raise QueryError("a filter cannot be subtracted", text, sign_column)
                i = self.read_filter(key, i, exclude=sign < 0)
            elif _mark_at(text, i):
                i = self.read_mark(i, weight, start)
            elif text[i] in _QUOTES:
                i = self.read_quoted(i, weight, start)
            else:
                i = self.read_text(i, weight, start, weighted)

            i = _skip_space(text, i)
            if i >= n:
                return self.terms, self.filters
            if text[i] in _SIGNS:  # a separating sign
                after = text[i]
                sign = -1.0 if after == "-" else 1.0
                sign_column = i
                i += 1
            else:  # a person, concept or filter follows without a sign
                sign, after, sign_column = 1.0, "", i


# ------------------------------------------------------------------ rendering


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lexes_as(value: str, kind: str) -> bool:
    """Whether ``value`` written bare reads back as one ``kind`` term equal to it."""
    try:
        raws, filters = _Lexer(value).run()
    except QueryError:
        return False
    return not filters and len(raws) == 1 and raws[0].kind == kind and raws[0].value == value and raws[0].weight == 1.0


def _reads_as_token(value: str) -> bool:
    """Whether ``value`` written bare after ``@``, ``#`` or ``key:`` reads back whole."""
    return bool(value) and value[0] not in _QUOTES and _token_end(value, 0) == len(value)


def _render_value(value: str, key: FilterKey) -> str:
    return value if _reads_as_token(value) else _quote(value)


def _render_body(term: Term) -> str:
    if term.kind in ("person", "face", "concept"):
        mark = "#" if term.kind == "concept" else "@"
        value = term.value
        # A bare name must not read back as a path (or a path as a name).
        bare = _reads_as_token(value) and (term.kind == "face") == value.startswith(_PATH_PREFIXES)
        if term.kind == "person" and value.startswith(_PATH_PREFIXES):
            raise ValueError(f"a person's name cannot look like a path: {value!r}")
        return mark + (value if bare else _quote(value))
    kind = "path" if term.kind == "image" else "text"
    if _lexes_as(term.value, kind):
        return term.value
    return _quote(term.value)


def _render_weight(magnitude: float) -> str:
    if magnitude.is_integer() and magnitude < 1e16:
        return str(int(magnitude))
    return repr(magnitude)


def _render(terms: tuple[Term, ...], filters: tuple[Filter, ...] = ()) -> str:
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
    for item in filters:
        parts.append((" " if parts else "") + str(item))
    return "".join(parts)
