"""The `duplicates` bench section: how well near-duplicates are told apart, and how fast.

Quality: labelled pairs of real photos (:mod:`lookalike.bench.dupset`), every pair
of the set judged the way the finder judges a pair (vector cosine at or above the
model's threshold, then the perceptual fingerprints within their limit), against
the label. Reported per kind of alteration (recall) and per kind of hard negative
(pairs wrongly called duplicates), with precision over every pair, for the
offline model; beside it the vector alone and the fingerprints alone, to show what
each half does. CLIP is not measured: without a network there are no real CLIP
weights here, and the random-weight CLIP the tests use means nothing for quality.
Similar shots (:func:`measure_similar`) on the timed labelled set: bursts against
the same scene hours later and other photos seconds apart, grouped by the finder.

Speed: every pair of a 100,000-photo library from the vector graph, on this
machine's cores: the saved graph's links read and scored (and, for comparison, a
search of the graph for every photo), the candidates' fingerprints compared,
groups formed. Synthetic vectors with the
structure of photo embeddings (:class:`lookalike.bench.scale.EmbeddingModel`), 3%
of the photos with one to three near copies; fingerprints are synthetic too (a
copy's differ from its original in a few bits). The cost of computing
fingerprints lazily (photos indexed before the fingerprint stage) is measured per
photo on real photos and given separately.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

POSITIVE_ORDER = (
    "resized",
    "recompressed q60",
    "exif rotation",
    "format png",
    "format webp",
    "5% crop",
    "colour shift",
    "both altered",
)
TARGET_KINDS = ("resized", "recompressed q60", "exif rotation")


def _judge(cos: np.ndarray, dist: np.ndarray, near: float, limit: int) -> dict[str, np.ndarray]:
    return {
        "finder (vector, then fingerprints)": (cos >= near) & (dist <= limit),
        "vector alone": cos >= near,
        "fingerprints alone": dist <= limit,
    }


def measure_quality(work: Path, say: Callable[[str], None], *, faces: bool = True) -> dict:
    from lookalike.bench.dupset import build, pairs
    from lookalike.core.duplicates import fingerprint
    from lookalike.core.duplicates.finding import thresholds_for
    from lookalike.core.encoders import load_encoder
    from lookalike.core.index.imaging import decode_file

    t0 = time.perf_counter()
    photos = build(work / "dupset", faces=faces)
    say(f"duplicates: {len(photos)} labelled photos written in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    prints = [fingerprint.fingerprint_file(p.path) for p in photos]
    fp_ms = 1000 * (time.perf_counter() - t0) / len(photos)
    enc = load_encoder("offline")
    vecs = []
    for start in range(0, len(photos), 16):
        imgs = [decode_file(p.path, target=int(enc.image_size)).image for p in photos[start : start + 16]]
        vecs.append(enc.encode_images(imgs))
    v = np.concatenate(vecs)
    labelled = pairs(photos)
    a = np.fromiter((p.a for p in labelled), np.int64, len(labelled))
    b = np.fromiter((p.b for p in labelled), np.int64, len(labelled))
    pos = np.fromiter((p.positive for p in labelled), bool, len(labelled))
    kinds = np.array([p.kind for p in labelled])
    cos = np.einsum("ij,ij->i", v[a], v[b])
    bits = [pr.percept for pr in prints]
    dist = np.fromiter((fingerprint.distance(bits[i], bits[j]) for i, j in zip(a, b)), np.int64, len(labelled))
    th = thresholds_for("offline")
    rules = {}
    for rule, pred in _judge(cos, dist, th.near, fingerprint.PERCEPT_LIMIT).items():
        tp, fp = int((pred & pos).sum()), int((pred & ~pos).sum())
        per_kind = {}
        for k in sorted(set(kinds.tolist())):
            sel = kinds == k
            per_kind[k] = {"pairs": int(sel.sum()), "called": int((pred & sel).sum()), "positive": bool(pos[sel][0])}
        target = np.isin(kinds, TARGET_KINDS)
        rules[rule] = {
            "precision": tp / max(1, tp + fp),
            "recall": tp / max(1, int(pos.sum())),
            "recall_targets": float((pred & target).sum() / max(1, target.sum())),
            "true": tp,
            "false": fp,
            "kinds": per_kind,
        }
    margins = defaultdict(dict)
    for k in sorted(set(kinds.tolist())):
        sel = kinds == k
        margins[k] = {
            "cos_min": float(cos[sel].min()),
            "cos_max": float(cos[sel].max()),
            "dist_min": int(dist[sel].min()),
            "dist_max": int(dist[sel].max()),
        }
    end_to_end = _end_to_end(work, photos, labelled, say)
    return {
        "end_to_end": end_to_end,
        "photos": len(photos),
        "pairs": len(labelled),
        "positives": int(pos.sum()),
        "model": enc.id,
        "near_threshold": th.near,
        "percept_limit": fingerprint.PERCEPT_LIMIT,
        "fingerprint_ms": fp_ms,
        "rules": rules,
        "margins": dict(margins),
    }


def _end_to_end(work: Path, photos: list, labelled: list, say: Callable[[str], None]) -> dict:
    """The labelled photos indexed into a library and grouped by the finder itself (graph
    links, fingerprints, closure, complete linkage): pairs in one group against the labels."""
    import shutil

    from lookalike.core.duplicates.service import Duplicates
    from lookalike.core.engine import SearchEngine

    lib = work / "dupset-library"
    shutil.rmtree(lib, ignore_errors=True)
    t0 = time.perf_counter()
    with SearchEngine.open(lib, writer=True, create=True) as engine:
        engine.index([photos[0].path.parent])
        say(f"duplicates: labelled photos indexed in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        dups = Duplicates(engine)
        groups = dups.groups()
        seconds = time.perf_counter() - t0
        searched = dups.last_stats.extra.get("searched", -1)
    index = {p.path: i for i, p in enumerate(photos)}
    together: set[tuple[int, int]] = set()
    for g in groups:
        members = sorted(index[m.path] for m in g.members if m.path in index)
        together.update((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    tp = fp = pos = 0
    for p in labelled:
        hit = (p.a, p.b) in together
        per_kind[p.kind][0] += 1
        per_kind[p.kind][1] += int(hit)
        pos += int(p.positive)
        tp += int(hit and p.positive)
        fp += int(hit and not p.positive)
    return {
        "groups": len(groups),
        "seconds": seconds,
        "searched": searched,
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, pos),
        "false": fp,
        "kinds": {k: {"pairs": v[0], "called": v[1]} for k, v in per_kind.items()},
    }


SIMILAR_ORDER = (
    "burst: shifted or zoomed shot, 2-5 s apart",
    "stereo pair, 1 s apart",
    "same scene, hours apart",
    "other scene, seconds apart",
    "same person, other photo, seconds apart",
    "other photos, minutes or hours apart",
)
SIMILAR_SWEEP = (0.70, 0.75, 0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92)


def measure_similar(work: Path, say: Callable[[str], None], *, faces: bool = True) -> dict:
    """Similar shots on the timed set (:func:`lookalike.bench.dupset.build_bursts`): the
    photos indexed into a library (dates taken read from their EXIF) and grouped by the
    finder itself with every kind asked; a pair counts as called when both photos are in
    one similar group. Beside it, the pairs judged one by one the way the finder judges a
    pair (cosine at or above a threshold, taken within the burst window) over a range of
    thresholds: what the threshold for similar shots was set by."""
    import os
    import shutil

    from lookalike.bench.dupset import BURST_POSITIVES, build_bursts, burst_pairs
    from lookalike.core.duplicates.finding import BURST_SECONDS, DuplicateKind, thresholds_for
    from lookalike.core.duplicates.service import Duplicates
    from lookalike.core.engine import SearchEngine

    t0 = time.perf_counter()
    photos = build_bursts(work / "burstset", faces=faces)
    labelled = burst_pairs(photos)
    say(f"duplicates: {len(photos)} timed photos written in {time.perf_counter() - t0:.1f} s")
    lib = work / "burstset-library"
    shutil.rmtree(lib, ignore_errors=True)
    with SearchEngine.open(lib, writer=True, create=True) as engine:
        engine.index([photos[0].path.parent])
        rows = engine.catalog.query("SELECT id, path, taken FROM photos")
        by_name = {Path(os.fsdecode(path)).name: (pid, taken) for pid, path, taken in rows}
        ids = np.array([by_name[p.path.name][0] for p in photos], np.int64)
        dates_read = sum(1 for p in photos if by_name[p.path.name][1] == p.taken)
        got, vecs = engine.catalog.vectors_of(ids)
        order = {int(g): k for k, g in enumerate(got)}
        v = vecs[[order[int(i)] for i in ids]]
        t0 = time.perf_counter()
        groups = Duplicates(engine).groups(kinds=tuple(DuplicateKind))
        seconds = time.perf_counter() - t0
        model = engine.model_name
    index = {p.path.name: i for i, p in enumerate(photos)}
    together: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for g in groups:
        members = sorted(index[m.path.name] for m in g.members if m.path.name in index)
        together[str(g.kind)].update((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
    a = np.fromiter((p.a for p in labelled), np.int64, len(labelled))
    b = np.fromiter((p.b for p in labelled), np.int64, len(labelled))
    pos = np.fromiter((p.positive for p in labelled), bool, len(labelled))
    kinds = np.array([p.kind for p in labelled])
    cos = np.einsum("ij,ij->i", v[a], v[b])
    taken = np.array([p.taken for p in photos])
    close = np.abs(taken[a] - taken[b]) <= BURST_SECONDS
    similar = np.fromiter(((p.a, p.b) in together["similar"] for p in labelled), bool, len(labelled))
    as_near = np.fromiter(
        ((p.a, p.b) in together["near"] or (p.a, p.b) in together["exact"] for p in labelled), bool, len(labelled)
    )
    per_kind = {}
    for k in sorted(set(kinds.tolist())):
        sel = kinds == k
        per_kind[k] = {
            "pairs": int(sel.sum()),
            "positive": bool(pos[sel][0]),
            "called": int((similar & sel).sum()),
            "near": int((as_near & sel).sum()),
            "within_window": int((close & sel).sum()),
            "cos_min": float(cos[sel].min()),
            "cos_max": float(cos[sel].max()),
            "cos_max_in_window": float(cos[sel & close].max()) if (sel & close).any() else None,
        }
    sweep = {}
    for t in SIMILAR_SWEEP:
        pred = (cos >= t) & close
        tp, fp = int((pred & pos).sum()), int((pred & ~pos).sum())
        sweep[f"{t:.2f}"] = {"precision": tp / max(1, tp + fp), "recall": tp / max(1, int(pos.sum())), "false": fp}
    tp, fp = int((similar & pos).sum()), int((similar & ~pos).sum())
    return {
        "photos": len(photos),
        "pairs": len(labelled),
        "positives": int(pos.sum()),
        "dates_read": dates_read,
        "model": model,
        "threshold": thresholds_for(model).similar,
        "burst_seconds": BURST_SECONDS,
        "groups": sum(1 for g in groups if g.kind is DuplicateKind.SIMILAR),
        "seconds": seconds,
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, int(pos.sum())),
        "false": fp,
        "kinds": per_kind,
        "sweep": sweep,
        "positive_kinds": [str(k) for k in BURST_POSITIVES],
    }


def _synthetic_library(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """(vectors, original-of index or -1, fingerprints): 3% of photos with 1-3 near copies."""
    from lookalike.bench.scale import EmbeddingModel
    from lookalike.core.duplicates.fingerprint import PERCEPT_BYTES

    rng = np.random.default_rng(seed)
    n_orig = int(n / 1.06)
    base = EmbeddingModel(dim, clusters=max(8, n // 60), seed=seed).sample(n_orig, seed + 1)
    sources = rng.choice(n_orig, size=int(0.03 * n_orig), replace=False)
    reps = rng.integers(1, 4, size=len(sources))
    src = np.repeat(sources, reps)[: n - n_orig]
    copies = base[src] + rng.normal(0, 0.15 / np.sqrt(dim), size=(len(src), dim)).astype(np.float32)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    vecs = np.concatenate([base, copies]).astype(np.float32)
    origin = np.concatenate([np.full(n_orig, -1), src])
    bits = rng.integers(0, 256, size=(len(vecs), PERCEPT_BYTES), dtype=np.uint8)
    for i in range(n_orig, len(vecs)):
        row = bits[origin[i]].copy()
        flip = rng.choice(PERCEPT_BYTES * 8, size=int(rng.integers(0, 40)), replace=False)
        np.bitwise_xor.at(row, flip // 8, (1 << (flip % 8)).astype(np.uint8))
        bits[i] = row
    return vecs, origin, [r.tobytes() for r in bits]


def measure_all_pairs(
    n: int, dim: int, say: Callable[[str], None], work: Path, *, threads: int = -1, search: bool = False
) -> dict:
    """Every pair of an ``n``-photo library: the saved graph's links read and scored, the
    candidates' fingerprints compared, groups formed (what the finder does); with
    ``search``, also the fallback that searches the graph for every photo."""
    import os

    from lookalike.core.duplicates import fingerprint
    from lookalike.core.duplicates.finding import (
        PAIRS_EF,
        close_groups,
        graph_link_pairs,
        group_pairs,
        neighbour_pairs,
        thresholds_for,
    )
    from lookalike.core.store.vectors import VectorIndex

    t0 = time.perf_counter()
    vecs, origin, bits = _synthetic_library(n, dim)
    ids = np.arange(1, len(vecs) + 1)
    say(f"duplicates: {len(vecs):,} synthetic vectors of {dim} in {time.perf_counter() - t0:.1f} s; building the graph")
    t0 = time.perf_counter()
    index = VectorIndex(dim, capacity=len(vecs))
    index.add(ids, vecs, num_threads=threads)
    build_s = time.perf_counter() - t0
    folder = work / "all-pairs-graph"
    folder.mkdir(parents=True, exist_ok=True)
    index.save(folder, 1)
    say(f"duplicates: graph built in {build_s:.0f} s; every pair")
    near = thresholds_for("offline").near
    planted = np.flatnonzero(origin >= 0)
    out: dict = {
        "n": len(vecs),
        "dim": dim,
        "threads": threads if threads > 0 else os.cpu_count(),
        "build_s": build_s,
        "planted": len(planted),
        "ef": PAIRS_EF,
    }

    def finish(a: np.ndarray, b: np.ndarray, t_pairs: float, cpu0: float, t0: float) -> dict:
        t1 = time.perf_counter()
        edges: dict[tuple[int, int], float] = {}
        for x, y in zip(a.tolist(), b.tolist()):
            d = fingerprint.distance(bits[x - 1], bits[y - 1])
            if d <= fingerprint.PERCEPT_LIMIT:
                edges[(x, y)] = 0.01 + 0.98 * d / (fingerprint.PERCEPT_LIMIT + 1)
        prints = {i: fingerprint.Fingerprint(bits[i - 1], 0, "") for i in {v for e in edges for v in e}}
        close_groups(
            lambda part: (np.asarray(part, np.int64), vecs[np.asarray(part, np.int64) - 1]),
            edges,
            prints,
            lambda more: {i: fingerprint.Fingerprint(bits[i - 1], 0, "") for i in more},
            near,
            {},
        )
        t_fp = time.perf_counter() - t1
        t2 = time.perf_counter()
        groups = group_pairs(edges)
        t_group = time.perf_counter() - t2
        where = {v: gi for gi, g in enumerate(groups) for v in g}
        found = sum(1 for i in planted if where.get(int(i) + 1, -1) == where.get(int(origin[i]) + 1, -2))
        return {
            "pairs_s": t_pairs,
            "confirm_s": t_fp,  # fingerprints compared, pairs within each part of copies closed
            "group_s": t_group,
            "total_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - cpu0,
            "candidates": len(a),
            "confirmed": len(edges),
            "groups": len(groups),
            "planted_found": found,
        }

    cpu0, t0 = time.process_time(), time.perf_counter()
    linked = graph_link_pairs(folder / VectorIndex.GRAPH, dim, near, ids)
    assert linked is not None
    a, b, _, _ = linked
    out["links"] = finish(a, b, time.perf_counter() - t0, cpu0, t0)
    say(f"duplicates: along the graph's links {out['links']['total_s']:.1f} s")
    if search:
        cpu0, t0 = time.process_time(), time.perf_counter()
        a, b, _ = neighbour_pairs(index, near, num_threads=threads)
        out["search"] = finish(a, b, time.perf_counter() - t0, cpu0, t0)
        say(f"duplicates: searching the graph for every photo {out['search']['total_s']:.1f} s")
    return out


def run(bench) -> None:
    """Called by ``lookalike bench --only duplicates``."""
    from lookalike.core.duplicates.finding import thresholds_for

    out: dict = {"quality": measure_quality(bench.work, bench.say, faces=not bench.quick)}
    out["similar"] = measure_similar(bench.work, bench.say, faces=not bench.quick)
    n = 2_000 if bench.quick else 100_000
    dim = bench.cfg.get("dim") or 1664
    out["all_pairs"] = measure_all_pairs(n, dim, bench.say, bench.work, search=not bench.quick)
    out["thresholds"] = {m: vars(thresholds_for(m)) for m in ("offline", "clip", "resnet50")}
    bench.results["duplicates"] = out


def render(d: dict) -> list[str]:
    """The report's section."""
    L = ["## Duplicates\n"]
    q = d.get("quality")
    if q:
        L.append(
            f"Labelled pairs: {q['photos']} real photos and altered copies, {q['pairs']:,} pairs "
            f"({q['positives']} near-duplicate pairs). Model `{q['model']}`, vector threshold "
            f"{q['near_threshold']:.2f}, fingerprint limit {q['percept_limit']} of 512 bits. "
            "CLIP is not measured (no real weights without a network; random weights mean nothing here).\n"
        )
        rules = q["rules"]
        names = list(rules)
        L.append("| kind | pairs | " + " | ".join(names) + " |")
        L.append("|---|---|" + "---|" * len(names))
        kinds = rules[names[0]]["kinds"]
        order = [k for k in POSITIVE_ORDER if k in kinds] + sorted(k for k in kinds if k not in POSITIVE_ORDER)
        for k in order:
            info = kinds[k]
            label = f"{k} (recall)" if info["positive"] else f"{k} (called duplicates)"
            cells = []
            for r in names:
                ki = rules[r]["kinds"][k]
                cells.append(f"{ki['called'] / ki['pairs']:.3f}" if info["positive"] else f"{ki['called']}")
            L.append(f"| {label} | {info['pairs']:,} | " + " | ".join(cells) + " |")
        for what in ("precision", "recall", "recall_targets"):
            label = {
                "precision": "**precision** (all pairs)",
                "recall": "**recall** (all positives)",
                "recall_targets": "**recall** resized/recompressed/rotated",
            }[what]
            L.append(f"| {label} | | " + " | ".join(f"{rules[r][what]:.4f}" for r in names) + " |")
        L.append("")
        e = q.get("end_to_end")
        if e:
            target = sum(e["kinds"].get(k, {}).get("called", 0) for k in TARGET_KINDS)
            target_n = sum(e["kinds"].get(k, {}).get("pairs", 0) for k in TARGET_KINDS)
            L.append(
                f"End to end (the labelled photos indexed, then grouped by the finder: graph links, "
                f"fingerprints, complete linkage): {e['groups']} groups in {e['seconds']:.1f} s; pairwise "
                f"precision **{e['precision']:.4f}** ({e['false']} pairs wrongly grouped), recall "
                f"**{e['recall']:.4f}**, resized/recompressed/rotated {target / max(1, target_n):.4f}.\n"
            )
        L.append(f"Fingerprinting a photo from its file (decode + pHash + dHash): {q['fingerprint_ms']:.1f} ms.\n")
    s = d.get("similar")
    if s:
        L.extend(render_similar(s))
    ap = d.get("all_pairs")
    if ap:
        L.append(
            f"Every pair at {ap['n']:,} photos ({ap['dim']}-d, {ap['threads']} threads, {ap['planted']:,} planted "
            f"copies; the graph, built by indexing, took {ap['build_s']:.0f} s here):\n"
        )
        L.append(
            "| how | wall s | CPU s | pairs s | fingerprints s | grouping s | candidates | confirmed | groups | planted copies grouped |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for key, label in (
            ("links", "the saved graph's links (the finder)"),
            ("search", f"searching the graph, ef {ap['ef']}"),
        ):
            r = ap.get(key)
            if r:
                L.append(
                    f"| {label} | **{r['total_s']:.1f}** | {r['cpu_s']:.1f} | {r['pairs_s']:.1f} | {r['confirm_s']:.2f} | "
                    f"{r['group_s']:.2f} | {r['candidates']:,} | {r['confirmed']:,} | {r['groups']:,} | "
                    f"{r['planted_found']:,} |"
                )
        L.append("")
    return L


def render_similar(s: dict) -> list[str]:
    """The similar-shots table: pairs called per kind, precision and recall."""
    L = [
        f"Similar shots (kind `similar`): {s['photos']} photos with their dates taken "
        f"({s['dates_read']} read back from EXIF), {s['pairs']:,} pairs ({s['positives']} similar-shot pairs), "
        f"grouped by the finder itself with every kind asked: {s['groups']} similar groups in "
        f"{s['seconds']:.1f} s. Model `{s['model']}`, similar threshold {s['threshold']:.2f}, "
        f"taken at most {s['burst_seconds']:.0f} s apart.\n",
        "| kind | pairs | called similar | grouped as near | within the window | cosine min-max |",
        "|---|---|---|---|---|---|",
    ]
    kinds = s["kinds"]
    order = [k for k in SIMILAR_ORDER if k in kinds] + sorted(k for k in kinds if k not in SIMILAR_ORDER)
    for k in order:
        ki = kinds[k]
        what = "recall" if ki["positive"] else "called"
        called = f"{ki['called'] / ki['pairs']:.3f}" if ki["positive"] else f"{ki['called']}"
        L.append(
            f"| {k} ({what}) | {ki['pairs']:,} | {called} | {ki['near']} | {ki['within_window']:,} | "
            f"{ki['cos_min']:.2f}-{ki['cos_max']:.2f} |"
        )
    L.append(f"| **precision** | | **{s['precision']:.4f}** | | | |")
    L.append(f"| **recall** | | **{s['recall']:.4f}** | | | |")
    L.append("")
    L.append("Pairs judged one by one (cosine at or above the threshold, taken within the window):\n")
    L.append("| threshold | " + " | ".join(s["sweep"]) + " |")
    L.append("|---|" + "---|" * len(s["sweep"]))
    L.append("| precision | " + " | ".join(f"{r['precision']:.3f}" for r in s["sweep"].values()) + " |")
    L.append("| recall | " + " | ".join(f"{r['recall']:.3f}" for r in s["sweep"].values()) + " |")
    L.append("")
    return L
