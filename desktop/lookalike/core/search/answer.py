"""Which results of a search match: the answer set, each result with a confidence 0-1.

A search ranks every photo; the answer says which of them are what was asked
for, and says so plainly when none is. Two rules, by what the model can tell:

**Kinds the offline model knows** (a text query naming ImageNet kinds).
    The offline model's stored vectors keep EfficientNet-Lite0's pooled
    features, so its classifier gives each photo's probability of each of the
    1000 ImageNet classes (:func:`lookalike.core.learning.tags.imagenet_probabilities`).
    A query's words are read as ImageNet classes (:func:`imagenet_classes`):
    WordNet 3.0's hyponym hierarchy ("food" -> pizza, cheeseburger...;
    "vehicles" -> cars, boats, planes; the file ``resources/imagenet_words.json``,
    derived by ``tools/imagenet_words.py``), the tag vocabulary's own classes
    (``tags.IMAGENET_TAGS``) for its words, else the class names MiniLM puts
    next to the query (cosine at least :data:`NAME_SIMILARITY`). A photo's
    evidence is the summed probability of those classes; the ranked candidates
    are ordered by it, and its confidence is a logistic curve of that sum
    (:data:`CLASS_CURVE`), **fitted** on labelled real photos by ``lookalike
    bench --only relevance`` (:mod:`lookalike.bench.relevance`). A result
    matches when its confidence is at least one half.
    A text query the offline model cannot read as any kind ("a sunset", "a
    happy moment") has no matches: :data:`OFFLINE_UNKNOWN` says why.

**Everything else** (image queries, arithmetic, ``#concepts``, CLIP, ResNet).
    Matches are the tail that stands out from the query's own score
    distribution over the library: a fixed sample of the library's vectors
    (:data:`BACKGROUND` photos) scored by the query gives the background's
    median and spread (MAD); a result's standing is ``z = (score - median) /
    spread``. A photo standing above what the largest of the library's
    background photos would reach by chance (``sqrt(2 ln n)`` spreads, the
    expected maximum of ``n`` normal scores, plus :data:`TAIL_MARGIN`) matches;
    a query whose best result does not stand out has no matches. Among the
    results above that line, the matches end at the widest drop between
    consecutive scores (at least :data:`TAIL_GAP` spreads): an original and its
    copies stand apart from photos that merely look alike. The confidence is a
    logistic curve of the distance from that edge, in spreads
    (:data:`TAIL_SLOPE`). The rule is **not fitted** to any model's scores by
    regression: it holds from the distribution alone, so it applies to CLIP,
    whose real weights are not on this machine. Its constants were chosen by
    looking at the offline model's image queries (``TAIL_GAP`` 1 against 2-4:
    docs/search.md), so the image-query figures are not held out.

**Filters alone, people** (``year:2023``, ``tag:dog``, ``@alice``): the photos
the query chooses are its answer (confidence 1).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import weakref
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.engine.results import SearchResult

log = logging.getLogger(__name__)

WORDS_FILE = Path(__file__).resolve().parents[2] / "resources" / "imagenet_words.json"

#: Library photos scored to learn a query's background (a fixed, evenly spread sample).
BACKGROUND = 1024
#: Spreads above the expected largest background score a match must stand.
TAIL_MARGIN = 1.0
#: The drop between consecutive results, in spreads, that separates the matches from the rest.
TAIL_GAP = 1.0
#: Confidence per spread above (or below) where the matches end: 0.5 there.
TAIL_SLOPE = 1.5
#: Results the answer looks at first, beyond the ``k`` asked for...
FIRST = 50
#: ...and at most, when the last of those still matches...
CANDIDATES = 200
#: ...and those the offline kinds re-rank by their classes' probability: each costs the
#: classifier's 1280 x 1000 product (100 of them: ~8-13 ms on one thread of this busy machine).
KIND_CANDIDATES = 100
#: MiniLM cosine between a query and an ImageNet class name ("a photo of a ox") that reads
#: the query as that class, when no word of it is a WordNet kind.
NAME_SIMILARITY = 0.72
#: confidence = sigmoid(a * logit(p) + b), p the summed probability of the query's classes:
#: fitted by ``lookalike bench --only relevance`` on labelled real photos (see its table).
CLASS_CURVE = (1.009, 0.451)
OFFLINE_UNKNOWN = "no good matches on the offline model; CLIP knows this"

_STOP = {"a", "an", "the", "some", "any", "my", "of", "photo", "photos", "picture", "pictures", "image", "images"}
_LEAD = re.compile(r"^(?:(?:a|an|the|some|my)\s+)?(?:(?:photo|photos|picture|pictures|image|images)\s+of\s+)?")


@dataclass(frozen=True)
class Answer:
    """A search's answer: ``results`` ranked (each with ``match`` and ``confidence``), how
    many match, and a sentence when none does (or why the model cannot tell)."""

    results: list[SearchResult]
    matches: int
    rule: str  # "kinds" (offline ImageNet kinds), "tail" (the score distribution), "chosen" (filters, people)
    note: str = ""
    classes: tuple[int, ...] = ()

    @property
    def matched(self) -> list[SearchResult]:
        return [r for r in self.results if r.match]

    @property
    def weaker(self) -> list[SearchResult]:
        return [r for r in self.results if not r.match]


# -- words -> ImageNet kinds -------------------------------------------------------------------


@lru_cache(maxsize=1)
def _words() -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    try:
        doc = json.loads(WORDS_FILE.read_text("utf-8"))
    except (OSError, ValueError) as exc:  # an installation without the file: the names alone
        log.warning("the offline model's word list cannot be read (%s): %s", WORDS_FILE, exc)
        return {}, {}
    return {w: tuple(c) for w, c in doc["words"].items()}, dict(doc.get("plurals", {}))


def _singulars(word: str) -> list[str]:
    """The word and the singulars it may be a plural of (WordNet's morphology, nouns)."""
    _, plurals = _words()
    out = [word]
    if word in plurals:
        out.append(plurals[word])
    for suffix, repl in (("ies", "y"), ("ves", "f"), ("ves", "fe"), ("ses", "s"), ("xes", "x"), ("ches", "ch"),
                         ("shes", "sh"), ("men", "man"), ("s", "")):  # fmt: skip
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            out.append(word[: -len(suffix)] + repl)
    return out


def _lookup(phrase: str) -> tuple[int, ...]:
    from lookalike.core.learning.tags import IMAGENET_TAGS

    words, _ = _words()
    for form in _singulars(phrase):
        got = set(words.get(form, ()))
        tag = "tools" if form == "tool" else form
        got |= set(IMAGENET_TAGS.get(tag, ()) or IMAGENET_TAGS.get(tag + "s", ()))
        if got:
            return tuple(sorted(got))
    return ()


def imagenet_classes(text: str) -> tuple[int, ...]:
    """The ImageNet-1k classes (classifier indices) a short text names through WordNet and the
    tag vocabulary: the whole phrase ("a sports car", "food", "vehicles"), else its last word
    ("a red car" -> car). Empty when it names none (the caller may still try the class names)."""
    t = re.sub(r"[^\w\s'-]", " ", text.lower()).strip()
    t = re.sub(r"\s+", " ", _LEAD.sub("", t)).strip()
    if not t:
        return ()
    got = _lookup(t)
    if got:
        return got
    parts = [w for w in t.split(" ") if w not in _STOP]
    if len(parts) > 1 and len(parts) <= 3:
        return _lookup(parts[-1])
    return ()


class OfflineKinds:
    """The offline model's classifier and class names, for reading queries as ImageNet kinds."""

    def __init__(self, checksum: str, text_tower) -> None:
        from lookalike.core.encoders import offline
        from lookalike.core.learning.tags import _offline_fc

        self.weight, self.bias = _offline_fc(checksum)
        try:
            raw = np.load(offline.concept_cache_path(checksum), allow_pickle=False).astype(np.float32)
        except FileNotFoundError:  # not on disk here: the loaded encoder has them (or builds them)
            build = getattr(text_tower, "_concept_texts", None)
            if build is None:
                raise
            raw = np.asarray(build(None, None), np.float32)
        self.names = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
        centred = raw - raw.mean(0)  # as the encoder centres them
        self.centred = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
        self._tower = text_tower

    def classes(self, text: str) -> tuple[int, ...]:
        got = imagenet_classes(text)
        if got:
            return got
        model = getattr(self._tower, "_model", None)  # the torch-free tower's MiniLM
        if model is None and hasattr(self._tower, "_minilm"):  # the full encoder's
            model = self._tower._minilm()
        if model is None:
            return ()
        q = np.asarray(model.encode([text]), np.float32)[0]
        sims = self.names @ (q / max(float(np.linalg.norm(q)), 1e-12))
        best = float(sims.max())
        if best < NAME_SIMILARITY:
            return ()
        return tuple(int(i) for i in np.nonzero(sims >= best - 0.03)[0])

    def evidence(self, vectors: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
        """Each photo's summed probability of ``classes``."""
        from lookalike.core.learning.tags import imagenet_probabilities

        if len(vectors) == 0:
            return np.zeros(0, np.float32)
        p = imagenet_probabilities(vectors, self.weight, self.bias)
        return p[:, list(classes)].sum(1)

    def direction(self, classes: tuple[int, ...], dim: int) -> np.ndarray:
        """A query vector for the kinds: the centred mean of their class names' vectors, in the
        concept part (where a photo's concept part is its likely classes' names)."""
        from lookalike.core.encoders.offline import VISUAL_DIM

        v = np.zeros(dim, np.float32)
        c = self.centred[list(classes)].mean(0)
        v[VISUAL_DIM:] = _unit(c)
        return v


def _unit(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.linalg.norm(x)), 1e-12)


def class_confidence(p: np.ndarray, curve: tuple[float, float] = CLASS_CURVE) -> np.ndarray:
    """The fitted curve: summed class probability -> the chance the photo shows the kind."""
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    a, b = curve
    return 1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b)))


# -- the score distribution --------------------------------------------------------------------


def tail_line(median: float, spread: float, n: int, margin: float = TAIL_MARGIN) -> float:
    """The score a match must reach: the expected largest of ``n`` background scores, plus a margin."""
    z = math.sqrt(2.0 * math.log(max(n, 2))) + margin
    return median + z * spread


def tail_confidence(scores: np.ndarray, line: float, spread: float, slope: float = TAIL_SLOPE) -> np.ndarray:
    s = np.asarray(scores, np.float64)
    return 1.0 / (1.0 + np.exp(-slope * (s - line) / max(spread, 1e-9)))


class Background:
    """A fixed sample of one library's vectors, kept while the library's generation holds."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._rows: np.ndarray | None = None
        self._lock = threading.Lock()

    def rows(self, vectors, generation: int) -> np.ndarray:
        with self._lock:
            n = len(vectors)
            if self._rows is None or self._key != (generation, n):
                ids = vectors.live_ids()
                if len(ids) > BACKGROUND:
                    ids = ids[np.linspace(0, len(ids) - 1, BACKGROUND).astype(np.int64)]
                self._rows = np.asarray(vectors.rows(ids), np.float32) if len(ids) else np.zeros((0, vectors.dim))
                self._key = (generation, n)
            return self._rows


def robust_stats(scores: np.ndarray) -> tuple[float, float]:
    s = np.asarray(scores, np.float64)
    if s.size == 0:
        return 0.0, 1.0
    med = float(np.median(s))
    mad = float(np.median(np.abs(s - med))) * 1.4826
    return med, max(mad, float(np.std(s)) * 0.5, 1e-4)


def tail_boundary(scores: np.ndarray, line: float, spread: float, gap: float = TAIL_GAP) -> float:
    """Where the matches end: the middle of the widest drop between consecutive results (best
    first) that starts above the tail's ``line`` and is at least ``gap`` spreads wide; above the
    best score when there is none (nothing matches)."""
    s = np.asarray(scores, np.float64)
    if s.size == 0:
        return math.inf
    drops = (s[:-1] - s[1:]) / max(spread, 1e-9)
    ok = np.nonzero((s[:-1] >= line) & (drops >= gap))[0]
    if not ok.size:
        return max(line, float(s[0]) + spread)
    i = int(ok[np.argmax(drops[ok])])
    return float(s[i] + s[i + 1]) / 2


def judge_tail(
    results: list[SearchResult], query_vec: np.ndarray, background: np.ndarray, n_library: int
) -> tuple[list[SearchResult], int, str]:
    bg = background @ np.asarray(query_vec, np.float32) if len(background) else np.zeros(0)
    med, spread = robust_stats(bg)
    scores = np.array([r.score for r in results], np.float64)
    edge = tail_boundary(scores, tail_line(med, spread, n_library), spread)
    conf = tail_confidence(scores, edge, spread) if results else np.zeros(0)
    out = [replace(r, match=bool(sc > edge), confidence=round(float(c), 4)) for r, sc, c in zip(results, scores, conf)]
    m = sum(bool(r.match) for r in out)
    return out, m, "" if m else "no photo stands out from the rest for this query"


def judge_kinds(
    results: list[SearchResult], evidence: np.ndarray, curve: tuple[float, float] = CLASS_CURVE
) -> tuple[list[SearchResult], int]:
    """Order the candidates by the kinds' summed probability (ties: the search's order), which
    becomes their score, and give each its confidence."""
    conf = class_confidence(evidence, curve) if len(results) else np.zeros(0)
    order = sorted(range(len(results)), key=lambda i: (-float(evidence[i]), i))
    out = [
        replace(
            results[i],
            rank=n + 1,
            score=float(evidence[i]),
            match=bool(conf[i] >= 0.5),
            confidence=round(float(conf[i]), 4),
        )
        for n, i in enumerate(order)
    ]
    return out, sum(bool(r.match) for r in out)


def chosen(results: list[SearchResult]) -> list[SearchResult]:
    return [replace(r, match=True, confidence=1.0) for r in results]


# -- one query ---------------------------------------------------------------------------------

_backgrounds: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_kinds_cache: dict[str, OfflineKinds] = {}
_kinds_lock = threading.Lock()


def offline_kinds(checksum: str, tower) -> OfflineKinds | None:
    with _kinds_lock:
        if checksum not in _kinds_cache:
            try:
                _kinds_cache[checksum] = OfflineKinds(checksum, tower)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("the offline model's classes cannot be read: %s", exc)
                return None
        return _kinds_cache[checksum]


def kinds_text(query) -> str | None:
    """The text of a query the offline kinds rule reads: one added text term, nothing else
    ranked (filters and people may narrow it)."""
    ranked = [t for t in query.terms if t.kind in ("text", "image") or (t.kind == "concept" and t.weight > 0)]
    if len(ranked) != 1 or ranked[0].kind != "text" or ranked[0].weight <= 0:
        return None
    return ranked[0].value


def answer_query(engine, q, *, k: int | None = None, folder=None) -> Answer:
    """What :meth:`lookalike.core.engine.SearchEngine.answer` returns. The search is asked for
    :data:`FIRST` results (or ``k``); only when the last of them still matches is it asked
    again for more (:data:`CANDIDATES`, :data:`KIND_CANDIDATES`): a query with a few matches
    costs what a top-50 search costs."""
    asked = int(k or 0)
    if not q.has_vector_terms:  # filters, people: what they choose is the answer
        results = engine.search(q, k=asked or CANDIDATES, folder=folder)
        return Answer(chosen(results), len(results), "chosen", "" if results else "no photo fits these filters")
    text = kinds_text(q)
    record = engine.library.model_record()
    if text is not None and engine.model_name == "offline" and record is not None:
        tower = engine.query_encoder()
        kinds = offline_kinds(record.weights_checksum, tower)
        if kinds is not None:
            classes = kinds.classes(text)
            if not classes and len(text.split()) <= 3:  # a word the offline model has no kind for
                vec = engine.embed(q)
                results = engine.search(q, k=max(asked, FIRST), folder=folder, vector=vec)
                out = [replace(r, match=False, confidence=0.0) for r in results]
                return Answer(out, 0, "kinds", OFFLINE_UNKNOWN)
            if classes:
                return _kinds_answer(engine, q, kinds, classes, int(record.dimension), asked, folder)
    vec = engine.embed(q)
    vectors = engine.vectors()
    bg = _backgrounds.setdefault(engine, Background()).rows(vectors, engine.catalog.generation())
    n = max(asked, FIRST)
    while True:
        results = engine.search(q, k=n, folder=folder, vector=vec)
        judged, m, note = judge_tail(results, vec, bg, len(vectors))
        if n >= max(asked, CANDIDATES) or len(results) < n or not judged[-1].match:
            return Answer(judged, m, "tail", note)
        n = max(asked, CANDIDATES)


def _kinds_answer(engine, q, kinds: OfflineKinds, classes, dim: int, asked: int, folder) -> Answer:
    vec = kinds.direction(classes, dim)
    n = max(asked, FIRST)
    while True:
        results = engine.search(q, k=n, folder=folder, vector=vec)
        vecs = engine.vectors().rows(np.array([r.photo_id for r in results], np.int64))
        judged, m = judge_kinds(results, kinds.evidence(vecs, classes))
        last = results[-1].photo_id if results else None
        widen = any(r.photo_id == last and r.match for r in judged)
        if n >= max(asked, KIND_CANDIDATES) or len(results) < n or not widen:
            return Answer(judged, m, "kinds", "" if m else "no photo shows this", classes)
        n = max(asked, KIND_CANDIDATES)
