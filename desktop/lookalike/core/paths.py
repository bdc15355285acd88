"""Where things live on disk. One place, overridable by LOOKALIKE_HOME.

Also the rule that picks a library: one library per model (vectors of two models
never mix), and the current model recorded in the data folder, so that the
command line and the window open the same library (design rule 10).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from lookalike import APP_NAME
from lookalike.core.fsutil import atomic_write_text

log = logging.getLogger(__name__)

DEFAULT_MODEL = "offline"


@dataclass(frozen=True)
class ModelChoice:
    """A model as a user picks it: a registry name, and for CLIP maybe a checkpoint file."""

    name: str = DEFAULT_MODEL  # registry name: offline, clip, resnet50
    model_file: str = ""  # a local checkpoint file ("" for none)

    @classmethod
    def of(cls, name: str | None, model_file: str | os.PathLike[str] | None = None) -> ModelChoice:
        """The choice a caller names; a checkpoint file alone means CLIP, nothing means offline."""
        file = os.path.abspath(os.fspath(model_file)) if model_file else ""
        return cls(name or ("clip" if file else DEFAULT_MODEL), file)


@dataclass(frozen=True)
class AppPaths:
    data: Path  # libraries live under here
    cache: Path  # thumbnails of our own, downloaded models
    config: Path  # settings

    CURRENT_MODEL = "current-model.json"

    @property
    def default_library(self) -> Path:
        """The library used when none is named: the current model's."""
        return self.library_for(self.current_model())

    def library_for(self, choice: ModelChoice) -> Path:
        """Where the library built with ``choice`` lives: one library per model."""
        if choice.name in ("", DEFAULT_MODEL):
            return self.data / "library"
        suffix = choice.name
        if choice.model_file:
            suffix += "-" + hashlib.sha1(os.path.abspath(choice.model_file).encode()).hexdigest()[:8]
        return self.data / f"library-{suffix}"

    def library_to_open(
        self, library: Path | None, model: str | None = None, model_file: str | os.PathLike[str] | None = None
    ) -> Path:
        """The library a command opens: the one named, else the named model's, else the current one's."""
        if library is not None:
            return Path(library).expanduser().resolve()
        if model or model_file:
            return self.library_for(ModelChoice.of(model, model_file))
        return self.default_library

    def current_model(self, default: ModelChoice | None = None) -> ModelChoice:
        """The model the user chose last (in the window or the command line); ``default``
        (else the offline model) while none is recorded."""
        fallback = default or ModelChoice()
        try:
            raw = json.loads((self.data / self.CURRENT_MODEL).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return fallback
        except (OSError, ValueError) as exc:
            log.warning("Ignoring the unreadable current-model record: %s", exc)
            return fallback
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            log.warning("Ignoring a current-model record without a model name")
            return fallback
        from lookalike.core.encoders import ENCODER_NAMES

        if raw["name"] not in ENCODER_NAMES:
            # Never open (and create) an empty library for a model there is no such thing as.
            log.warning(
                "The current model recorded in %s, '%s', is not one Lookalike knows (%s): using the %s model",
                self.data / self.CURRENT_MODEL,
                raw["name"],
                ", ".join(ENCODER_NAMES),
                fallback.name,
            )
            return fallback
        return ModelChoice.of(raw["name"], str(raw.get("model_file") or "") or None)

    def set_current_model(self, choice: ModelChoice) -> None:
        """Record ``choice`` as the current model (write-temp, fsync, rename)."""
        ensure_private_dir(self.data)
        atomic_write_text(
            self.data / self.CURRENT_MODEL, json.dumps({"name": choice.name, "model_file": choice.model_file})
        )

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
