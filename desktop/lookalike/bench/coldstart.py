"""A cold query by library size: `lookalike search "a cat"` as a whole new process.

Libraries of each size are built with real catalogs (the rows go through the
catalog's commit path, the graph is built and saved as an index run saves it)
and synthetic, embedding-like vectors in the offline model's dimension; each
query is a fresh process, timed from start to exit, its peak resident memory
read from the kernel: the child's own VmHWM at its exit (wait4's ru_maxrss
would report the parent's peak when the parent is larger: Linux carries the
forking process's high-water mark across exec).

The 1,000,000-photo library (6.6 GB of vectors in the catalog, a 6.9 GB graph; its
graph build alone takes about 20 minutes on two cores) is built once and kept
under ``LOOKALIKE_BENCH_CACHE`` (default: the system's temporary folder,
``lookalike-bench-cold``), then reused by later runs while its record (size,
dimension, encoder) matches; the smaller ones are built for each run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lookalike.bench.util import summary

SIZES = (37, 20_000, 100_000, 1_000_000)
KEPT_FROM = 1_000_000  # libraries this large are built once and kept (see the module's docstring)
QUERY = "a cat"
_BUILT = "bench-built.json"


# Run as the child's first code: at exit it writes its own peak RSS (VmHWM) to the fd
# the parent names in _HWM_FD,
# then runs what follows it on the command line (-m MODULE ..., -c CODE ..., or a script).
_HWM = """
import atexit, os, runpy, sys
def _hwm():
    try:
        kb = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
        os.write(int(os.environ.pop("_HWM_FD")), kb.encode())
    except (OSError, IndexError):
        pass
atexit.register(_hwm)
args = sys.argv[1:]
if args[0] == "-m":
    sys.argv = args[1:]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
elif args[0] == "-c":
    sys.argv = ["-c", *args[2:]]
    exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
else:
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
"""


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS bytes) of one Python child process (``cmd`` is
    [python, args...]); raises when it fails. CPU time is the figure a busy machine
    disturbs least."""
    r, w = os.pipe()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [cmd[0], "-c", _HWM, *cmd[1:]],
        env=dict(env, _HWM_FD=str(w)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=(w,),
    )
    os.close(w)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    with os.fdopen(r, "rb") as fh:
        hwm = fh.read().decode(errors="replace").strip()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed ({proc.returncode}): {err.strip()[-300:]}")
    peak = int(hwm) * 1024 if hwm.isdigit() else int(usage.ru_maxrss) * 1024
    return wall, usage.ru_utime + usage.ru_stime, peak


def measure_cold_search(library: Path, repeats: int, say: Callable[[str], None]) -> dict:
    """Whole-process `lookalike search` on ``library``: the first run warms the page
    cache (as a second query would find it), then ``repeats`` timed runs."""
    cmd = [sys.executable, "-m", "lookalike", "search", QUERY, "--library", os.fspath(library), "-k", "20"]
    env = dict(os.environ)
    run_child(cmd, env)
    runs = [run_child(cmd, env) for _ in range(repeats)]
    return {
        "wall_s": summary([w for w, _, _ in runs]),
        "cpu_s": summary([c for _, c, _ in runs]),
        "peak_mib": summary([p / 2**20 for _, _, p in runs]),
    }


def cache_dir() -> Path:
    """Where the libraries built once (KEPT_FROM photos and more) are kept between runs."""
    override = os.environ.get("LOOKALIKE_BENCH_CACHE", "").strip()
    return Path(override).expanduser() if override else Path(tempfile.gettempdir()) / "lookalike-bench-cold"


def _kept_library(lib: Path, want: dict) -> dict | None:
    """What an earlier run recorded of the library it built at ``lib``, if it is the one wanted."""
    try:
        built = json.loads((lib / _BUILT).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    same = all(built.get(k) == v for k, v in want.items())
    return built if same and (lib / "vectors.hnsw").is_file() else None


def cold_search_by_size(
    work: Path, encoder, sizes: list[int], repeats: int, say: Callable[[str], None], anchors=None, keep: bool = False
) -> dict:
    """Build each library (kept between runs in ``work`` when ``keep``; from KEPT_FROM photos
    up, always, in :func:`cache_dir`) and time its cold query."""
    from lookalike.bench.queries import build_synthetic_library
    from lookalike.core.store.library import ModelRecord

    record = ModelRecord("offline", encoder.id, encoder.weights_checksum, int(encoder.dimension))
    out = []
    for n in sizes:
        kept = n >= KEPT_FROM
        lib = (cache_dir() if kept else work) / f"lib-cold-{n}"
        want = {"n": n, "dim": int(encoder.dimension), "encoder": encoder.id}
        built: dict = {"n": n}
        earlier = _kept_library(lib, want) if kept else None
        if earlier is not None:
            built = {**earlier, "reused": True}
            say(f"  library of {n:,} photos: the one built {earlier.get('when', 'earlier')} in {lib}")
        elif not (keep and not kept and (lib / "vectors.json").exists()):
            t0 = time.perf_counter()
            built = build_synthetic_library(lib, encoder, record, n, anchors, say)
            built["build_s"] = time.perf_counter() - t0
            if kept:
                stamp = {**built, **want, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
                (lib / _BUILT).write_text(json.dumps(stamp), "utf-8")
        res = measure_cold_search(lib, repeats, say)
        out.append({**built, "n": n, **res, "graph_mib": (lib / "vectors.hnsw").stat().st_size / 2**20})
        say(
            f"  cold 'lookalike search' at {n:>9,} photos: {res['wall_s']['median']:.2f} s "
            f"(CPU {res['cpu_s']['median']:.2f} s), peak {res['peak_mib']['median']:.0f} MiB"
        )
        if not keep and not kept:
            shutil.rmtree(lib, ignore_errors=True)
    return {"query": QUERY, "repeats": repeats, "runs": out, "load_average": _load()}


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:  # pragma: no cover - not on every platform
        return None


def render(cold: dict | None) -> list[str]:
    """The report's table of the cold query by library size."""
    if not cold or not cold.get("runs"):
        return []
    lines = [
        "",
        f'### Cold query by library size (`lookalike search "{cold["query"]}"`, a new process each time)',
        "",
        "Offline model; real catalogs, synthetic embedding-like vectors. Median of "
        f"{cold['repeats']} runs after one that warms the page cache; peak is the process's "
        "resident high-water mark; CPU is user + system time, which a busy machine disturbs "
        f"least (load average {cold.get('load_average', '?')}). The "
        f"{KEPT_FROM:,}-photo library is built once and reused (`lookalike.bench.coldstart.cache_dir`).",
        "",
        "| photos | wall (median) | wall (max) | CPU (median) | peak memory (median) | graph file |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in cold["runs"]:
        cpu = r.get("cpu_s", {}).get("median")
        lines.append(
            f"| {r['n']:,} | {r['wall_s']['median']:.2f} s | {r['wall_s']['max']:.2f} s | "
            f"{'—' if cpu is None else f'{cpu:.2f} s'} | {r['peak_mib']['median']:.0f} MiB | "
            f"{r.get('graph_mib', 0):,.0f} MiB |"
        )
    return lines
