"""`lookalike teach`, `concepts` and `list`: concepts taught from examples, browsing.

A concept is a user tag (:mod:`lookalike.commands.tags`): ``teach NAME PHOTO...`` tags the
photos NAME, and ``concepts`` lists the user's tags with what they learned.

A contract scripts use::

    lookalike teach NAME PHOTO... [--not PHOTO...] [--json]
    lookalike concepts [--json]
    lookalike concepts show NAME [--json]          (examples, marks, best photos)
    lookalike concepts mark NAME PHOTO (--right | --wrong)
    lookalike concepts rename OLD NEW
    lookalike concepts delete NAME
    lookalike list [FILTER...] [--limit N] [--json]

``list`` takes filters (``year:2023 kind:png @alice #luna tag:beach``, see
``lookalike search --help``) and prints the photos they allow newest first,
with no ranking. A concept is then a query term too: ``lookalike search "#luna + beach"``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from lookalike.commands import Handler, SharedOptions
from lookalike.core.words import counted


def register(sub: argparse._SubParsersAction, opts: SharedOptions) -> dict[str, Handler]:
    sp = sub.add_parser(
        "teach",
        help="teach a concept (your cat, your bike, receipts) from example photos in the library",
        description=(
            "Creates the concept NAME from example photos already in the library (or adds examples to it), "
            "learns it from their vectors, and tags the library with it. Then `lookalike search '#NAME'`."
        ),
    )
    sp.add_argument("name", metavar="NAME")
    sp.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="photos that show the concept")
    sp.add_argument(
        "--not", dest="counter", nargs="+", type=Path, default=[], metavar="PHOTO", help="photos that do not"
    )
    sp.add_argument("--json", action="store_true", help="print the concept as JSON")
    opts.library(sp)

    sp = sub.add_parser("concepts", help="the concepts you taught; show, mark, rename, delete")
    sp.add_argument(
        "--json", action="store_true", help='print [{"name", "examples", "counter_examples", "photos", ...}]'
    )
    # its own dest: an ACTION's --library default would otherwise overwrite one given before the ACTION
    sp.add_argument("--library", dest="concepts_library", type=Path, metavar="DIR", help="the library folder")
    csub = sp.add_subparsers(dest="concepts_command", metavar="ACTION", parser_class=type(sp))
    p = csub.add_parser("show", help="a concept's examples, marks and best photos")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-k", type=int, default=20, help="how many of the best photos (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    opts.library(p)
    p = csub.add_parser("mark", help="mark a photo right or wrong for a concept (it learns at once)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("photo", type=Path, metavar="PHOTO")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--right", action="store_true", help="the photo shows the concept")
    g.add_argument("--wrong", action="store_true", help="it does not")
    opts.library(p)
    p = csub.add_parser("rename", help="rename a concept")
    p.add_argument("name", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    opts.library(p)
    p = csub.add_parser("delete", help="delete a concept and its examples (your photos are not touched)")
    p.add_argument("name", metavar="NAME")
    opts.library(p)

    sp = sub.add_parser(
        "list",
        help="list photos newest first, narrowed by filters (year:2023 kind:png tag:beach #luna @alice ...)",
        description="Lists the library's photos newest first (date taken, else file time), with no ranking.",
    )
    sp.add_argument("filters", nargs="*", metavar="FILTER", help="filters, as in a search query")
    sp.add_argument("--limit", type=int, default=None, metavar="N", help="at most N photos")
    sp.add_argument("--json", action="store_true", help='print [{"path", "date", "width", "height", "size"}]')
    opts.library(sp)
    return {"teach": cmd_teach, "concepts": cmd_concepts, "list": cmd_list}


def _text(path: Path) -> str:
    return os.fsencode(path).decode("utf-8", "replace")


def _open(args: argparse.Namespace, *, writer: bool):
    from lookalike.core.engine import SearchEngine

    library = getattr(args, "library", None) or getattr(args, "concepts_library", None)
    return SearchEngine.open(library, writer=writer, purpose="teach or change a concept")


def _concept_json(info) -> dict:
    return {
        "name": info.name,
        "examples": info.examples,
        "counter_examples": info.counter_examples,
        "photos": info.photos,
        "method": info.method or None,
        "threshold": None if info.threshold is None else round(info.threshold, 6),
        "evaluation": info.evaluation,
    }


def _write_json(value: object) -> None:
    import json

    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def cmd_teach(args: argparse.Namespace) -> int:
    with _open(args, writer=True) as engine:
        learned = engine.learner().concepts.teach(args.name, args.photos, args.counter)
    info = learned.concept
    if args.json:
        _write_json(_concept_json(info) | {"seconds": round(learned.seconds, 4)})
        return 0
    print(
        f"{info.name}: {info.examples} example{'s' if info.examples != 1 else ''}"
        + (f", {info.counter_examples} counter-examples" if info.counter_examples else "")
        + f"; {counted(info.photos, 'photo')} show{'s' if info.photos == 1 else ''} it (learned in {learned.seconds:.2f} s)"
    )
    print(f'search it: lookalike search "#{info.name}"', file=sys.stderr)
    return 0


def cmd_concepts(args: argparse.Namespace) -> int:
    action = getattr(args, "concepts_command", None)
    if action is None:
        with _open(args, writer=False) as engine:
            listed = engine.learner().concepts.list()
        if args.json:
            _write_json([_concept_json(c) for c in listed])
            return 0
        if not listed:
            print("No concepts yet: lookalike teach NAME PHOTO...", file=sys.stderr)
        for c in listed:
            counter = f", {c.counter_examples} not" if c.counter_examples else ""
            print(f"{c.name:<30} {counted(c.photos, 'photo'):>12}  ({counted(c.examples, 'example')}{counter})")
        return 0
    if action == "show":
        return _show(args)
    with _open(args, writer=True) as engine:
        concepts = engine.learner().concepts
        if action == "mark":
            learned = concepts.mark(args.name, args.photo, right=args.right)
            print(f"{learned.concept.name}: {counted(learned.concept.photos, 'photo')} ({learned.seconds:.2f} s)")
        elif action == "rename":
            info = concepts.rename(args.name, args.new)
            print(f"renamed: {info.name}")
        elif action == "delete":
            info = concepts.delete(args.name)
            print(f"deleted the concept {info.name} ({counted(info.examples, 'example')}); no photo was touched")
    return 0


def _show(args: argparse.Namespace) -> int:
    with _open(args, writer=False) as engine:
        concepts = engine.learner().concepts
        info = concepts.get(args.name)
        examples = concepts.examples(info.name)
        ranked = concepts.ranked(info.name, k=args.k) if info.method else []
        rows = engine.photos([i for i, _ in ranked])
    best = [(rows[i].path, s) for i, s in ranked if i in rows]
    if args.json:
        _write_json(
            _concept_json(info)
            | {
                "examples": [
                    {"path": _text(e.path), "right": e.right, "marked": e.marked, "in_library": e.photo_id is not None}
                    for e in examples
                ],
                "best": [{"path": _text(p), "score": round(s, 6)} for p, s in best],
            }
        )
        return 0
    print(f"{info.name}: {counted(info.photos, 'photo')}")
    for e in examples:
        kind = ("marked right" if e.marked else "example") if e.right else ("marked wrong" if e.marked else "not")
        gone = "" if e.photo_id is not None else "  (not in the library now)"
        print(f"  {kind:<13} {_text(e.path)}{gone}")
    for p, s in best:
        print(f"  {s:6.3f}  {_text(p)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from lookalike.core.errors import UsageError
    from lookalike.core.search.parse import parse

    text = " ".join(args.filters)
    query = parse(text) if text.strip() else None
    if query is not None and (query.has_text or query.has_image):
        raise UsageError("list takes filters only (year:2023, tag:beach, #concept, @person); use search to rank")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    with _open(args, writer=False) as engine:
        items = engine.browse(query, limit=args.limit)
    if args.json:
        _write_json(
            [
                {
                    "path": _text(i.path.absolute()),
                    "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(i.date)),
                    "taken": i.taken is not None and not math.isnan(i.taken),
                    "width": i.width,
                    "height": i.height,
                    "size": i.size,
                }
                for i in items
            ]
        )
        return 0
    if not items:
        print("No photos matched.", file=sys.stderr)
    for i in items:
        sys.stdout.flush()
        sys.stdout.buffer.write(
            time.strftime("%Y-%m-%d", time.localtime(i.date)).encode() + b"  " + os.fsencode(i.path) + b"\n"
        )
    return 0
