"""Where things live on disk. One place, overridable by LOOKALIKE_HOME."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lookalike import APP_NAME


@dataclass(frozen=True)
class AppPaths:
    data: Path  # libraries live under here
    cache: Path  # thumbnails of our own, downloaded models
    config: Path  # settings

    @property
    def default_library(self) -> Path:
        return self.data / "library"

    @property
    def models(self) -> Path:
        return self.cache / "models"

    @classmethod
    def from_env(cls) -> AppPaths:
        home = os.environ.get("LOOKALIKE_HOME")
        if home:
            root = Path(home).expanduser().resolve()
            return cls(data=root / "data", cache=root / "cache", config=root / "config")
        import platformdirs

        return cls(
            data=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            cache=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
            config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        )


def app_paths() -> AppPaths:
    """The current AppPaths (read from the environment each call, so tests can override)."""
    return AppPaths.from_env()


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it private to the user (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    return path
