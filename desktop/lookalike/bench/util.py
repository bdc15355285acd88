"""Small helpers shared by the benchmarks: statistics, memory, CPU time."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field


def summary(values: list[float]) -> dict:
    """Median and spread (min, max, p95, mean) of repeated measurements."""
    v = sorted(values)
    if not v:
        return {
            "n": 0,
            "median": float("nan"),
            "min": float("nan"),
            "max": float("nan"),
            "p95": float("nan"),
            "mean": float("nan"),
        }
    p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
    return {
        "n": len(v),
        "median": statistics.median(v),
        "min": v[0],
        "max": v[-1],
        "p95": p95,
        "mean": statistics.fmean(v),
    }


def rss_bytes() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # pragma: no cover
        return 0


def peak_rss_bytes() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def cpu_seconds() -> float:
    """This process's CPU time, all threads, at nanosecond resolution (os.times ticks at 10 ms)."""
    return time.process_time()


@dataclass
class Sampler:
    """Samples this process's CPU use, RSS and a counter every ``interval`` seconds."""

    interval: float = 0.5
    counter: callable = lambda: 0
    samples: list[tuple[float, float, int, int]] = field(default_factory=list)  # (t, cpu_s, rss, count)

    def __enter__(self) -> Sampler:
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._c0 = cpu_seconds()
        self.samples.append((0.0, 0.0, rss_bytes(), self.counter()))
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((time.perf_counter() - self._t0, cpu_seconds() - self._c0, rss_bytes(), self.counter()))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter() - self._t0, cpu_seconds() - self._c0, rss_bytes(), self.counter()))

    @property
    def wall(self) -> float:
        return self.samples[-1][0]

    @property
    def cpu(self) -> float:
        return self.samples[-1][1]

    @property
    def peak_rss(self) -> int:
        return max(s[2] for s in self.samples)
