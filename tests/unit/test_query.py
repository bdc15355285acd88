"""The query language: parsing, errors with columns, canonical text, embedding."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lookalike.core.errors import QueryError
from lookalike.core.search.embed import embed
from lookalike.core.search.model import MAX_QUERY_LENGTH, MAX_TERMS, Query, Term
from lookalike.core.search.parse import parse

ROOT = Path(__file__).resolve().parents[2]

# The autouse fixture in conftest only sets environment variables, so sharing
# it across examples is harmless. The deadline is a generous guard against
# pathological (e.g. quadratic) behaviour, not a timing assertion.
FUZZ = settings(
    max_examples=400,
    deadline=timedelta(seconds=1),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def shape(query: Query) -> list[tuple[str, str, float, int]]:
    return [(t.kind, t.value, t.weight, t.column) for t in query.terms]


def fail(text: str, **kwargs) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse(text, **kwargs)
    err = info.value
    assert 0 <= err.column <= len(text)
    assert err.query == text
    return err


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory) -> Path:
    """A folder with nothing in it: no quoted text can name a file there."""
    return tmp_path_factory.mktemp("empty")


@pytest.fixture
def pics(tmp_path) -> Path:
    folder = tmp_path / "pics"
    (folder / "sub dir").mkdir(parents=True)
    for name in ("me.jpg", "my photo.jpg", "t-shirt.png", "a+b.jpg", "photo - copy.jpg"):
        (folder / name).write_bytes(b"not really a jpeg")
    (folder / "sub dir" / "x.jpg").write_bytes(b"x")
    return folder


# ----------------------------------------------------------------- text terms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dog", [("text", "dog", 1.0, 0)]),
        ("a dog on a beach", [("text", "a dog on a beach", 1.0, 0)]),
        ("   a dog \t on a beach  ", [("text", "a dog \t on a beach", 1.0, 3)]),
        ("dog + city", [("text", "dog", 1.0, 0), ("text", "city", 1.0, 6)]),
        ("haircut - man", [("text", "haircut", 1.0, 0), ("text", "man", -1.0, 10)]),
        ("dog -cat", [("text", "dog", 1.0, 0), ("text", "cat", -1.0, 5)]),
        ("dog- cat", [("text", "dog", 1.0, 0), ("text", "cat", -1.0, 5)]),
        ("dog\n-\ncat", [("text", "dog", 1.0, 0), ("text", "cat", -1.0, 6)]),
        # a sign glued to non-space characters on both sides is part of the text
        ("t-shirt", [("text", "t-shirt", 1.0, 0)]),
        ("black-and-white photo", [("text", "black-and-white photo", 1.0, 0)]),
        ("e-mail+fax", [("text", "e-mail+fax", 1.0, 0)]),
        ("x-ray - t-shirt", [("text", "x-ray", 1.0, 0), ("text", "t-shirt", -1.0, 8)]),
        (
            "black-and-white photo -people",
            [("text", "black-and-white photo", 1.0, 0), ("text", "people", -1.0, 23)],
        ),
        ("2-3 kids", [("text", "2-3 kids", 1.0, 0)]),
        # a sign with a space after it separates even when glued before it
        ("C++ code", [("text", "C+", 1.0, 0), ("text", "code", 1.0, 4)]),
        # leading signs
        ("-dog", [("text", "dog", -1.0, 1)]),
        ("- dog", [("text", "dog", -1.0, 2)]),
        ("+dog", [("text", "dog", 1.0, 1)]),
        ("  -  dog + cat", [("text", "dog", -1.0, 5), ("text", "cat", 1.0, 11)]),
        # quote characters inside free text are ordinary characters
        ("don't panic", [("text", "don't panic", 1.0, 0)]),
        ('a "dog" here', [("text", 'a "dog" here', 1.0, 0)]),
        ("rock'n'roll", [("text", "rock'n'roll", 1.0, 0)]),
        ("AC/DC", [("text", "AC/DC", 1.0, 0)]),
        ("~ tilde", [("text", "~ tilde", 1.0, 0)]),
        ("café – naïve", [("text", "café – naïve", 1.0, 0)]),
    ],
)
def test_text_terms(text, expected):
    q = parse(text)
    assert shape(q) == expected
    assert q.source == text
    assert q.has_text and not q.has_image and not q.is_empty


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"t-shirt"', [("text", "t-shirt", 1.0, 0)]),
        ("'t-shirt'", [("text", "t-shirt", 1.0, 0)]),
        ('"a - b + c"', [("text", "a - b + c", 1.0, 0)]),
        ('"C++"', [("text", "C++", 1.0, 0)]),
        ('"2*x"', [("text", "2*x", 1.0, 0)]),
        ('"  padded "', [("text", "  padded ", 1.0, 0)]),
        (r'"say \"cheese\""', [("text", 'say "cheese"', 1.0, 0)]),
        (r"'it\'s'", [("text", "it's", 1.0, 0)]),
        ("'say \"hi\"'", [("text", 'say "hi"', 1.0, 0)]),
        (r'"back\\slash"', [("text", "back\\slash", 1.0, 0)]),
        (r'"C:\Users\me"', [("text", r"C:\Users\me", 1.0, 0)]),
        ('"dog"-"cat"', [("text", "dog", 1.0, 0), ("text", "cat", -1.0, 6)]),
        ('"dog"+cat', [("text", "dog", 1.0, 0), ("text", "cat", 1.0, 6)]),
        ('dog - "t-shirt" + x', [("text", "dog", 1.0, 0), ("text", "t-shirt", -1.0, 6), ("text", "x", 1.0, 18)]),
        ('-"dog"', [("text", "dog", -1.0, 1)]),
    ],
)
def test_quoted_terms(text, expected, empty_dir):
    assert shape(parse(text, base_dir=empty_dir)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2*dog", [("text", "dog", 2.0, 0)]),
        ("0.5 * dog", [("text", "dog", 0.5, 0)]),
        ("1e-1*dog", [("text", "dog", 0.1, 0)]),
        ("2.5E+1 *dog", [("text", "dog", 25.0, 0)]),
        (".5*dog", [("text", "dog", 0.5, 0)]),
        ("3.*dog", [("text", "dog", 3.0, 0)]),
        ("2 dogs", [("text", "2 dogs", 1.0, 0)]),
        ("2*beach - 0.5 * crowd", [("text", "beach", 2.0, 0), ("text", "crowd", -0.5, 10)]),
        ("-2*dog", [("text", "dog", -2.0, 1)]),
        ("dog - 3 * cat", [("text", "dog", 1.0, 0), ("text", "cat", -3.0, 6)]),
        ("dog -1e-1*cat", [("text", "dog", 1.0, 0), ("text", "cat", -0.1, 5)]),
        ('2*"t-shirt"', [("text", "t-shirt", 2.0, 0)]),
        ("100*dog - 100*cat", [("text", "dog", 100.0, 0), ("text", "cat", -100.0, 10)]),
        ("1e-300*dog", [("text", "dog", 1e-300, 0)]),
    ],
)
def test_weights(text, expected):
    assert shape(parse(text)) == expected


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "reason", "column"),
    [
        ("", "empty query", 0),
        ("   \t\n", "empty query", 0),
        ("+", "expected a term after '+'", 1),
        ("-", "expected a term after '-'", 1),
        ("dog +", "expected a term after '+'", 5),
        ("dog -   ", "expected a term after '-'", 8),
        ("dog + + cat", "expected a term after '+'", 6),
        ("dog + -cat", "expected a term after '+'", 6),
        ("-+dog", "expected a term after '-'", 1),
        ("dog-", "expected a term after '-'", 4),
        ("C++", "expected a term after '+'", 3),
        ('"dog', "unclosed quote", 0),
        ("dog + 'cat", "unclosed quote", 6),
        (r'"dog\"', "unclosed quote", 0),
        ('"dog" cat', "expected '+' or '-' after the quoted text", 6),
        ('"a""b"', "expected '+' or '-' after the quoted text", 3),
        ('""', "empty quoted text", 0),
        ("dog + '  '", "empty quoted text", 6),
        ("2*", "expected a term after '*'", 2),
        ("dog + 2 *  ", "expected a term after '*'", 11),
        ("2*-dog", "expected a term after '*'", 2),
        ("2 * + dog", "expected a term after '*'", 4),
        ("abc*dog", "weight must be a number", 0),
        ("dog + x2 * cat", "weight must be a number", 6),
        ("a dog * 2", "weight must be a number", 0),
        ("inf*dog", "weight must be a number", 0),
        ("nan*dog", "weight must be a number", 0),
        ("*dog", "expected a weight before '*'", 0),
        ("dog + * cat", "expected a weight before '*'", 6),
        ("2*3*dog", "a term takes only one weight", 3),
        ("1e400*dog", "weight 1e400 is not finite", 0),
        ("dog - 1e999 * cat", "weight 1e999 is not finite", 6),
        ("0*dog", "a weight of 0 removes the term", 0),
        ("dog - 0.0*cat", "a weight of 0 removes the term", 6),
        ("1e-400*dog", "a weight of 0 removes the term", 0),
        ("101*dog", "weight 101 is outside [-100, 100]", 0),
        ("dog - 100.5*cat", "weight -100.5 is outside [-100, 100]", 6),
    ],
)
def test_errors(text, reason, column):
    err = fail(text)
    assert err.reason == reason
    assert err.column == column
    assert f"(at column {column + 1})" in str(err)


def test_long_weights_are_shortened_in_messages():
    err = fail("1" * 500 + "*dog")
    assert err.reason == "weight " + "1" * 23 + "\u2026 is not finite"


def test_error_caret_points_at_the_column():
    err = fail("dog + + cat")
    assert err.caret() == "dog + + cat\n      ^"


def test_length_limit():
    ok = "a" * MAX_QUERY_LENGTH
    assert parse(ok).terms[0].value == ok
    err = fail("a" * (MAX_QUERY_LENGTH + 1))
    assert "longer than 10000 characters" in err.reason
    assert err.column == MAX_QUERY_LENGTH


def test_term_limit():
    words = [f"w{i}" for i in range(MAX_TERMS)]
    q = parse(" + ".join(words))
    assert [t.value for t in q.terms] == words
    text = " + ".join(words + ["extra"])
    err = fail(text)
    assert err.reason == "more than 64 terms"
    assert err.column == text.index("extra")
    with pytest.raises(QueryError, match="more than 64 terms"):
        q.with_term(Term("text", "extra", 1.0))


@pytest.mark.parametrize(
    "text",
    [
        "a-" * 4999 + "a",  # 10,000 characters, one term full of glued signs
        '"' + '\\"' * 4999 + '"',
        "'" * 10_000,
        "1" * 9_998 + "*x",
        " - ".join(["x"] * 64) + " " * (10_000 - 64 * 4 + 3),
        "*" * 10_000,
        "./" * 5_000,
    ],
)
def test_adversarial_input_fails_or_parses_cleanly(text):
    assert len(text) <= MAX_QUERY_LENGTH
    try:
        q = parse(text)
    except QueryError as err:
        assert 0 <= err.column <= len(text)
    else:
        assert 1 <= len(q.terms) <= MAX_TERMS


# ----------------------------------------------------------------- image terms


def test_relative_paths_resolve_against_base_dir(pics):
    q = parse("./me.jpg + dog - ../pics/t-shirt.png", base_dir=pics)
    assert shape(q) == [
        ("image", str(pics / "me.jpg"), 1.0, 0),
        ("text", "dog", 1.0, 11),
        ("image", str(pics / "t-shirt.png"), -1.0, 17),
    ]
    assert q.has_image and q.has_text


def test_relative_paths_default_to_the_current_folder(pics, monkeypatch):
    monkeypatch.chdir(pics)
    assert parse("./me.jpg").terms[0].value == str(pics / "me.jpg")


def test_paths_are_stored_absolute_and_normalised(pics):
    q = parse("./sub dir/../me.jpg", base_dir=pics / "sub dir" / "..")
    assert q.terms[0].value == str(pics / "me.jpg")
    assert os.path.isabs(q.terms[0].value)


def test_absolute_path(pics):
    path = pics / "me.jpg"
    q = parse(f"{path} - 0.5*{path}")
    assert shape(q) == [("image", str(path), 1.0, 0), ("image", str(path), -0.5, len(str(path)) + 3)]


def test_home_expansion(pics, monkeypatch):
    monkeypatch.setenv("HOME", str(pics))
    q = parse("~/me.jpg + 2*'~/my photo.jpg'")
    assert shape(q) == [
        ("image", str(pics / "me.jpg"), 1.0, 0),
        ("image", str(pics / "my photo.jpg"), 2.0, 11),
    ]


def test_paths_with_spaces(pics):
    # unquoted: the path runs to the next separating sign, like free text
    q = parse("./my photo.jpg + dog", base_dir=pics)
    assert shape(q) == [("image", str(pics / "my photo.jpg"), 1.0, 0), ("text", "dog", 1.0, 17)]
    q = parse('dog - "./my photo.jpg"', base_dir=pics)
    assert q.terms[1] == Term("image", str(pics / "my photo.jpg"), -1.0)
    q = parse("'./photo - copy.jpg'", base_dir=pics)
    assert q.terms[0].value == str(pics / "photo - copy.jpg")
    q = parse("./sub dir/x.jpg", base_dir=pics)
    assert q.terms[0].value == str(pics / "sub dir" / "x.jpg")


def test_signs_glued_inside_paths_are_part_of_the_path(pics):
    q = parse("./t-shirt.png - ./a+b.jpg", base_dir=pics)
    assert [t.value for t in q.terms] == [str(pics / "t-shirt.png"), str(pics / "a+b.jpg")]


def test_quoted_existing_file_is_an_image(pics):
    q = parse('"my photo.jpg" - "me.jpg" + "nothing here"', base_dir=pics)
    assert shape(q) == [
        ("image", str(pics / "my photo.jpg"), 1.0, 0),
        ("image", str(pics / "me.jpg"), -1.0, 17),
        ("text", "nothing here", 1.0, 28),
    ]


def test_unquoted_file_name_without_prefix_is_text(pics):
    assert shape(parse("me.jpg", base_dir=pics)) == [("text", "me.jpg", 1.0, 0)]


@pytest.mark.parametrize(
    ("text", "reason", "column"),
    [
        ("./nope.jpg", "no such file: ./nope.jpg", 0),
        ("dog - ./nope.jpg", "no such file: ./nope.jpg", 6),
        ("dog + 2 * ./nope.jpg", "no such file: ./nope.jpg", 10),
        ("./photo - copy.jpg", "no such file: ./photo", 0),  # must be quoted
        ("dog + '../nope.jpg'", "no such file: ../nope.jpg", 6),
        ("~/nope.jpg", "no such file: ~/nope.jpg", 0),
        ("/definitely/not/here.jpg", "no such file: /definitely/not/here.jpg", 0),
        ("./sub dir", "not a file: ./sub dir", 0),
        ("dog + /", "not a file: /", 6),
        ("./me.jpg\x00", "no such file: ./me.jpg\x00", 0),
        ("./" + "x" * 5000, "no such file: ./" + "x" * 5000, 0),
        ("./\ud800.jpg", "no such file: ./\ud800.jpg", 0),
    ],
)
def test_image_errors(pics, monkeypatch, text, reason, column):
    monkeypatch.setenv("HOME", str(pics))
    err = fail(text, base_dir=pics)
    assert err.reason == reason
    assert err.column == column


def test_syntax_errors_are_reported_without_touching_files(tmp_path):
    err = fail("./nope.jpg + + x", base_dir=tmp_path)
    assert err.reason == "expected a term after '+'"


# --------------------------------------------------------- the Query object


def test_query_equality_ignores_columns_and_source():
    assert parse("dog   +   cat") == parse("dog + cat")
    assert parse("dog + cat") == Query((Term("text", "dog", 1.0), Term("text", "cat", 1.0)))
    assert parse("dog + cat") != parse("cat + dog")
    assert hash(parse("2*dog")) == hash(parse(" 2 * dog"))


def test_with_term(pics):
    q = parse("beach")
    chip = Term("image", str(pics / "my photo.jpg"), -0.5)
    q2 = q.with_term(chip)
    assert q.terms == (Term("text", "beach", 1.0),)  # unchanged
    assert q2.terms == (Term("text", "beach", 1.0), chip)
    assert q2.source == str(q2)
    assert parse(q2.source) == q2
    assert Query(()).with_term(chip).terms == (chip,)


def test_empty_query_object():
    q = Query(())
    assert q.is_empty and not q.has_text and not q.has_image
    assert str(q) == ""


def test_terms_are_frozen():
    t = Term("text", "dog", 1.0)
    with pytest.raises(AttributeError):
        t.weight = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("dog", "dog"),
        ("  dog   +city", "dog + city"),
        ("-dog", "-dog"),
        ("- 2 * dog + 0.5*cat", "-2*dog + 0.5*cat"),
        ("1e-1 * dog", "0.1*dog"),
        ("dog -1.0*cat", "dog - cat"),
        ('"t-shirt"', "t-shirt"),
        ('"a - b"', '"a - b"'),
        ("'C++'", '"C++"'),
        ("' padded'", '" padded"'),
        ("'say \"hi\"'", 'say "hi"'),
        ("\"'quoted'\"", "\"'quoted'\""),
        ('"2*x"', '"2*x"'),
        ('"x-"', '"x-"'),
        ('"-x"', '"-x"'),
        (r'"a\\b"', "a\\b"),
        ("don't", "don't"),
    ],
)
def test_canonical_text(text, canonical, empty_dir):
    q = parse(text, base_dir=empty_dir)
    assert str(q) == canonical
    assert parse(canonical, base_dir=empty_dir) == q


def test_canonical_text_of_paths(pics):
    q = parse("./me.jpg - 2*'photo - copy.jpg' + './my photo.jpg' + ./a+b.jpg", base_dir=pics)
    text = str(q)
    assert text == (f'{pics}/me.jpg - 2*"{pics}/photo - copy.jpg" + {pics}/my photo.jpg + {pics}/a+b.jpg')
    elsewhere = pics / "sub dir"
    assert parse(text, base_dir=elsewhere).terms == q.terms


# ------------------------------------------------------------------ fuzzing

grammar_chars = st.text(alphabet=" \t-+*\"'\\./~0123456789eE.abcxyz", max_size=80)


@FUZZ
@given(st.one_of(st.text(), grammar_chars))
@example("dog - \\")
@example("'\\'")
@example('2*""')
@example("-\n-")
@example("0e0*x")
@example(".e1*x")
@example("\x00")
@example("\ud800 - x")
def test_parse_never_raises_anything_but_query_error(empty_dir, text):
    try:
        q = parse(text, base_dir=empty_dir)
    except QueryError as err:
        assert 0 <= err.column <= len(text)
        assert err.reason
        return
    assert len(q.terms) + len(q.filters) >= 1
    assert len(q.terms) <= MAX_TERMS
    for term in q.terms:
        assert term.kind in ("text", "image", "person", "face", "concept")
        assert term.value.strip()
        assert math.isfinite(term.weight) and 0 < abs(term.weight) <= 100
        assert 0 <= term.column < len(text)
    for item in q.filters:
        assert 0 <= item.column < len(text)
    # the canonical text reads back as the same terms and filters
    again = parse(str(q), base_dir=empty_dir)
    assert again.terms == q.terms
    assert again.filters == q.filters


term_values = st.text(min_size=1, max_size=30).filter(
    lambda v: v.strip() and not v.startswith(("./", "../", "~/", "/"))
)
weights = st.floats(min_value=-100, max_value=100, allow_nan=False).filter(lambda w: w != 0)


@FUZZ
@given(st.lists(st.tuples(term_values, weights), min_size=1, max_size=8))
def test_any_text_terms_round_trip(empty_dir, items):
    q = Query(tuple(Term("text", value, weight) for value, weight in items))
    again = parse(str(q), base_dir=empty_dir)
    assert again.terms == q.terms


# ------------------------------------------------------------------ embedding

VOCAB = {
    "cat": [1.0, 0.0, 0.0, 0.0],
    "dog": [0.0, 1.0, 0.0, 0.0],
    "beach": [0.0, 0.0, 3.0, 4.0],  # not unit: embed must normalise each term
    "city": [0.0, 0.0, 0.0, 2.0],
    "void": [0.0, 0.0, 0.0, 0.0],
}


class FakeEncoder:
    def __init__(self, images: dict[str, list[float]] | None = None) -> None:
        self.images = images or {}
        self.text_calls: list[list[str]] = []
        self.image_calls: list[Path] = []

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.text_calls.append(list(texts))
        return np.array([VOCAB[t] for t in texts], dtype=np.float32)

    def encode_image_path(self, path: Path) -> np.ndarray:
        assert isinstance(path, Path)
        self.image_calls.append(path)
        return np.array(self.images[path.name], dtype=np.float32)

    def __call__(self, query: Query) -> np.ndarray:
        return embed(query, self.encode_texts, self.encode_image_path)


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dog", [0, 1, 0, 0]),
        ("-dog", [0, -1, 0, 0]),
        ("cat + dog", unit([1, 1, 0, 0])),
        ("2*cat - dog", unit([2, -1, 0, 0])),
        ("cat - 0.5*dog + 0.25 * dog", unit([1, -0.25, 0, 0])),
        ("beach", [0, 0, 0.6, 0.8]),
        ("beach + city", unit([0, 0, 0.6, 1.8])),
        ("beach - city", unit([0, 0, 0.6, -0.2])),
        ("0.001*cat + 0.001*dog", unit([1, 1, 0, 0])),
        ("100*cat + 1e-300*dog", [1, 0, 0, 0]),
        ("1e-300*cat + 1e-300*dog", unit([1, 1, 0, 0])),
    ],
)
def test_embed_arithmetic(text, expected):
    vec = FakeEncoder()(parse(text))
    assert vec.dtype == np.float32
    assert vec.shape == (4,)
    np.testing.assert_allclose(vec, expected, atol=1e-6)
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-6)


def test_embed_batches_text_terms_in_one_call():
    enc = FakeEncoder()
    enc(parse("cat + dog - 0.5*cat + beach + dog"))
    assert enc.text_calls == [["cat", "dog", "beach"]]
    assert enc.image_calls == []


def test_embed_images_and_text(pics):
    enc = FakeEncoder({"me.jpg": [0, 0, 10, 0], "t-shirt.png": [[1, 1, 0, 0]]})
    q = parse("2*./me.jpg - dog + 0.5 * ./t-shirt.png", base_dir=pics)
    vec = enc(q)
    np.testing.assert_allclose(
        vec, unit(2 * np.array([0, 0, 1, 0]) - np.array([0, 1, 0, 0]) + 0.5 * unit([1, 1, 0, 0])), atol=1e-6
    )
    assert enc.image_calls == [pics / "me.jpg", pics / "t-shirt.png"]
    assert enc.text_calls == [["dog"]]


def test_embed_image_only_query_calls_no_text_encoder(pics):
    enc = FakeEncoder({"me.jpg": [0, 3, 4, 0]})
    vec = enc(parse("./me.jpg", base_dir=pics))
    np.testing.assert_allclose(vec, [0, 0.6, 0.8, 0], atol=1e-6)
    assert enc.text_calls == []


@pytest.mark.parametrize(
    "text",
    ["cat - cat", "2*cat - 2 * cat", "cat - 0.5*cat - 0.5*cat", "beach - 2*beach + beach", "-cat + 1*cat"],
)
def test_embed_terms_that_cancel_out(text):
    with pytest.raises(QueryError) as info:
        FakeEncoder()(parse(text))
    assert info.value.reason == "the terms cancel out"


def test_embed_image_minus_same_image_cancels(pics):
    enc = FakeEncoder({"me.jpg": [1, 2, 3, 4]})
    with pytest.raises(QueryError, match="the terms cancel out"):
        enc(parse("./me.jpg - ./me.jpg", base_dir=pics))


def test_embed_near_cancellation_still_works():
    vec = FakeEncoder()(parse("cat - 0.99*cat + 0.01*dog"))
    np.testing.assert_allclose(vec, unit([1, 1, 0, 0]), atol=1e-5)


def test_embed_zero_vector_from_encoder_points_at_term():
    with pytest.raises(QueryError) as info:
        FakeEncoder()(parse("cat + void"))
    assert info.value.column == 6
    assert "void" in info.value.reason


def test_embed_empty_query():
    with pytest.raises(QueryError, match="empty query"):
        FakeEncoder()(Query(()))


# --------------------------------------------------------------- importing


def test_module_imports_no_qt_torch_or_numpy():
    code = (
        "import sys; import lookalike.core.search.parse; "
        "bad = [m for m in ('PySide6', 'torch', 'open_clip', 'hnswlib', 'numpy') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "desktop"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == ""


# ------------------------------------------------- people, concepts, filters


def kinds(query: Query) -> list[tuple[str, str, float, int]]:
    return shape(query)


def filt(query: Query) -> list[tuple[str, str, int]]:
    return [(str(f.key), f.value, f.column) for f in query.filters]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@Obama", [("person", "Obama", 1.0, 0)]),
        ('@"Rose Leslie"', [("person", "Rose Leslie", 1.0, 0)]),
        ("@alice + beach", [("person", "alice", 1.0, 0), ("text", "beach", 1.0, 9)]),
        ("@a @b", [("person", "a", 1.0, 0), ("person", "b", 1.0, 3)]),
        ("beach - @bob", [("text", "beach", 1.0, 0), ("person", "bob", -1.0, 8)]),
        ("@alice beach", [("person", "alice", 1.0, 0), ("text", "beach", 1.0, 7)]),
        ("dog @jean-luc", [("text", "dog", 1.0, 0), ("person", "jean-luc", 1.0, 4)]),
        ("#luna", [("concept", "luna", 1.0, 0)]),
        ("#luna + beach", [("concept", "luna", 1.0, 0), ("text", "beach", 1.0, 8)]),
        ("dog - #receipts", [("text", "dog", 1.0, 0), ("concept", "receipts", -1.0, 6)]),
        ("2*#luna - 0.5*cat", [("concept", "luna", 2.0, 0), ("text", "cat", -0.5, 10)]),
        ('#"lake house"', [("concept", "lake house", 1.0, 0)]),
        ('"dog" @bob', [("text", "dog", 1.0, 0), ("person", "bob", 1.0, 6)]),
        # @ and # inside a word, alone, or before a space are text
        ("me@home", [("text", "me@home", 1.0, 0)]),
        ("# hashtag", [("text", "# hashtag", 1.0, 0)]),
        ("dog #", [("text", "dog #", 1.0, 0)]),
    ],
)
def test_person_and_concept_terms(text, expected, empty_dir):
    q = parse(text, base_dir=empty_dir)
    assert kinds(q) == expected
    assert parse(str(q), base_dir=empty_dir) == q


def test_face_term_names_a_photo(pics):
    q = parse("@./me.jpg + beach", base_dir=pics)
    assert kinds(q) == [("face", str(pics / "me.jpg"), 1.0, 0), ("text", "beach", 1.0, 12)]
    q = parse("beach - @'./my photo.jpg'", base_dir=pics)
    assert kinds(q)[1] == ("face", str(pics / "my photo.jpg"), -1.0, 8)
    assert str(q) == f'beach - @"{pics}/my photo.jpg"'
    assert parse(str(q)) == q
    err = fail("@./nope.jpg", base_dir=pics)
    assert (err.reason, err.column) == ("no such file: ./nope.jpg", 1)


@pytest.mark.parametrize(
    ("text", "terms", "filters"),
    [
        ("year:2023", [], [("year", "2023", 0)]),
        ("beach after:2024-06", [("text", "beach", 1.0, 0)], [("after", "2024-06", 6)]),
        ("before:2025 dog", [("text", "dog", 1.0, 12)], [("before", "2025", 0)]),
        ("dog year:2023 on grass", [("text", "dog on grass", 1.0, 0)], [("year", "2023", 4)]),
        ("after:2024-6-1", [], [("after", "2024-06-01", 0)]),
        ("kind:png", [], [("kind", "png", 0)]),
        ("kind:JPG|heif", [], [("kind", "jpeg,heic", 0)]),
        ("shape:Portrait", [], [("shape", "portrait", 0)]),
        ("min:2mp", [], [("min", "2mp", 0)]),
        ("min:0.5MP", [], [("min", "0.5mp", 0)]),
        ("min:1920x1080", [], [("min", "1920x1080", 0)]),
        ("tag:Beach", [], [("tag", "beach", 0)]),
        ("Year:2023", [], [("year", "2023", 0)]),
        ("dog + year:2023", [("text", "dog", 1.0, 0)], [("year", "2023", 6)]),
        ("year:2023 + dog", [("text", "dog", 1.0, 12)], [("year", "2023", 0)]),
        ('"t-shirt" kind:png', [("text", "t-shirt", 1.0, 0)], [("kind", "png", 10)]),
        ("#luna year:2024 - @bob", [("concept", "luna", 1.0, 0), ("person", "bob", -1.0, 18)], [("year", "2024", 6)]),
        ("year:2023 year:2023", [], [("year", "2023", 0)]),  # the same filter twice is one
        # a key must begin a word and be followed by a known key
        ("ayear:2023", [("text", "ayear:2023", 1.0, 0)], []),
        ("note:x", [("text", "note:x", 1.0, 0)], []),
        ('"year:2023"', [("text", "year:2023", 1.0, 0)], []),
    ],
)
def test_filters(text, terms, filters, empty_dir):
    q = parse(text, base_dir=empty_dir)
    assert kinds(q) == terms
    assert filt(q) == filters
    again = parse(str(q), base_dir=empty_dir)
    assert again == q and again.filters == q.filters


def test_in_filter_resolves_folders(pics, monkeypatch):
    monkeypatch.setenv("HOME", str(pics))
    q = parse("in:~/sub dog", base_dir=pics)
    assert q.filters[0].value == str(pics / "sub")
    q = parse('in:"./sub dir" + dog', base_dir=pics)
    assert q.filters[0].value == str(pics / "sub dir")
    assert str(q) == f'dog in:"{pics}/sub dir"'
    assert parse(str(q)) == q


def test_browse_queries():
    assert parse("year:2023").is_browse
    assert parse("@alice").is_browse
    assert parse("year:2023 - #receipts").is_browse
    assert not parse("#luna").is_browse
    assert not parse("dog year:2023").is_browse
    assert not parse("-dog").is_browse


@pytest.mark.parametrize(
    ("text", "reason", "column"),
    [
        ("after:2024-13", "after: month 13 is out of range", 11),
        ("beach before:2025-02-30", "before: day 30 is not in that month", 21),
        ("year:23", "year: expects a year like 2023", 5),
        ("year:2023-06", "year: expects a year like 2023", 5),
        ("after:june", "after: expects a date like 2024, 2024-06 or 2024-06-15", 6),
        ("after:0999", "after: year 999 is out of range", 6),
        ("dog kind:pngg", "kind: unknown kind 'pngg' (known: jpeg, png, heic, webp, gif, tiff, bmp, avif)", 9),
        ("kind:png,raw", "kind: unknown kind 'raw' (known: jpeg, png, heic, webp, gif, tiff, bmp, avif)", 9),
        ("shape:round", "shape: expects portrait, landscape or square, not 'round'", 6),
        ("min:2", "min: expects a size like 2mp or 1920x1080", 4),
        ("min:0mp", "min: the size must be above 0 and at most 10000mp", 4),
        ("dog year:", "expected a value after 'year:'", 9),
        ("year: 2023", "expected a value after 'year:'", 5),
        ("dog - year:2023", "a filter cannot be subtracted", 4),
        ("2*year:2023", "a filter takes no weight", 0),
        ("2*@bob", "a person takes no weight", 0),
        ('in:"~/a', "unclosed quote", 3),
        ('in:"a"b', "expected a space or a sign after the quoted value", 6),
        ('@""', "empty quoted name", 1),
        ("dog +", "expected a term after '+'", 5),
        ("year:2023 +", "expected a term after '+'", 11),
    ],
)
def test_filter_errors_point_at_their_column(text, reason, column, empty_dir):
    err = fail(text, base_dir=empty_dir)
    assert err.reason == reason
    assert err.column == column


def test_with_filter_and_without():
    from lookalike.core.search.model import Filter, FilterKey

    q = parse("dog")
    chip = Filter(FilterKey.YEAR, "2023")
    q2 = q.with_filter(chip)
    assert q2.filters == (chip,) and q.filters == ()
    assert q2.source == "dog year:2023" and parse(q2.source) == q2
    assert q2.with_filter(chip) == q2
    assert q2.without_filter(chip) == q


def test_date_spans_are_local_calendar_periods():
    import time as _time

    from lookalike.core.search.parse import date_span

    lo, hi = date_span("2024-02")
    assert _time.localtime(lo)[:3] == (2024, 2, 1) and _time.localtime(hi)[:3] == (2024, 3, 1)
    lo, hi = date_span("2023-12-31")
    assert _time.localtime(hi)[:3] == (2024, 1, 1)
    lo, hi = date_span("2023")
    assert _time.localtime(lo)[:3] == (2023, 1, 1) and _time.localtime(hi)[:3] == (2024, 1, 1)


filter_chars = st.text(alphabet=" \t-+*\"'./~0123456789@#:abcxyeinmgptr", max_size=60)


@FUZZ
@given(st.one_of(filter_chars, st.lists(st.sampled_from(
    ["year:2023", "after:2024-06", "in:./x", "kind:png", "tag:dog", "@bob", "#luna", "dog", "-", "+", "2*", '"a b"',
     "@'c d'", "min:2mp", "shape:square", " "]), max_size=8).map(" ".join)))  # fmt: skip
def test_filters_and_marks_parse_cleanly_or_fail_with_a_column(empty_dir, text):
    try:
        q = parse(text, base_dir=empty_dir)
    except QueryError as err:
        assert 0 <= err.column <= len(text)
        return
    assert parse(str(q), base_dir=empty_dir) == q
    assert parse(str(q), base_dir=empty_dir).filters == q.filters


def test_embed_adds_concepts_and_skips_people():
    enc = FakeEncoder()
    directions = {"luna": np.array([0.0, 0.0, 1.0, 0.0])}
    q = parse("#luna + dog - #receipts - @bob year:2023")
    got = embed(q, enc.encode_texts, enc.encode_image_path, lambda t: directions[t.value])
    assert np.allclose(got, unit([0, 1, 1, 0]))
    with pytest.raises(QueryError, match="empty query"):
        embed(parse("@bob year:2023"), enc.encode_texts, enc.encode_image_path)
