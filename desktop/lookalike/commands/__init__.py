"""Subcommands that belong to one feature each (people, duplicates, concepts...).

A feature's module here defines ``register(sub, opts) -> dict[str, Handler]``:
it adds its subparsers to ``sub`` (using ``opts.library`` / ``opts.model`` to add
the shared options) and returns the handlers by command name. The command line
adds each module listed in ``FEATURES``; adding a feature's commands is adding
its module and one line here. Heavy imports stay inside the handlers.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

Handler = Callable[[argparse.Namespace], int]

FEATURES: tuple[str, ...] = ("duplicates", "people", "concepts", "text", "tags")


@dataclass(frozen=True)
class SharedOptions:
    """Adders for the options every library command takes."""

    library: Callable[[argparse.ArgumentParser], None]
    model: Callable[[argparse.ArgumentParser], None]


def register_all(sub: argparse._SubParsersAction, opts: SharedOptions) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    for name in FEATURES:
        module = importlib.import_module(f"{__name__}.{name}")
        handlers.update(module.register(sub, opts))
    return handlers
