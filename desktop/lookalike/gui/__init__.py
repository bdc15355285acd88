"""The window: Qt widgets, models, delegates and background workers.

Everything here is a client of :mod:`lookalike.core.engine`; nothing in
``core`` knows about Qt.
"""

from lookalike.gui import qtcompat as _qtcompat

_qtcompat.apply()
