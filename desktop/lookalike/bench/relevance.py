"""Does the answer set hold? Fitted and measured on labelled real photos.

The photos are the labelled pool of :mod:`lookalike.bench.tagcal` (745 images from
Debian and Python packages, labelled by looking at each), its real photographs only
(``kind: photo``). A text query is a vocabulary subject as a person types it ("a
dog", "flowers", "food"); the photos that show it are the ones labelled with that
tag (photos labelled "maybe" are not scored). A subject no labelled photo shows is
an absent subject: every photo its answer shows is a wrong one.

What is fitted
    :data:`lookalike.core.answer.CLASS_CURVE`, the logistic curve from the summed
    probability of a query's ImageNet classes to a confidence, by maximum
    likelihood over (query, photo) pairs. The shipped curve is fitted on the pool
    less a set kept apart (a quarter of the photos, chosen by a hash of their
    names); :func:`measure` reports it on that set, by 5-fold cross-validation
    over photos, and leaving each source out in turn.

What is not fitted
    The tail rule (:func:`lookalike.core.answer.judge_tail`): measured here on the
    offline model's text queries and on image queries (an altered copy's answer is
    its original and the other copies), never tuned on them.

``python -m lookalike.bench.relevance [WORK]`` prints the tables and the curve.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Vocabulary words that name a kind of picture, not a subject: not text queries here.
NOT_SUBJECTS = frozenset(
    {"document", "screenshot", "text", "night", "indoor", "outdoor", "close-up", "art", "water", "space"}
)
KEPT_APART = 4  # one photo in KEPT_APART is kept apart from the fit
FOLDS = 5


@dataclass
class Pool:
    names: list[str]
    groups: list[str]
    vectors: np.ndarray
    queries: list[str]  # the text of each subject query
    truth: np.ndarray  # (photos, queries): 1 shows it, 0 not, -1 arguable
    classes: list[tuple[int, ...]]  # each query's ImageNet classes (empty: the model cannot read it)
    evidence: np.ndarray  # (photos, queries): summed probability of the query's classes
    cosine: np.ndarray  # (photos, queries): the score the search ranks candidates by


def kept_apart(name: str) -> bool:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % KEPT_APART == 0


def query_text(tag: str) -> str:
    from lookalike.core.tags import prompt

    return prompt(tag).removeprefix("a photo of ")


def build_pool(items, vectors: np.ndarray, kinds) -> Pool:
    from lookalike.bench.tagcal import truth_matrix
    from lookalike.core.tags import TAG_NAMES, imagenet_probabilities

    keep = [i for i, it in enumerate(items) if it.kind == "photo"]
    items = [items[i] for i in keep]
    vectors = vectors[keep]
    tags = [t for t in TAG_NAMES if t not in NOT_SUBJECTS]
    full = truth_matrix(items, TAG_NAMES)
    truth = full[:, [TAG_NAMES.index(t) for t in tags]]
    queries = [query_text(t) for t in tags]
    classes = [kinds.classes(q) for q in queries]
    probs = imagenet_probabilities(vectors, kinds.weight, kinds.bias)
    evidence = np.stack([probs[:, list(c)].sum(1) if c else np.zeros(len(items)) for c in classes], 1)
    dim = vectors.shape[1]
    cosine = np.stack([vectors @ kinds.direction(c, dim) if c else np.zeros(len(items)) for c in classes], 1)
    return Pool(
        [it.name for it in items], [it.group for it in items], vectors, queries, truth, classes, evidence, cosine
    )


def fit_curve(evidence: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[float, float]:
    """Logistic regression of y on logit(evidence): (a, b) of sigmoid(a * logit(p) + b)."""
    p = np.clip(evidence.astype(np.float64), 1e-6, 1 - 1e-6)
    x = np.log(p / (1 - p))
    X = np.stack([x, np.ones_like(x)], 1)
    w = np.zeros(2)
    for _ in range(iters):
        z = X @ w
        mu = 1 / (1 + np.exp(-z))
        g = X.T @ (y - mu)
        H = (X * (mu * (1 - mu))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(H, g)
        w += step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def pairs(pool: Pool, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    known = np.array([bool(c) for c in pool.classes])
    t = pool.truth[rows][:, known]
    e = pool.evidence[rows][:, known]
    ok = t >= 0
    return e[ok], (t[ok] == 1).astype(np.float64)


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    absent_queries: int = 0
    absent_shown: int = 0
    p5_sum: float = 0.0
    p5_n: int = 0
    unknown: int = 0

    def add(self, o: Tally) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(o, k))

    def row(self) -> dict:
        p = self.tp / max(self.tp + self.fp, 1)
        r = self.tp / max(self.tp + self.fn, 1)
        return dict(
            precision=p,
            recall=r,
            f1=2 * p * r / max(p + r, 1e-12),
            absent=self.absent_shown / max(self.absent_queries, 1),
            absent_queries=self.absent_queries,
            p5=self.p5_sum / max(self.p5_n, 1),
            p5_queries=self.p5_n,
            tp=self.tp,
            fp=self.fp,
            fn=self.fn,
        )


def precision_at(order: np.ndarray, y: np.ndarray, n: int = 5) -> tuple[float, int] | None:
    """Right among the first min(n, photos that show it); None when none shows it."""
    pos = int((y == 1).sum())
    if pos == 0:
        return None
    m = min(n, pos)
    return float((y[order[:m]] == 1).sum()) / m, 1


def evaluate_kinds(pool: Pool, rows: np.ndarray, curve: tuple[float, float], candidates: int) -> Tally:
    """The app's kinds rule on the photos ``rows`` as a library."""
    from lookalike.core.answer import class_confidence

    out = Tally()
    for j in range(len(pool.queries)):
        y = pool.truth[rows, j]
        present = (y == 1).any()
        if not pool.classes[j]:
            out.unknown += 1
            shown = np.zeros(len(rows), bool)
            order = np.arange(len(rows))  # (no ranking is credited: every photo shown counts as unranked)
        else:
            cand = np.argsort(-pool.cosine[rows, j], kind="stable")[:candidates]
            ev = pool.evidence[rows, j]
            order = cand[np.argsort(-ev[cand], kind="stable")]
            shown = np.zeros(len(rows), bool)
            shown[cand] = class_confidence(ev[cand], curve) >= 0.5
        scored = y >= 0
        out.tp += int((shown & (y == 1)).sum())
        out.fp += int((shown & (y == 0) & scored).sum())
        out.fn += int((~shown & (y == 1)).sum())
        if not present and not (y == -1).any():
            out.absent_queries += 1
            out.absent_shown += int(shown.sum())
        if pool.classes[j]:
            got = precision_at(order, y)
        else:
            got = (0.0, 1) if present else None
        if got is not None:
            out.p5_sum += got[0]
            out.p5_n += got[1]
    return out


def tail_shown(s: np.ndarray, bg_scores: np.ndarray, n_library: int) -> np.ndarray:
    """Which photos the app's tail rule shows for a query scoring the library ``s``: the best
    FIRST results judged, and the best CANDIDATES when the last of those still matches."""
    from lookalike.core.answer import CANDIDATES, FIRST, robust_stats, tail_boundary, tail_line

    med, spread = robust_stats(bg_scores)
    line = tail_line(med, spread, n_library)
    order = np.argsort(-s, kind="stable")
    shown = np.zeros(len(s), bool)
    for n in (FIRST, CANDIDATES):
        top = order[:n]
        edge = tail_boundary(s[top], line, spread)
        shown[:] = False
        shown[top] = s[top] > edge
        if len(top) < n or not shown[top[-1]]:
            break
    return shown


def evaluate_tail(pool: Pool, rows: np.ndarray, text_vectors: np.ndarray, candidates: int) -> Tally:
    """The distribution rule alone on the offline model's text queries (MiniLM's vector)."""
    from lookalike.core.answer import BACKGROUND

    out = Tally()
    lib = pool.vectors[rows]
    bg = lib[np.linspace(0, len(lib) - 1, min(BACKGROUND, len(lib))).astype(int)]
    for j in range(len(pool.queries)):
        y = pool.truth[rows, j]
        s = lib @ text_vectors[j]
        order = np.argsort(-s, kind="stable")
        shown = tail_shown(s, bg @ text_vectors[j], len(lib))
        out.tp += int((shown & (y == 1)).sum())
        out.fp += int((shown & (y == 0)).sum())
        out.fn += int((~shown & (y == 1)).sum())
        if not (y == 1).any() and not (y == -1).any():
            out.absent_queries += 1
            out.absent_shown += int(shown.sum())
        got = precision_at(order, y)
        if got is not None:
            out.p5_sum += got[0]
            out.p5_n += got[1]
    return out


def alter(img, kind: str):
    from PIL import Image, ImageEnhance, ImageOps

    w, h = img.size
    if kind == "crop":
        return img.crop((int(w * 0.08), int(h * 0.1), int(w * 0.92), int(h * 0.9)))
    if kind == "small":
        small = img.resize((max(1, w // 3), max(1, h // 3)), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        small.convert("RGB").save(buf, "JPEG", quality=35)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind == "flip":
        return ImageEnhance.Brightness(ImageOps.mirror(img)).enhance(1.25)
    raise ValueError(kind)


def image_queries(paths: list[Path], vectors: np.ndarray, encoder, say, every: int = 9) -> dict:
    """Image queries: a library of the photos plus two altered copies of every ``every``-th;
    each such photo queried by a third copy not in the library (its answer: the original and
    its two copies), and each photo left out of the library queried as itself (absent)."""
    from lookalike.core.answer import BACKGROUND
    from lookalike.core.imaging import decode_file

    size = int(getattr(encoder, "image_size", 224) or 224)
    chosen = list(range(0, len(paths), every))
    absent = [i + 1 for i in chosen if i + 1 < len(paths)][: len(chosen) // 2]
    lib_rows = [i for i in range(len(paths)) if i not in set(absent)]
    lib = [vectors[i] for i in lib_rows]
    owner = [i for i in lib_rows]
    queries = []
    for i in chosen:
        img = decode_file(paths[i], target=max(size * 3, 672)).image.convert("RGB")
        copies = encoder.encode_images([alter(img, k) for k in ("crop", "small", "flip")])
        lib += [copies[0], copies[1]]
        owner += [i, i]
        queries.append((i, copies[2]))
    L = np.asarray(lib, np.float32)
    owner_a = np.asarray(owner)
    bg = L[np.linspace(0, len(L) - 1, min(BACKGROUND, len(L))).astype(int)]
    t = Tally()
    for i, q in [*queries, *((i, vectors[i]) for i in absent)]:
        s = L @ q
        y = (owner_a == i).astype(int) if i not in absent else np.zeros(len(L), int)
        shown = tail_shown(s, bg @ q, len(L))
        t.tp += int((shown & (y == 1)).sum())
        t.fp += int((shown & (y == 0)).sum())
        t.fn += int((~shown & (y == 1)).sum())
        if i in absent:
            t.absent_queries += 1
            t.absent_shown += int(shown.sum())
        got = precision_at(np.argsort(-s, kind="stable"), y)
        if got is not None:
            t.p5_sum += got[0]
            t.p5_n += got[1]
    say(f"  relevance: {len(queries)} image queries by an altered copy, {len(absent)} by a photo not in the library")
    return dict(t.row(), queries=len(queries), library=len(L))


def measure(work: Path, say: Callable[[str], None], cache: Path | None = None) -> dict | None:
    from lookalike.bench import tagcal
    from lookalike.core.answer import CANDIDATES, KIND_CANDIDATES, offline_kinds
    from lookalike.core.encoders import load_encoder

    if not tagcal.DATA.is_file():
        say(f"  relevance: skipped, {tagcal.DATA} is not here")
        return None
    cache = cache or Path(os.environ.get("LOOKALIKE_BENCH_CACHE", work / "cache")) / "tag-photos"
    pooled = tagcal.pip_labelled(work) + tagcal.fetch(cache, say)
    items = [it for it, _ in pooled]
    enc = load_encoder("offline")
    vectors = tagcal.encode([p for _, p in pooled], enc)
    kinds = offline_kinds(enc.weights_checksum, enc)
    if kinds is None:
        say("  relevance: skipped, the offline model's classes cannot be read")
        return None
    pool = build_pool(items, vectors, kinds)
    n = len(pool.names)
    apart = np.array([kept_apart(nm) for nm in pool.names])
    fit_rows = np.nonzero(~apart)[0]
    curve = fit_curve(*pairs(pool, fit_rows))
    res: dict = dict(photos=n, kept_apart=int(apart.sum()), queries=len(pool.queries), curve=curve)
    res["unknown_queries"] = [q for q, c in zip(pool.queries, pool.classes) if not c]
    res["kept_apart_table"] = evaluate_kinds(pool, np.nonzero(apart)[0], curve, KIND_CANDIDATES).row()
    cv = Tally()
    fold = np.random.default_rng(0).permutation(n) % FOLDS
    for f in range(FOLDS):
        c = fit_curve(*pairs(pool, np.nonzero(fold != f)[0]))
        cv.add(evaluate_kinds(pool, np.nonzero(fold == f)[0], c, KIND_CANDIDATES))
    res["cv"] = cv.row()
    loso = Tally()
    groups = np.array(pool.groups)
    res["sources"] = {}
    for g in sorted(set(pool.groups)):
        c = fit_curve(*pairs(pool, np.nonzero(groups != g)[0]))
        t = evaluate_kinds(pool, np.nonzero(groups == g)[0], c, KIND_CANDIDATES)
        res["sources"][g] = dict(t.row(), photos=int((groups == g).sum()))
        loso.add(t)
    res["leave_one_source_out"] = loso.row()
    texts = np.asarray(enc.encode_texts(pool.queries), np.float32)
    res["tail_text"] = evaluate_tail(pool, np.arange(n), texts, CANDIDATES).row()
    keep = [i for i, it in enumerate(items) if it.kind == "photo"]
    res["image"] = image_queries([pooled[i][1] for i in keep], vectors[keep], enc, say)
    k = res["kept_apart_table"]
    say(
        f"  relevance: offline text answers on {int(apart.sum())} photos kept apart: F1 {k['f1']:.2f}, "
        f"absent {k['absent']:.2f} photos, precision@5 {k['p5']:.2f}"
    )
    return res


def measure_latency(library: Path, encoder, record, repeats: int, say: Callable[[str], None]) -> dict:
    """Each text query of the query bench through ``search`` (today's top 50) and through
    ``answer`` (the matches, what ``lookalike search`` now calls), on the same library."""
    from lookalike.bench.queries import TEXTS
    from lookalike.bench.util import summary
    from lookalike.core.search import SearchEngine

    engine = SearchEngine.open(library, writer=False)
    with engine:
        engine._encoder = encoder
        engine.library.check_model(record)
        engine.search(TEXTS[0], k=50)
        engine.answer(TEXTS[0])  # warm: the background sample and the classifier are read once
        plain, answered = [], []
        rules: dict[str, int] = {}
        for _ in range(repeats):
            for text in TEXTS:
                t0 = time.perf_counter()
                engine.search(text, k=50)
                t1 = time.perf_counter()
                ans = engine.answer(text)
                t2 = time.perf_counter()
                plain.append((t1 - t0) * 1000)
                answered.append((t2 - t1) * 1000)
                rules[ans.rule] = rules.get(ans.rule, 0) + 1
        n = len(engine.vectors())
    out = dict(photos=n, search_ms=summary(plain), answer_ms=summary(answered), rules=rules, queries=len(plain))
    say(
        f"  relevance: at {n:,} photos, search p50 {out['search_ms']['median']:.1f} ms, answer p50 "
        f"{out['answer_ms']['median']:.1f} ms (busy machine)"
    )
    return out


def run(bench) -> None:
    """``lookalike bench --only relevance``."""
    from lookalike.bench.queries import build_synthetic_library
    from lookalike.core.library import ModelRecord

    out: dict = {}
    if not bench.quick:
        res = measure(bench.work, bench.say)
        if res:
            out.update(res)
    encoders = bench.encoders()
    name = "offline" if "offline" in encoders else next(iter(encoders), None)
    if name is not None:
        enc = encoders[name]
        n = 2_000 if bench.quick else int(bench.cfg.get("relevance_size") or 100_000)
        rec = ModelRecord(name if name == "offline" else "bench", enc.id, enc.weights_checksum, int(enc.dimension))
        lib = bench.work / f"lib-relevance-{enc.id}"
        built = build_synthetic_library(lib, enc, rec, n, bench.anchors(enc), bench.say)
        out["latency"] = {
            "encoder": name,
            **built,
            **measure_latency(lib, enc, rec, 1 if bench.quick else 3, bench.say),
        }
        if not bench.keep_work:
            import shutil

            shutil.rmtree(lib, ignore_errors=True)
    bench.results["relevance"] = out


def render(d: dict) -> list[str]:
    L = ["## Relevance: which results match\n"]
    if d.get("curve"):
        L.append(table(d) + "\n")
    lat = d.get("latency")
    if lat:
        s, a = lat["search_ms"], lat["answer_ms"]
        L.append(
            f"Query cost at {lat['photos']:,} synthetic photos ({lat['encoder']} model, {lat['queries']} text "
            f"queries; a busy shared machine, so not a performance figure): today's top-50 search p50 "
            f"{s['median']:.1f} ms (p95 {s['p95']:.1f}), the answer p50 {a['median']:.1f} ms (p95 {a['p95']:.1f}); "
            f"rules used: {', '.join(f'{k} {v}' for k, v in sorted(lat['rules'].items()))}.\n"
        )
    return L


def table(d: dict) -> str:
    def row(name: str, r: dict) -> str:
        return (
            f"| {name} | {r['precision']:.2f} | {r['recall']:.2f} | **{r['f1']:.2f}** | "
            f"{r['absent']:.2f} ({r['absent_queries']}) | {r['p5']:.2f} ({r['p5_queries']}) |"
        )

    a, b = d["curve"]
    lines = [
        f"{d['photos']} labelled real photos, {d['queries']} subject queries ({len(d['unknown_queries'])} the "
        f"offline model cannot read: {', '.join(d['unknown_queries']) or 'none'}); "
        f"curve fitted on {d['photos'] - d['kept_apart']} photos: confidence = sigmoid({a:.3f} logit(p) {b:+.3f}).",
        "",
        "Offline model, text queries (targets: F1 >= 0.8, absent subjects <= 1 photo, precision@5 >= 0.9):",
        "",
        "| held out | precision | recall | F1 | photos shown, absent subject (queries) | precision@5 (queries) |",
        "|---|---|---|---|---|---|",
        row(f"kept apart ({d['kept_apart']} photos)", d["kept_apart_table"]),
        row(f"{FOLDS}-fold cross-validated", d["cv"]),
        row("leave one source out", d["leave_one_source_out"]),
        *(row(f"  source: {g} ({r['photos']})", r) for g, r in d["sources"].items()),
        row("tail rule alone on MiniLM's text vector (not fitted)", d["tail_text"]),
        "",
        f"Offline model, image queries (tail rule, not fitted; library {d['image']['library']} photos, "
        f"{d['image']['queries']} queries by an altered copy):",
        "",
        "| rule | precision | recall | F1 | photos shown, photo not in library (queries) | precision@3 (queries) |",
        "|---|---|---|---|---|---|",
        row("tail", d["image"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m lookalike.bench.relevance [WORK]
    import tempfile

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)
        res = measure(work, print, cache=Path(sys.argv[2]) if len(sys.argv) > 2 else None)
        if res:
            print(table(res))
            (work / "relevance.json").write_text(json.dumps(res, indent=1))
