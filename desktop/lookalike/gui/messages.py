"""Messages to the person at the window: one vocabulary of levels and one funnel.

Every part of the window reports through a :class:`Notify` callable (the
frame's ``notify``) instead of reaching for the banner or the status bar
itself: a passing note goes to the status bar, anything a person can act on
to the banner. ``failure_text`` turns a failed job into words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Protocol

from lookalike.gui.workers import JobFailure


class Level(StrEnum):
    """How loud a message is, and so where it goes."""

    STATUS = "status"  # a passing note in the status bar
    INFO = "info"  # the banner, blue
    WARNING = "warning"  # the banner, amber
    ERROR = "error"  # the banner, red


# A button on a banner message: its label and what it does.
Action = tuple[str, Callable[[], object]]


class Notify(Protocol):
    """Show ``text`` at ``level``. ``key`` names a banner message so it can be cleared later."""

    def __call__(self, level: Level, text: str, *, key: str = "", actions: Sequence[Action] = ()) -> None: ...


def failure_text(failure: JobFailure) -> str:
    """A failed job in words: a user's problem as it is, a bug with a pointer to the log."""
    if failure.user_facing:
        return failure.message
    return f"Something went wrong: {failure.message}. The details are in the log; please report them."
