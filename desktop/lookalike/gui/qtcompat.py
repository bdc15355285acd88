"""Work-arounds for defects in the Qt binding, each probed before it is applied.

PySide6 6.12.0 hands back ``None`` (from every method that returns nothing)
and ``True`` (from ``Signal.emit``) without taking a reference to them. On
Python 3.12 and later those objects are immortal and nothing happens; on
Python 3.11 each such call lowers their reference count by one, and after
some thousands of calls (a few scrolls through a grid of thumbnails) the
interpreter aborts with "none_dealloc: deallocating None" or
"bool_dealloc: deallocating True or False". PySide6 6.11 does not do this.

Where the probe sees the leak, we do what Python 3.12 does: make ``None``,
``True`` and ``False`` practically immortal by giving each a very large
reference count (they are never freed while the interpreter runs anyway).
With a binding that does not leak, or on Python 3.12+, nothing is touched.
The proper fix is a binding without the defect (PySide6 != 6.12.0 on 3.11).
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys

log = logging.getLogger(__name__)

_applied: bool | None = None
_CUSHION = 1 << 40  # references: more than any run of the program can drop


def _leaks() -> list[str]:
    """Which singletons the binding drops references to (probed with a few calls)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        pinged = Signal()

    probe = _Probe()
    leaked = []
    n = 16
    before = sys.getrefcount(None)
    for _ in range(n):
        probe.setObjectName("probe")  # returns nothing
    if before - sys.getrefcount(None) >= n:
        leaked.append("None")
    before = sys.getrefcount(True)
    for _ in range(n):
        probe.pinged.emit()
    if before - sys.getrefcount(True) >= n:
        leaked.append("True")
    return leaked


def _add_references(obj: object, count: int) -> None:
    # CPython (3.11 and older) keeps ob_refcnt as the first field of every object.
    cell = ctypes.c_ssize_t.from_address(id(obj))
    cell.value += count


def apply() -> bool:
    """Install the work-around where this binding needs it (idempotent). True if installed."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if platform.python_implementation() != "CPython" or sys.version_info >= (3, 12):
        return False  # immortal singletons: the defect is harmless
    try:
        leaked = _leaks()
    except Exception:  # never stop the window from opening over a probe
        log.exception("probing the Qt binding failed")
        return False
    if leaked:
        import PySide6

        for obj in (None, True, False):
            _add_references(obj, _CUSHION)
        _applied = True
        log.info(
            "PySide6 %s on Python %s drops references to %s; compensating. "
            "Use PySide6 6.11 (or Python 3.12+) to avoid this.",
            PySide6.__version__,
            platform.python_version(),
            " and ".join(leaked),
        )
    return _applied
