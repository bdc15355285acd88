"""`lookalike duplicates`: list duplicate groups, move the others to the trash, undo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lookalike.commands import Handler, SharedOptions
from lookalike.core.errors import UsageError
from lookalike.core.words import counted


def register(sub: argparse._SubParsersAction, opts: SharedOptions) -> dict[str, Handler]:
    sp = sub.add_parser(
        "duplicates",
        help="find exact copies, near-duplicates and similar shots; trash the extra copies",
        description=(
            "Lists groups of duplicate photos with the one to keep and why. --trash moves the others "
            "to the system trash (after asking); --undo puts the last trash run back."
        ),
    )
    opts.library(sp)
    opts.model(sp)
    sp.add_argument(
        "--kind",
        action="append",
        choices=("exact", "near", "similar"),
        help="which groups: exact copies, near-duplicates (both by default), similar shots (bursts); repeatable",
    )
    sp.add_argument("--json", action="store_true", help='print JSON: [{"kind", "keep", "others", "reason"}]')
    sp.add_argument("--trash", action="store_true", help="move every group's other photos to the system trash")
    sp.add_argument("--yes", "-y", action="store_true", help="do not ask before moving photos to the trash")
    sp.add_argument("--undo", action="store_true", help="put back the photos of the last trash run")
    sp.add_argument("--keep-all", action="store_true", help="keep every listed group whole; they do not come back")
    sp.add_argument(
        "--rules",
        metavar="RULE,...",
        help="keeper rules in order (format, pixels, date, metadata, name, size; the rest follow in that order)",
    )
    sp.add_argument(
        "--reference",
        action="append",
        type=Path,
        default=[],
        metavar="FOLDER",
        help="mark a folder as reference: its photos are always the ones kept (remembered)",
    )
    return {"duplicates": cmd_duplicates}


def _path(p: Path) -> str:
    return os.fsdecode(os.fspath(p))


def cmd_duplicates(args: argparse.Namespace) -> int:
    from lookalike.core.duplicates.finding import DuplicateKind
    from lookalike.core.duplicates.keeper import DEFAULT_RULES, parse_rules
    from lookalike.core.duplicates.service import Duplicates
    from lookalike.core.errors import LibraryLockedError
    from lookalike.core.search import SearchEngine

    if args.undo and (args.trash or args.keep_all):
        raise UsageError("lookalike duplicates: --undo goes alone (not with --trash or --keep-all)")
    try:
        rules = parse_rules(args.rules) if args.rules else DEFAULT_RULES
    except ValueError as exc:
        raise UsageError(f"lookalike duplicates: --rules: {exc}") from None
    kinds = tuple(DuplicateKind(k) for k in dict.fromkeys(args.kind or ("exact", "near")))
    acting = args.trash or args.undo or args.keep_all or bool(args.reference)
    open_args = dict(model=args.model, model_file=args.model_file, device=args.device)
    try:
        engine = SearchEngine.open(args.library, writer=True, create=False, purpose="act on duplicates", **open_args)
    except LibraryLockedError:
        if acting:
            raise
        engine = SearchEngine.open(args.library, writer=False, **open_args)  # listing only: read what is there
    with engine:
        dups = Duplicates(engine, rules)
        for folder in args.reference:
            dups.set_reference(folder)
        if args.undo:
            return _undo(dups, args)
        groups = dups.groups(kinds)
        if args.trash:
            return _trash(dups, groups, args)
        if args.keep_all:
            for g in groups:
                dups.keep_all(g)
        _print_groups(groups, args.json)
        if args.keep_all:
            print(f"Kept {counted(len(groups), 'group')} whole; they will not be listed again.", file=sys.stderr)
    return 0


def _print_groups(groups, as_json: bool) -> None:
    if as_json:
        json.dump([g.as_json() for g in groups], sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    if not groups:
        print("No duplicates found.", file=sys.stderr)
    for g in groups:
        print(f"{g.kind.value:<8} keep   {_path(g.keep.path)}")
        print(f"{'':<8}        ({g.reason})")
        for m in g.others:
            print(f"{'':<8} other  {_path(m.path)}")


def _confirm(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError("lookalike duplicates --trash: no terminal to ask; add --yes to move without asking")
    print(question + " [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _trash(dups, groups, args) -> int:
    others = [m for g in groups for m in g.others]
    if not others:
        _print_groups(groups, args.json)
        return 0
    if not args.json:
        _print_groups(groups, False)
    total = sum(m.size for m in others)
    if not args.yes and not _confirm(f"Move {counted(len(others), 'photo')} ({total / 1e6:.1f} MB) to the trash?"):
        print("Nothing moved.", file=sys.stderr)
        return 0
    report = dups.trash_others(groups)
    if args.json:
        json.dump(
            {
                "run": report.run_id,
                "moved": [
                    {"path": _path(m.path), "trash": _path(m.trashed_as) if m.trashed_as else None}
                    for m in report.moved
                ],
                "left": [{"path": _path(x.path), "reason": x.reason} for x in report.left],
            },
            sys.stdout,
            ensure_ascii=False,
        )
        sys.stdout.write("\n")
    else:
        for m in report.moved:
            print(f"moved to the trash: {_path(m.path)}")
        for x in report.left:
            print(f"left in place: {_path(x.path)}: {x.reason}", file=sys.stderr)
        if report.moved:
            print("Undo with: lookalike duplicates --undo", file=sys.stderr)
    return 1 if report.left else 0


def _undo(dups, args) -> int:
    report = dups.undo()
    if report.run_id is None:
        print("Nothing to undo: no trash run with photos still in the trash.", file=sys.stderr)
        return 1
    if args.json:
        json.dump(
            {
                "run": report.run_id,
                "restored": [_path(p) for p in report.restored],
                "failed": [{"path": _path(x.path), "reason": x.reason} for x in report.failed],
            },
            sys.stdout,
            ensure_ascii=False,
        )
        sys.stdout.write("\n")
    else:
        for p in report.restored:
            print(f"restored: {_path(p)}")
        for x in report.failed:
            print(f"not restored: {_path(x.path)}: {x.reason}", file=sys.stderr)
    return 1 if report.failed else 0
