"""`lookalike bench --only text`: text in photos, on labelled photos with text and without.

The set is :mod:`lookalike.bench.textset` (signs put into real photos, photographed
documents and receipts, screenshots, real photos without text; how each is made is
said there). Measured:

* ``text:WORD`` for every word some photo shows: recall (photos showing it that are
  found) and precision (photos found that show it), pooled over all words, and by kind;
* words of the vocabulary that no photo shows: how many find anything (should be none);
* CPU milliseconds a photo to read, photos with text and without (process CPU time,
  all threads, decode excluded);
* indexing through the engine with text on and off: when the photos were searchable by
  likeness (the last likeness commit) and when all text was read.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path


def _index(folder: Path, lib: Path, text: bool) -> dict:
    from lookalike.core.progress import Stage
    from lookalike.core.search import SearchEngine

    before = os.environ.get("LOOKALIKE_TEXT")
    os.environ["LOOKALIKE_TEXT"] = "1" if text else "0"
    marks: dict[str, float] = {}
    try:
        t0 = time.perf_counter()

        def progress(p) -> None:
            now = time.perf_counter() - t0
            if p.stage == Stage.ENCODE and p.total and p.done == p.total:
                marks.setdefault("searchable_s", now)
            if p.stage == Stage.TEXT:
                marks.setdefault("text_started_s", now)

        with SearchEngine.open(lib, writer=True) as engine:
            engine.index([folder], progress=progress)
        marks["total_s"] = time.perf_counter() - t0
        return marks
    finally:
        if before is None:
            os.environ.pop("LOOKALIKE_TEXT", None)
        else:
            os.environ["LOOKALIKE_TEXT"] = before


def quality(lib: Path, labels) -> dict:
    from lookalike.core.search import SearchEngine

    words: dict[str, set[str]] = {}
    for name, shown in labels.words.items():
        for w in shown:
            words.setdefault(w, set()).add(name)
    tp = fp = fn = 0
    by_kind: dict[str, list[int]] = {}
    wrong: list[str] = []
    with SearchEngine.open(lib, writer=False) as engine:
        for word, want in sorted(words.items()):
            got = {r.path.name for r in engine.search(f"text:{word}", k=1000)}
            tp += len(got & want)
            fp += len(got - want)
            fn += len(want - got)
            for name in want:
                by_kind.setdefault(labels.kinds[name], [0, 0])[0 if name in got else 1] += 1
            wrong += [f"{word}: {n}" for n in sorted(got - want)]
        absent_hits = {w: len(engine.search(f"text:{w}", k=1000)) for w in labels.absent}
    return {
        "words": len(words),
        "recall": tp / max(1, tp + fn),
        "precision": tp / max(1, tp + fp),
        "by_kind": {k: v[0] / max(1, sum(v)) for k, v in sorted(by_kind.items())},
        "false_hits": wrong[:20],
        "absent_words": len(absent_hits),
        "absent_words_found": sum(1 for n in absent_hits.values() if n),
    }


def free_text(lib: Path, labels, k: int = 10) -> dict:
    """The words as plain free text (``bakery``, ranked by likeness alone): the share of the
    photos showing each word found in the first ``k`` (what ``text:`` adds to the search box)."""
    from lookalike.core.search import SearchEngine

    words: dict[str, set[str]] = {}
    for name, shown in labels.words.items():
        for w in shown:
            words.setdefault(w, set()).add(name)
    found = total = 0
    with SearchEngine.open(lib, writer=False) as engine:
        for word, want in sorted(words.items()):
            got = {r.path.name for r in engine.search(word, k=k)}
            found += len(got & want)
            total += len(want)
        model = engine.status().model_name
    return {"k": k, "recall": found / max(1, total), "model": model}


def cpu_cost(labels, say) -> dict:
    from lookalike.core.imaging import decode_file
    from lookalike.core.text.ocr import Reader
    from lookalike.core.text.stage import IMAGE_SIZE

    reader = Reader()
    reader.load()
    ms: dict[str, list[float]] = {"text": [], "none": []}
    probed = 0
    try:
        for name, shown in sorted(labels.words.items()):
            image = decode_file(labels.folder / name, target=IMAGE_SIZE).image
            c0 = time.process_time()
            read = reader.read(image)
            ms["text" if shown else "none"].append(1000 * (time.process_time() - c0))
            probed += bool(shown) and read.probed
    finally:
        reader.close()
    out = {k: statistics.median(v) for k, v in ms.items() if v}
    out |= {f"{k}_mean": statistics.fmean(v) for k, v in ms.items() if v}
    out["text_photos_missed_by_first_pass"] = probed
    say(f"  text: CPU ms a photo, with text {out.get('text', 0):.0f}, without {out.get('none', 0):.0f} (medians)")
    return out


def run(bench) -> None:
    from lookalike.bench import textset
    from lookalike.core.text.ocr import ENGINE, available

    say = bench.say
    if not available():
        say("  text: the OCR engine (rapidocr-onnxruntime) is not installed; skipped")
        return
    work = bench.work / "text"
    shutil.rmtree(work, ignore_errors=True)
    labels = textset.build(work / "photos", per_kind=4 if bench.quick else 12)
    kinds = [labels.kinds[n] for n in labels.words]
    say(f"  text: {len(labels.words)} photos ({', '.join(f'{k} {kinds.count(k)}' for k in sorted(set(kinds)))})")
    res: dict = {"engine": ENGINE, "photos": len(labels.words), "cpus": os.cpu_count()}
    # A first run loads the model and fills its caches, so that neither timed run pays for it.
    warm = work / "warm"
    warm.mkdir()
    shutil.copy2(labels.folder / sorted(labels.words)[-1], warm)
    _index(warm, work / "lib-warm", text=True)
    res["off"] = _index(labels.folder, work / "lib-off", text=False)
    res["on"] = _index(labels.folder, work / "lib-on", text=True)
    res["quality"] = quality(work / "lib-on", labels)
    q = res["quality"]
    say(
        f"  text: recall {q['recall']:.3f} at precision {q['precision']:.3f} over {q['words']} words; "
        f"{q['absent_words_found']}/{q['absent_words']} absent words found something"
    )
    res["free_text"] = free_text(work / "lib-off", labels)  # likeness alone (no text read)
    res["free_text_words_first"] = free_text(work / "lib-on", labels)  # word hits first
    res["cpu_ms"] = cpu_cost(labels, say)
    bench.results["text"] = res


def render(res: dict) -> list[str]:
    q, on, off, cpu = res["quality"], res["on"], res["off"], res.get("cpu_ms", {})
    L = ["## Text in photos\n"]
    L.append(
        f"{res['engine']}, on {res['photos']} labelled photos (bench/textset.py: signs put into real photos, "
        "photographed documents and receipts, screenshots, and real photos without text; some turned, "
        f"one huge). {res.get('cpus', '?')} CPUs.\n"
    )
    L.append(
        f"`text:WORD` for each of the {q['words']} words shown: recall **{q['recall']:.3f}** at precision "
        f"**{q['precision']:.3f}**; {q['absent_words_found']} of {q['absent_words']} words that no photo shows "
        "found anything.\n"
    )
    L.append("| kind | recall |")
    L.append("|---|---|")
    for kind, r in q["by_kind"].items():
        L.append(f"| {kind} | {r:.2f} |")
    L.append("")
    ft, fw = res.get("free_text"), res.get("free_text_words_first")
    if ft and fw:
        L.append(
            f"The same words as plain free text (`bakery`, {ft['model']} model), share of the photos showing "
            f"them in the first {ft['k']}: {ft['recall']:.2f} ranked by likeness alone, {fw['recall']:.2f} with "
            "the photos whose text holds the words as whole words first.\n"
        )
    if cpu:
        L.append(
            f"CPU a photo to read (decode excluded; medians, means): with text {cpu.get('text', 0):.0f} ms "
            f"({cpu.get('text_mean', 0):.0f}), without {cpu.get('none', 0):.0f} ms ({cpu.get('none_mean', 0):.0f}); "
            f"photos with text that the first pass missed: {cpu.get('text_photos_missed_by_first_pass', 0)}.\n"
        )
    reading = on["total_s"] - on.get("text_started_s", 0)
    L.append(
        f"Indexing through the engine (after a warm-up run), text off: searchable at "
        f"{off.get('searchable_s', float('nan')):.1f} s, done at {off['total_s']:.1f} s. Text on: searchable by "
        f"likeness at {on.get('searchable_s', float('nan')):.1f} s, reading from {on.get('text_started_s', 0):.1f} s, "
        f"all text read at {on['total_s']:.1f} s: reading took {reading:.1f} s, "
        f"{reading / max(1e-9, off['total_s']):.1f}x the whole likeness run with text off.\n"
    )
    return L
