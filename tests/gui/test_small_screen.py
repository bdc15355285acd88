"""The window fits an 800x600 screen: no view (the stack takes the widest) forces it wider."""

from __future__ import annotations


def test_the_window_fits_800_by_600(qtbot, home):
    from lookalike import app as appmod

    appmod.ensure_application()
    window = appmod.build_window(appmod.build_services())
    qtbot.addWidget(window)
    window.show()
    hint = window.minimumSizeHint()
    assert hint.width() <= 800, {v.key: v.widget.minimumSizeHint().width() for v in window.views}
    assert hint.height() <= 600
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.width() == 800)
