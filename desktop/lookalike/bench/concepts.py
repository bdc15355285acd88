"""The `concepts` bench section and the comparison behind docs/concepts.md.

* :func:`compare` - few-shot concepts on labelled real photos
  (:mod:`lookalike.bench.labelled`): centroid, logistic probe, triplet metric,
  the leave-one-out choice among them, and a plain text query, by precision@10,
  precision@20 and average precision against the number of examples.
* the tags' thresholds and their held-out precision: :mod:`lookalike.bench.tagcal`.
* :func:`measure_latency` - teaching, a mark's retraining and a filtered query
  at 100k photos (synthetic vectors: the cost does not depend on what they show);
  :func:`measure_cli` - the same as whole ``lookalike`` processes (wall and CPU);
  :func:`measure_scroll` - the window's Browse and search grids scrolled on that
  library (:mod:`lookalike.bench.window_scroll`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lookalike.bench.labelled import Labelled
from lookalike.core.learning.scorers import Method, TrainingSet, average_precision, choose_method, one_thread, train

EXAMPLE_COUNTS = (1, 3, 5, 10)
ROWS = ("centroid", "probe", "metric", "chosen (leave-one-out)", "text query")


def encode_labelled(labelled: Labelled, encoder) -> tuple[list[str], np.ndarray]:
    """Every labelled photo's vector, decoded the way the indexer decodes."""
    from lookalike.core.index.imaging import decode_file

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
                    with one_thread():
                        s = train(method, data).scores(vectors[rest])
                    acc[str(method)].append(_ranking_metrics(s, relevant))
                if choose:
                    with one_thread():
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


def _library(folder: Path, n: int, say: Callable[[str], None], reuse: bool):
    """The latency library: the one in ``folder`` when asked to reuse it and it has ``n``
    photos, else built anew. Returns (engine, cluster label of each photo by id)."""
    if reuse and (folder / "lib" / "vectors.json").exists():
        import json

        from lookalike.core.engine import SearchEngine

        engine = SearchEngine.open(folder / "lib", writer=True)
        labels = json.loads((folder / "labels.json").read_text()) if (folder / "labels.json").exists() else None
        if engine.catalog.photo_count() == n and labels is not None:
            return engine, {int(k): v for k, v in labels.items()}
        engine.close()
    engine, by_id = build_library(folder, n, say)
    import json

    (folder / "labels.json").write_text(json.dumps(by_id))
    return engine, by_id


def build_library(folder: Path, n: int, say: Callable[[str], None], seed: int = 0):
    """A library of ``n`` photos with offline-model-sized synthetic vectors in clusters, dates
    over 2015-2025, three shapes and three kinds; the first 20 are real (tiny) files, so that
    they can be taught as examples. Returns (engine, cluster label of each photo by id)."""
    import shutil

    from lookalike.core.encoders import offline
    from lookalike.core.engine import SearchEngine
    from lookalike.core.store.catalog import NewPhoto
    from lookalike.core.store.library import ModelRecord

    shutil.rmtree(folder, ignore_errors=True)
    dim = offline.VISUAL_DIM + offline.CONCEPT_DIM
    engine = SearchEngine.open(folder / "lib", writer=True, create=True)
    record = ModelRecord("offline", offline.ENCODER_ID, offline.recipe_checksum(), dim)
    engine.library.bind_model(record)
    root = folder / "photos"
    (root / "real").mkdir(parents=True)
    lib_folder = engine.catalog.add_folder(root)
    rng = np.random.default_rng(seed)
    # Embedding-like vectors (the query bench's model: skewed clusters on a low-rank basis).
    from lookalike.bench.scale import EmbeddingModel

    model = EmbeddingModel(dim, clusters=max(50, n // 200), seed=21)
    weights = rng.pareto(1.5, model.clusters) + 1.0
    weights /= weights.sum()
    labels = rng.choice(model.clusters, size=n, p=weights)
    labels[:20] = 7  # the real files are one cluster: a concept to teach

    def embed(cid: np.ndarray) -> np.ndarray:
        spread = rng.uniform(0.15, 0.45, size=(len(cid), 1)).astype(np.float32)
        z = rng.normal(size=(len(cid), model.rank)).astype(np.float32)
        x = model.centres[cid] + spread * (z @ model.basis) / np.sqrt(model.rank)
        x += rng.normal(0, 0.25 / np.sqrt(dim), size=x.shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    t_lo, t_hi = time.mktime((2015, 1, 1, 0, 0, 0, 0, 0, -1)), time.mktime((2025, 12, 31, 0, 0, 0, 0, 0, -1))
    kinds = np.array([".jpg", ".heic", ".png"])
    t0 = time.perf_counter()
    ids: list[int] = []
    for s in range(0, n, 5000):
        m = min(5000, n - s)
        x = embed(labels[s : s + m])
        taken = rng.uniform(t_lo, t_hi, m)
        kind = kinds[rng.choice(3, m, p=[0.8, 0.15, 0.05])]
        shape = rng.choice(3, m, p=[0.6, 0.3, 0.1])
        rows = []
        for i in range(m):
            k = s + i
            if k < 20:
                path = root / "real" / f"IMG_{k:07d}.jpg"
                path.write_bytes(b"x" * (k + 1))
            else:
                path = root / f"{k // 1000:04d}" / f"IMG_{k:07d}{kind[i]}"
            w, h = ((4032, 3024), (3024, 4032), (3000, 3000))[shape[i]]
            rows.append(NewPhoto(path, lib_folder.id, 3_000_000 + k, int(taken[i] * 1e9), f"{k:032x}", w, h,
                                 float(taken[i]) if i % 5 else None, x[i]))  # fmt: skip
        ids += engine.catalog.commit_batch(added=rows)
        say(f"  {s + m:,} photos in the catalog ({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    vectors = engine.vectors()
    say(f"  graph built in {time.perf_counter() - t0:.0f} s")
    if n > 20_000:  # as indexing does
        ef, recall = vectors.tune_ef(k=50)
        engine.catalog.set_meta({"hnsw_ef": ef, "hnsw_recall_at_50": f"{recall:.4f}"})
        engine._save_graph()
        say(f"  ef tuned to {ef} (recall@50 {recall:.3f})")
    by_id = dict(zip(ids, labels.tolist()))
    return engine, by_id


def _run_cli(args: list[str], repeats: int) -> dict:
    """A command line as whole processes: median wall and CPU seconds (the child's user +
    system time) over ``repeats`` runs."""
    import os
    import resource
    import subprocess
    import sys

    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "lookalike", *args], check=True, capture_output=True, env=dict(os.environ)
        )
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return dict(wall_s=statistics.median(walls), cpu_s=statistics.median(cpus), runs=repeats)


def measure_cli(folder: Path, repeats: int = 3) -> dict:
    """``lookalike teach`` (5 examples), ``concepts mark`` and filtered searches as whole
    processes on the latency library."""
    lib = str(folder / "lib")
    real = sorted(str(p) for p in (folder / "photos" / "real").iterdir())
    out = {
        "teach from 5 examples": _run_cli(["teach", "--library", lib, "cli bench", *real[:5]], repeats),
        "a mark (right)": _run_cli(["concepts", "mark", "--library", lib, "cli bench", real[6], "--right"], repeats),
    }
    for text in ("a dog year:2023", "a dog shape:portrait after:2020", "a dog"):
        out[f"search '{text}'"] = _run_cli(["search", "--library", lib, "-k", "50", text], repeats)
    _run_cli(["concepts", "delete", "--library", lib, "cli bench"], 1)
    return out


def measure_latency(folder: Path, n: int, say: Callable[[str], None], repeats: int = 5, *, reuse: bool = False) -> dict:
    """Teach (with the leave-one-out choice), a mark's retraining, filtered queries and a
    filtered browse, on a library of ``n`` synthetic photos (``reuse``: the one built before
    in ``folder``, when it has ``n`` photos). Medians over ``repeats``; each filtered query
    also checked: every answer passes the filter, recall@50 against exact."""
    from lookalike.core.search.browse import allowed_ids
    from lookalike.core.search.parse import parse

    engine, label_of = _library(folder, n, say, reuse)
    try:
        concepts = engine.learner().concepts
        examples = sorted((folder / "photos" / "real").iterdir())
        t0 = time.perf_counter()
        concepts.teach("warm-up", examples[:3])  # the first in a process: imports torch for the metric
        load = time.perf_counter() - t0
        concepts.delete("warm-up")
        teach, mark = [], []
        learned = None
        for r in range(repeats):
            name = f"bench {r}"
            t0 = time.perf_counter()
            learned = concepts.teach(name, examples[:5])
            teach.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            concepts.mark(name, learned.offered[0], right=label_of.get(learned.offered[0]) == 7)
            mark.append(time.perf_counter() - t0)
            if r:
                concepts.delete(f"bench {r - 1}")
        assert learned is not None
        members = concepts.photo_ids(learned.concept.name)
        right = np.mean([label_of.get(int(i)) == 7 for i in members]) if len(members) else 0.0
        queries = {
            "year:2023 (about 9%)": "a dog year:2023",
            "kind:jpeg (80%)": "a dog kind:jpeg",
            "shape:portrait after:2020 (about 17%)": "a dog shape:portrait after:2020",
            f"#concept + text ({learned.concept.photos} photos)": f'#"{learned.concept.name}" + a dog',
        }
        vectors = engine.vectors()
        qrows = []
        for label, text in queries.items():
            q = parse(text)
            t0 = time.perf_counter()
            engine.search(q, k=50)  # the first under this filter: its vectors read from the graph file
            first = time.perf_counter() - t0
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                res = engine.search(q, k=50)
                times.append(time.perf_counter() - t0)
            vec = engine.embed(q)
            parts = []
            for _ in range(repeats):  # the filter and the ranking alone, without the text encoder
                t0 = time.perf_counter()
                allowed = allowed_ids(engine.catalog, q, concepts=concepts)
                hits = vectors.search(vec, 66, allowed=allowed)
                engine.catalog.photos_by_ids(hits.ids.tolist())
                parts.append(time.perf_counter() - t0)
            exact = vectors.search(vec, 50, allowed=allowed, exact=True)
            got = {r.photo_id for r in res}
            qrows.append(
                dict(
                    query=label,
                    allowed=int(len(allowed)) if allowed is not None else n,
                    seconds=statistics.median(times),
                    first_s=first,
                    filter_and_rank_s=statistics.median(parts),
                    all_pass=bool(got <= set(np.asarray(allowed).tolist())),
                    recall_at_50=len(got & set(exact.ids.tolist())) / max(1, min(50, len(exact.ids))),
                )
            )
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            engine.browse(parse("year:2021 kind:heic"), limit=500)
            times.append(time.perf_counter() - t0)
        return dict(
            photos=n,
            dim=int(vectors.dim),
            matrix_load_s=load,
            teach_s=statistics.median(teach),
            mark_s=statistics.median(mark),
            concept_photos=int(learned.concept.photos),
            concept_precision=float(right),
            method=learned.concept.method,
            queries=qrows,
            browse_s=statistics.median(times),
        )
    finally:
        engine.close()


def latency_table(res: dict) -> str:
    lines = [
        f"{res['photos']:,} photos, {res['dim']}-d vectors (medians):",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| the first teach in a process (3 examples; imports torch for the metric) | {res['matrix_load_s']:.2f} |",
        f"| teach from 5 examples (leave-one-out over 3 methods, score {res['photos']:,} photos, store) "
        f"| {res['teach_s']:.3f} |",
        f"| a mark: retrain, re-score, store, offer the least sure | {res['mark_s']:.3f} |",
        f"| browse a filter (year:2021 kind:heic), first 500 | {res['browse_s']:.3f} |",
        "",
        "| filtered query, k=50 | photos allowed | first under the filter, s | whole search, s "
        "| filter + ranking, s | every answer passes | recall@50 vs exact |",
        "|---|---|---|---|---|---|---|",
    ]
    for q in res["queries"]:
        lines.append(
            f"| `{q['query']}` | {q['allowed']:,} | {q.get('first_s', float('nan')):.3f} | {q['seconds']:.3f} "
            f"| {q['filter_and_rank_s']:.3f} | {q['all_pass']} | {q['recall_at_50']:.2f} |"
        )
    cli = res.get("cli")
    if cli:
        lines += [
            "",
            "Whole processes (`lookalike ...` on the same library; medians of "
            f"{next(iter(cli.values()))['runs']} runs):",
            "",
            "| command | wall, s | CPU, s |",
            "|---|---|---|",
        ]
        lines += [f"| {k} | {v['wall_s']:.2f} | {v['cpu_s']:.2f} |" for k, v in cli.items()]
    return "\n".join(lines)


# -- the bench section ----------------------------------------------------------------


def measure_quality(work: Path, say: Callable[[str], None], trials: int) -> dict:
    """The comparison table, with the offline model on the labelled photos."""
    from lookalike.bench.labelled import build
    from lookalike.core.encoders import load_encoder

    lab = build(work / "labelled")
    enc = load_encoder("offline")
    t0 = time.perf_counter()
    rels, vecs = encode_labelled(lab, enc)
    say(f"  {len(rels)} labelled photos encoded in {time.perf_counter() - t0:.0f} s")
    text = {k: enc.encode_texts([v])[0] for k, v in lab.text.items()}
    rows = compare(rels, vecs, lab, text, trials=trials)
    return dict(photos=len(rels), trials=trials, rows=rows)


def run(bench) -> None:
    """Called by ``lookalike bench --only concepts``."""
    out: dict = {}
    if not bench.quick:
        out["quality"] = measure_quality(bench.work, bench.say, trials=5)
        from lookalike.bench import tagcal

        out["tags"] = tagcal.measure(bench.work, bench.say)  # None: the bench's data files are not here
    n = 2_000 if bench.quick else 100_000
    bench.say(f"concepts: teaching and filtered queries at {n:,} photos")
    folder = bench.work / "concepts-latency"
    out["latency"] = measure_latency(folder, n, bench.say, repeats=1 if bench.quick else 5, reuse=bench.keep_work)
    out["latency"]["cli"] = measure_cli(folder, repeats=1 if bench.quick else 3)
    out["scroll"] = measure_scroll(bench, folder)
    bench.results["concepts"] = out


def measure_scroll(bench, folder: Path) -> dict | None:
    """Browse and search grids scrolled in the real window on the latency library. Its photo
    folder is moved away meanwhile, so that the window's catch-up scan finds it offline and
    keeps the photos (as for a disk not plugged in): the files are not there to read."""
    import importlib.util

    from lookalike.bench import window_scroll

    if importlib.util.find_spec("PySide6") is None:
        bench.say("  window scroll: no PySide6 here; skipped")
        return None
    photos, away = folder / "photos", folder / "photos.offline"
    photos.rename(away)
    try:
        return window_scroll.run(bench, folder / "lib", bench.say)
    finally:
        away.rename(photos)


def render(d: dict) -> list[str]:
    """The report's section."""
    L = ["## Concepts and filters\n"]
    q = d.get("quality")
    if q:
        L.append(
            f"Few-shot concepts on {q['photos']} labelled real photos, offline model, {q['trials']} random draws "
            "of the examples; cells are precision@10 / precision@20 / average precision, averaged over the "
            "concepts with enough members.\n"
        )
        L.append(table(q["rows"]))
        L.append("")
    from lookalike.bench import tagcal

    if d.get("tags"):
        L += [
            "Tag thresholds and their held-out precision (`python -m lookalike.bench.tagcal`):",
            "",
            tagcal.table(d["tags"]),
            "",
        ]
    lat = d.get("latency")
    if lat:
        L.append(latency_table(lat))
        L.append("")
    from lookalike.bench import window_scroll

    L += window_scroll.render(d.get("scroll"))
    return L
