"""Few-shot learning on frozen embeddings: a concept from a handful of examples.

Every method here returns a :class:`Scorer`: a unit direction ``d`` in the
model's space, so that a photo's score is ``x . d`` for its stored (unit)
vector ``x``. A linear score ranks the library with the same HNSW graph text
queries use, adds to other query terms (``#luna + beach``), and scores 100k
photos in one matrix-vector product.

Methods (compared in docs/concepts.md):

* :data:`Method.CENTROID` - the mean of the examples ("more like these").
* :data:`Method.PROBE` - an L2-regularised logistic regression: the examples
  against the counter-examples and random library photos taken as weak
  negatives (most random photos are not the concept; a few may be, so they
  count for less). Solved exactly by Newton's method in the dual (the
  solution lies in the span of the training vectors: an n x n problem for n
  training photos, whatever the dimension).
* :data:`Method.METRIC` - a linear metric ``W`` (k x d) learned with a triplet
  loss and semi-hard negative mining (FaceNet's rule: the negative farther
  than the positive but within the margin), started from the identity on the
  span that matters. The concept scores ``(W x) . (W c)`` for the mean ``c``
  of the examples, which is again ``x . d`` with ``d = W^T W c``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

log = logging.getLogger(__name__)


class Method(StrEnum):
    CENTROID = "centroid"
    PROBE = "probe"
    METRIC = "metric"


@dataclass(frozen=True)
class Scorer:
    method: Method
    direction: np.ndarray  # unit, float32

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors, dtype=np.float32) @ self.direction


@dataclass(frozen=True)
class TrainingSet:
    """Vectors (unit rows) of examples, counter-examples and weak negatives (random library photos)."""

    positives: np.ndarray
    negatives: np.ndarray
    background: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.positives.shape[1])


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if not math.isfinite(n) or n == 0.0:
        raise ValueError("no usable direction")
    return (v / n).astype(np.float32)


def centroid(data: TrainingSet) -> Scorer:
    d = data.positives.astype(np.float64).mean(0)
    if len(data.negatives):
        # Counter-examples pull the direction away from themselves, a little.
        d = _unit(d) - 0.5 * _unit(data.negatives.astype(np.float64).mean(0))
    return Scorer(Method.CENTROID, _unit(d))


# Weak negatives count this much against one example (they might be the concept).
BACKGROUND_WEIGHT = 0.3
PROBE_L2 = 1.0


def probe(data: TrainingSet, *, l2: float = PROBE_L2, iterations: int = 25) -> Scorer:
    """Weighted L2 logistic regression, Newton's method on the dual coefficients."""
    pos, neg, bg = data.positives, data.negatives, data.background
    x = np.concatenate([pos, neg, bg]).astype(np.float64)
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg) + len(bg))])
    # Each side carries equal total weight; background photos count for less than counter-examples.
    w_neg = np.concatenate([np.full(len(neg), 1.0), np.full(len(bg), BACKGROUND_WEIGHT)])
    sw = np.concatenate([np.full(len(pos), 1.0 / len(pos)), w_neg / max(w_neg.sum(), 1e-9)])
    sw *= len(y) / sw.sum()
    # Append a constant feature for the bias (lightly regularised with the rest).
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    k = xb @ xb.T
    n = len(y)
    alpha = np.zeros(n)
    for _ in range(iterations):
        f = k @ alpha
        p = 1.0 / (1.0 + np.exp(-f))
        # gradient of sum_i sw_i * logloss_i + l2/2 * alpha^T K alpha, in the dual
        g = sw * (p - y) + l2 * alpha
        h = sw * p * (1 - p)
        # Newton step in function space: (diag(h) K + l2 I) delta = g
        delta = np.linalg.solve(h[:, None] * k + l2 * np.eye(n), g)
        alpha -= delta
        if float(np.abs(delta).max()) < 1e-6:
            break
    w = xb.T @ alpha
    return Scorer(Method.PROBE, _unit(w[:-1]))


METRIC_RANK = 32
METRIC_MARGIN = 0.2
METRIC_STEPS = 40
#: Background photos this close to the examples' centroid (the top fraction) may well be
#: the concept: the metric does not push them away (only "reliable" negatives count).
METRIC_UNSURE = 0.2


def metric(data: TrainingSet, *, steps: int = METRIC_STEPS) -> Scorer:
    """A linear metric from a triplet loss with semi-hard negatives (torch, CPU, small)."""
    if len(data.positives) < 2:
        return Scorer(Method.METRIC, centroid(data).direction)
    import torch

    c = data.positives.astype(np.float64).mean(0)
    bg = data.background
    if len(bg):
        s = bg @ c.astype(np.float32)
        bg = bg[s < np.quantile(s, 1 - METRIC_UNSURE)]
    neg_np = np.concatenate([data.negatives, bg]).astype(np.float32)
    if len(neg_np) == 0:
        return Scorer(Method.METRIC, centroid(data).direction)
    # The metric lives on the span of the examples and some negatives (the rest is left as
    # is): an orthonormal basis Q of that span, and W = I + Q A Q^T with A (k x k) learned.
    basis = np.concatenate([data.positives, neg_np[:METRIC_RANK]]).astype(np.float64)
    q, _ = np.linalg.qr(basis.T)
    q = q[:, :METRIC_RANK]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add overhead
    try:
        pos64 = data.positives.astype(np.float64)
        neg64 = neg_np.astype(np.float64)
        p_in, n_in = pos64 @ q, neg64 @ q
        # the parts outside the span stay as they are: their dot products are fixed
        rp, rn = pos64 - p_in @ q.T, neg64 - n_in @ q.T

        def t(x: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

        pp, nn_ = t(p_in), t(n_in)
        r_pp, r_pn = t(rp @ rp.T), t(rp @ rn.T)
        rp2, rn2 = t((rp * rp).sum(1)), t((rn * rn).sum(1))
        k = pp.shape[1]
        a = torch.zeros((k, k), requires_grad=True)
        # Adam (lr 0.02, betas 0.9/0.999) written out: torch.optim's first use imports the
        # graph compiler, 2.4 s of a 5 s `lookalike teach`, for one k x k matrix.
        m1, m2 = torch.zeros_like(a), torch.zeros_like(a)
        n_pos = len(pp)
        pairs = [(i, j) for i in range(n_pos) for j in range(n_pos) if i != j]
        ai = torch.tensor([i for i, _ in pairs])
        pi = torch.tensor([j for _, j in pairs])
        eye = torch.eye(k)
        with torch.enable_grad():
            for step in range(1, steps + 1):
                mt = eye + a
                # W x = Q M Q^T x + (x - Q Q^T x): cosines of W x from the span's part and the rest
                pm, nm = pp @ mt.T, nn_ @ mt.T
                norm_p = torch.sqrt((pm * pm).sum(1) + rp2)
                norm_n = torch.sqrt((nm * nm).sum(1) + rn2)
                cos_pp = (pm @ pm.T + r_pp) / (norm_p[:, None] * norm_p[None, :])
                cos_pn = (pm @ nm.T + r_pn) / (norm_p[:, None] * norm_n[None, :])
                d_ap = 1 - cos_pp[ai, pi]
                d_an = 1 - cos_pn[ai]
                # semi-hard: farther than the positive but within the margin; else the hardest
                semi = (d_an > d_ap[:, None]) & (d_an < d_ap[:, None] + METRIC_MARGIN)
                masked = torch.where(semi, d_an, torch.full_like(d_an, float("inf")))
                pick = torch.where(semi.any(1), masked.min(1).values, d_an.min(1).values)
                loss = torch.relu(d_ap - pick + METRIC_MARGIN).mean() + 1e-2 * (a * a).sum()
                a.grad = None
                loss.backward()
                with torch.no_grad():
                    g = a.grad
                    assert g is not None  # (a requires grad and the loss depends on it)
                    m1.mul_(0.9).add_(g, alpha=0.1)
                    m2.mul_(0.999).addcmul_(g, g, value=0.001)
                    a -= 0.02 * (m1 / (1 - 0.9**step)) / ((m2 / (1 - 0.999**step)).sqrt() + 1e-8)
        m = (eye + a).detach().numpy().astype(np.float64)
    finally:
        torch.set_num_threads(threads)
    # score(x) = (W x) . (W c) = x . d with d = W^T W c, without forming d x d matrices
    c_in = q.T @ c
    wc_in = m @ c_in  # W c = Q (M c_in) + (c - Q c_in)
    d = q @ (m.T @ wc_in) + (c - q @ c_in)
    return Scorer(Method.METRIC, _unit(d))


TRAINERS = {Method.CENTROID: centroid, Method.PROBE: probe, Method.METRIC: metric}


def one_thread():
    """BLAS on one thread while learning: the matrices are small, and on a busy machine the
    threads' hand-offs cost ten times the work (a probe's leave-one-out: 8.8 s -> 0.7 s
    measured on two loaded cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; only slower without it
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


def train(method: Method, data: TrainingSet) -> Scorer:
    if len(data.positives) == 0:
        raise ValueError("a concept needs at least one example")
    return TRAINERS[method](data)


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    rel = relevant[order].astype(np.float64)
    if rel.sum() == 0:
        return 0.0
    hits = np.cumsum(rel)
    return float((hits / np.arange(1, len(rel) + 1) * rel).sum() / rel.sum())


@dataclass(frozen=True)
class Choice:
    method: Method
    scores: dict[str, float]  # per method: the mean share of other photos a held-out example outranks
    seconds: float
    held_out: dict[str, np.ndarray] = field(default_factory=dict)  # each example's score when held out


def held_out_scores(method: Method, data: TrainingSet) -> np.ndarray:
    """Each example's score by the concept learned from the others (how a new member scores)."""
    n = len(data.positives)
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        keep = np.arange(n) != i
        scorer = train(method, TrainingSet(data.positives[keep], data.negatives, data.background))
        out[i] = float(data.positives[i] @ scorer.direction)
    return out


def choose_method(data: TrainingSet, methods: tuple[Method, ...] = tuple(Method)) -> Choice:
    """Leave-one-out on the examples: each example in turn is held out, the rest teach,
    and the held-out one is ranked among the background photos and counter-examples; the
    method under which held-out examples outrank the largest share of them wins (ties go
    to the simpler method).
    With fewer than three examples there is nothing to hold out honestly: the centroid."""
    start = time.perf_counter()
    n = len(data.positives)
    held: dict[str, np.ndarray]
    if n < 3:
        held = {str(Method.CENTROID): held_out_scores(Method.CENTROID, data)} if n == 2 else {}
        return Choice(Method.CENTROID, {}, time.perf_counter() - start, held)
    others = np.concatenate([data.negatives, data.background]).astype(np.float32)
    result: dict[str, float] = {}
    held = {}
    for method in methods:
        rr = []
        scores = np.empty(n, dtype=np.float32)
        for i in range(n):
            keep = np.arange(n) != i
            sub = TrainingSet(data.positives[keep], data.negatives, data.background)
            scorer = train(method, sub)
            scores[i] = float(data.positives[i] @ scorer.direction)
            # the share of the other photos it outranks (some of them may be the concept too)
            rr.append(float((scorer.scores(others) < scores[i]).mean()) if len(others) else 1.0)
        result[str(method)] = float(np.mean(rr))
        held[str(method)] = scores
    best = max(methods, key=lambda m: (round(result[str(m)], 6), -list(Method).index(m)))
    return Choice(best, result, time.perf_counter() - start, held)


def threshold(
    scorer: Scorer,
    data: TrainingSet,
    *,
    held_out: np.ndarray | None = None,
    library_scores: np.ndarray | None = None,
) -> float:
    """The score at or above which a photo is taken to show the concept.

    Examples count as right (their held-out scores when given: how a member the concept
    has not seen scores), counter-examples and photos marked wrong as wrong. With no
    wrong ones, the threshold sits just below the weakest right one; with some, it is
    the lowest at which at least 90% of those at or above it are right (where none is,
    the one with the best F1 over them). A single
    example, with nothing marked wrong, accepts at most the top 1% of the library."""
    if held_out is not None and len(held_out) == len(data.positives):
        right = np.minimum(np.asarray(held_out, dtype=np.float32), scorer.scores(data.positives))
    else:
        right = scorer.scores(data.positives)
    t = float(right.min()) - 1e-4
    if len(data.negatives):
        wrong = scorer.scores(data.negatives)
        s = np.concatenate([right, wrong])
        lab = np.concatenate([np.ones(len(right)), np.zeros(len(wrong))])
        order = np.argsort(-s, kind="stable")
        s, lab = s[order], lab[order]
        hits = np.cumsum(lab)
        prec = hits / np.arange(1, len(lab) + 1)
        ok = np.nonzero(prec >= 0.9)[0]
        if ok.size:
            t = float(s[ok.max()]) - 1e-4
        else:  # no cut is 90% right: the one with the best balance of right kept and wrong left out
            f1 = 2 * hits / (np.arange(1, len(lab) + 1) + len(right))
            t = float(s[int(np.argmax(f1))]) - 1e-4
    elif len(data.positives) == 1 and library_scores is not None and len(library_scores) > 100:
        t = max(t, float(np.quantile(library_scores, 0.99)))
    return t


def uncertain(scores: np.ndarray, cut: float, exclude: np.ndarray, k: int = 12) -> np.ndarray:
    """Indices of the ``k`` photos whose scores sit closest to the threshold, skipping ``exclude``."""
    gap = np.abs(scores - cut)
    if exclude.size:
        gap = gap.copy()
        gap[exclude] = np.inf
    k = min(k, int(np.isfinite(gap).sum()))
    if k <= 0:
        return np.zeros(0, np.int64)
    idx = np.argpartition(gap, k - 1)[:k]
    return idx[np.argsort(gap[idx])]
