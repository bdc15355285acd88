"""What every view is: a widget with a title and an icon, built from a ViewContext."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from lookalike.gui.messages import Notify
from lookalike.gui.results import ResultItem

if TYPE_CHECKING:
    from lookalike.gui.service import LibraryService
    from lookalike.gui.settings import Settings
    from lookalike.gui.thumbnails import ThumbnailLoader
    from lookalike.gui.workers import JobRunner


@dataclass(frozen=True)
class PhotoSet:
    """Photos a view asks the frame to show in the result grid (a person, a group of duplicates)."""

    title: str  # shown above the grid: "Alice", "3 near duplicates"
    photos: tuple[ResultItem, ...]
    scored: bool = False  # True: the items' scores mean something and are shown on the tiles
    query: str = ""  # the query that finds them ("@alice"), put in the query field in place of the old one

    @classmethod
    def of_paths(cls, title: str, paths: Sequence[str], *, query: str = "") -> PhotoSet:
        items = tuple(ResultItem(rank=i + 1, path=p, score=0.0) for i, p in enumerate(paths))
        return cls(title, items, query=query)


@dataclass(frozen=True)
class ViewContext:
    """What the frame hands every view."""

    service: LibraryService  # the library: every engine call, on pool threads, reported by signals
    settings: Settings
    thumbnails: ThumbnailLoader  # shared thumbnail cache (the grid's and the views')
    runner: JobRunner  # for a view's own small jobs off the GUI thread
    notify: Notify  # the one funnel for messages to the person
    dismiss: Callable[[str], None]  # take back the banner message of that key, if it still shows
    show_photos: Callable[[PhotoSet], None]  # show photos in the result grid (switches to it)
    choose_folder: Callable[[], None]  # ask the person for a folder to add
    # "The selected photos": the selection of the photo grid looked at last (search or
    # browse), also when asked from another view; a selection left in the other grid is not.
    selected_photos: Callable[[], list[str]]
    open_view: Callable[[str], None]  # bring the view of this key to the front
    teach: Callable[[Sequence[str]], None]  # teach a concept from these photos (asks its name), in Concepts


class View(QWidget):
    """One room of the window, listed in the sidebar.

    A subclass sets ``key``, ``title`` and ``icon`` (an SVG name under
    resources/icons), builds its widgets in ``__init__`` and connects to the
    service's signals there. The frame calls ``activated`` when the view is
    shown and ``deactivated`` when another one is, and ``closing`` when the
    window closes (save state there).
    """

    key: ClassVar[str]
    title: ClassVar[str]
    icon: ClassVar[str] = "search"

    activation_requested = Signal()  # "show me" (e.g. a shortcut of this view was pressed elsewhere)

    def __init__(self, context: ViewContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName(f"{type(self).__name__}")

    @property
    def service(self) -> LibraryService:
        return self.context.service

    @property
    def widget(self) -> QWidget:
        """The widget the frame shows (the view itself, unless a subclass says otherwise)."""
        return self

    def menu_actions(self) -> Sequence[QAction | None]:
        """Actions for a menu named after the view (None: a separator)."""
        return ()

    def selected_photos(self) -> list[str]:
        """The paths of the photos selected in this view's grid (a view without one: none)."""
        return []

    def activated(self) -> None:
        """The view was brought to the front."""

    def deactivated(self) -> None:
        """Another view was brought to the front."""

    def closing(self) -> None:
        """The window is closing: save what should survive a restart."""
