"""`lookalike bench`: measure indexing and query speed on this machine.

Writes a report folder: ``report.md`` (every figure, median and spread over
repeated runs), ``results.json`` (the raw numbers; sections run again replace
their own part, so a big run can be added to a report section by section) and
PNG plots. Defaults finish in minutes on two cores; flags make the big runs.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

# `peer` (Lookalike beside rclip) runs only where rclip is installed: bench/peer.py.
SECTIONS = ("decode", "encode", "indexing", "memory", "scale", "grid", "query", "startup", "duplicates")
SECTIONS += ("faces",)  # People: bench/faces.py

SECTIONS += ("concepts",)  # Concepts and filters: bench/concepts.py
SECTIONS += ("window",)  # The window's memory by library size: bench/window_memory.py
SECTIONS += ("text",)  # Text in photos: bench/text.py
SECTIONS += ("peer",)
SECTIONS += ("relevance",)  # Which results match: bench/relevance.py

# Normal defaults (minutes on two cores) and --quick (seconds, for the smoke test).
DEFAULTS = dict(
    photos=400,
    distinct=48,
    decode_photos=12,
    sizes=[10_000],
    dim=None,
    query_size=30_000,
    memory_photos=20_000,
    queries=200,
    encoders=["offline", "clip-vit-b-32 (random weights)"],
    batch_sizes=[1, 8, 16, 32],
    threads=None,
    repeats=2,
    grid_size=10_000,
    libraries=["flat", "hnswlib", "faiss-flat", "faiss-hnsw", "faiss-ivf", "usearch"],
)
QUICK = dict(
    photos=12,
    distinct=3,
    decode_photos=3,
    sizes=[2_000],
    dim=64,
    query_size=1_000,
    memory_photos=200,
    queries=20,
    encoders=["stub"],
    batch_sizes=[2],
    threads=[1],
    repeats=1,
    grid_size=0,
    libraries=["flat", "hnswlib"],
)


def _ints(text: str | None) -> list[int] | None:
    if not text:
        return None
    out = []
    for part in str(text).split(","):
        part = part.strip().lower().replace("_", "")
        mult = 1
        if part.endswith("k"):
            mult, part = 1_000, part[:-1]
        elif part.endswith("m"):
            mult, part = 1_000_000, part[:-1]
        out.append(int(float(part) * mult))
    return out


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        ram = psutil.virtual_memory().total
    except Exception:  # pragma: no cover
        ram = 0
    import numpy
    import PIL

    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "when": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except Exception:
        pass
    try:
        from importlib.metadata import version

        import hnswlib  # noqa: F401

        info["hnswlib"] = version("hnswlib")
        for pkg in ("faiss-cpu", "usearch", "simplejpeg", "pyvips"):
            try:
                info[pkg] = version(pkg)
            except Exception:
                pass
    except Exception:
        pass
    return info


class Bench:
    def __init__(self, args) -> None:
        self.quick = bool(getattr(args, "quick", False))
        cfg = dict(QUICK if self.quick else DEFAULTS)
        if getattr(args, "photos", None):
            cfg["photos"] = int(args.photos)
        if _ints(getattr(args, "sizes", None)):
            cfg["sizes"] = _ints(args.sizes)
        if _ints(getattr(args, "cold_sizes", None)):
            cfg["cold_sizes"] = _ints(args.cold_sizes)
        for key in ("query_size", "memory_photos", "dim", "repeats", "grid_size"):
            v = getattr(args, key, None)
            if v is not None:
                cfg[key] = _ints(str(v))[0]
        if getattr(args, "libraries", None):
            cfg["libraries"] = [s.strip() for s in args.libraries.split(",") if s.strip()]
        if getattr(args, "encoders", None):
            names = {"clip": "clip-vit-b-32 (random weights)"}
            cfg["encoders"] = [names.get(s.strip(), s.strip()) for s in args.encoders.split(",") if s.strip()]
        if _ints(getattr(args, "batch_sizes", None)):
            cfg["batch_sizes"] = _ints(args.batch_sizes)
        self.device = getattr(args, "device", None) or "cpu"
        if self.device != "cpu":  # a clear one-line error where the GPU asked for is not here
            from lookalike.core.encoders.base import pick_device

            pick_device(self.device)
        if self.device.startswith("cuda"):
            cfg["batch_sizes"] = _ints(getattr(args, "batch_sizes", None)) or [32, 64, 128, 256]
        cfg["threads"] = cfg["threads"] or sorted({1, os.cpu_count() or 1})
        self.cfg = cfg
        only = getattr(args, "only", None)
        self.sections = [s.strip() for s in only.split(",")] if only else list(SECTIONS)
        for s in self.sections:
            if s not in SECTIONS:
                from lookalike.core.errors import UsageError

                raise UsageError(f"--only: unknown section {s!r} (choose from {', '.join(SECTIONS)})")
        self.out = Path(args.out)
        self.work = Path(getattr(args, "work", None) or (self.out / ".work"))
        self.keep_work = bool(getattr(args, "keep_work", False)) or getattr(args, "work", None) is not None
        self.results: dict = {}
        self._encoders: dict | None = None
        self._anchors = None

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # -- shared inputs ------------------------------------------------------------

    def camera_photos(self) -> list[Path]:
        from lookalike.bench.photos import CAMERA_SIZE, make_camera_jpegs

        size = (1008, 756) if self.quick else CAMERA_SIZE
        t0 = time.perf_counter()
        paths = make_camera_jpegs(self.work / "camera", self.cfg["distinct"], size=size)
        self.say(
            f"camera files: {len(paths)} distinct {size[0]}x{size[1]} JPEGs with EXIF "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        return paths

    def indexing_folder(self) -> Path:
        """``photos`` files: the distinct camera files, then copies with a unique trailer
        (bytes after the JPEG end marker: same decode cost, a different content hash)."""
        base = self.camera_photos()
        folder = self.work / f"index-{self.cfg['photos']}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(self.cfg["photos"]):
            dst = folder / f"{i // 500:03d}" / f"IMG_{i:06d}.jpg"
            if dst.exists():
                continue
            dst.parent.mkdir(exist_ok=True)
            data = base[i % len(base)].read_bytes()
            dst.write_bytes(data + f"copy {i}".encode() if i >= len(base) else data)
        return folder

    def encoders(self) -> dict:
        if self._encoders is None:
            from lookalike.bench.pipeline import load_encoders

            self._encoders = load_encoders(self.cfg["encoders"], self.device, self.say)
        return self._encoders

    def anchors(self, encoder) -> object:
        """Real photos' embeddings (crops and flips of the sample photos) as cluster anchors."""
        import numpy as np
        from PIL import Image

        from lookalike.bench.photos import _source_photos

        imgs = []
        for arr in _source_photos():
            img = Image.fromarray(arr)
            w, h = img.size
            for box in ((0, 0, w, h), (0, 0, w * 3 // 4, h * 3 // 4), (w // 4, h // 4, w, h)):
                crop = img.crop(box)
                imgs += [crop, crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
        return np.asarray(encoder.encode_images(imgs), np.float32)

    # -- sections -------------------------------------------------------------------

    def run_decode(self) -> None:
        from lookalike.bench.pipeline import measure_decode

        paths = self.camera_photos()[: self.cfg["decode_photos"]]
        self.results["decode"] = measure_decode(paths, 224, max(1, self.cfg["repeats"]), self.say)

    def run_encode(self) -> None:
        from PIL import Image

        from lookalike.bench.pipeline import measure_encode
        from lookalike.core.imaging import decode_file

        encs = self.encoders()
        imgs = [decode_file(p, 224).image for p in self.camera_photos()[:8]]
        del Image
        self.results["encode"] = measure_encode(
            encs, imgs, self.cfg["batch_sizes"], self.cfg["threads"], 16 if self.quick else 48, self.say
        )

    def run_indexing(self) -> None:
        from lookalike.bench.pipeline import measure_indexing, random_clip_checkpoint

        folder = self.indexing_folder()
        # Warm the page cache, as the decode costs that make the limit were measured:
        # the first run otherwise reads the files from disk and every later one does not.
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                path.read_bytes()
        runs = []
        models = [m for m in self.cfg["encoders"] if m != "stub"]
        if not models:
            self.say("  indexing: no engine encoder configured; skipped")
            return
        for model in models:
            # The timing-only CLIP indexes through the engine from a checkpoint file of
            # the same architecture with random weights.
            model_file = (
                random_clip_checkpoint(self.work / "clip-vit-b-32-random.pt") if model.startswith("clip-vit") else None
            )
            for r in range(max(1, self.cfg["repeats"])):
                try:
                    res = measure_indexing(
                        folder,
                        self.work / f"lib-index-{model.split()[0]}",
                        model,
                        None if self.device == "cpu" else self.device,
                        self.say,
                        model_file=model_file,
                    )
                except Exception as exc:
                    self.say(f"  indexing with {model}: failed ({exc.__class__.__name__}: {exc})")
                    break
                res["run"] = r
                runs.append(res)
        self.results["indexing"] = {"runs": runs, "device": self.device}

    def run_memory(self) -> None:
        from lookalike.bench.pipeline import measure_memory

        n = self.cfg["memory_photos"]
        dim = self.cfg["dim"] or self._model_dim()
        self.results["memory"] = measure_memory(self.work / f"small-{n}", self.work / "lib-memory", n, dim, self.say)

    def _model_dim(self) -> int:
        encs = self.encoders()
        enc = encs.get("offline") or next(iter(encs.values()), None)
        return int(enc.dimension) if enc is not None else 1664

    def _anchors_for_dim(self, dim: int):
        for enc in self.encoders().values():
            if int(enc.dimension) == dim:
                return self.anchors(enc)
        return None

    def run_scale(self) -> None:
        from lookalike.bench.scale import available, run_scale

        dim = self.cfg["dim"] or self._model_dim()
        anchors = self._anchors_for_dim(dim)
        libs = available(self.cfg["libraries"])
        prev = {r["n"]: r for r in self.results.get("scale", {}).get("runs", [])}
        for n in self.cfg["sizes"]:
            self.say(f"scale: {n:,} vectors of {dim} dimensions")
            prev[n] = run_scale(
                n,
                dim,
                libraries=libs,
                M=self._M(),
                efc=self._efc(),
                ef=self._ef(),
                threads=os.cpu_count() or 1,
                queries=self.cfg["queries"],
                anchors=anchors,
                say=self.say,
            )
            self.results["scale"] = {"runs": [prev[k] for k in sorted(prev)]}
            self.save()

    def run_grid(self) -> None:
        from lookalike.bench.scale import run_hnsw_grid

        n = self.cfg["grid_size"]
        if not n:
            return
        dim = self.cfg["dim"] or self._model_dim()
        self.say(f"hnsw parameters: {n:,} vectors of {dim} dimensions")
        rows = run_hnsw_grid(
            n,
            dim,
            Ms=[8, 16, 32],
            efcs=[100, 200],
            threads=os.cpu_count() or 1,
            queries=self.cfg["queries"],
            anchors=self._anchors_for_dim(dim),
            say=self.say,
        )
        self.results["grid"] = {"n": n, "dim": dim, "rows": rows}

    def run_query(self) -> None:
        from lookalike.bench.queries import build_synthetic_library, measure_query
        from lookalike.core.library import ModelRecord

        n = self.cfg["query_size"]
        out = []
        for name, enc in self.encoders().items():
            if not getattr(enc, "supports_text", False):
                continue
            self.say(f"query: {name} at {n:,} photos")
            rec = ModelRecord(name if name == "offline" else "bench", enc.id, enc.weights_checksum, int(enc.dimension))
            lib = self.work / f"lib-query-{enc.id}"
            built = build_synthetic_library(lib, enc, rec, n, self.anchors(enc), self.say)
            res = measure_query(lib, enc, rec, max(1, self.cfg["repeats"]), self.say)
            out.append({"encoder": name, **built, **res})
            shutil.rmtree(lib, ignore_errors=True)
        self.results["query"] = {"runs": out}

    def run_startup(self) -> None:
        from lookalike.bench import coldstart
        from lookalike.bench.queries import measure_first_paint, measure_startup

        lib = None
        runs = [r for r in self.results.get("indexing", {}).get("runs", []) if r.get("model") == "offline"]
        cand = self.work / "lib-index-offline"
        if runs and cand.exists():
            lib = cand
        elif not self.quick and "offline" in self.encoders():
            # a small library of real photos to answer from
            from lookalike.bench.pipeline import measure_indexing

            base = self.camera_photos()
            folder = self.work / "startup-photos"
            folder.mkdir(parents=True, exist_ok=True)
            for p in base[:8]:
                if not (folder / p.name).exists():
                    shutil.copy(p, folder / p.name)
            measure_indexing(folder, cand, "offline", None, self.say)
            lib = cand
        reps = 1 if self.quick else 5
        res = measure_startup(lib, reps, self.say, floor=not self.quick)
        if not self.quick:
            res["first_paint"] = measure_first_paint(lib, 3, self.say)
        sizes = self.cfg.get("cold_sizes") or ([] if self.quick else list(coldstart.SIZES))
        if sizes and "offline" in self.encoders():
            enc = self.encoders()["offline"]
            res["cold_search"] = coldstart.cold_search_by_size(
                self.work, enc, sizes, reps, self.say, self.anchors(enc), keep=self.keep_work
            )
        self.results["startup"] = res

    def run_concepts(self) -> None:
        from lookalike.bench.concepts import run

        run(self)

    def run_relevance(self) -> None:
        from lookalike.bench.relevance import run

        run(self)

    def run_duplicates(self) -> None:
        from lookalike.bench.duplicates import run

        run(self)

    def run_faces(self) -> None:
        from lookalike.bench.faces import run

        run(self)

    def run_text(self) -> None:
        from lookalike.bench.text import run

        run(self)

    def run_window(self) -> None:
        from lookalike.bench import window_memory

        if "offline" not in self.encoders():
            self.say("  window memory: needs the offline model; skipped")
            return
        import importlib.util

        if importlib.util.find_spec("PySide6") is None:
            self.say("  window memory: no PySide6 here; skipped")
            return
        enc = self.encoders()["offline"]
        sizes = self.cfg.get("cold_sizes") or list(window_memory.SIZES)
        self.results["window"] = window_memory.window_memory_by_size(
            self.work, enc, sizes, self.say, self.anchors(enc), keep=self.keep_work
        )

    def run_peer(self) -> None:
        from lookalike.bench.peer import measure_peer

        self.results["peer"] = measure_peer(self.work, max(1, self.cfg["repeats"]), self.say, quick=self.quick)

    # -- driver -------------------------------------------------------------------------

    def _M(self) -> int:
        from lookalike.core import vectors

        return vectors.DEFAULT_M

    def _efc(self) -> int:
        from lookalike.core import vectors

        return vectors.DEFAULT_EF_CONSTRUCTION

    def _ef(self) -> int:
        from lookalike.core import vectors

        return vectors.DEFAULT_EF

    def load_previous(self) -> None:
        path = self.out / "results.json"
        if path.exists():
            try:
                self.results = json.loads(path.read_text())
            except ValueError:
                self.results = {}

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / "results.json.tmp"
        tmp.write_text(json.dumps(self.results, indent=1, default=float))
        tmp.replace(self.out / "results.json")

    def run(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        self.load_previous()
        m = machine()
        self.results["machine"] = m
        self.results["config"] = {k: v for k, v in self.cfg.items()} | {"device": self.device, "quick": self.quick}
        self.say(
            f"lookalike bench on {m['cpu']} ({m['cores']} cores, {m['ram_gib']} GiB), device {self.device}; "
            f"report in {self.out}"
        )
        errors = 0
        for section in self.sections:
            t0 = time.perf_counter()
            self.say(f"== {section}")
            try:
                getattr(self, f"run_{section}")()
            except Exception as exc:
                errors += 1
                log.exception("bench section %s failed", section)
                self.results.setdefault("errors", {})[section] = f"{exc.__class__.__name__}: {exc}"
            else:
                self.results.get("errors", {}).pop(section, None)
            self.results.setdefault("section_seconds", {})[section] = time.perf_counter() - t0
            try:
                self.results.setdefault("load_average", {})[section] = round(os.getloadavg()[0], 2)
            except OSError:  # pragma: no cover - not on every platform
                pass
            self.save()
        from lookalike.bench.report import write_report

        write_report(self.results, self.out)
        from lookalike.bench.peer import write_peer_report

        write_peer_report(self.results, self.out)
        if not self.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        self.say(f"report: {self.out / 'report.md'}")
        return 1 if errors else 0


def run_bench(args) -> int:
    return Bench(args).run()
