"""The views of the window: Search, and the rooms that join it (People, Duplicates, Concepts).

The frame (:class:`~lookalike.gui.mainwindow.MainWindow`) lists the views in
the sidebar and shows one at a time. A view is a :class:`View`: a QWidget
with a ``key``, a ``title`` and an ``icon``, built from a :class:`ViewContext`
that carries everything it may use:

* ``context.service``: the library (an :class:`~lookalike.gui.service.LibraryService`);
  every engine call runs on pool threads and answers through its signals.
  Connect to the signals you need in ``__init__`` (``opened``, ``status_changed``,
  ``folders_changed``, ``indexing_finished``, ...). For work of your own on the
  core API, ``context.service.submit(lambda engine: ..., on_success, on_failure,
  write=False)`` runs it off the GUI thread (``write=True``: on the write queue,
  after any indexing run, so the library keeps one writer).
* ``context.notify(level, text, key=..., actions=...)``: the one way to tell the
  person something (``Level.STATUS`` for a passing note in the status bar;
  ``INFO``/``WARNING``/``ERROR`` for the banner). ``context.dismiss(key)`` takes
  a banner message back.
* ``context.show_photos(PhotoSet(title, items))``: show photos in the result
  grid (the frame switches to the search view).
* ``context.runner``: a JobRunner for a view's own small jobs off the GUI thread;
  ``context.thumbnails``, ``context.settings``, ``context.choose_folder``.

The frame calls ``activated()`` / ``deactivated()`` as the person switches
views and ``closing()`` when the window closes; ``menu_actions()`` fills a menu
named after the view.

Adding a view is one module here and one line in ``VIEWS`` in
``gui/mainwindow.py``::

    # gui/views/people.py
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QListWidget, QVBoxLayout

    from lookalike.gui.views.base import PhotoSet, View, ViewContext


    class PeopleView(View):
        key = "people"
        title = "People"
        icon = "people"  # resources/icons/people.svg, drawn in #333333

        def __init__(self, context: ViewContext, parent=None) -> None:
            super().__init__(context, parent)
            self.list = QListWidget(self)
            QVBoxLayout(self).addWidget(self.list)
            self.list.itemActivated.connect(self._show_person)
            context.service.indexing_finished.connect(lambda _outcome: self.refresh())

        def activated(self) -> None:
            self.refresh()

        def refresh(self) -> None:
            ...  # ask the service on a pool thread; fill self.list when it answers

        def _show_person(self, item) -> None:
            paths = item.data(Qt.ItemDataRole.UserRole)
            self.context.show_photos(PhotoSet.of_paths(item.text(), paths))

    # gui/mainwindow.py
    VIEWS: tuple[type[View], ...] = (SearchView, PeopleView)
"""

from lookalike.gui.views.base import PhotoSet, View, ViewContext

__all__ = ["PhotoSet", "View", "ViewContext"]
