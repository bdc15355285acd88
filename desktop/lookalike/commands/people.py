"""`lookalike people`: the people in a library's photos; name, merge, rename, hide, forget.

A contract scripts use::

    lookalike people [--library DIR] [--all] [--json]
    lookalike people name PHOTO NAME [--face N]
    lookalike people merge A B          (A joins B)
    lookalike people rename A NEW
    lookalike people hide A [--undo]
    lookalike people forget PHOTO [--face N]    ("not this person")

A person is given by name (any case) or by the id ``people`` lists. ``--face N``
is the N-th face from the left (default: the largest).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lookalike.commands import Handler, SharedOptions
from lookalike.core.words import counted


def register(sub: argparse._SubParsersAction, opts: SharedOptions) -> dict[str, Handler]:
    sp = sub.add_parser(
        "people",
        help="the people in your photos, largest first; name, merge, rename, hide, forget",
        description=(
            "Lists the people found in the library's photos, largest first (unnamed groups of one face and "
            "hidden people only with --all). The subcommands record your decisions; they survive later runs."
        ),
    )
    sp.add_argument("--library", dest="people_library", type=Path, metavar="DIR", help="the library folder")
    sp.add_argument("--all", action="store_true", help="include hidden people and unnamed groups of one face")
    sp.add_argument(
        "--json",
        action="store_true",
        help='print one JSON array of {"id", "name" (null when unnamed), "faces", "photos": [absolute paths]}',
    )
    psub = sp.add_subparsers(dest="people_command", metavar="ACTION", parser_class=type(sp))

    p = psub.add_parser("name", help="name the person of a face in PHOTO (the largest, or --face N)")
    p.add_argument("photo", type=Path, metavar="PHOTO")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--face", type=int, metavar="N", help="the N-th face from the left (default: the largest)")
    opts.library(p)

    p = psub.add_parser("merge", help="A and B are one person: A joins B")
    p.add_argument("a", metavar="A", help="a name or an id")
    p.add_argument("b", metavar="B", help="a name or an id")
    opts.library(p)

    p = psub.add_parser("rename", help="give person A a new name")
    p.add_argument("a", metavar="A", help="a name or an id")
    p.add_argument("name", metavar="NEW")
    opts.library(p)

    p = psub.add_parser("hide", help="hide person A from the list (--undo shows it again)")
    p.add_argument("a", metavar="A", help="a name or an id")
    p.add_argument("--undo", action="store_true", help="show the person again")
    opts.library(p)

    p = psub.add_parser("forget", help='"not this person": the face in PHOTO leaves its person for good')
    p.add_argument("photo", type=Path, metavar="PHOTO")
    p.add_argument("--face", type=int, metavar="N", help="the N-th face from the left (default: the largest)")
    opts.library(p)
    return {"people": cmd_people}


def _text(path: Path) -> str:
    return os.fsencode(path).decode("utf-8", "replace")


def _open(args: argparse.Namespace, *, writer: bool):
    from lookalike.core.search import SearchEngine

    library = getattr(args, "library", None) or getattr(args, "people_library", None)
    return SearchEngine.open(library, writer=writer, purpose="change people")


def cmd_people(args: argparse.Namespace) -> int:
    action = getattr(args, "people_command", None)
    if action is None:
        return _list(args)
    with _open(args, writer=True) as engine:
        people = engine.people()
        if action == "name":
            info = people.name(args.photo, args.name, face=args.face)
            print(
                f"{args.photo.name}: {info.label} ({counted(info.faces, 'face')} in {counted(len(info.photos), 'photo')})"
            )
        elif action == "merge":
            info = people.merge(args.a, args.b)
            print(f"merged: {info.label} ({counted(info.faces, 'face')} in {counted(len(info.photos), 'photo')})")
        elif action == "rename":
            info = people.rename(args.a, args.name)
            print(f"renamed: {info.label}")
        elif action == "hide":
            info = people.hide(args.a, not args.undo)
            print(f"{'hidden' if info.hidden else 'shown'}: {info.label}")
        elif action == "forget":
            face = people.forget(args.photo, face=args.face)
            where = f"now person {face.person_id}" if face.person_id else "now in no person"
            print(f"{args.photo.name}: that face is not that person any more ({where})")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _open(args, writer=False) as engine:
        people = engine.people()
        listed = people.people(include_hidden=args.all)
        hidden = 0 if args.all else len(people.people(include_hidden=True)) - len(listed)
    if args.json:
        data = [
            {"id": p.id, "name": p.name, "faces": p.faces, "photos": [_text(x.absolute()) for x in p.photos]}
            for p in listed
        ]
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return 0
    if not listed:
        print("No people yet: index a folder of photos (faces are found while indexing).", file=sys.stderr)
    for p in listed:
        flag = "  (hidden)" if p.hidden else ""
        suggest = f", {p.suggestions} to confirm" if p.suggestions else ""
        n = len(p.photos)
        counts = f"{p.faces:>5} face{'s' if p.faces != 1 else ' '} in {n} photo{'s' if n != 1 else ''}"
        print(f"{p.id:>5}  {p.label:<30} {counts}{suggest}{flag}")
    if hidden:
        print(f"({hidden} more, hidden or seen once: lookalike people --all)", file=sys.stderr)
    return 0
