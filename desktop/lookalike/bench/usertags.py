"""Suggestions of a user tag, from 1, 3, 5 and 10 tagged photos, on labelled real photos.

The photos: the labelled pool of :mod:`lookalike.bench.tagcal` (745 images of Debian and
Python packages, each labelled by looking at it). A subject is a tag of the vocabulary
that at least :data:`MIN_MEMBERS` photos carry (a photo where it is arguable, ``maybe``,
is left out of that subject's ranking). For each subject and each count, ``TRIALS`` random
draws of the tagged photos; the rest of the pool is ranked as ``lookalike tag suggest``
ranks it (the method the tag chooses by leave-one-out, and each method alone), against the
subject's word as a text query ("a photo of a windmill"), by precision@10.

Then one review, as a user does in the window: the wrong photos among the first ten are
rejected (counter-examples) and the right ones accepted, the tag learns again, and the next
ten are scored; a rejected photo is never among them (checked).

``python -m lookalike.bench.usertags [WORK]`` prints the table.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lookalike.core.learning.scorers import Method, TrainingSet, choose_method, one_thread, train

COUNTS = (1, 3, 5, 10)
MIN_MEMBERS = 15
TRIALS = 10
BACKGROUND = 256
#: Tags that name a kind of picture rather than a subject a person tags.
NOT_SUBJECTS = frozenset({"outdoor", "indoor", "close-up", "art", "text", "landscape"})
ROWS = (
    "chosen (leave-one-out)",
    "centroid",
    "probe",
    "metric",
    "text query",
    "chosen + the tag's name as text",
    "after one review (next 10)",
)


def _p10(scores: np.ndarray, relevant: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")[:10]
    return float(relevant[order].mean())


def run_subject(vectors, members, excluded, text_vec, n, rng, trials=TRIALS) -> dict[str, list[float]]:
    acc: dict[str, list[float]] = {r: [] for r in ROWS}
    pool = np.setdiff1d(np.arange(len(vectors)), excluded)
    for _ in range(trials):
        ex = rng.choice(members, size=n, replace=False)
        rest = np.setdiff1d(pool, ex)
        relevant = np.isin(rest, members)
        bg = np.sort(rng.choice(rest, size=min(BACKGROUND, len(rest)), replace=False))
        data = TrainingSet(vectors[ex], vectors[:0], vectors[bg])
        with one_thread():
            scored = {m: train(m, data).scores(vectors[rest]) for m in Method}
            pick = choose_method(data).method
        for m in Method:
            acc[str(m)].append(_p10(scored[m], relevant))
        acc["chosen (leave-one-out)"].append(_p10(scored[pick], relevant))
        acc["text query"].append(_p10(vectors[rest] @ text_vec, relevant))
        # what the photos teach plus the tag's own word, equal weights (not tuned on this pool)
        both = train(pick, data).direction + text_vec
        acc["chosen + the tag's name as text"].append(_p10(vectors[rest] @ (both / np.linalg.norm(both)), relevant))
        # one review: first ten accepted (right) or rejected (wrong), learned again (same method)
        first = np.argsort(-scored[pick], kind="stable")[:10]
        right, wrong = rest[first[relevant[first]]], rest[first[~relevant[first]]]
        data2 = TrainingSet(vectors[np.concatenate([ex, right])], vectors[wrong], vectors[bg])
        with one_thread():
            s2 = train(pick, data2).scores(vectors[rest])
        s2[first] = -np.inf  # reviewed: tagged or rejected, never suggested again
        nxt = np.argsort(-s2, kind="stable")[:10]
        assert not np.isin(rest[nxt], wrong).any()  # a rejected photo never returns
        acc["after one review (next 10)"].append(float(relevant[nxt].mean()))
    return acc


def measure(work: Path, say: Callable[[str], None], trials: int = TRIALS, seed: int = 0) -> dict | None:
    from lookalike.bench import tagcal
    from lookalike.core.encoders import load_encoder
    from lookalike.core.learning import tags as T

    if not tagcal.DATA.is_file():
        say(f"  user tags: skipped, {tagcal.DATA} is not here")
        return None
    cache = Path(os.environ.get("LOOKALIKE_BENCH_CACHE", work / "cache")) / "tag-photos"
    pool = tagcal.pip_labelled(work) + tagcal.fetch(cache, say)
    items = [it for it, _ in pool]
    enc = load_encoder("offline")
    saved = work / "usertags-vectors.npy"  # the pool's vectors, kept between runs of the same pool
    if saved.is_file() and np.load(saved).shape[0] == len(pool):
        vectors = np.load(saved)
    else:
        vectors = tagcal.encode([p for _, p in pool], enc)
        np.save(saved, vectors)
    rng = np.random.default_rng(seed)
    rows = []
    for tag in T.TAG_NAMES:
        if tag in NOT_SUBJECTS:
            continue
        members = np.array([i for i, it in enumerate(items) if tag in it.tags])
        if len(members) < MIN_MEMBERS:
            continue
        excluded = np.array([i for i, it in enumerate(items) if tag in it.maybe and tag not in it.tags], np.int64)
        text_vec = np.asarray(enc.encode_texts([T.prompt(tag)])[0], np.float32)
        for n in COUNTS:
            acc = run_subject(vectors, members, excluded, text_vec, n, rng, trials)
            rows += [
                dict(subject=tag, members=int(len(members)), tagged=n, method=k, p10=statistics.mean(v))
                for k, v in acc.items()
                if v
            ]
        say(f"  user tags: {tag} ({len(members)} photos) done")
    return dict(images=len(items), trials=trials, rows=rows)


def table(d: dict) -> str:
    rows = d["rows"]
    subjects = sorted({r["subject"] for r in rows})
    lines = [
        f"Suggestion precision@10 on {d['images']} labelled images, {len(subjects)} subjects, "
        f"{d['trials']} draws each (mean over subjects):",
        "",
        "| method | " + " | ".join(f"{n} tagged" for n in COUNTS) + " |",
        "|---|" + "---|" * len(COUNTS),
    ]
    for m in ROWS:
        cells = []
        for n in COUNTS:
            sel = [r["p10"] for r in rows if r["method"] == m and r["tagged"] == n]
            cells.append(f"{statistics.mean(sel):.3f}" if sel else "-")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "| subject (photos) | chosen @5 | text query | after review @5 |", "|---|---|---|---|"]
    for s in subjects:
        get = {(r["method"], r["tagged"]): r for r in rows if r["subject"] == s}
        members = next(iter(get.values()))["members"]
        cells = [get.get((m, 5), {}).get("p10") for m in (ROWS[0], "text query", ROWS[-1])]
        lines.append(f"| {s} ({members}) | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/lookalike-bench-usertags")
    work.mkdir(parents=True, exist_ok=True)
    result = measure(work, lambda s: print(s, file=sys.stderr), trials=int(os.environ.get("TRIALS", TRIALS)))
    if result is not None:
        print(table(result))
