"""The `faces` bench section: the detector and its working scale, grouping quality,
the faces stage's speed, indexing with People on and off, and person queries.

* **Detector x scale** (dlib HOG and CNN/MMOD x long side 640-1600 px): detection
  recall on the labelled test photos (``tests/data/faces``) as they are,
  and on the same photos as *distant* subjects: each pasted at a third of the
  height of a 12 MP camera frame (4032 x 3024, grain, JPEG q90), where faces are
  20-60 px across at 1024 px and the working scale matters. Recall counts faces
  found, and faces found *and recognisable* (quality over the grouping bar).
  Milliseconds a photo are for the distant set: the 12 MP JPEG decoded at the
  size the detector needs (draft mode) plus detection, alignment and embedding.
* **Grouping**: the 18 test photos indexed through the engine; pairwise
  precision/recall and BCubed F1 of the people against the labels.
* **Stage speed** on 12 MP camera JPEGs (the bench's scenes, and the test photos
  blown up to camera frames as photos of people): faces stage photos/s beside the
  offline encoder's, on the same decoded images.
* **Indexing** the same camera JPEGs through the engine with People on and off.
* **Person query** latency at 100,000 photos (a synthetic faces table: 150,000
  faces in 3,000 people, 200 named): ``@name`` resolved, ranked and its rows read.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.bench.labelled import FACES

log = logging.getLogger(__name__)

# Who each face of the group photos is, left to right (None: an unlabelled child).
GROUPS = {
    "groups/obama_and_biden.jpg": ["biden", "obama", None],
    "groups/kit_with_rose.jpg": ["rose_leslie", "kit_harington"],
}
SCALES = (640, 800, 896, 1024, 1600)
CNN_SCALES = (640, 800)
MTCNN_MIN_FACES = (40, 60, 80)  # the smallest face MTCNN looks for, at 1024 px


def labels() -> dict[str, list[str]]:
    return json.loads((FACES / "labels.json").read_text())["photos"]


def _camera_frame(img, height_fraction: float, seed: int) -> bytes:
    """``img`` pasted into a 12 MP camera frame, as a JPEG's bytes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = 4032, 3024
    bg = rng.integers(60, 200, size=(6, 8, 3), dtype=np.uint8)
    frame = Image.fromarray(bg).resize((w, h), Image.Resampling.BICUBIC)
    s = min(h * height_fraction / img.height, w / img.width)
    small = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.LANCZOS)
    frame.paste(small, (int(rng.integers(0, w - small.width + 1)), int(rng.integers(0, h - small.height + 1))))
    arr = np.asarray(frame, np.float32) + rng.normal(0, 4.0, size=(h, w, 1)).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _test_images(rels: list[str] | None = None) -> dict[str, object]:
    from PIL import Image, ImageOps

    return {rel: ImageOps.exif_transpose(Image.open(FACES / rel)).convert("RGB") for rel in (rels or list(labels()))}


def _frames(folder: Path, rels: list[str] | None, height_fraction: float, seed: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (rel, img) in enumerate(_test_images(rels).items()):
        path = folder / (rel.replace("/", "__").rsplit(".", 1)[0] + ".jpg")
        if not path.exists():
            path.write_bytes(_camera_frame(img, height_fraction, seed + i))
        out[rel] = path
    return out


def distant_set(work: Path, say: Callable[[str], None], rels: list[str] | None = None) -> dict[str, Path]:
    """The test photos as distant subjects: a third of the height of a camera frame."""
    out = _frames(work / "faces-distant", rels, 1 / 3, 0)
    say(f"  distant faces: {len(out)} camera frames of 4032x3024")
    return out


def people_camera_set(work: Path, rels: list[str] | None = None) -> list[Path]:
    """The test photos blown up to fill 12 MP camera frames: photos of people."""
    return list(_frames(work / "faces-people-camera", rels, 1.0, 100).values())


def _count(found: list, want: int) -> tuple[int, int]:
    from lookalike.core.faces.model import MIN_CLUSTER_QUALITY

    return min(len(found), want), min(sum(f.quality >= MIN_CLUSTER_QUALITY for f in found), want)


def detector_table(work: Path, quick: bool, say: Callable[[str], None]) -> list[dict]:
    from lookalike.core.faces.model import DlibFaceModel
    from lookalike.core.faces.stage import DECODE_FRACTION
    from lookalike.core.index.imaging import decode_bytes

    want = labels()
    rels = list(want)[:2] if quick else list(want)
    images = _test_images(rels)
    distant = distant_set(work, say, rels)
    rows = []
    combos: list[tuple[str, int, int]] = [("hog", s, 0) for s in ((640, 1024) if quick else SCALES)]
    combos += [("mtcnn", 1024, m) for m in ((60,) if quick else MTCNN_MIN_FACES)]
    combos += [] if quick else [("cnn", s, 0) for s in CNN_SCALES]
    for detector, scale, min_face in combos:
        model = DlibFaceModel(scale, detector=detector, mtcnn_min_face=min_face or 60)
        detector = f"{detector} from {min_face} px" if min_face else detector
        total = sum(len(want[r]) for r in rels)
        near = [0, 0]
        far = [0, 0]
        times: list[float] = []
        cpu: list[float] = []
        for rel in rels:
            a, b = _count(model.analyse(images[rel]), len(want[rel]))
            near[0] += a
            near[1] += b
            data = distant[rel].read_bytes()
            t0, c0 = time.perf_counter(), time.thread_time()
            decoded = decode_bytes(data, int(scale * DECODE_FRACTION))
            found = model.analyse(decoded.image, (decoded.width, decoded.height))
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            a, b = _count(found, len(want[rel]))
            far[0] += a
            far[1] += b
        row = {
            "detector": detector,
            "scale": scale,
            "faces": total,
            "recall": near[0] / total,
            "recall_recognisable": near[1] / total,
            "distant_recall": far[0] / total,
            "distant_recall_recognisable": far[1] / total,
            "ms_per_photo": 1000 * statistics.median(times),
            "cpu_ms_per_photo": 1000 * statistics.median(cpu),
        }
        say(
            f"  {detector} {scale}px: recall {row['recall']:.2f}, distant {row['distant_recall']:.2f} "
            f"(recognisable {row['distant_recall_recognisable']:.2f}), {row['ms_per_photo']:.0f} ms a 12 MP photo "
            f"({row['cpu_ms_per_photo']:.0f} CPU)"
        )
        rows.append(row)
    return rows


def grouping_quality(work: Path, say: Callable[[str], None], quick: bool = False) -> dict:
    from lookalike.core.engine import SearchEngine
    from lookalike.core.faces.grouping import pairwise_scores

    photos = work / "faces-test-photos"
    chosen = {rel: who for rel, who in labels().items() if not quick or rel.startswith(("obama/obama", "groups/"))}
    chosen = dict(list(chosen.items())[:4]) if quick else chosen
    for rel in chosen:
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(FACES / rel, photos / rel)
    lib = work / "lib-faces-quality"
    shutil.rmtree(lib, ignore_errors=True)
    with SearchEngine.open(lib, writer=True, create=True, model="offline") as engine:
        engine.index([photos])
        people = engine.people()
        truth, groups, found, labelled = [], [], 0, 0
        for rel, who in chosen.items():
            faces = people.faces_in_photo(photos / rel)
            labelled += len(who)
            found += min(len(faces), len(who))
            for face, name in zip(faces, GROUPS.get(rel, who)):
                if name is not None:
                    truth.append(name)
                    groups.append(face.person_id)
        scores = pairwise_scores(truth, groups)
        listed = len(people.people())
    out = {"faces": labelled, "found": found, "people_listed": listed, **scores}
    say(
        f"  grouping: recall {found}/{labelled}, pairwise P {scores['pairwise_precision']:.3f} "
        f"R {scores['pairwise_recall']:.3f}, BCubed F1 {scores['bcubed_f1']:.3f}"
    )
    return out


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """``fn(*args, **kwargs)``, its wall seconds and this thread's CPU seconds (both models run their
    work on the calling thread: dlib, and ONNX Runtime with one intra-op thread)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0, time.thread_time() - c0


def stage_speed(bench, say: Callable[[str], None]) -> dict:
    """The faces stage beside the offline encoder on the same decoded 12 MP photos, in one
    run: photos/s and CPU ms a photo of each, their ratio, and the faces stage's parts
    (detection, landmarks and chips, the embedding a face); and the stage as it was
    (dlib's HOG detector and dlib's own embedding code) on the same photos."""
    from lookalike.core.encoders import load_encoder
    from lookalike.core.faces.model import DlibFaceModel, working_array
    from lookalike.core.faces.stage import DECODE_FRACTION
    from lookalike.core.index.imaging import decode_file

    model = DlibFaceModel()
    old = DlibFaceModel(detector="hog", embedding="dlib")  # the stage as it was
    enc = load_encoder("offline")
    out = {}
    few = list(labels())[:2] if bench.quick else None
    sets = {"scenes": bench.camera_photos(), "people": people_camera_set(bench.work, few)}
    med = statistics.median
    for name, paths in sets.items():
        paths = paths[:2] if bench.quick else paths
        size = int(model.working_size * DECODE_FRACTION)
        warm = decode_file(paths[0], size).image  # first calls load and warm the models
        model.analyse(warm)
        old.analyse(warm)
        enc.encode_images([warm])
        t: dict[str, list[float]] = {k: [] for k in ("dec_enc", "dec_face", "face", "face_cpu", "enc", "enc_cpu")}
        t.update({k: [] for k in ("old", "old_cpu", "hog_cpu", "marks_cpu", "embed_cpu")})
        faces = 0
        for p in paths:
            small, secs, _ = _timed(decode_file, p, int(enc.image_size))
            t["dec_enc"].append(secs)
            big, secs, _ = _timed(decode_file, p, size)
            t["dec_face"].append(secs)
            found, secs, cpu = _timed(model.analyse, big.image)
            faces += len(found)
            t["face"].append(secs)
            t["face_cpu"].append(cpu)
            _, secs, cpu = _timed(old.analyse, big.image)
            t["old"].append(secs)
            t["old_cpu"].append(cpu)
            _, secs, cpu = _timed(enc.encode_images, [small.image])
            t["enc"].append(secs)
            t["enc_cpu"].append(cpu)
            _parts(model, working_array(big.image, model.working_size), t)
        face_ps, enc_ps = len(paths) / sum(t["face"]), len(paths) / sum(t["enc"])
        two_ps = _two_threads(model, [decode_file(p, size).image for p in paths])
        row = {
            "photos": len(paths),
            "faces": faces,
            "faces_stage_photos_per_s": face_ps,
            "faces_stage_ms": 1000 * med(t["face"]),
            "faces_stage_cpu_ms": 1000 * med(t["face_cpu"]),
            "faces_stage_two_threads_photos_per_s": two_ps,
            "dlib_embedding_photos_per_s": len(paths) / sum(t["old"]),
            "dlib_embedding_cpu_ms": 1000 * med(t["old_cpu"]),
            "encode_photos_per_s": enc_ps,
            "encode_ms": 1000 * med(t["enc"]),
            "encode_cpu_ms": 1000 * med(t["enc_cpu"]),
            "ratio": face_ps / enc_ps,
            "ratio_cpu": sum(t["enc_cpu"]) / max(1e-9, sum(t["face_cpu"])),
            "detector": model.detector_name,
            "hog_cpu_ms": 1000 * med(t["hog_cpu"]),
            "landmarks_chip_cpu_ms_per_face": 1000 * med(t["marks_cpu"]) if t["marks_cpu"] else None,
            "embed_cpu_ms_per_face": 1000 * med(t["embed_cpu"]) if t["embed_cpu"] else None,
            "decode_ms_encoder_size": 1000 * med(t["dec_enc"]),
            "decode_ms_faces_size": 1000 * med(t["dec_face"]),
        }
        say(
            f"  stage on {name} ({faces} faces): faces {face_ps:.1f} photos/s ({row['faces_stage_cpu_ms']:.0f} ms CPU; "
            f"{model.detector_name} {row['hog_cpu_ms']:.0f}; {two_ps:.1f} on two threads), as it was (HOG, dlib's embedding) {row['dlib_embedding_photos_per_s']:.1f}; "
            f"offline encoder {enc_ps:.1f} photos/s ({row['encode_cpu_ms']:.0f} ms CPU); ratio {row['ratio']:.2f} "
            f"(CPU {row['ratio_cpu']:.2f}); decode {row['decode_ms_encoder_size']:.0f} -> {row['decode_ms_faces_size']:.0f} ms"
        )
        out[name] = row
    return out


def _two_threads(model, images: list) -> float:
    """Photos/s of the faces stage's model called from two threads at once (dlib's part
    holds the GIL; the embedding on ONNX Runtime does not)."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(model.analyse, images))
    return len(images) / (time.perf_counter() - t0)


def _parts(model, arr: np.ndarray, t: dict[str, list[float]]) -> None:
    """CPU of the faces stage's parts on one photo: detection, then each face's landmarks
    and chip, then each face's embedding (one at a time, as a photo of one face has it)."""
    found, _, cpu = _timed(model._detect, arr)
    t["hog_cpu"].append(cpu)
    for rect, _score in found:
        chip, _, cpu = _timed(_chip, model, arr, rect)
        t["marks_cpu"].append(cpu)
        _, _, cpu = _timed(model._embedder(), [chip])
        t["embed_cpu"].append(cpu)


def _chip(model, arr: np.ndarray, rect) -> np.ndarray:
    return model._dlib.get_face_chip(arr, model._landmarks(arr, rect), size=150, padding=0.25)


_LOAD_PROBE = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from PIL import Image, ImageOps
from lookalike.core.faces.loading import load_face_model
img = ImageOps.exif_transpose(Image.open(sys.argv[1])).convert("RGB")
model = load_face_model()
t1, c1 = time.perf_counter(), time.process_time()
n = len(model.analyse(img))
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"load_ms": 1000 * (t1 - t0), "load_cpu_ms": 1000 * (c1 - c0), "first_photo_ms": 1000 * (t2 - t1),
                  "first_photo_cpu_ms": 1000 * (c2 - c1), "faces": n}))
"""


def load_times(work: Path, say: Callable[[str], None], runs: int = 3) -> list[dict]:
    """The face model's start in a fresh process, up to the faces of its first photo (imports,
    detector, landmarks, embedding, checksums): as it was (dlib's own embedding, the HOG
    detector built from dlib's copy), the ONNX graph on first use (graph and detector
    copy built) and on later uses. Medians of ``runs``."""
    import os
    import subprocess
    import sys

    photo = FACES / "obama" / "obama.jpg"
    cache = work / "faces-load-models"
    rows = []
    for label, embedding, detector, fresh in (
        ("as it was: HOG built at each start, dlib's own embedding", "dlib", "hog", True),
        ("MTCNN + ONNX graph, first use (graph built)", "onnx", "mtcnn", True),
        ("MTCNN + ONNX graph, later uses", "onnx", "mtcnn", False),
    ):
        got = []
        for _ in range(runs):
            if fresh:
                shutil.rmtree(cache, ignore_errors=True)
            env = dict(
                os.environ,
                LOOKALIKE_MODELS=str(cache),
                LOOKALIKE_FACE_EMBEDDING=embedding,
                LOOKALIKE_FACE_DETECTOR=detector,
            )
            res = subprocess.run(
                [sys.executable, "-c", _LOAD_PROBE, str(photo)], env=env, capture_output=True, text=True, check=True
            )
            got.append(json.loads(res.stdout.strip().splitlines()[-1]))
        row = {"what": label, **{k: statistics.median(g[k] for g in got) for k in got[0] if k != "faces"}}
        rows.append(row)
        say(
            f"  face model start, {label}: load {row['load_ms']:.0f} ms ({row['load_cpu_ms']:.0f} CPU), first photo "
            f"{row['first_photo_ms']:.0f} ms ({row['first_photo_cpu_ms']:.0f} CPU)"
        )
    return rows


def people_on_off(bench, say: Callable[[str], None]) -> list[dict]:
    from lookalike.core.engine import SearchEngine

    folder = bench.work / "faces-indexing"
    if not folder.exists():
        folder.mkdir(parents=True)
        n = 2 if bench.quick else 18
        scenes = bench.camera_photos()
        people = people_camera_set(bench.work, list(labels())[:n])
        for i, p in enumerate(scenes[:n] + people[:n]):
            shutil.copy2(p, folder / f"IMG_{i:04d}.jpg")
    rows = []
    for on in (False, True):
        lib = bench.work / f"lib-faces-{'on' if on else 'off'}"
        shutil.rmtree(lib, ignore_errors=True)
        with SearchEngine.open(lib, writer=True, create=True, model="offline") as engine:
            if not on:
                engine.people().set_enabled(False)
            t0 = time.perf_counter()
            report = engine.index([folder])
            secs = time.perf_counter() - t0
            faces = engine.catalog.query("SELECT COUNT(*) FROM faces")[0][0]
        rows.append({"people": on, "photos": report.added, "seconds": secs, "photos_per_s": report.added / secs})
        say(
            f"  indexing {report.added} camera JPEGs, People {'on' if on else 'off'}: {report.added / secs:.1f} photos/s"
            f"{f' ({faces} faces)' if on else ''}"
        )
    return rows


def build_faces_library(lib: Path, photos: int, people: int, named: int, seed: int = 0) -> list[str]:
    """A library with ``photos`` photo rows and a synthetic faces table; returns the names."""
    from lookalike.core.faces.people import People
    from lookalike.core.store.library import Library

    rng = np.random.default_rng(seed)
    shutil.rmtree(lib, ignore_errors=True)
    library = Library(lib, writer=True, create=True)
    try:
        cat = library.catalog
        folder = cat.add_folder(lib / "photos")
        People(library)  # its tables
        now = time.time()
        with cat.transaction() as conn:
            conn.executemany(
                "INSERT INTO photos(path, folder_id, size, mtime_ns, hash, width, height, taken, indexed, vector) "
                "VALUES(?,?,?,?,?,?,?,?,?,?)",
                (
                    (
                        f"/p/{i // 1000:03d}/IMG_{i:06d}.jpg".encode(),
                        folder.id,
                        1,
                        1,
                        f"h{i}",
                        4032,
                        3024,
                        1.4e9 + i * 3000.0,  # taken: one every 50 minutes
                        now,
                        b"",
                    )
                    for i in range(1, photos + 1)
                ),
            )
            names = [f"Person {k}" for k in range(named)]
            conn.executemany(
                "INSERT INTO people(id, name, created) VALUES(?,?,?)",
                [(k + 1, names[k] if k < named else None, now) for k in range(people)],
            )
            # Person sizes fall off like a family album's: a few people in thousands of photos.
            weights = 1.0 / np.arange(1, people + 1) ** 0.9
            weights /= weights.sum()
            centres = rng.normal(size=(people, 128)).astype(np.float32) * 0.09
            n_faces = int(photos * 1.5)
            who = rng.choice(people, size=n_faces, p=weights)
            where = rng.integers(1, photos + 1, size=n_faces)
            rows = []
            seen_confirmed: set[int] = set()
            for i in range(n_faces):
                p = int(who[i])
                vec = (centres[p] + rng.normal(size=128).astype(np.float32) * 0.02).astype(np.float32)
                confirmed = p < named and p not in seen_confirmed
                seen_confirmed.add(p)
                x = float(rng.uniform(0, 0.8))
                rows.append(
                    (
                        int(where[i]),
                        "dlib-resnet-v1",
                        x,
                        0.2,
                        x + 0.1,
                        0.35,
                        b"",
                        1.0,
                        vec.tobytes(),
                        p + 1,
                        int(confirmed),
                        1,
                        1.4e9 + int(where[i]) * 3000.0,
                    )
                )
            conn.executemany(
                "INSERT INTO faces(photo_id, model, x0, y0, x1, y1, landmarks, quality, vector, person_id, "
                "confirmed, grouped, taken) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        return names
    finally:
        library.close()


def person_query_latency(work: Path, n: int, say: Callable[[str], None], repeats: int = 15) -> dict:
    from lookalike.core.faces.people import People
    from lookalike.core.search.parse import parse
    from lookalike.core.store.library import Library

    lib = work / f"lib-faces-query-{n}"
    t0 = time.perf_counter()
    names = build_faces_library(lib, n, max(30, n // 33), max(10, n // 500))
    say(f"  person query: {n:,} photos, {int(n * 1.5):,} faces built in {time.perf_counter() - t0:.0f} s")
    library = Library(lib)
    out = {"photos": n, "faces": int(n * 1.5), "runs": []}
    try:
        people = People(library)
        sizes = {p.name: p.faces for p in people.people() if p.name}
        for label, name in (("largest named person", names[0]), ("a typical named person", names[len(names) // 2])):
            q = parse(f'@"{name}"')
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                sel = people.select(q.terms, q.source)
                allowed = sel.narrow(None, library.catalog.all_ids)
                hits = sel.hits(allowed, 66)
                library.catalog.photos_by_ids(hits.ids.tolist())
                times.append(time.perf_counter() - t0)
            row = {
                "what": f"{label} ({sizes[name]:,} faces)",
                "p50_ms": 1000 * statistics.median(times),
                "max_ms": 1000 * max(times),
            }
            out["runs"].append(row)
            say(f"  @{name}: {row['what']}: p50 {row['p50_ms']:.1f} ms")
    finally:
        library.close()
        shutil.rmtree(lib, ignore_errors=True)
    return out


def run(bench) -> None:
    say = bench.say
    if not (FACES / "labels.json").exists():
        say(f"  faces: the test photos are not at {FACES}; skipped")
        return
    res: dict = {}
    res["detectors"] = detector_table(bench.work, bench.quick, say)
    bench.results["faces"] = res
    bench.save()
    res["grouping"] = grouping_quality(bench.work, say, bench.quick)
    res["stage"] = stage_speed(bench, say)
    res["load"] = load_times(bench.work, say, 1 if bench.quick else 3)
    res["indexing"] = people_on_off(bench, say)
    res["query"] = person_query_latency(bench.work, 2_000 if bench.quick else 100_000, say)
    bench.results["faces"] = res


def render(res: dict) -> list[str]:
    L = ["## Faces (People)\n"]
    rows = res.get("detectors", [])
    if rows:
        L.append(
            "Detector x working scale (long side). Recall on the 20 labelled faces of the test photos as they are, "
            "and as distant subjects in 12 MP camera frames (found / found and recognisable); milliseconds a "
            "12 MP photo (and of CPU): draft decode at the size the scale needs, detection, alignment and embedding.\n"
        )
        L.append("| detector | scale | recall | distant recall | distant, recognisable | ms / 12 MP photo (CPU) |")
        L.append("|---|---|---|---|---|---|")
        for r in rows:
            L.append(
                f"| {r['detector']} | {r['scale']} | {r['recall']:.2f} | {r['distant_recall']:.2f} | "
                f"{r['distant_recall_recognisable']:.2f} | {r['ms_per_photo']:.0f}"
                + (f" ({r['cpu_ms_per_photo']:.0f})" if "cpu_ms_per_photo" in r else "")
                + " |"
            )
        L.append("")
    g = res.get("grouping")
    if g:
        L.append(
            f"Grouping the test photos: {g['found']}/{g['faces']} labelled faces found; pairwise precision "
            f"{g['pairwise_precision']:.3f}, recall {g['pairwise_recall']:.3f}; BCubed precision "
            f"{g['bcubed_precision']:.3f}, recall {g['bcubed_recall']:.3f}, F1 {g['bcubed_f1']:.3f}.\n"
        )
    st = res.get("stage")
    if st:
        L.append(
            "Faces stage beside the offline encoder on the same decoded 12 MP JPEGs (one run; medians; CPU is "
            "the calling thread's). *as it was*: dlib's HOG detector and dlib's own ResNet code.\n"
        )
        L.append(
            "| 12 MP JPEGs | faces | faces stage photos/s (ms CPU) | on two threads photos/s | "
            "as it was photos/s (ms CPU) | "
            "offline encoder photos/s (ms CPU) | ratio (CPU) | detection ms CPU | embed ms CPU a face | decode ms |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for name, r in st.items():
            if "faces_stage_cpu_ms" not in r:  # a report from before these columns
                continue
            emb = r.get("embed_cpu_ms_per_face")
            L.append(
                f"| {name} ({r['photos']}) | {r['faces']} | {r['faces_stage_photos_per_s']:.1f} "
                f"({r['faces_stage_cpu_ms']:.0f}) | {r.get('faces_stage_two_threads_photos_per_s', 0):.1f} | "
                f"{r['dlib_embedding_photos_per_s']:.1f} "
                f"({r['dlib_embedding_cpu_ms']:.0f}) | {r['encode_photos_per_s']:.1f} ({r['encode_cpu_ms']:.0f}) | "
                f"{r['ratio']:.2f} ({r['ratio_cpu']:.2f}) | {r['hog_cpu_ms']:.0f} | "
                f"{'-' if emb is None else f'{emb:.1f}'} | {r['decode_ms_encoder_size']:.0f} -> "
                f"{r['decode_ms_faces_size']:.0f} |"
            )
        L.append("")
    ld = res.get("load")
    if ld:
        L.append("Face model start in a fresh process, up to the faces of its first photo (medians):\n")
        L.append("| embedding | load ms (CPU) | first photo ms (CPU) |")
        L.append("|---|---|---|")
        for r in ld:
            L.append(
                f"| {r['what']} | {r['load_ms']:.0f} ({r['load_cpu_ms']:.0f}) | "
                f"{r['first_photo_ms']:.0f} ({r['first_photo_cpu_ms']:.0f}) |"
            )
        L.append("")
    ix = res.get("indexing")
    if ix:
        L.append(
            "Indexing camera JPEGs through the engine: "
            + ", ".join(f"People {'on' if r['people'] else 'off'} {r['photos_per_s']:.2f} photos/s" for r in ix)
            + ".\n"
        )
    q = res.get("query")
    if q:
        L.append(
            f"Person query (`@name`, resolved, ranked, rows read) at {q['photos']:,} photos, {q['faces']:,} faces:\n"
        )
        L.append("| person | p50 ms | max ms |")
        L.append("|---|---|---|")
        for r in q["runs"]:
            L.append(f"| {r['what']} | {r['p50_ms']:.1f} | {r['max_ms']:.1f} |")
        L.append("")
    return L
