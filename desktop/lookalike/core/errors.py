"""Errors that are the user's problem (a message, no traceback) versus bugs.

A :class:`LookalikeError` carries a message a person can act on. The CLI prints
it as one line and exits 1 (or 2 for usage and query errors); the window shows
it in place. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LookalikeError(Exception):
    """A problem the user can act on. ``str(err)`` is the whole message."""

    exit_code = 1


class UsageError(LookalikeError):
    """The command line or a request was malformed."""

    exit_code = 2


class QueryError(UsageError):
    """A query that cannot be understood; points at a column (0-based)."""

    def __init__(self, message: str, query: str = "", column: int = 0) -> None:
        self.reason = message
        self.query = query
        self.column = max(0, column)
        super().__init__(self._render())

    def _render(self) -> str:
        return f"{self.reason} (at column {self.column + 1})"

    def caret(self, width: int = 72) -> str:
        """The query with a caret line under the offending column; a long query is
        shown as a window of about ``width`` characters around that column."""
        start = max(0, min(self.column - width // 2, len(self.query) - width))
        text = self.query[start : start + width]
        pre = "…" if start > 0 else ""
        post = "…" if start + width < len(self.query) else ""
        return f"{pre}{text}{post}\n{' ' * (len(pre) + self.column - start)}^"


class LibraryLockedError(LookalikeError):
    """Another process holds the library's writer lock."""


class LibraryNeedsUpgradeError(LookalikeError):
    """A reader met a library whose catalog is of an older schema (only a writer migrates)."""


class ModelMismatchError(LookalikeError):
    """The library was built with another encoder than the one requested."""


class ModelUnavailableError(LookalikeError):
    """An encoder's weights cannot be had (offline, missing file, bad checkpoint)."""


class LibraryCorruptError(LookalikeError):
    """Part of a library on disk is damaged beyond automatic repair."""


class DiskFullError(LookalikeError):
    """A save ran out of space; the previous state on disk is intact."""
