"""`lookalike bench --only peer`: Lookalike beside rclip, on the same weights and photos.

rclip (https://github.com/yurijmikhalevich/rclip) is a command-line CLIP photo
search on ONNX Runtime with the weights Lookalike uses by default (open_clip's
ViT-B-32-256, DataComp s34B b86K). This section gives both programs the same
weights, random ones of that architecture (speed does not depend on the values,
and no model hub is reachable here): an open_clip state dict for Lookalike's
``--model-file`` (``open_clip_model.safetensors``, the file the Hub ships, with
no config inside, so the architecture is worked out from its shapes) and its
ONNX export laid out as rclip keeps its downloaded models (``RCLIP_DATADIR/
ViT-B-32-256-datacomp_s34b_b86k/{textual,visual}.onnx`` and the tokenizer's
vocabulary), so that rclip finds them and never asks the Hub.

Everything is timed as whole processes, as a user runs them: a cold text query
(a new process to printed results, the library already indexed), indexing a
folder into a fresh library, and indexing one new photo into an indexed
library. Two folders: 111 photos of about 0.4 MP and 480 photos 1600 px wide.
Lookalike's indexing does more than rclip's: it also finds faces (People),
fingerprints photos for duplicates and tags them. So a fresh library is also
indexed with People off (a library made with the setting off before the run),
the work closest to rclip's.

The section runs only when rclip is installed: ``LOOKALIKE_RCLIP`` names its
executable, else ``rclip`` on PATH or beside this Python (``pip install
lookalike[bench-peer]``, or rclip in a virtual environment of its own).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

RCLIP_MODEL_SUBDIR = "ViT-B-32-256-datacomp_s34b_b86k"
ARCH = "ViT-B-32-256"
FOLDERS = (("small", 111, (768, 512)), ("large", 480, (1600, 1200)))
QUICK_FOLDERS = (("small", 6, (768, 512)),)
QUERY = "a cat"


def rclip_executable() -> str | None:
    env = os.environ.get("LOOKALIKE_RCLIP", "").strip()
    if env:
        return env if Path(env).is_file() else None
    found = shutil.which("rclip")
    if found:
        return found
    beside = Path(sys.executable).with_name("rclip")
    return str(beside) if beside.is_file() else None


def lookalike_command() -> list[str]:
    return [sys.executable, "-m", "lookalike"]


# -- the shared weights ---------------------------------------------------------------------


def write_weights(folder: Path, say: Callable[[str], None]) -> tuple[Path, Path]:
    """(open_clip safetensors file, rclip data folder) holding the same random ViT-B-32-256."""
    weights = folder / "open_clip_model.safetensors"
    datadir = folder / "rclip-data"
    model_dir = datadir / RCLIP_MODEL_SUBDIR
    vocab_target = datadir / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz"
    if all(p.is_file() for p in (weights, model_dir / "textual.onnx", model_dir / "visual.onnx", vocab_target)):
        return weights, datadir
    t0 = time.perf_counter()
    import open_clip
    import torch
    from safetensors.torch import save_file

    from lookalike.core.encoders.clip import _library_logs_to_ours
    from lookalike.core.encoders.clip_text import open_clip_vocab_file

    torch.manual_seed(0)
    with _library_logs_to_ours():  # "initialized randomly": as intended here
        model = open_clip.create_model(ARCH, pretrained=None).eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))

    class Text(torch.nn.Module):
        def __init__(self, m) -> None:
            super().__init__()
            self.m = m

        def forward(self, tokens):
            return self.m.encode_text(tokens)

    class Visual(torch.nn.Module):
        def __init__(self, m) -> None:
            super().__init__()
            self.m = m

        def forward(self, pixels):
            return self.m.encode_image(pixels)

    model_dir.mkdir(parents=True, exist_ok=True)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # rclip feeds "input" and reads the one output (features, not normalised).
            torch.onnx.export(
                Text(model),
                (torch.zeros(1, 77, dtype=torch.long),),
                str(model_dir / "textual.onnx"),
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "n"}, "output": {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
            torch.onnx.export(
                Visual(model),
                (torch.zeros(1, 3, 256, 256),),
                str(model_dir / "visual.onnx"),
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "n"}, "output": {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    vocab_target.parent.mkdir(parents=True, exist_ok=True)
    vocab = open_clip_vocab_file()
    assert vocab is not None
    shutil.copyfile(vocab, vocab_target)
    say(f"  peer: random {ARCH} written for both programs ({time.perf_counter() - t0:.0f} s)")
    return weights, datadir


# -- whole processes ------------------------------------------------------------------------


def timed(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None) -> dict:
    """Wall seconds and CPU seconds (user + system, its threads and children) of one process
    run to its end, and the end of its stderr. The CPU time does not depend on what else
    the machine runs; the wall time does."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        tail = (err or out).decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(map(str, cmd[:3]))}... exited {proc.returncode}: {' | '.join(tail)}")
    return {"wall": wall, "cpu": cpu, "stderr": err.decode("utf-8", "replace")[-400:]}


_PEOPLE_OFF = """
import sys
from pathlib import Path
from lookalike.core.engine import SearchEngine
engine = SearchEngine.open(Path(sys.argv[1]), writer=True, create=True)
with engine:
    engine.people().set_enabled(False)
"""


def new_library_without_people(lib: Path, env: dict) -> None:
    """An empty library with People off (the setting is the library's), for an index run."""
    shutil.rmtree(lib, ignore_errors=True)
    subprocess.run([sys.executable, "-c", _PEOPLE_OFF, str(lib)], env=env, check=True, capture_output=True)


def photo_folder(root: Path, name: str, count: int, size: tuple[int, int]) -> Path:
    from lookalike.bench.photos import make_camera_jpegs

    folder = root / f"peer-{name}-{count}"
    make_camera_jpegs(folder, count, size=size, seed=7)
    return folder


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:  # pragma: no cover - not on every platform
        return None


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure_peer(
    work: Path,
    repeats: int,
    say: Callable[[str], None],
    *,
    quick: bool = False,
    on_row: Callable[[dict], None] | None = None,
) -> dict:
    """Both programs on both folders (``LOOKALIKE_PEER_FOLDERS=small`` or ``large`` picks one);
    ``on_row`` hears the results so far after each folder."""
    rclip = rclip_executable()
    if rclip is None:
        say("  peer: rclip is not installed (pip install lookalike[bench-peer], or set LOOKALIKE_RCLIP); skipped")
        return {"skipped": "rclip not installed"}
    version = subprocess.run([rclip, "--version"], capture_output=True, text=True).stdout.strip()
    weights, datadir = write_weights(work / "peer-weights", say)
    # One model cache for both folders: the first run of the first folder exports the towers.
    base_env = dict(os.environ, LOOKALIKE_MODELS=str(work / "peer-models"))
    rows: list[dict] = []
    pick = {f.strip() for f in os.environ.get("LOOKALIKE_PEER_FOLDERS", "").split(",") if f.strip()}
    for name, count, size in QUICK_FOLDERS if quick else FOLDERS:
        if pick and name not in pick:
            continue
        folder = photo_folder(work, name, count, size)
        for p in sorted(folder.iterdir()):  # both read the files from the page cache
            p.read_bytes()
        home = work / f"peer-home-{name}"
        shutil.rmtree(home, ignore_errors=True)
        lib = work / f"peer-lib-{name}"
        ours_env = base_env | {"LOOKALIKE_HOME": str(home)}
        rdata = work / f"peer-rclip-{name}"
        shutil.rmtree(rdata, ignore_errors=True)
        shutil.copytree(datadir, rdata)  # the models; each run starts without rclip's database
        theirs_env = base_env | {"RCLIP_DATADIR": str(rdata)}
        index_ours = [*lookalike_command(), "index", str(folder), "--library", str(lib), "--model-file", str(weights)]
        index_ours.append("-q")
        query_ours = [*lookalike_command(), "search", QUERY, "--library", str(lib), "-k", "10"]
        index_theirs = [rclip, "--top", "1", "--filepath-only", "photo"]
        query_theirs = [rclip, "--no-indexing", "--top", "10", "--filepath-only", QUERY]

        # Lookalike's first load of new weights exports its towers (once per set of weights,
        # as rclip's ONNX files were made once): a run before the timed ones, for both.
        shutil.rmtree(lib, ignore_errors=True)
        first = timed(index_ours, env=ours_env)
        timed(index_theirs, cwd=folder, env=theirs_env)
        say(f"  peer {name}: Lookalike's first run (the first exports the towers): {first['wall']:.1f} s")
        res: dict = {
            "folder": name,
            "photos": count,
            "size": list(size),
            "first_load_wall": first["wall"],
            "first_load_cpu": first["cpu"],
            "load_average": _load(),
        }
        lib_bare = work / f"peer-lib-{name}-no-people"
        index_bare = [str(lib_bare) if a == str(lib) else a for a in index_ours]
        for r in range(repeats):
            shutil.rmtree(lib, ignore_errors=True)
            for db in rdata.glob("db.sqlite3*"):
                db.unlink()
            a = timed(index_ours, env=ours_env)
            b = timed(index_theirs, cwd=folder, env=theirs_env)
            new_library_without_people(lib_bare, ours_env)
            c = timed(index_bare, env=ours_env)
            for key, run in (("index_ours", a), ("index_theirs", b), ("index_bare", c)):
                res.setdefault(key, []).append(run["wall"])
                res.setdefault(key + "_cpu", []).append(run["cpu"])
            res.setdefault("index_load", []).append(_load())
            say(
                f"  peer {name} index run {r}: Lookalike {a['wall']:.1f} s ({a['cpu']:.1f} s CPU), "
                f"People off {c['wall']:.1f} s ({c['cpu']:.1f}), rclip {b['wall']:.1f} s ({b['cpu']:.1f}); "
                f"load {_load()}"
            )
        shutil.rmtree(lib_bare, ignore_errors=True)
        for _ in range(max(3, repeats + 2)):
            a = timed(query_ours, env=ours_env)
            b = timed(query_theirs, cwd=folder, env=theirs_env)
            res.setdefault("query_ours", []).append(a["wall"])
            res.setdefault("query_theirs", []).append(b["wall"])
            res.setdefault("query_ours_cpu", []).append(a["cpu"])
            res.setdefault("query_theirs_cpu", []).append(b["cpu"])
            if a["stderr"].strip():
                res["query_ours_stderr"] = a["stderr"]
        res["query_load"] = _load()
        say(
            f"  peer {name} cold query: Lookalike {_median(res['query_ours']):.2f} s, "
            f"rclip {_median(res['query_theirs']):.2f} s"
        )
        # One new photo into the indexed library (a copy with a new trailer: a new file).
        src = sorted(folder.glob("*.jpg"))[0]
        for r in range(repeats):
            extra = folder / f"zz-new-{r}.jpg"
            extra.write_bytes(src.read_bytes() + f"new {r}".encode())
            try:
                a = timed(index_ours, env=ours_env)
                b = timed([rclip, "--top", "1", "--filepath-only", "photo"], cwd=folder, env=theirs_env)
            finally:
                extra.unlink()
            res.setdefault("one_new_ours", []).append(a["wall"])
            res.setdefault("one_new_theirs", []).append(b["wall"])
            res.setdefault("one_new_ours_cpu", []).append(a["cpu"])
            res.setdefault("one_new_theirs_cpu", []).append(b["cpu"])
        # put the library back as the folder is (the extra photos are gone)
        timed(index_ours, env=ours_env)
        for key, who in [(k, w) for k in ("index", "query", "one_new") for w in ("ours", "theirs")] + [
            ("index", "bare")
        ]:
            for suffix in ("", "_cpu"):
                name = f"{key}_{who}{suffix}"
                res[name + "_median"] = _median(res.get(name, []))
        res["rate_ours"] = count / res["index_ours_median"]
        res["rate_theirs"] = count / res["index_theirs_median"]
        res["rate_bare"] = count / res["index_bare_median"]
        res["load_average_end"] = _load()
        rows.append(res)
        if on_row is not None:
            on_row({"rclip": version, "query": QUERY, "repeats": repeats, "rows": list(rows)})
    return {"rclip": version, "query": QUERY, "repeats": repeats, "rows": rows}


# -- report -------------------------------------------------------------------------------------


def _faster(ratio: float) -> str:
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{ratio:.2f}x (slower)"


def render_peer(peer: dict, machine: dict) -> str:
    if not peer or peer.get("skipped"):
        return ""
    rows = peer.get("rows", [])
    lines = [
        "# Lookalike beside rclip",
        "",
        f"{peer.get('rclip', 'rclip')} and Lookalike on the same random-weight {ARCH} weights (ONNX export for "
        "rclip, open_clip safetensors for Lookalike), the same photos, whole processes, medians of "
        f"{peer.get('repeats')} runs (queries: {max(3, int(peer.get('repeats') or 1) + 2)}). "
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; {machine.get('when', '')}. "
        "Runs of the two programs alternate, so a busy machine slows both alike; the CPU seconds "
        "(user + system, all threads) are the work done, which the machine's load does not change. "
        "Load average (1 min) during the runs: "
        + ", ".join(
            f"{r['folder']} {r.get('load_average', '?')} at the start, {r.get('load_average_end', '?')} at the end"
            for r in peer.get("rows", [])
        )
        + ".",
        "",
        "| work | folder | rclip | Lookalike | ratio | CPU s, rclip | CPU s, Lookalike | CPU ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cpu(r: dict, key: str) -> str:
        v = r.get(key)
        return f"{v:.2f}" if isinstance(v, (int, float)) and v == v else "-"

    def cpu_ratio(r: dict, theirs: str, ours: str) -> str:
        """rclip's CPU seconds over Lookalike's: the ratio a busy machine disturbs least."""
        t, o = r.get(theirs), r.get(ours)
        ok = all(isinstance(v, (int, float)) and v == v and v > 0 for v in (t, o))
        return f"{t / o:.2f}x" if ok else "-"  # type: ignore[operator]

    for r in peer.get("rows", []):
        f = f"{r['photos']} photos, {r['size'][0]}x{r['size'][1]}"
        q_o, q_t = r["query_ours_median"], r["query_theirs_median"]
        lines.append(
            f"| cold text query (s) | {f} | {q_t:.2f} | {q_o:.2f} | {_faster(q_t / q_o)} | "
            f"{cpu(r, 'query_theirs_cpu_median')} | {cpu(r, 'query_ours_cpu_median')} | "
            f"{cpu_ratio(r, 'query_theirs_cpu_median', 'query_ours_cpu_median')} |"
        )
        lines.append(
            f"| index, fresh library (photos/s) | {f} | {r['rate_theirs']:.1f} | {r['rate_ours']:.1f} | "
            f"{r['rate_ours'] / r['rate_theirs']:.2f}x | {cpu(r, 'index_theirs_cpu_median')} | "
            f"{cpu(r, 'index_ours_cpu_median')} | {cpu_ratio(r, 'index_theirs_cpu_median', 'index_ours_cpu_median')} |"
        )
        if r.get("rate_bare"):
            lines.append(
                f"| index, fresh library, People off (photos/s) | {f} | {r['rate_theirs']:.1f} | "
                f"{r['rate_bare']:.1f} | {r['rate_bare'] / r['rate_theirs']:.2f}x | "
                f"{cpu(r, 'index_theirs_cpu_median')} | {cpu(r, 'index_bare_cpu_median')} | "
                f"{cpu_ratio(r, 'index_theirs_cpu_median', 'index_bare_cpu_median')} |"
            )
        n_o, n_t = r["one_new_ours_median"], r["one_new_theirs_median"]
        lines.append(
            f"| index 1 new photo (s) | {f} | {n_t:.2f} | {n_o:.2f} | {_faster(n_t / n_o)} | "
            f"{cpu(r, 'one_new_theirs_cpu_median')} | {cpu(r, 'one_new_ours_cpu_median')} | "
            f"{cpu_ratio(r, 'one_new_theirs_cpu_median', 'one_new_ours_cpu_median')} |"
        )
    lines += [
        "",
        "Lookalike's indexing also finds faces (People), fingerprints each photo for duplicates and tags it; "
        "rclip does none of these. The People-off row is a library made with People off before the run: "
        "the work closest to rclip's. Whole-process rates include start-up (imports, model load) and the "
        "end of the run (graph save, grouping, tags). The ratio compares wall times (above 1: Lookalike ahead); "
        "the CPU ratio is rclip's CPU seconds over Lookalike's (above 1: Lookalike does the work with less).",
        "",
        "Lookalike's image tower runs in bfloat16 for runs of 48 photos or more on a CPU that computes it "
        "natively and where it was measured faster than float32 (this one: Zen 4, AVX512-BF16); rclip's in "
        "float32. Both are the same weights; Lookalike's bfloat16 rows are within 5e-3 of float32's "
        "(docs/models.md). One new photo goes through float32 (ONNX Runtime), as rclip does.",
        "",
        "Lookalike's first load of a new set of weights exports its towers once (numpy text tower, ONNX image "
        "tower, checked against open_clip, and the bfloat16 copy, checked and timed); that run, the first of "
        "the first folder, is not in the table: "
        + (
            f"{rows[0]['first_load_wall']:.1f} s wall, {rows[0].get('first_load_cpu', float('nan')):.1f} s CPU "
            "(export and indexing together)."
            if rows
            else ""
        ),
        "",
        "![Lookalike beside rclip](peer.png)",
        "",
    ]
    return "\n".join(lines)


def plot_peer(peer: dict, out: Path) -> Path | None:
    if not peer or peer.get("skipped") or not peer.get("rows"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = peer["rows"]
    labels = [f"{r['photos']} photos\n{r['size'][0]} px" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    panels = (
        ("cold text query (s, lower is better)", "query_theirs_median", "query_ours_median"),
        ("indexing (photos/s, higher is better)", "rate_theirs", "rate_ours"),
        ("index 1 new photo (s, lower is better)", "one_new_theirs_median", "one_new_ours_median"),
    )
    x = range(len(rows))
    for ax, (title, theirs, ours) in zip(axes, panels, strict=True):
        ax.bar([i - 0.2 for i in x], [r[theirs] for r in rows], 0.4, label="rclip", color="#999999")
        ax.bar([i + 0.2 for i in x], [r[ours] for r in rows], 0.4, label="Lookalike", color="#2b6cb0")
        ax.set_xticks(list(x), labels)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = out / "peer.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_peer_report(results: dict, out: Path) -> None:
    peer = results.get("peer") or {}
    text = render_peer(peer, results.get("machine", {}))
    if not text:
        return
    try:
        plot_peer(peer, out)
    except Exception as exc:  # a plot must never lose the table
        print(f"peer plot failed: {exc}", file=sys.stderr)
    (out / "peer.md").write_text(text, "utf-8")
