"""Payloads the service hands the window's widgets: frozen records, no Qt."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from lookalike.core.engine import Folder


@dataclass(frozen=True)
class FolderRow:
    """A folder as the panel shows it: core's Folder, its path as text (also before the library is open)."""

    path: str
    photos: int = 0
    failures: int = 0
    online: bool = True

    @classmethod
    def from_info(cls, info: Folder) -> FolderRow:
        return cls(os.fspath(info.path), info.photos, info.failures, info.online)
