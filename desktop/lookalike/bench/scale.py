"""Queries at scale: our hnswlib graph against exact search, faiss and usearch.

The vectors have the structure of real photo embeddings: unit vectors in the
model's dimension that share a common direction, live near a low-dimensional
subspace, and gather in many clusters (bursts, events, near-duplicates), with
the cluster centres anchored on real photos' embeddings when an encoder is at
hand. Queries are held-out points of the same distribution. Every library
indexes the same vectors in the same run; recall is against exact top-k.
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lookalike.bench.util import rss_bytes, summary

log = logging.getLogger(__name__)

K = 50
OTHERS_M = 16  # faiss HNSW and usearch
RANK = 48  # dimensions of the subspace the clusters spread in


@dataclass
class EmbeddingModel:
    """A generator of embedding-like unit vectors."""

    dim: int
    clusters: int
    seed: int = 0
    anchors: np.ndarray | None = None  # (a, dim) real photo embeddings, unit rows
    centres: np.ndarray = field(init=False)
    rank: int = field(init=False)
    basis: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        d = self.dim
        mean = rng.normal(size=d).astype(np.float32)
        mean /= np.linalg.norm(mean)
        self.rank = min(RANK, max(1, d // 2))
        self.basis = np.linalg.qr(rng.normal(size=(d, self.rank)))[0].T.astype(np.float32)  # (rank, d)
        w = min(4 * RANK, d)
        wide = np.linalg.qr(rng.normal(size=(d, w)))[0].T.astype(np.float32)
        c = rng.normal(size=(self.clusters, w)).astype(np.float32) @ wide
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        c = 0.55 * mean + 0.85 * c
        if self.anchors is not None and len(self.anchors):
            a = self.anchors[rng.integers(0, len(self.anchors), self.clusters)]
            c = 0.6 * c + 0.8 * a
        c += rng.normal(0, 0.6 / np.sqrt(d), size=c.shape).astype(np.float32)
        self.centres = (c / np.linalg.norm(c, axis=1, keepdims=True)).astype(np.float32)

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), np.float32)
        # Cluster sizes are skewed, as a photo library's events are.
        weights = rng.pareto(1.5, self.clusters) + 1.0
        weights /= weights.sum()
        for s in range(0, n, 20_000):
            m = min(20_000, n - s)
            cid = rng.choice(self.clusters, size=m, p=weights)
            spread = rng.uniform(0.15, 0.45, size=(m, 1)).astype(np.float32)
            z = rng.normal(size=(m, self.rank)).astype(np.float32)
            x = self.centres[cid] + spread * (z @ self.basis) / np.sqrt(self.rank)
            x += rng.normal(0, 0.25 / np.sqrt(self.dim), size=(m, self.dim)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[s : s + m] = x
        return out


def exact_topk(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of the exact top ``k`` for each query, best first."""
    from lookalike.core.store.vectors import topk_of_chunks

    chunks = ((np.arange(s, min(s + 100_000, len(data))), data[s : s + 100_000]) for s in range(0, len(data), 100_000))
    best_i, best_s = topk_of_chunks(queries, chunks, k)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, axis=1)


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth)]))


def _time_queries(fn: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    fn(queries[0])  # warm
    res, lat = [], []
    for q in queries:
        t0 = time.perf_counter()
        r = fn(q)
        lat.append(time.perf_counter() - t0)
        res.append(np.asarray(r, np.int64)[:K])
    return np.stack(res), lat


@dataclass
class Built:
    name: str
    params: str
    build_s: float
    disk_bytes: int
    mem_bytes: int
    search: Callable[[np.ndarray], np.ndarray]
    knobs: list[tuple[str, Callable[[], None]]]  # (label, set-knob) for the speed/recall sweep
    default_knob: str = ""


def _file_size(save: Callable[[str], None]) -> int:
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "index")
        save(p)
        return sum(f.stat().st_size for f in Path(d).iterdir())


def build_flat_numpy(x: np.ndarray, **_) -> Built:
    def search(q: np.ndarray) -> np.ndarray:
        s = x @ q
        top = np.argpartition(-s, K - 1)[:K]
        return top[np.argsort(-s[top])]

    return Built(
        "exact numpy (Flat)", "float32 matrix", 0.0, x.nbytes, x.nbytes, search, [("exact", lambda: None)], "exact"
    )


def build_ours(x: np.ndarray, *, M: int, efc: int, ef: int, threads: int, tune: bool = True, **_) -> Built:
    from lookalike.core.store.vectors import VectorIndex

    before = rss_bytes()
    t0 = time.perf_counter()
    vi = VectorIndex(x.shape[1], M=M, ef_construction=efc, ef=ef, capacity=len(x))
    vi.add(np.arange(1, len(x) + 1), x, num_threads=threads)
    build = time.perf_counter() - t0
    mem = rss_bytes() - before
    with tempfile.TemporaryDirectory() as d:
        vi.save(Path(d), 1)
        disk = (Path(d) / VectorIndex.GRAPH).stat().st_size

    def search(q: np.ndarray) -> np.ndarray:
        return vi.search(q, K, exact=False).ids - 1

    def knob(e: int) -> Callable[[], None]:
        def set_() -> None:
            vi.ef = e

        return set_

    # What a user gets: the engine tunes ef after indexing (recall@50 >= 0.99 on the
    # library's own vectors, perturbed), independently of this benchmark's queries.
    default = f"ef={ef}"
    efs = [e for e in (50, 64, 80, 96, 128, 160, 192, 256, 384, 512) if e >= K]
    tuned = None
    if tune:
        t0 = time.perf_counter()
        tuned, tuned_recall = vi.tune_ef(k=K)
        log.info(
            "ef tuned to %d (recall@50 %.3f on the library's vectors) in %.1f s",
            tuned,
            tuned_recall,
            time.perf_counter() - t0,
        )
        efs = sorted(set(efs) | {tuned})
        default = f"ef={tuned}"
    b = Built(
        "lookalike (hnswlib)",
        f"M={M}, ef_construction={efc}",
        build,
        disk,
        mem,
        search,
        [(f"ef={e}", knob(e)) for e in efs],
        default,
    )
    b.index = vi  # type: ignore[attr-defined]
    b.tuned_ef = tuned  # type: ignore[attr-defined]
    return b


def build_faiss_flat(x: np.ndarray, **_) -> Built:
    import faiss

    faiss.omp_set_num_threads(1)
    idx = faiss.IndexFlatIP(x.shape[1])
    t0 = time.perf_counter()
    idx.add(x)
    build = time.perf_counter() - t0

    def search(q: np.ndarray) -> np.ndarray:
        return idx.search(q.reshape(1, -1), K)[1][0]

    return Built(
        "faiss Flat",
        "IndexFlatIP",
        build,
        _file_size(lambda p: faiss.write_index(idx, p)),
        x.nbytes,
        search,
        [("exact", lambda: None)],
        "exact",
    )


def build_faiss_hnsw(x: np.ndarray, *, M: int, efc: int, ef: int, threads: int, **_) -> Built:
    import faiss

    faiss.omp_set_num_threads(threads)
    before = rss_bytes()
    idx = faiss.IndexHNSWFlat(x.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    idx.hnsw.efConstruction = efc
    t0 = time.perf_counter()
    idx.add(x)
    build = time.perf_counter() - t0
    mem = rss_bytes() - before
    faiss.omp_set_num_threads(1)

    def search(q: np.ndarray) -> np.ndarray:
        return idx.search(q.reshape(1, -1), K)[1][0]

    def knob(e: int) -> Callable[[], None]:
        def set_() -> None:
            idx.hnsw.efSearch = e

        return set_

    efs = [e for e in (50, 64, 96, 128, 192, 256, 384) if e >= K]
    return Built(
        "faiss HNSW",
        f"HNSWFlat M={M}, efConstruction={efc}",
        build,
        _file_size(lambda p: faiss.write_index(idx, p)),
        mem,
        search,
        [(f"efSearch={e}", knob(e)) for e in efs],
        f"efSearch={ef}",
    )


def build_faiss_ivf(x: np.ndarray, *, threads: int, **_) -> Built:
    import faiss

    faiss.omp_set_num_threads(threads)
    n, d = x.shape
    nlist = max(16, int(4 * np.sqrt(n)))
    before = rss_bytes()
    quant = faiss.IndexFlatIP(d)
    idx = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    rng = np.random.default_rng(1)
    train = x[rng.choice(n, size=min(n, 40 * nlist), replace=False)]
    idx.train(train)
    idx.add(x)
    build = time.perf_counter() - t0
    mem = rss_bytes() - before
    faiss.omp_set_num_threads(1)

    def search(q: np.ndarray) -> np.ndarray:
        return idx.search(q.reshape(1, -1), K)[1][0]

    def knob(p: int) -> Callable[[], None]:
        def set_() -> None:
            idx.nprobe = p

        return set_

    probes = [p for p in (1, 2, 4, 8, 16, 32, 64) if p <= nlist]
    return Built(
        "faiss IVF",
        f"IVFFlat nlist={nlist}",
        build,
        _file_size(lambda p: faiss.write_index(idx, p)),
        mem,
        search,
        [(f"nprobe={p}", knob(p)) for p in probes],
        "nprobe=16",
    )


def build_usearch(x: np.ndarray, *, M: int, efc: int, ef: int, threads: int, **_) -> Built:
    from usearch.index import Index

    before = rss_bytes()
    idx = Index(ndim=x.shape[1], metric="ip", dtype="f32", connectivity=M, expansion_add=efc, expansion_search=ef)
    t0 = time.perf_counter()
    idx.add(np.arange(len(x), dtype=np.uint64), x, threads=threads)
    build = time.perf_counter() - t0
    mem = rss_bytes() - before

    def search(q: np.ndarray) -> np.ndarray:
        return idx.search(q, K, threads=1).keys

    def knob(e: int) -> Callable[[], None]:
        def set_() -> None:
            idx.expansion_search = e

        return set_

    efs = [e for e in (50, 64, 96, 128, 192, 256, 384) if e >= K]
    return Built(
        "usearch",
        f"f32 connectivity={M}, expansion_add={efc}",
        build,
        _file_size(lambda p: idx.save(p)),
        mem,
        search,
        [(f"expansion_search={e}", knob(e)) for e in efs],
        f"expansion_search={ef}",
    )


BUILDERS: dict[str, Callable[..., Built]] = {
    "flat": build_flat_numpy,
    "hnswlib": build_ours,
    "faiss-flat": build_faiss_flat,
    "faiss-hnsw": build_faiss_hnsw,
    "faiss-ivf": build_faiss_ivf,
    "usearch": build_usearch,
}


def available(names: list[str]) -> list[str]:
    out = []
    for n in names:
        mod = {"faiss-flat": "faiss", "faiss-hnsw": "faiss", "faiss-ivf": "faiss", "usearch": "usearch"}.get(n)
        if mod:
            try:
                __import__(mod)
            except ImportError:
                log.warning("%s is not installed (pip install '.[bench]'); skipped", mod)
                continue
        out.append(n)
    return out


def run_scale(
    n: int,
    dim: int,
    *,
    libraries: list[str],
    M: int,
    efc: int,
    ef: int,
    threads: int,
    queries: int,
    anchors: np.ndarray | None,
    say: Callable[[str], None],
) -> dict:
    """Index ``n`` vectors with every library; the sweep and the summary at each one's default knob."""
    model = EmbeddingModel(dim, clusters=max(50, n // 200), seed=7, anchors=anchors)
    t0 = time.perf_counter()
    x = model.sample(n, seed=11)
    q = model.sample(queries, seed=13)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    truth = exact_topk(x, q, K)
    say(f"  {n:,} x {dim} vectors made in {gen_s:.1f} s, exact top-{K} in {time.perf_counter() - t0:.1f} s")
    sims = (q @ x[truth[:, 0]].T).diagonal()
    rand = np.mean(q[:50] @ x[np.random.default_rng(0).choice(n, 200)].T)
    out = {
        "n": n,
        "dim": dim,
        "raw_bytes": int(x.nbytes),
        "queries": queries,
        "structure": {
            "clusters": model.clusters,
            "nn_cosine_median": float(np.median(sims)),
            "random_pair_cosine_mean": float(rand),
            "anchored_on_real_photos": anchors is not None and len(anchors) > 0,
        },
        "libraries": [],
    }
    for name in libraries:
        gc.collect()
        say(f"  {name}: building ...")
        # The other graphs at their usual M=16: faiss links a new element to 2M
        # neighbours on the bottom layer, where hnswlib links M (hence our M=32).
        b = BUILDERS[name](x, M=M if name == "hnswlib" else OTHERS_M, efc=efc, ef=ef, threads=threads)
        sweep = []
        for label, set_knob in b.knobs:
            set_knob()
            found, lat = _time_queries(b.search, q)
            s = summary([v * 1000 for v in lat])
            sweep.append(
                {
                    "knob": label,
                    "recall10": recall(found, truth, 10),
                    "recall50": recall(found, truth, K),
                    "p50_ms": s["median"],
                    "p95_ms": s["p95"],
                    "qps": 1000.0 / s["mean"],
                }
            )
        entry = {
            "name": name,
            "label": b.name,
            "params": b.params,
            "build_s": b.build_s,
            "disk_bytes": b.disk_bytes,
            "mem_bytes": b.mem_bytes,
            "sweep": sweep,
            "default": b.default_knob,
        }
        if getattr(b, "tuned_ef", None) is not None:
            entry["tuned_ef"] = b.tuned_ef
        out["libraries"].append(entry)
        d = next((s for s in sweep if s["knob"] == b.default_knob), sweep[-1])
        say(
            f"  {b.name:<22} build {b.build_s:7.1f} s  disk {b.disk_bytes / n:7.0f} B/photo  "
            f"R@10 {d['recall10']:.3f} R@50 {d['recall50']:.3f}  p50 {d['p50_ms']:.3f} ms  ({d['knob']})"
        )
        del b
        gc.collect()
    del x
    return out


def run_hnsw_grid(
    n: int,
    dim: int,
    *,
    Ms: list[int],
    efcs: list[int],
    threads: int,
    queries: int,
    anchors: np.ndarray | None,
    say: Callable[[str], None],
) -> list[dict]:
    """Build our graph with several M / ef_construction; recall and latency over ef."""
    model = EmbeddingModel(dim, clusters=max(50, n // 200), seed=7, anchors=anchors)
    x = model.sample(n, seed=11)
    q = model.sample(queries, seed=13)
    truth = exact_topk(x, q, K)
    rows = []
    for M in Ms:
        for efc in efcs:
            b = build_ours(x, M=M, efc=efc, ef=96, threads=threads, tune=False)
            for label, set_knob in b.knobs:
                set_knob()
                found, lat = _time_queries(b.search, q)
                s = summary([v * 1000 for v in lat])
                rows.append(
                    {
                        "M": M,
                        "efc": efc,
                        "ef": int(label.split("=")[1]),
                        "build_s": b.build_s,
                        "disk_bytes": b.disk_bytes,
                        "recall10": recall(found, truth, 10),
                        "recall50": recall(found, truth, K),
                        "p50_ms": s["median"],
                        "p95_ms": s["p95"],
                    }
                )
            say(
                f"  grid M={M} efc={efc}: build {b.build_s:.1f} s, "
                + ", ".join(
                    f"ef {r['ef']}: {r['recall10']:.3f}/{r['p50_ms']:.2f}ms"
                    for r in rows
                    if r["M"] == M and r["efc"] == efc
                )
            )
            del b
            gc.collect()
    return rows
