"""The command line: `lookalike index|search|status|models|bench`.

With no arguments it opens the window. Exit status: 0 on success, 2 for a
usage or query error, 1 for anything else. A user's error is one clear line
on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lookalike import __version__
from lookalike.core.errors import DiskFullError, LookalikeError, QueryError, UsageError
from lookalike.core.words import counted

log = logging.getLogger("lookalike")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


#: What each command is doing, for a full disk's message.
_DOING = {
    "index": "indexing",
    "search": "searching",
    "teach": "teaching a concept",
    "concepts": "changing a concept",
    "people": "changing people",
    "duplicates": "handling duplicates",
    "status": "reading the library's status",
}


def _finite_float(text: str) -> float:
    """A number option's value: a finite number (nan, inf and -inf would silently compare
    false, or true, with every score)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lookalike", description="Find photos by likeness. With no command, opens the window.")
    p.add_argument("--version", action="version", version=f"lookalike {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def library_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--library",
            type=Path,
            metavar="DIR",
            help="the library folder (default: the current model's library under your data folder; "
            "LOOKALIKE_HOME overrides)",
        )

    def model_opts(sp: argparse.ArgumentParser) -> None:
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--model", metavar="NAME", help="encoder: offline (default), clip, resnet50")
        g.add_argument("--model-file", type=Path, metavar="FILE", help="a local CLIP checkpoint file")
        sp.add_argument("--device", metavar="DEV", help="cpu, cuda, cuda:N or mps (default: the best available)")

    sp = sub.add_parser("index", help="index photo folders (incremental: only new and changed photos)")
    sp.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="folders to add and index (none: update every folder of the library)",
    )
    library_opts(sp)
    model_opts(sp)
    sp.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files and folders matching GLOB (repeatable)",
    )
    sp.add_argument("--batch-size", type=int, metavar="N", help=argparse.SUPPRESS)
    sp.add_argument("--workers", type=int, metavar="N", help=argparse.SUPPRESS)
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    sp = sub.add_parser("search", help="search by text, photo paths, or arithmetic over both")
    sp.add_argument(
        "query",
        metavar="QUERY",
        help="e.g. 'a dog on a beach', './me.jpg', 'dog + city', 'haircut - man'; with filters: 'beach year:2023 "
        "in:~/Pictures/Trips kind:heic shape:portrait min:2mp tag:dog', people '@alice - @bob' and concepts "
        "'#luna'; filters alone list photos newest first",
    )
    library_opts(sp)
    model_opts(sp)
    sp.add_argument(
        "-k", type=int, metavar="N", help="the N best results, matching or not (as --all; default 20 there)"
    )
    sp.add_argument("--all", action="store_true", help="the ranked list, matching or not, instead of the matches")
    sp.add_argument("--min-score", type=_finite_float, metavar="S", help="hide results scoring below S")
    sp.add_argument("--in", dest="folder", type=Path, metavar="FOLDER", help="only photos inside FOLDER")
    sp.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array of {rank, path, score, match, confidence} (and path_bytes for a name that is not "
        "UTF-8)",
    )

    sp = sub.add_parser("status", help="what the library holds, and which library and model are current")
    library_opts(sp)
    model_opts(sp)
    sp.add_argument("--errors", action="store_true", help="list the photos that could not be read, with reasons")
    sp.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser("models", help="the encoders available here and which work offline")

    sp = sub.add_parser("bench", help="measure indexing and query speed on this machine")
    sp.add_argument("--out", type=Path, default=Path("bench-report"), metavar="DIR")
    sp.add_argument("--quick", action="store_true", help="the smallest sizes, for a smoke test")
    sp.add_argument("--device", metavar="DEV", help="cpu or cuda")
    sp.add_argument("--sizes", metavar="N,N,...", help="vector counts for the scale benchmark")
    sp.add_argument(
        "--cold-sizes", metavar="N,N,...", help="library sizes for the start-up section's cold query (37,20000,100000)"
    )
    sp.add_argument("--photos", type=int, metavar="N", help="photos for the indexing benchmark")
    sp.add_argument(
        "--only",
        metavar="SECTION,...",
        help="run only these sections (decode, encode, indexing, memory, scale, grid, query, duplicates, faces, "
        "startup, window: the window's memory; peer: beside rclip, when it is installed); "
        "the others are kept from the report folder's results.json",
    )
    sp.add_argument(
        "--libraries",
        metavar="NAME,...",
        help="for the scale benchmark: flat, hnswlib, faiss-flat, faiss-hnsw, faiss-ivf, usearch",
    )
    sp.add_argument("--encoders", metavar="NAME,...", help="encoders to time: offline, clip (random ViT-B-32), ...")
    sp.add_argument("--batch-sizes", metavar="N,N,...", help="batch sizes for the encode benchmark")
    sp.add_argument("--dim", type=int, metavar="D", help="vector dimension (default: the offline model's)")
    sp.add_argument("--query-size", metavar="N", help="photos in the library for the end-to-end query timing")
    sp.add_argument("--memory-photos", metavar="N", help="photos for the memory (streaming) benchmark")
    sp.add_argument("--grid-size", metavar="N", help="vectors for the M / ef_construction grid (0: skip)")
    sp.add_argument("--repeats", type=int, metavar="N", help="repeat each timed run N times")
    sp.add_argument("--work", type=Path, metavar="DIR", help="keep generated photos and libraries here")

    from lookalike.commands import SharedOptions, register_all

    FEATURE_COMMANDS.update(register_all(sub, SharedOptions(library=library_opts, model=model_opts)))
    return p


def _only_photos(argv: Sequence[str]) -> bool:
    """True when every argument is a photo file (a path or a file:// URL): the window opens with them as the query."""

    def is_file(a: str) -> bool:
        if a.startswith("file://"):
            from urllib.parse import unquote, urlparse

            a = unquote(urlparse(a).path)
        return os.path.isfile(a)

    if not all(is_file(a) for a in argv):  # checked first: a command name is no file, and PIL stays unloaded
        return False
    from lookalike.core.index.imaging import is_photo_name

    return all(is_photo_name(a) for a in argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        from lookalike.app import main as gui_main

        return gui_main()
    if _only_photos(argv):  # `lookalike PHOTO...`, as "Open with" in a file manager runs it
        from lookalike.app import main as gui_main

        return gui_main(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.command is None:
        from lookalike.app import main as gui_main

        return gui_main()
    try:
        handler = COMMANDS.get(args.command) or FEATURE_COMMANDS[args.command]
        return handler(args)
    except QueryError as exc:
        if getattr(args, "json", False) is False:
            print(
                f"lookalike: bad query: {exc.reason} (column {exc.column + 1})\n  {exc.caret().replace(chr(10), chr(10) + '  ')}",
                file=sys.stderr,
            )
        else:
            print(f"lookalike: bad query: {exc}", file=sys.stderr)
        return exc.exit_code
    except DiskFullError as exc:  # what the user was doing, not only which file could not be written
        print(f"lookalike: {exc} (while {_DOING.get(args.command, f'running {args.command}')})", file=sys.stderr)
        return exc.exit_code
    except LookalikeError as exc:
        print(f"lookalike: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lookalike: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _open_engine(args, *, writer: bool, create: bool = False):
    from lookalike.core.engine import SearchEngine

    return SearchEngine.open(
        args.library,
        model=getattr(args, "model", None),
        model_file=getattr(args, "model_file", None),
        device=getattr(args, "device", None),
        writer=writer,
        create=create,
    )


def cmd_index(args) -> int:
    from lookalike.core.progress import CancelToken

    cancel = CancelToken()
    interrupted = {"n": 0}

    def on_sigint(signum, frame):
        interrupted["n"] += 1
        if interrupted["n"] > 1:
            raise KeyboardInterrupt
        cancel.cancel()
        print("\nlookalike: stopping after the batch in flight (Ctrl+C again to abort)", file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        engine = _open_engine(args, writer=True, create=True)
        with engine:
            if not args.paths and not engine.folders():
                raise UsageError("Name at least one folder to index: lookalike index PATH")
            if args.library is None and (args.model or args.model_file):
                # a new model's library: taught concepts and decisions about people come along
                from lookalike.core.store.paths import app_paths

                engine.adopt_library(app_paths().library_for(app_paths().current_model()))
            with _ProgressBar(disabled=args.quiet) as bar:
                report = engine.index(
                    args.paths or None,
                    excludes=args.exclude,
                    progress=bar.update,
                    cancel=cancel,
                    batch_size=args.batch_size,
                    workers=args.workers,
                )
            st = engine.status()
    finally:
        signal.signal(signal.SIGINT, old)
    if not report.cancelled:
        _follow_model(args)
    parts = [
        f"{report.added} added",
        f"{report.updated} updated",
        f"{report.moved} moved",
        f"{report.removed} removed",
        f"{report.failed} unreadable",
        f"{report.unchanged} unchanged",
    ]
    print(
        f"{'Stopped' if report.cancelled else 'Indexed'}: "
        + ", ".join(parts)
        + f" in {report.seconds:.1f} s ({report.rate:.1f} photos/s). "
        f"The library holds {counted(st.photos, 'photo')}.",
        file=sys.stderr,
    )
    for f in report.offline_folders:
        print(f"lookalike: {f} is offline; its photos are kept until it is back or removed", file=sys.stderr)
    if report.failed:
        print("See the unreadable files with: lookalike status --errors", file=sys.stderr)
    return 130 if report.cancelled else 0


def _follow_model(args) -> None:
    """An index run with a model named (and no library) makes that model the current one,
    as switching in the window does: later commands and the window search its library."""
    if args.library is not None or not (args.model or args.model_file):
        return
    from lookalike.core.store.paths import ModelChoice, app_paths

    paths = app_paths()
    choice = ModelChoice.of(args.model, args.model_file)
    if paths.current_model() != choice:
        paths.set_current_model(choice)
        print(
            f"lookalike: searches now use the {choice.name} model's library, {paths.library_for(choice)}",
            file=sys.stderr,
        )


def _json_path(path: Path, key: str = "path") -> dict[str, str]:
    """A path as JSON text: always valid UTF-8. A name that is not UTF-8 gets replacement
    characters in ``key`` and its exact bytes, base64, in ``key + "_bytes"`` (as ripgrep does)."""
    raw = os.fsencode(path)
    try:
        return {key: raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {key: raw.decode("utf-8", "replace"), key + "_bytes": base64.b64encode(raw).decode("ascii")}


def _write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (an embedding program's): its own encoding decides
        sys.stdout.write(data.decode("utf-8", "replace"))
        return
    buffer.write(data)
    buffer.flush()


def _print_json(value: object, *, indent: int | None = None) -> None:
    """JSON on stdout as UTF-8, whatever the locale's encoding."""
    _write_stdout(json.dumps(value, ensure_ascii=False, indent=indent).encode("utf-8") + b"\n")


def _print_line(prefix: str, path: Path, suffix: str = "") -> None:
    """A line naming a file, with the name's own bytes as ls prints them (a name that is not
    UTF-8 cannot be printed as text under a UTF-8 locale)."""
    _write_stdout(os.fsencode(prefix) + os.fsencode(path) + os.fsencode(suffix) + b"\n")


#: How many of the closest photos a search with no match shows.
CLOSEST = 5


def cmd_search(args) -> int:
    """The matches (``--all`` or ``-k``: the ranked list); nothing matching: one line saying
    so, then the closest few, marked as such."""
    ranked = args.all or args.k is not None or args.min_score is not None
    k = args.k if args.k is not None else 20
    if k <= 0:
        raise UsageError("the number of results (-k) must be at least 1")
    engine = _open_engine(args, writer=False)
    with engine:
        ans = engine.answer(args.query, k=k if ranked else None, folder=args.folder)
        if ranked:
            results = [r for r in ans.results if args.min_score is None or r.score >= args.min_score][:k]
            closest = False
        elif ans.matches:
            results, closest = ans.matched, False
        else:
            results, closest = ans.results[:CLOSEST], True
        matched = engine.text_matches(args.query, [r.photo_id for r in results])  # a text: query's words

    # A query of filters alone lists photos newest first: no score (NaN), the date instead.
    def score(r) -> float | None:
        return None if r.score != r.score else round(r.score, 6)

    if args.json:
        _print_json(
            [
                {
                    "rank": r.rank,
                    **_json_path(r.path.absolute()),
                    "score": score(r),
                    "match": bool(r.match),
                    "confidence": r.confidence,
                }
                | ({"text": matched[r.photo_id]} if r.photo_id in matched else {})
                for r in results
            ]
        )
        return 0
    if closest:
        why = ans.note or "no photo matches"
        more = f"; the closest {len(results)}, not matches:" if results else "."
        print(f"No matches for '{args.query}': {why}{more}")
    elif not results:
        print("No photos matched.", file=sys.stderr)
    for r in results:
        taken = time.strftime("%Y-%m", time.localtime(r.taken)) if r.taken else "   -   "
        shown = f"{r.score:6.3f}" if score(r) is not None else taken
        lines = matched.get(r.photo_id)
        mark = "  (closest, not a match)" if closest else ""
        _print_line(f"{r.rank:>3}  {shown}  ", r.path, (f"  text: {' | '.join(lines)}" if lines else "") + mark)
    return 0


def cmd_status(args) -> int:
    from lookalike.core.store.paths import app_paths

    paths = app_paths()
    current = paths.current_model()
    current_library = paths.library_for(current)
    engine = _open_engine(args, writer=False)
    with engine:
        st = engine.status()
        device = engine.device()
        folders = engine.folders()
        failures = engine.failures() if args.errors else []
    is_current = st.path == current_library.resolve()
    if args.json:
        out = {
            **_json_path(st.path, "library"),
            "photos": st.photos,
            "folders": [
                {**_json_path(f.path), "photos": f.photos, "failures": f.failures, "online": f.online} for f in folders
            ],
            "failures": st.failures,
            "model": st.model_id,
            "model_name": st.model_name,
            "dimension": st.dimension,
            "device": device,
            "locked_by": st.holder,
            "current": {
                "library": os.fsdecode(current_library),
                "model_name": current.name,
                "model_file": current.model_file,
                "is_this_library": is_current,
            },
        }
        if args.errors:
            out["errors"] = [{**_json_path(f.path), "reason": f.reason} for f in failures]
        _print_json(out, indent=1)
        return 0
    _print_line("Library   ", st.path, "  (current)" if is_current else "")
    print(f"Photos    {st.photos}")
    print(
        f"Model     {st.model_name} ({st.model_id or 'nothing indexed yet'}, {st.dimension or '?'} dimensions) on {device}"
    )
    if st.note:
        print(f"          {st.note}")
    if not is_current:
        model = current.name + (f" ({current.model_file})" if current.model_file else "")
        _print_line(f"Current   {model}, library ", current_library)
    print(f"Unreadable {st.failures}")
    if st.holder:
        print(f"Note      {st.holder}")
    print("Folders")
    for f in folders:
        _print_line(f"  {f.photos:>7} photos  {f.failures:>4} unreadable  ", f.path, "" if f.online else "  [offline]")
    if args.errors:
        print("Unreadable files" if failures else "No unreadable files.")
        for f in failures:
            _print_line("  ", f.path, f": {f.reason}")
    return 0


def cmd_models(args) -> int:
    from lookalike.core.encoders import DEFAULT_ENCODER, available_encoders

    for e in available_encoders():
        mark = "offline" if e.offline else "needs a download"
        text = "text+image" if e.supports_text else "image only"
        default = " (default)" if e.name == DEFAULT_ENCODER else ""
        print(f"{e.name:<10} {text:<11} {mark:<17} {e.description}{default}")
        if e.note:
            print(f"{'':<10} {e.note}")
    return 0


def cmd_bench(args) -> int:
    from lookalike.bench import run_bench

    return run_bench(args)


FEATURE_COMMANDS: dict = {}  # filled by build_parser from lookalike.commands
COMMANDS = {"index": cmd_index, "search": cmd_search, "status": cmd_status, "models": cmd_models, "bench": cmd_bench}


class _ProgressBar:
    """A rich progress bar on stderr fed by core Progress events."""

    def __init__(self, disabled: bool = False) -> None:
        self.disabled = disabled or not sys.stderr.isatty()
        self._progress: Any = None  # a rich Progress while shown (rich loads only then)
        self._tasks: dict[str, int] = {}

    def __enter__(self):
        if not self.disabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description:<9}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
        return self

    def update(self, p) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(p.stage)
        if task is None:
            task = self._progress.add_task(p.stage, total=p.total, rate="")
            self._tasks[p.stage] = task
        self._progress.update(task, completed=p.done, total=p.total, rate=f"{p.rate:5.1f}/s" if p.rate else "")

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
