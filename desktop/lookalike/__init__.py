"""Lookalike: find photos by likeness."""

__version__ = "0.1.0"
APP_NAME = "Lookalike"
APP_ID = "io.github.lookalike.Lookalike"

# Query-time numpy work is small matrices (a text tower, one query against the
# vectors); BLAS threads only add contention there: measured on 2 cores, 25 ms
# per text query with one thread against 200-400 ms with two while the other
# core was busy. Set before numpy loads; an explicit setting wins.
import os as _os  # noqa: E402 (the version and names above need nothing imported)

_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
