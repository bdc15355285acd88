"""Text -> :class:`~lookalike.core.search.model.Query`: filter values, image paths, and :func:`parse`."""

from __future__ import annotations

import calendar
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.core.errors import QueryError
from lookalike.core.search.model import (
    _DATE,
    _KIND_ALIASES,
    _MEGAPIXELS,
    _PATH_PREFIXES,
    _PIXELS,
    KINDS,
    Filter,
    FilterKey,
    Query,
    Shape,
    Term,
    _Lexer,
    _Raw,
    _render_weight,
    _shorten,
)

if TYPE_CHECKING:
    pass

# ------------------------------------------------------------------- filters


def date_span(value: str) -> tuple[float, float]:
    """[start, end) of a canonical date value (``2024``, ``2024-06``, ``2024-06-15``)
    as POSIX timestamps, in local time."""
    parts = [int(p) for p in value.split("-")]
    year = parts[0]
    if len(parts) == 1:
        lo, hi = (year, 1, 1), (year + 1, 1, 1)
    elif len(parts) == 2:
        month = parts[1]
        lo = (year, month, 1)
        hi = (year + 1, 1, 1) if month == 12 else (year, month + 1, 1)
    else:
        month, day = parts[1], parts[2]
        lo = (year, month, day)
        last = calendar.monthrange(year, month)[1]
        if day < last:
            hi = (year, month, day + 1)
        elif month < 12:
            hi = (year, month + 1, 1)
        else:
            hi = (year + 1, 1, 1)
    return _local(*lo), _local(*hi)


def _local(year: int, month: int, day: int) -> float:
    return time.mktime((year, month, day, 0, 0, 0, 0, 0, -1))


def min_size(value: str) -> tuple[int, int, int]:
    """(pixels, long side, short side) a photo needs for a canonical ``min:`` value."""
    m = _PIXELS.fullmatch(value)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        return a * b, max(a, b), min(a, b)
    m = _MEGAPIXELS.fullmatch(value)
    assert m is not None, value
    return round(float(m.group(1)) * 1_000_000), 0, 0


def _date_value(raw: str, key: FilterKey, text: str, column: int) -> str:
    m = _DATE.fullmatch(raw)
    if m is None or (key == FilterKey.YEAR and m.group(2)):
        shapes = "a year like 2023" if key == FilterKey.YEAR else "a date like 2024, 2024-06 or 2024-06-15"
        raise QueryError(f"{key}: expects {shapes}", text, column)
    year = int(m.group(1))
    if not 1800 <= year <= 2999:
        raise QueryError(f"{key}: year {year} is out of range", text, column)
    out = f"{year:04d}"
    if m.group(2):
        month = int(m.group(2))
        if not 1 <= month <= 12:
            raise QueryError(f"{key}: month {m.group(2)} is out of range", text, column + 5)
        out += f"-{month:02d}"
        if m.group(3):
            day = int(m.group(3))
            if not 1 <= day <= calendar.monthrange(year, month)[1]:
                raise QueryError(f"{key}: day {m.group(3)} is not in that month", text, column + 6 + len(m.group(2)))
            out += f"-{day:02d}"
    return out


def _kind_value(raw: str, text: str, column: int) -> str:
    names: list[str] = []
    offset = 0
    for part in re.split(r"[,|]", raw):
        name = _KIND_ALIASES.get(part.lower().lstrip("."))
        if name is None:
            known = ", ".join(KINDS)
            raise QueryError(f"kind: unknown kind {_shorten(part)!r} (known: {known})", text, column + offset)
        if name not in names:
            names.append(name)
        offset += len(part) + 1
    return ",".join(names)


def _tag_value(raw: str, text: str, column: int) -> str:
    """A tag's name, lower case: one of the vocabulary or a user's own tag (``tag:windmill``,
    ``tag:"my bike"``); a name no tag has is told where the library is at hand
    (:func:`lookalike.core.search.browse.allowed_ids`)."""
    name = " ".join(raw.split()).lower()
    if not name or len(name) > 80:
        raise QueryError(f"tag: expects a tag's name (at most 80 characters), not {_shorten(raw)!r}", text, column)
    return name


def _filter_value(key: FilterKey, raw: str, base_dir: Path | None, text: str, column: int) -> str:
    """The canonical value of ``key:raw``, or a QueryError pointing into the value."""
    if key in (FilterKey.AFTER, FilterKey.BEFORE, FilterKey.YEAR):
        return _date_value(raw, key, text, column)
    if key == FilterKey.IN:
        return _absolute(raw, base_dir, text, column)
    if key == FilterKey.KIND:
        return _kind_value(raw, text, column)
    if key == FilterKey.SHAPE:
        try:
            return Shape(raw.lower()).value
        except ValueError:
            raise QueryError(
                f"shape: expects portrait, landscape or square, not {_shorten(raw)!r}", text, column
            ) from None
    if key == FilterKey.MIN:
        m = _MEGAPIXELS.fullmatch(raw)
        if m is not None:
            mp = float(m.group(1))
            if not 0 < mp <= 10_000:
                raise QueryError("min: the size must be above 0 and at most 10000mp", text, column)
            return f"{_render_weight(mp)}mp"
        m = _PIXELS.fullmatch(raw)
        if m is not None and int(m.group(1)) > 0 and int(m.group(2)) > 0:
            return f"{int(m.group(1))}x{int(m.group(2))}"
        raise QueryError("min: expects a size like 2mp or 1920x1080", text, column)
    if key == FilterKey.TEXT:
        return _text_value(raw, text, column)
    return _tag_value(raw, text, column)


def _text_value(raw: str, text: str, column: int) -> str:
    from lookalike.core.text.ocr import normalise

    value = " ".join(raw.split())
    if not normalise(value.rstrip("*")):
        raise QueryError(f"text: expects words to look for, not {_shorten(raw)!r}", text, column)
    return value


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


def _existing_file(raw: _Raw, base_dir: Path | None, text: str) -> str:
    path = _absolute(raw.value, base_dir, text, raw.body_column)
    if not _is_file(path):
        if _exists(path):
            raise QueryError(f"not a file: {raw.value}", text, raw.body_column)
        raise QueryError(f"no such file: {raw.value}", text, raw.body_column)
    return path


def _image(raw: _Raw, base_dir: Path | None, text: str) -> Term:
    return Term("image", _existing_file(raw, base_dir, text), raw.weight, raw.column)


def _quoted_names_file(value: str, base_dir: Path | None) -> bool:
    try:
        path = value
        if not os.path.isabs(path):
            base = os.fspath(base_dir) if base_dir is not None else os.getcwd()
            path = os.path.join(base, path)
        return _is_file(path)
    except (OSError, ValueError):
        return False


def _readable_text(value: str, source: str, column: int) -> None:
    """QueryError at the first character of ``value`` that is no text: a byte of the command
    line that is not UTF-8 (Python keeps it as a lone surrogate, which no model can read)."""
    bad = next((i for i, ch in enumerate(value) if "\ud800" <= ch <= "\udfff"), None)
    if bad is None:
        return
    at = source.find(value[bad], column)
    raise QueryError(
        "the query has a byte that is not UTF-8 text; type the words again, or give a photo by its path",
        source,
        at if at >= 0 else column,
    )


def parse(text: str, *, base_dir: Path | None = None) -> Query:
    """Parse a query (see the module's docstring for the language).

    Relative image paths are resolved against ``base_dir`` (default: the
    current folder) and stored absolute. Raises :class:`QueryError` for any
    problem, and nothing else for any string.
    """
    raws, raw_filters = _Lexer(text).run()
    terms: list[Term] = []
    for raw in raws:
        if raw.kind == "text":
            _readable_text(raw.value, text, raw.column)
            terms.append(Term("text", raw.value, raw.weight, raw.column))
        elif raw.kind in ("person", "concept"):
            terms.append(Term(raw.kind, raw.value, raw.weight, raw.column))
        elif raw.kind == "face":
            terms.append(Term("face", _existing_file(raw, base_dir, text), raw.weight, raw.column))
        elif raw.kind == "path" or raw.value.startswith(_PATH_PREFIXES) or _quoted_names_file(raw.value, base_dir):
            terms.append(_image(raw, base_dir, text))
        else:
            _readable_text(raw.value, text, raw.column)
            terms.append(Term("text", raw.value, raw.weight, raw.column))
    filters: list[Filter] = []
    for rf in raw_filters:
        value = _filter_value(rf.key, rf.value, base_dir, text, rf.value_column)
        item = Filter(rf.key, value, rf.column, rf.exclude)
        if item not in filters:
            filters.append(item)
    return Query(tuple(terms), text, tuple(filters))
