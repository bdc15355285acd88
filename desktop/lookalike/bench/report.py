"""The report: a Markdown table of every figure, and PNG plots."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

# The issue's targets.
T_E2E_RATIO = 0.9
T_CPU = 0.9
T_RECALL10 = 0.98
T_P50_MS = 2.0
T_SIZE_RATIO = 1.3
T_QUERY_MS = {"offline": 50.0, "clip-vit-b-32 (random weights)": 100.0}
T_FIRST_PAINT = 1.0
T_CLI = 3.0


def _ms(s: dict, digits: int = 1) -> str:
    if not s or s.get("n", 0) == 0:
        return "-"
    if s["n"] == 1:
        return f"{s['median']:.{digits}f}"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def _mb(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def _ok(flag: bool | None) -> str:
    return "—" if flag is None else ("met" if flag else "**missed**")


def best_encode(results: dict) -> dict[str, dict]:
    """Per encoder: the cheapest single-thread CPU cost per photo over batch sizes."""
    out: dict[str, dict] = {}
    for r in results.get("encode", {}).get("rows", []):
        if r["threads"] != 1 and not r.get("device", "cpu").startswith("cuda"):
            continue
        cur = out.get(r["encoder"])
        if cur is None or r["cpu_ms"]["median"] < cur["cpu_ms"]["median"]:
            out[r["encoder"]] = r
    return out


def limits(results: dict) -> dict[str, dict]:
    dec = {r["method"]: r for r in results.get("decode", {}).get("rows", [])}
    read = dec.get("read + blake2b content hash")
    engine = next((r for k, r in dec.items() if "engine" in k), None)
    cores = results.get("machine", {}).get("cores") or 1
    out = {}
    if read is None or engine is None:
        return out
    for name, row in best_encode(results).items():
        total = read["ms"]["median"] + engine["ms"]["median"] + row["cpu_ms"]["median"]
        out[name] = {
            "read_ms": read["ms"]["median"],
            "decode_ms": engine["ms"]["median"],
            "encode_ms": row["cpu_ms"]["median"],
            "batch": row["batch"],
            "limit": cores * 1000.0 / total,
            "cores": cores,
        }
    return out


def _scale_default(lib: dict) -> dict:
    return next((s for s in lib["sweep"] if s["knob"] == lib["default"]), lib["sweep"][-1])


def targets(results: dict) -> list[tuple[str, str, str, bool | None]]:
    rows: list[tuple[str, str, str, bool | None]] = []
    lim = limits(results)
    idx = results.get("indexing", {}).get("runs", [])
    for model in sorted({r["model"] for r in idx}):
        runs = [r for r in idx if r["model"] == model]
        rate = sorted(r["rate"] for r in runs)[len(runs) // 2]
        util = sorted(r["cpu_util"] for r in runs)[len(runs) // 2]
        if model in lim:
            ratio = rate / lim[model]["limit"]
            rows.append(
                (
                    f"indexing rate / machine limit ({model})",
                    f"≥ {T_E2E_RATIO}",
                    f"{ratio:.2f} ({rate:.1f} of {lim[model]['limit']:.1f} photos/s)",
                    ratio >= T_E2E_RATIO,
                )
            )
        rows.append((f"CPU utilisation while indexing ({model})", f"> {T_CPU:.0%}", f"{util:.0%}", util > T_CPU))
        if model in lim:
            cpu_ms = sorted(r["cpu_util"] * r["wall_s"] * r["cores"] * 1000 / max(1, r["photos"]) for r in runs)
            lim_row = lim[model]
            eff = (lim_row["read_ms"] + lim_row["decode_ms"] + lim_row["encode_ms"]) / cpu_ms[len(cpu_ms) // 2]
            rows.append(
                (f"CPU time per photo, ideal / real ({model}; load-independent)", "(≥ 0.9)", f"{eff:.2f}", None)
            )
    for run in results.get("scale", {}).get("runs", []):
        ours = next((lib for lib in run["libraries"] if lib["name"] == "hnswlib"), None)
        if ours is None:
            continue
        d = _scale_default(ours)
        n = run["n"]
        tag = (
            f"at {n:,}"
            + (f", {d['knob']}" + (" tuned" if ours.get("tuned_ef") else ""))
            + (" (target is at 1M)" if n < 1_000_000 else "")
        )
        rows.append((f"recall@10, ours, {tag}", f"≥ {T_RECALL10}", f"{d['recall10']:.3f}", d["recall10"] >= T_RECALL10))
        rows.append(
            (f"p50 top-50 latency, ours, {tag}", f"< {T_P50_MS} ms", f"{d['p50_ms']:.2f} ms", d["p50_ms"] < T_P50_MS)
        )
        ratio = ours["disk_bytes"] / run["raw_bytes"]
        rows.append(
            (f"graph file / raw vectors, ours, {tag}", f"≤ {T_SIZE_RATIO}", f"{ratio:.3f}", ratio <= T_SIZE_RATIO)
        )
    for q in results.get("query", {}).get("runs", []):
        tgt = T_QUERY_MS.get(q["encoder"])
        p50 = q["total_ms"]["median"]
        rows.append(
            (
                f"text → ranked paths p50, {q['encoder']}, {q['n']:,} photos",
                f"< {tgt:.0f} ms" if tgt else "—",
                f"{p50:.1f} ms",
                (p50 < tgt) if tgt else None,
            )
        )
    st = results.get("startup", {})
    for r in st.get("rows", []):
        if r["what"].startswith("lookalike search"):
            rows.append(
                (
                    "first CLI answer (new process, offline model)",
                    f"< {T_CLI:.0f} s",
                    f"{r['s']['median']:.2f} s",
                    r["s"]["median"] < T_CLI,
                )
            )
    fp = st.get("first_paint")
    if fp:
        rows.append(
            (
                "window first paint",
                f"< {T_FIRST_PAINT:.0f} s",
                f"{fp['s']['median']:.2f} s",
                fp["s"]["median"] < T_FIRST_PAINT,
            )
        )
    elif "startup" in results:
        rows.append(("window first paint", f"< {T_FIRST_PAINT:.0f} s", "not measured", None))
    return rows


def _header(results: dict) -> list[str]:
    L: list[str] = []
    m = results.get("machine", {})
    cfg = results.get("config", {})
    L.append("# lookalike bench report\n")
    L.append(
        f"Machine: **{m.get('cpu', '?')}**, {m.get('cores', '?')} cores, {m.get('ram_gib', '?')} GiB RAM, "
        f"{m.get('os', '')}; Python {m.get('python', '')}, torch {m.get('torch', '')}, "
        f"numpy {m.get('numpy', '')}, Pillow {m.get('pillow', '')}, hnswlib {m.get('hnswlib', '')}, "
        f"faiss-cpu {m.get('faiss-cpu', '-')}, usearch {m.get('usearch', '-')}; GPU: {m.get('cuda', 'none')}; "
        f"device {cfg.get('device', 'cpu')}. Run {m.get('when', '')}.\n"
    )
    L.append("Figures are medians, with (min–max) over repeated measurements where there were several.\n")
    if results.get("errors"):
        L.append("**Sections that failed:** " + "; ".join(f"{k}: {v}" for k, v in results["errors"].items()) + "\n")
    return L


def _targets_section(results: dict) -> list[str]:
    L: list[str] = []
    tg = targets(results)
    if tg:
        L.append("## Targets\n")
        L.append("| target | wanted | measured | |")
        L.append("|---|---|---|---|")
        for what, want, got, ok in tg:
            L.append(f"| {what} | {want} | {got} | {_ok(ok)} |")
        L.append("")
    return L


def _decode_section(results: dict) -> list[str]:
    L: list[str] = []
    dec = results.get("decode")
    if dec:
        L.append("## Decode cost per photo (one core)\n")
        L.append(
            f"{dec['photos']} camera files, {dec['width']}×{dec['height']} JPEG with EXIF, "
            f"median {dec['file_mb_median']:.1f} MB; decoded to about {dec['target']} px on the short side.\n"
        )
        full = next((r["ms"]["median"] for r in dec["rows"] if r["method"].startswith("Pillow, full")), None)
        L.append("| method | CPU ms / photo | vs full decode |")
        L.append("|---|---|---|")
        for r in dec["rows"]:
            ratio = f"{full / r['ms']['median']:.1f}× faster" if full and not r["method"].startswith("read") else ""
            L.append(f"| {r['method']} | {_ms(r['ms'])} | {ratio} |")
        L.append("")
    return L


def _encode_section(results: dict) -> list[str]:
    L: list[str] = []
    enc = results.get("encode")
    if enc and enc.get("rows"):
        L.append("## Encode cost per photo\n")
        L.append(
            "Wall time per photo, and CPU time per photo summed over the threads used "
            "(the cost in core-milliseconds).\n"
        )
        L.append("| encoder | device | torch threads | batch | wall ms / photo | CPU ms / photo |")
        L.append("|---|---|---|---|---|---|")
        for r in enc["rows"]:
            L.append(
                f"| {r['encoder']} | {r.get('device', 'cpu')} | {r['threads']} | {r['batch']} | "
                f"{_ms(r['wall_ms'])} | {_ms(r['cpu_ms'])} |"
            )
        L.append("")
    return L


def _limits_section(results: dict) -> list[str]:
    L: list[str] = []
    lim = limits(results)
    idx = results.get("indexing", {}).get("runs", [])
    if lim:
        L.append("## The machine's indexing limit and the real rate\n")
        L.append(
            "Limit = cores × 1000 / (read+hash + decode + encode) ms, with each cost measured on one core "
            "(encode at its cheapest batch size, one torch thread): every core busy all the time, nothing "
            "serialised. The real rate is `SearchEngine.index` from a folder of files to a saved library "
            "(scan + read + hash + decode + encode + commit + graph save), model load excluded.\n"
        )
        L.append(
            "Other work on the machine (see the load averages below) takes CPU from the run and lowers "
            "the rate; so the table also gives the load-independent figure: CPU time the real run "
            "spent per photo against the ideal (read+hash + decode + encode on one core each).\n"
        )
        L.append(
            "| encoder | read+hash ms | decode ms | encode ms (batch) | limit photos/s | real photos/s | "
            "real / limit | CPU utilisation | real CPU ms / photo | ideal / real CPU | peak RSS |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, lim_row in lim.items():
            runs = [r for r in idx if r["model"] == name]
            if runs:
                rates = sorted(r["rate"] for r in runs)
                utils = sorted(r["cpu_util"] for r in runs)
                rate = rates[len(rates) // 2]
                real = f"{rate:.1f} ({rates[0]:.1f}–{rates[-1]:.1f}) over {len(runs)} runs of {runs[0]['photos']}"
                ratio = f"{rate / lim_row['limit']:.2f}"
                util = f"{utils[len(utils) // 2]:.0%}"
                rss = _mb(max(r["peak_rss"] for r in runs))
                cpu_ms = sorted(r["cpu_util"] * r["wall_s"] * r["cores"] * 1000 / max(1, r["photos"]) for r in runs)
                ideal = lim_row["read_ms"] + lim_row["decode_ms"] + lim_row["encode_ms"]
                cpu = f"{cpu_ms[len(cpu_ms) // 2]:.0f} ({cpu_ms[0]:.0f}–{cpu_ms[-1]:.0f})"
                eff = f"{ideal / cpu_ms[len(cpu_ms) // 2]:.2f}"
            else:
                real = ratio = util = rss = cpu = eff = "not run (timing-only model)"
            L.append(
                f"| {name} | {lim_row['read_ms']:.1f} | {lim_row['decode_ms']:.1f} | {lim_row['encode_ms']:.1f} ({lim_row['batch']}) | "
                f"{lim_row['limit']:.1f} | {real} | {ratio} | {util} | {cpu} | {eff} | {rss} |"
            )
        L.append("")
    return L


def _memory_section(results: dict) -> list[str]:
    L: list[str] = []
    mem = results.get("memory")
    if mem:
        L.append("## Memory while indexing\n")
        L.append(
            f"{mem['photos']:,} small JPEG files indexed through the real pipeline with a stand-in encoder "
            f"that returns {mem['dim']}-d embedding-like vectors (so that the pipeline's own memory shows; "
            f"a real encoder adds its weights, a constant).\n"
        )
        s = mem["samples"]
        L.append("| photos indexed | RSS |")
        L.append("|---|---|")
        marks = sorted(
            {min(range(len(s)), key=lambda i: abs(s[i][3] - f * mem["photos"])) for f in (0, 0.1, 0.25, 0.5, 0.75, 1.0)}
        )
        for i in marks:
            L.append(f"| {s[i][3]:,} | {_mb(s[i][2])} |")
        L.append(f"| peak | {_mb(mem['peak_rss'])} |")
        L.append(
            f"\nLibrary on disk: {_mb(mem['library_bytes'])} "
            f"({mem['library_bytes'] / max(1, mem['library_photos']):,.0f} bytes/photo: catalog row + "
            f"float32 vector in SQLite, plus the graph). Rate {mem['rate']:.0f} photos/s, "
            f"CPU {mem['cpu_util']:.0%}.\n"
        )
    return L


def _scale_section(results: dict) -> list[str]:
    L: list[str] = []
    sc = results.get("scale", {}).get("runs", [])
    if sc:
        L.append("## Queries at scale: the same vectors in every library\n")
        r0 = sc[0]
        st = r0["structure"]
        L.append(
            f"Unit vectors in {r0['dim']} dimensions with the structure of photo embeddings: "
            f"{'anchored on real photos’ embeddings, ' if st['anchored_on_real_photos'] else ''}"
            f"a shared direction, a low-rank spread, many clusters of skewed sizes (n/200 clusters; "
            f"median nearest-neighbour cosine {st['nn_cosine_median']:.2f}, random pair "
            f"{st['random_pair_cosine_mean']:.2f}). {r0['queries']} held-out queries, top-50, one thread, "
            "recall against exact search. Build on all cores.\n"
        )
        for run in sc:
            n = run["n"]
            L.append(f"### {n:,} vectors ({_mb(run['raw_bytes'])} raw float32)\n")
            L.append(
                "| library | parameters | search setting | build s | disk B/photo | disk / raw | "
                "memory B/photo | recall@10 | recall@50 | p50 ms | p95 ms | QPS (1 thread) |"
            )
            L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for lib in run["libraries"]:
                d = _scale_default(lib)
                knob = d["knob"] + (" (tuned by the engine)" if lib.get("tuned_ef") else "")
                L.append(
                    f"| {lib['label']} | {lib['params']} | {knob} | {lib['build_s']:.1f} | "
                    f"{lib['disk_bytes'] / n:,.0f} | {lib['disk_bytes'] / run['raw_bytes']:.3f} | "
                    f"{max(0, lib['mem_bytes']) / n:,.0f} | {d['recall10']:.3f} | {d['recall50']:.3f} | "
                    f"{d['p50_ms']:.3f} | {d['p95_ms']:.3f} | {d['qps']:,.0f} |"
                )
            L.append("")
            ours = next((lib for lib in run["libraries"] if lib["name"] == "hnswlib"), None)
            if ours:
                L.append(f"Our graph over its `ef` (n = {n:,}):\n")
                L.append("| ef | recall@10 | recall@50 | p50 ms | p95 ms |")
                L.append("|---|---|---|---|---|")
                for s in ours["sweep"]:
                    mark = " (tuned)" if ours.get("tuned_ef") and s["knob"] == ours["default"] else ""
                    L.append(
                        f"| {s['knob'].split('=')[1]}{mark} | {s['recall10']:.3f} | {s['recall50']:.3f} | "
                        f"{s['p50_ms']:.3f} | {s['p95_ms']:.3f} |"
                    )
                L.append("")
    return L


def _grid_section(results: dict) -> list[str]:
    L: list[str] = []
    grid = results.get("grid")
    if grid and grid.get("rows"):
        L.append(f"## Our graph's parameters ({grid['n']:,} vectors, {grid['dim']} dimensions)\n")
        L.append("| M | ef_construction | build s | disk B/photo | ef | recall@10 | recall@50 | p50 ms |")
        L.append("|---|---|---|---|---|---|---|---|")
        for r in grid["rows"]:
            L.append(
                f"| {r['M']} | {r['efc']} | {r['build_s']:.1f} | {r['disk_bytes'] / grid['n']:,.0f} | {r['ef']} | "
                f"{r['recall10']:.3f} | {r['recall50']:.3f} | {r['p50_ms']:.3f} |"
            )
        L.append("")
    return L


def _query_section(results: dict) -> list[str]:
    L: list[str] = []
    q = results.get("query", {}).get("runs", [])
    if q:
        L.append("## Text query → ranked paths, end to end\n")
        L.append(
            "`SearchEngine.search(text, k=50)` on a library of that many photos (rows in the catalog, vectors "
            "embedding-like in the model's dimension, graph built by the engine and its ef tuned), and each "
            "stage timed alone. 20 different queries, including arithmetic.\n"
        )
        L.append(
            "| encoder | photos | dim | ef | p50 ms | p95 ms | parse ms | text encode ms | search ms | "
            "catalog lookup ms |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in q:
            L.append(
                f"| {r['encoder']} | {r['n']:,} | {r['dim']} | {r['ef']} | {r['total_ms']['median']:.1f} | "
                f"{r['total_ms']['p95']:.1f} | {r['parse_ms']['median']:.2f} | "
                f"{r['text_encode_ms']['median']:.1f} | {r['search_ms']['median']:.2f} | "
                f"{r['lookup_ms']['median']:.2f} |"
            )
        L.append("")
    return L


def _startup_section(results: dict) -> list[str]:
    L: list[str] = []
    st = results.get("startup")
    if st:
        L.append("## Start-up (new process, warm page cache)\n")
        L.append("| what | wall s |")
        L.append("|---|---|")
        for r in st["rows"]:
            L.append(f"| {r['what']} | {_ms(r['s'], 2)} |")
        fp = st.get("first_paint")
        L.append(f"| window first paint (offscreen) | {_ms(fp['s'], 2) if fp else 'not measured'} |")
        from lookalike.bench.coldstart import render as render_cold

        L.extend(render_cold(st.get("cold_search")))
        L.append("")
    return L


def _plugins(results: dict) -> list[str]:
    L: list[str] = []
    if results.get("window"):
        from lookalike.bench.window_memory import render as render_window

        L.extend(render_window(results["window"]))
        L.append("")

    if results.get("duplicates"):
        from lookalike.bench.duplicates import render as render_duplicates

        L.extend(render_duplicates(results["duplicates"]))

    if results.get("faces"):
        from lookalike.bench.faces import render as render_faces

        L.extend(render_faces(results["faces"]))

    if results.get("concepts"):
        from lookalike.bench.concepts import render as render_concepts

        L.extend(render_concepts(results["concepts"]))

    if results.get("relevance"):
        from lookalike.bench.relevance import render as render_relevance

        L.extend(render_relevance(results["relevance"]))

    if results.get("text"):
        from lookalike.bench.text import render as render_text

        L.extend(render_text(results["text"]))
    return L


def _footer(results: dict, plots: list[str]) -> list[str]:
    L: list[str] = []
    if plots:
        L.append("## Plots\n")
        for p in plots:
            L.append(f"![{p}]({p})\n")
    secs = results.get("section_seconds", {})
    if secs:
        L.append("Section times: " + ", ".join(f"{k} {v:.0f} s" for k, v in secs.items()) + ".\n")
    load = results.get("load_average", {})
    if load:
        L.append(
            "One-minute load average at the end of each section (other work on the machine skews "
            "timings when it exceeds the core count): " + ", ".join(f"{k} {v:.1f}" for k, v in load.items()) + ".\n"
        )
    return L


def render(results: dict, plots: list[str]) -> str:
    L: list[str] = []
    for section in (
        _header,
        _targets_section,
        _decode_section,
        _encode_section,
        _limits_section,
        _memory_section,
        _scale_section,
        _grid_section,
        _query_section,
        _startup_section,
        _plugins,
    ):
        L.extend(section(results))
    L.extend(_footer(results, plots))
    return "\n".join(L)


def write_plots(results: dict, out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots (pip install '.[bench]')")
        return []
    made = []
    sc = results.get("scale", {}).get("runs", [])
    if sc:
        fig, axes = plt.subplots(1, len(sc), figsize=(6 * len(sc), 4.5), squeeze=False)
        for ax, run in zip(axes[0], sc):
            for lib in run["libraries"]:
                xs = [s["recall10"] for s in lib["sweep"]]
                ys = [s["qps"] for s in lib["sweep"]]
                ax.plot(xs, ys, "o-" if len(xs) > 1 else "s", label=lib["label"], markersize=4)
            ax.set_yscale("log")
            ax.set_xlabel("recall@10 (top-50 queries)")
            ax.set_ylabel("queries per second, one thread")
            ax.set_title(f"{run['n']:,} vectors × {run['dim']}")
            ax.axvline(T_RECALL10, color="grey", lw=0.8, ls="--")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "recall_vs_qps.png", dpi=110)
        plt.close(fig)
        made.append("recall_vs_qps.png")
    idx = results.get("indexing", {}).get("runs", [])
    if idx:
        lim = limits(results)
        models = sorted({r["model"] for r in idx})
        fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4), squeeze=False)
        for ax, model in zip(axes[0], models):
            ax2 = ax.twinx()
            longest = 0.0
            for r in (r for r in idx if r["model"] == model):
                s = r["samples"]
                pairs = [(a, b) for a, b in zip(s, s[1:]) if b[0] > a[0]]
                longest = max(longest, s[-1][0] if s else 0.0)
                (line,) = ax.plot(
                    [b[0] for b in s], [b[3] for b in s], label=f"run {r.get('run', 0) + 1}: {r['rate']:.1f} photos/s"
                )
                ax2.plot(
                    [b[0] for _, b in pairs],
                    [100 * (b[1] - a[1]) / ((b[0] - a[0]) * r["cores"]) for a, b in pairs],
                    color=line.get_color(),
                    lw=0.8,
                    alpha=0.35,
                )
            if model in lim:
                ax.plot(
                    [0, longest],
                    [0, lim[model]["limit"] * longest],
                    color="red",
                    ls="--",
                    lw=1,
                    label=f"machine limit, {lim[model]['limit']:.1f} photos/s",
                )
            ax.set_xlabel("seconds")
            ax.set_ylabel("photos indexed (committed to the library)")
            ax2.set_ylabel("CPU utilisation, % of all cores (faint lines)")
            ax2.set_ylim(0, 110)
            ax.set_ylim(bottom=0)
            ax.set_zorder(ax2.get_zorder() + 1)
            ax.patch.set_visible(False)
            ax.legend(fontsize=8, loc="upper left")
            ax.set_title(f"Indexing 12-megapixel JPEGs end to end: {model}", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / "indexing_rate.png", dpi=110)
        plt.close(fig)
        made.append("indexing_rate.png")
    mem = results.get("memory")
    if mem:
        fig, ax = plt.subplots(figsize=(7, 4))
        s = mem["samples"]
        ax.plot([x[3] for x in s], [x[2] / 2**20 for x in s], label="RSS")
        ax.set_xlabel("photos indexed")
        ax.set_ylabel("resident memory, MiB")
        raw = [x[3] * mem["dim"] * 4 / 2**20 for x in s]
        ax.plot([x[3] for x in s], raw, ls="--", label=f"the raw vectors ({mem['dim']}-d float32), for scale")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"Memory while indexing {mem['photos']:,} photos")
        fig.tight_layout()
        fig.savefig(out / "memory.png", dpi=110)
        plt.close(fig)
        made.append("memory.png")
    return made


def write_report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    try:
        plots = write_plots(results, out)
    except Exception:  # a plot must never lose the table
        log.exception("plots failed")
        plots = []
    (out / "report.md").write_text(render(results, plots))
