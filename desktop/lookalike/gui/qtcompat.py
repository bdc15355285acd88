"""Work-arounds for defects in the Qt binding, each detected before it is applied.

PySide6 6.12.0's ``SignalInstance.emit`` returns ``True`` without taking a
reference to it, so every ``emit()`` from Python lowers the reference count of
``True`` by one. After a few hundred emits (a scroll through thumbnails) the
interpreter aborts with "bool_dealloc: deallocating True or False". We probe
for the defect once and, only where it shows, wrap ``emit`` to take the
missing reference. A fixed binding is left untouched.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_applied: bool | None = None


def _emit_leaks_true() -> bool:
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        pinged = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.pinged.emit()
    after = sys.getrefcount(True)
    leaked = before - after >= 8
    if leaked:  # give back what the probe itself took
        for _ in range(before - after):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    probe.deleteLater()
    return leaked


def apply() -> bool:
    """Install the work-arounds this binding needs (idempotent). True if any was installed."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    try:
        from PySide6.QtCore import SignalInstance

        if _emit_leaks_true():
            original = SignalInstance.emit
            incref = ctypes.pythonapi.Py_IncRef
            py_object = ctypes.py_object

            def emit(self, *args):
                result = original(self, *args)
                if result is True or result is False:
                    incref(py_object(result))
                return result

            emit.__doc__ = original.__doc__
            SignalInstance.emit = emit
            _applied = True
            log.info("PySide6: compensating for SignalInstance.emit's reference leak on True")
    except Exception:  # never stop the window from opening over a probe
        log.exception("probing the Qt binding failed")
    return _applied
