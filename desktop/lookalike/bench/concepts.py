"""The `concepts` bench section and the comparison behind docs/concepts.md.

* :func:`compare` - few-shot concepts on labelled real photos
  (:mod:`lookalike.bench.labelled`): centroid, logistic probe, triplet metric,
  the leave-one-out choice among them, and a plain text query, by precision@10,
  precision@20 and average precision against the number of examples.
* :func:`calibrate_tags` - per-tag thresholds for precision >= 0.9 on the
  labelled photos, and the precision each tag then has.
* :func:`measure_latency` - teaching, a mark's retraining and a filtered query
  at 100k photos (synthetic vectors: the cost does not depend on what they show).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lookalike.bench.labelled import Labelled
from lookalike.core.learning import Method, TrainingSet, average_precision, choose_method, train

EXAMPLE_COUNTS = (1, 3, 5, 10)
ROWS = ("centroid", "probe", "metric", "chosen (leave-one-out)", "text query")


def encode_labelled(labelled: Labelled, encoder) -> tuple[list[str], np.ndarray]:
    """Every labelled photo's vector, decoded the way the indexer decodes."""
    from lookalike.core.imaging import decode_file

    rels = labelled.paths()
    size = int(getattr(encoder, "image_size", 224) or 224)
    vecs = []
    for start in range(0, len(rels), 16):
        imgs = [decode_file(labelled.folder / r, target=size).image for r in rels[start : start + 16]]
        vecs.append(np.asarray(encoder.encode_images(imgs), dtype=np.float32))
    return rels, np.concatenate(vecs)


def _ranking_metrics(scores: np.ndarray, relevant: np.ndarray) -> tuple[float, float, float]:
    order = np.argsort(-scores, kind="stable")
    rel = relevant[order]
    return float(rel[:10].mean()), float(rel[:20].mean()), average_precision(scores, relevant)


def compare(
    rels: list[str],
    vectors: np.ndarray,
    labelled: Labelled,
    text_vectors: dict[str, np.ndarray] | None = None,
    *,
    trials: int = 10,
    background: int = 256,
    min_members: int = 6,
    seed: int = 0,
    choose: bool = True,
    counts: tuple[int, ...] = EXAMPLE_COUNTS,
) -> list[dict]:
    """One row per (concept, method, examples): mean P@10, P@20, AP over ``trials`` random
    draws of the examples. The held-out members are ranked among every photo that is not
    an example; background photos are drawn from the non-examples (members included: the
    user does not know which are which)."""
    rng = np.random.default_rng(seed)
    index = {r: i for i, r in enumerate(rels)}
    out: list[dict] = []
    for concept, members in labelled.concepts.items():
        member_idx = np.array([index[m] for m in members if m in index])
        if len(member_idx) < min_members:
            continue
        for n in counts:
            if n >= len(member_idx) - 1:
                continue
            acc: dict[str, list[tuple[float, float, float]]] = {r: [] for r in ROWS}
            for _ in range(trials):
                ex = rng.choice(member_idx, size=n, replace=False)
                rest = np.setdiff1d(np.arange(len(rels)), ex)
                bg = rng.choice(rest, size=min(background, len(rest)), replace=False)
                data = TrainingSet(vectors[ex], vectors[:0], vectors[np.sort(bg)])
                relevant = np.isin(rest, member_idx)
                for method in Method:
                    s = train(method, data).scores(vectors[rest])
                    acc[str(method)].append(_ranking_metrics(s, relevant))
                if choose:
                    pick = choose_method(data).method
                    acc["chosen (leave-one-out)"].append(acc[str(pick)][-1])
                if text_vectors and concept in text_vectors:
                    s = vectors[rest] @ text_vectors[concept]
                    acc["text query"].append(_ranking_metrics(s, relevant))
            for row, vals in acc.items():
                if not vals:
                    continue
                arr = np.array(vals)
                out.append(
                    dict(
                        concept=concept,
                        members=int(len(member_idx)),
                        examples=n,
                        method=row,
                        p10=float(arr[:, 0].mean()),
                        p20=float(arr[:, 1].mean()),
                        ap=float(arr[:, 2].mean()),
                    )
                )
    return out


def table(rows: list[dict]) -> str:
    """Markdown: methods x examples, P@10 / P@20 / AP averaged over the concepts."""
    counts = sorted({r["examples"] for r in rows})
    concepts = sorted({r["concept"] for r in rows})
    lines = [
        "| method | " + " | ".join(f"{n} example{'s' if n > 1 else ''}" for n in counts) + " |",
        "|---|" + "---|" * len(counts),
    ]
    for method in ROWS:
        cells = []
        for n in counts:
            sel = [r for r in rows if r["method"] == method and r["examples"] == n]
            if not sel:
                cells.append("-")
                continue
            p10 = statistics.mean(r["p10"] for r in sel)
            p20 = statistics.mean(r["p20"] for r in sel)
            ap = statistics.mean(r["ap"] for r in sel)
            cells.append(f"{p10:.2f} / {p20:.2f} / {ap:.2f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    per = ["", "Per concept (average precision):", ""]
    per.append("| concept (members) | method | " + " | ".join(str(n) for n in counts) + " |")
    per.append("|---|---|" + "---|" * len(counts))
    for c in concepts:
        for method in ROWS:
            sel = {r["examples"]: r for r in rows if r["concept"] == c and r["method"] == method}
            if not sel:
                continue
            members = next(iter(sel.values()))["members"]
            cells = [f"{sel[n]['ap']:.2f}" if n in sel else "-" for n in counts]
            per.append(f"| {c} ({members}) | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines + per)


# -- tags ---------------------------------------------------------------------------


def calibrate_tags(scores: np.ndarray, truth: np.ndarray, names: tuple[str, ...], *, floor: float, target=0.9):
    """Per tag: the lowest threshold at which the labelled photos scoring at or above it
    are at least ``target`` right (never below ``floor``); ``inf`` when no threshold
    reaches it (the tag is then never given). Returns {tag: threshold}."""
    out: dict[str, float] = {}
    for j, tag in enumerate(names):
        s = scores[:, j]
        if np.all(np.isnan(s)):
            continue
        order = np.argsort(-s, kind="stable")
        s_sorted, t_sorted = s[order], truth[order, j]
        keep = s_sorted >= floor
        if not keep.any():
            out[tag] = floor
            continue
        prec = np.cumsum(t_sorted) / np.arange(1, len(t_sorted) + 1)
        ok = np.nonzero(keep & (prec >= target))[0]
        # the threshold must not split equal scores, and every photo at or above it counts
        best = None
        for k in ok[::-1]:
            cut = s_sorted[k]
            above = s_sorted >= cut
            if t_sorted[above].mean() >= target:
                best = float(cut)
                break
        if best is None:
            out[tag] = float("inf") if t_sorted[keep].mean() < target else floor
        else:
            # lower than the last right photo's score is never needed; the floor still holds
            out[tag] = max(floor, min(best, floor if t_sorted[keep].mean() >= target else best))
    return out


def tag_precision(assigned: list[list[str]], truth: list[frozenset[str]]) -> dict[str, tuple[int, int]]:
    """Per tag: (photos given the tag, of which right)."""
    out: dict[str, list[int]] = {}
    for tags, right in zip(assigned, truth):
        for t in tags:
            c = out.setdefault(t, [0, 0])
            c[0] += 1
            c[1] += int(t in right)
    return {t: (a, b) for t, (a, b) in out.items()}


# -- latency ------------------------------------------------------------------------


def synthetic_vectors(n: int, dim: int, seed: int = 0, clusters: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.8 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def measure_latency(
    library: Path, n: int, dim: int, say: Callable[[str], None], repeats: int = 5
) -> dict[str, float | int]:
    """Teach (with the leave-one-out choice), a mark's retraining, and a filtered query,
    on a library of ``n`` synthetic photos. Medians over ``repeats``."""
    from lookalike.bench.queries import build_vector_library
    from lookalike.core.concepts import Concepts
    from lookalike.core.query import parse

    engine = build_vector_library(library, n, dim, synthetic_vectors, say)
    try:
        concepts = Concepts(engine.catalog)
        ids, vecs = concepts.matrix.get()
        examples = [engine.catalog.photos_by_ids([int(i)])[int(i)].path for i in ids[:10]]
        teach, mark, filtered, browse = [], [], [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            learned = concepts.teach(f"bench {r}", examples[:5])
            teach.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            learned = concepts.mark(learned.concept.name, learned.offered[0], right=False)
            mark.append(time.perf_counter() - t0)
            q = parse("dog year:2023 shape:landscape")
            t0 = time.perf_counter()
            engine.search(q, k=50)
            filtered.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            engine.browse(parse("kind:jpeg"), limit=500)
            browse.append(time.perf_counter() - t0)
        return dict(
            photos=n,
            dim=dim,
            teach_s=statistics.median(teach),
            mark_s=statistics.median(mark),
            filtered_query_s=statistics.median(filtered),
            browse_s=statistics.median(browse),
            members=int(learned.concept.photos),
        )
    finally:
        engine.close()
