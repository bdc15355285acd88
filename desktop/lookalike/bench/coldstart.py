"""A cold query by library size: `lookalike search "a cat"` as a whole new process.

Libraries of each size are built with real catalogs (the rows go through the
catalog's commit path, the graph is built and saved as an index run saves it)
and synthetic, embedding-like vectors in the offline model's dimension; each
query is a fresh process, timed from start to exit, its peak resident memory
read from the kernel: the child's own VmHWM at its exit (wait4's ru_maxrss
would report the parent's peak when the parent is larger: Linux carries the
forking process's high-water mark across exec).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lookalike.bench.util import summary

SIZES = (37, 20_000, 100_000)
QUERY = "a cat"


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


def cold_search_by_size(
    work: Path, encoder, sizes: list[int], repeats: int, say: Callable[[str], None], anchors=None, keep: bool = False
) -> dict:
    """Build each library (kept between runs in ``work`` when ``keep``) and time its cold query."""
    from lookalike.bench.queries import build_synthetic_library
    from lookalike.core.library import ModelRecord

    record = ModelRecord("offline", encoder.id, encoder.weights_checksum, int(encoder.dimension))
    out = []
    for n in sizes:
        lib = work / f"lib-cold-{n}"
        built: dict = {"n": n}
        if not (keep and (lib / "vectors.json").exists()):
            built = build_synthetic_library(lib, encoder, record, n, anchors, say)
        res = measure_cold_search(lib, repeats, say)
        out.append({**built, "n": n, **res, "graph_mib": (lib / "vectors.hnsw").stat().st_size / 2**20})
        say(
            f"  cold 'lookalike search' at {n:>9,} photos: {res['wall_s']['median']:.2f} s "
            f"(CPU {res['cpu_s']['median']:.2f} s), peak {res['peak_mib']['median']:.0f} MiB"
        )
        if not keep:
            shutil.rmtree(lib, ignore_errors=True)
    return {"query": QUERY, "repeats": repeats, "runs": out}


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
        "resident high-water mark.",
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
