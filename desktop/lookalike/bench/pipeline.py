"""The indexing pipeline, measured: decode cost, encode cost, the machine's
limit, and the real end-to-end rate from files to a saved library.

All per-photo costs are CPU time on one core (``time.process_time`` for
single-threaded work, process CPU seconds for torch with a set thread count),
so the limit is simply ``cores / (read + decode + encode)``: every core busy all
the time on one of those and nothing serialised.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.bench.util import Sampler, cpu_seconds, peak_rss_bytes, summary

log = logging.getLogger(__name__)


# -- decode ---------------------------------------------------------------------


def _decoders(target: int) -> dict[str, Callable[[bytes], object]]:
    from PIL import Image

    from lookalike.core.index.imaging import decode_bytes

    def full(data: bytes):
        img = Image.open(io.BytesIO(data))
        img.load()
        img = img.convert("RGB")
        img.thumbnail((target * 2, target * 2), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return img

    out: dict[str, Callable[[bytes], object]] = {
        "Pillow, full decode + resize": full,
        "Pillow, draft (shrink-on-load): the engine's decode_bytes": lambda d: decode_bytes(d, target),
    }
    try:
        import simplejpeg

        def sj(data: bytes):
            arr = simplejpeg.decode_jpeg(data, min_height=target, min_width=target)
            img = Image.fromarray(arr)
            img.thumbnail((target * 2, target * 2), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return img

        out["simplejpeg (libjpeg-turbo), shrink-on-load"] = sj
    except ImportError:
        pass
    try:
        import pyvips

        pyvips.cache_set_max(0)
        pyvips.concurrency_set(1)

        def vips(data: bytes):
            im = pyvips.Image.thumbnail_buffer(data, target * 2, height=target * 2, size="down")
            return im.write_to_memory()

        out["pyvips thumbnail_buffer, shrink-on-load"] = vips
    except Exception:  # ImportError, or libvips missing (OSError)
        pass
    return out


def measure_decode(paths: Sequence[Path], target: int, repeats: int, say: Callable[[str], None]) -> dict:
    from lookalike.core.index.imaging import read_file_bytes
    from lookalike.core.index.pipeline import content_hash

    rows = []
    datas = [read_file_bytes(p) for p in paths]
    # Reading the file and hashing it (the indexer does both for every photo).
    times = []
    for _ in range(repeats):
        for p in paths:
            t0 = time.process_time()
            content_hash(read_file_bytes(p))
            times.append((time.process_time() - t0) * 1000)
    rows.append({"method": "read + blake2b content hash", "ms": summary(times)})
    for name, fn in _decoders(target).items():
        fn(datas[0])
        times = []
        for _ in range(repeats):
            for d in datas:
                t0 = time.process_time()
                fn(d)
                times.append((time.process_time() - t0) * 1000)
        rows.append({"method": name, "ms": summary(times)})
        say(f"  decode {name:<58} {rows[-1]['ms']['median']:6.1f} ms/photo")
    sizes = [os.path.getsize(p) for p in paths]
    from PIL import Image

    with Image.open(paths[0]) as im:
        w, h = im.size
    return {
        "photos": len(paths),
        "file_mb_median": float(np.median(sizes) / 1e6),
        "width": w,
        "height": h,
        "target": target,
        "rows": rows,
    }


# -- encode ---------------------------------------------------------------------


class ClipTiming:
    """open_clip ViT-B-32 with random weights, for timing only (speed does not
    depend on weight values). On CUDA: half precision, pinned host memory."""

    supports_text = True

    def __init__(self, device: str = "cpu", arch: str = "ViT-B-32") -> None:
        import open_clip
        import torch

        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
        self.device = device
        self.half = device.startswith("cuda")
        model = model.eval().to(device)
        if self.half:
            model = model.half()
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.id = f"bench-random-{arch}"
        self.weights_checksum = "random"
        self.dimension = int(model.text_projection.shape[1]) if hasattr(model, "text_projection") else 512
        self.image_size = 224
        self._torch = torch

    def encode_images(self, images) -> np.ndarray:
        torch = self._torch
        x = torch.stack([self.preprocess(im) for im in images])
        if self.device.startswith("cuda"):
            x = x.pin_memory().to(self.device, non_blocking=True).half()
        with torch.inference_mode():
            v = self.model.encode_image(x)
            v = torch.nn.functional.normalize(v.float(), dim=-1)
        return v.cpu().numpy().astype(np.float32)

    def encode_texts(self, texts) -> np.ndarray:
        torch = self._torch
        tok = self.tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            v = torch.nn.functional.normalize(self.model.encode_text(tok).float(), dim=-1)
        return v.cpu().numpy().astype(np.float32)


def load_encoders(names: Sequence[str], device: str, say: Callable[[str], None]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            if name == "clip-vit-b-32 (random weights)":
                out[name] = ClipTiming(device)
            elif name == "stub":
                out[name] = StubEncoder(64)
            else:
                from lookalike.core.encoders import load_encoder

                out[name] = load_encoder(name, device=device)
            say(f"  encoder {name}: loaded in {time.perf_counter() - t0:.1f} s")
        except Exception as exc:
            say(f"  encoder {name}: not available ({exc.__class__.__name__}: {exc})")
    return out


def measure_encode(
    encoders: dict[str, object],
    images: list,
    batch_sizes: Sequence[int],
    threads: Sequence[int],
    min_photos: int,
    say: Callable[[str], None],
) -> dict:
    """Per-photo encode cost for every encoder, batch size and torch thread count."""
    import torch

    rows = []
    old = torch.get_num_threads()
    try:
        for name, enc in encoders.items():
            on_gpu = str(getattr(enc, "device", "cpu")).startswith("cuda")
            for t in [old] if on_gpu else threads:
                torch.set_num_threads(t)
                for bs in batch_sizes:
                    batch = [images[i % len(images)] for i in range(bs)]
                    enc.encode_images(batch)  # warm
                    reps = max(3, -(-min_photos // bs))
                    walls, cpus = [], []
                    for _ in range(reps):
                        if on_gpu:
                            torch.cuda.synchronize()
                        c0, t0 = cpu_seconds(), time.perf_counter()
                        enc.encode_images(batch)
                        if on_gpu:
                            torch.cuda.synchronize()
                        walls.append((time.perf_counter() - t0) * 1000 / bs)
                        cpus.append((cpu_seconds() - c0) * 1000 / bs)
                    row = {
                        "encoder": name,
                        "threads": t,
                        "batch": bs,
                        "wall_ms": summary(walls),
                        "cpu_ms": summary(cpus),
                        "device": str(getattr(enc, "device", "cpu")),
                    }
                    rows.append(row)
                    say(
                        f"  encode {name:<32} threads {t} batch {bs:>3}: {row['wall_ms']['median']:7.1f} ms/photo "
                        f"wall, {row['cpu_ms']['median']:7.1f} ms/photo CPU"
                    )
    finally:
        torch.set_num_threads(old)
    return {"rows": rows}


# -- end to end -----------------------------------------------------------------


@dataclass
class _Counter:
    done: int = 0

    def __call__(self, p) -> None:
        if p.stage == "indexing":
            self.done = p.done


def random_clip_checkpoint(path: Path, arch: str = "ViT-B-32") -> Path:
    """A CLIP checkpoint file of the real architecture with random weights, in the format
    a user's checkpoint takes (``--model-file``): indexing speed does not depend on the
    weight values, so this times CLIP end to end without downloading them."""
    if path.exists():
        return path
    import open_clip
    import torch

    from lookalike.core.encoders.clip import save_checkpoint

    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None)
    return save_checkpoint(
        path, model.state_dict(), open_clip.get_model_config(arch), architecture=f"{arch}-random-bench"
    )


def measure_indexing(
    folder: Path,
    library: Path,
    model: str,
    device: str | None,
    say: Callable[[str], None],
    *,
    encoder=None,
    record=None,
    model_file: Path | None = None,
) -> dict:
    """Index ``folder`` into a new library: the real path, from files to a saved library."""
    import shutil

    from lookalike.core.engine import SearchEngine

    shutil.rmtree(library, ignore_errors=True)
    engine = SearchEngine.open(
        library, model="clip" if model_file else model, model_file=model_file, device=device, writer=True, create=True
    )
    with engine:
        t0 = time.perf_counter()
        if encoder is not None:
            engine.library.bind_model(record)
            engine._encoder = encoder
        else:
            engine.encoder()
        load_s = time.perf_counter() - t0
        counter = _Counter()
        with Sampler(interval=0.5, counter=lambda: counter.done) as s:
            report = engine.index([folder], progress=counter)
        st = engine.status()
    photos = report.encoded
    cores = os.cpu_count() or 1
    result = {
        "model": model,
        "photos": photos,
        "library_photos": st.photos,
        "failed": report.failed,
        "load_s": load_s,
        "wall_s": s.wall,
        "rate": photos / s.wall if s.wall else 0.0,
        "cpu_util": s.cpu / (s.wall * cores) if s.wall else 0.0,
        "cores": cores,
        "peak_rss": s.peak_rss,
        "peak_rss_process": peak_rss_bytes(),
        "library_bytes": sum(f.stat().st_size for f in library.rglob("*") if f.is_file()),
        "samples": [list(x) for x in s.samples],
    }
    say(
        f"  indexed {photos} photos with {model} in {s.wall:.1f} s: {result['rate']:.2f} photos/s, "
        f"CPU {100 * result['cpu_util']:.0f}% of {cores} cores, peak RSS {s.peak_rss / 2**20:.0f} MiB"
    )
    return result


# -- memory at scale --------------------------------------------------------------


class StubEncoder:
    """Returns embedding-like vectors without a network: isolates the pipeline's own memory."""

    supports_text = True
    device = "cpu"
    image_size = 224
    cpu_batch = 1
    side_by_side = True
    uses_torch = False

    def __init__(self, dim: int) -> None:
        from lookalike.bench.scale import EmbeddingModel

        self.dimension = dim
        self.id = f"bench-stub-{dim}"
        self.weights_checksum = "stub"
        self._model = EmbeddingModel(dim, clusters=500, seed=3)
        self._seed = 0

    def encode_images(self, images) -> np.ndarray:
        self._seed += 1
        return self._model.sample(len(images), seed=self._seed)

    def encode_texts(self, texts) -> np.ndarray:
        return self._model.sample(len(texts), seed=hash(tuple(texts)) & 0xFFFF)


def make_small_jpegs(folder: Path, count: int) -> None:
    """``count`` distinct small JPEGs in folders of 1000 (cheap to write, real to decode)."""
    from PIL import Image

    rng = np.random.default_rng(5)
    base = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    have = sum(1 for _ in folder.rglob("*.jpg")) if folder.exists() else 0
    if have >= count:
        return
    for i in range(count):
        sub = folder / f"{i // 1000:04d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"p{i:07d}.jpg"
        if p.exists():
            continue
        arr = base.copy()
        arr[0, :8, 0] = np.frombuffer(int(i).to_bytes(8, "little"), np.uint8)  # distinct content
        Image.fromarray(arr).save(p, quality=80)


def measure_memory(folder: Path, library: Path, count: int, dim: int, say: Callable[[str], None]) -> dict:
    from lookalike.core.store.library import ModelRecord

    t0 = time.perf_counter()
    make_small_jpegs(folder, count)
    say(f"  {count:,} small JPEGs ready in {time.perf_counter() - t0:.0f} s")
    stub = StubEncoder(dim)
    res = measure_indexing(
        folder,
        library,
        "offline",
        None,
        say,
        encoder=stub,
        record=ModelRecord("bench-stub", stub.id, stub.weights_checksum, dim),
    )
    res["dim"] = dim
    return res
