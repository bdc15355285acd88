"""The bundle's entry point: `lookalike` opens the window, `lookalike COMMAND ...` runs the command line."""

import multiprocessing

from lookalike.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    raise SystemExit(main())
