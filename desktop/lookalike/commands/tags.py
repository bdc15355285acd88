"""`lookalike tag` and `lookalike tags`: the user's own tags, what they teach, the automatic ones.

A contract scripts use::

    lookalike tag add NAME PHOTO... [--json]       (tag photos; the tag learns from them)
    lookalike tag remove NAME PHOTO...             (also an automatic tag of that name: remembered)
    lookalike tag suggest NAME [-k N] [--all] [--json]   (untagged photos that may carry it, best first)
    lookalike tag accept NAME PHOTO...             (a suggestion accepted: the photo carries the tag)
    lookalike tag reject NAME PHOTO...             (a counter-example: never suggested again)
    lookalike tag export --xmp [NAME...]           (the user's tags into .xmp sidecars)
    lookalike tags [--all] [--json]                (the user's tags, then the automatic ones, with counts)
    lookalike list tag:NAME [--json]               (exactly the photos carrying it)

A user tag is what ``teach`` calls a concept: ``lookalike teach NAME PHOTO...`` is
``tag add``, and ``#NAME`` in a search ranks by what the tag learned.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lookalike.commands import Handler, SharedOptions
from lookalike.commands.concepts import _open, _text, _write_json
from lookalike.core.words import counted


def register(sub: argparse._SubParsersAction, opts: SharedOptions) -> dict[str, Handler]:
    sp = sub.add_parser(
        "tag",
        help="add, remove, suggest, accept, reject or export your own tags",
        description=(
            "Your own tags. A tag with a few photos learns what they show and suggests the photos that "
            "probably carry it too (`lookalike tag suggest NAME`); nothing is tagged until you accept."
        ),
    )
    sp.add_argument("--library", dest="tag_library", type=Path, metavar="DIR", help="the library folder")
    tsub = sp.add_subparsers(dest="tag_command", metavar="ACTION", parser_class=type(sp), required=True)
    for action, text in (
        ("add", "tag photos with NAME (a new tag, or more photos of one)"),
        ("remove", "take the tag NAME off photos (an automatic tag too: remembered)"),
        ("accept", "accept suggestions: the photos carry the tag"),
        ("reject", "the photos do not carry the tag: never suggested again"),
    ):
        p = tsub.add_parser(action, help=text)
        p.add_argument("name", metavar="NAME")
        p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
        p.add_argument("--json", action="store_true", help="print the tag as JSON")
        opts.library(p)
    p = tsub.add_parser("suggest", help="photos that may carry the tag NAME, best first")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-k", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--all", action="store_true", help="rank every untagged photo, not only the likely ones")
    p.add_argument("--json", action="store_true", help='print [{"path", "score"}]')
    opts.library(p)
    p = tsub.add_parser("export", help="write your tags into .xmp sidecars (digiKam, darktable read them)")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these tags (default: all of yours)")
    p.add_argument("--xmp", action="store_true", required=True, help="as XMP sidecars next to the photos")
    p.add_argument("--json", action="store_true", help='print {"written", "photos"}')
    opts.library(p)

    sp = sub.add_parser("tags", help="your tags and the automatic ones, with counts")
    sp.add_argument("--all", action="store_true", help="also automatic tags no photo has")
    sp.add_argument("--json", action="store_true", help='print [{"tag", "photos", "user", "suggested"}]')
    opts.library(sp)
    return {"tag": cmd_tag, "tags": cmd_tags}


def _engine(args: argparse.Namespace, *, writer: bool):
    if getattr(args, "library", None) is None and getattr(args, "tag_library", None) is not None:
        args.library = args.tag_library
    return _open(args, writer=writer)


def _tag_json(user_tags, name: str) -> dict:
    info = user_tags.concepts.find(name)
    return {
        "tag": info.name if info else name,
        "photos": int(len(user_tags.photo_ids(name))),
        "rejected": int(len(user_tags.rejected_ids(name))),
        "method": (info.method or None) if info else None,
    }


def cmd_tag(args: argparse.Namespace) -> int:
    from lookalike.core.errors import UsageError

    action = args.tag_command
    if action == "suggest":
        if args.k < 1:
            raise UsageError("-k must be at least 1")
        with _engine(args, writer=True) as engine:  # (a tag learned on another model is relearned)
            got = engine.learner().user_tags.suggest(args.name, args.k, every=args.all)
        if args.json:
            _write_json([{"path": _text(s.path), "score": round(s.score, 6)} for s in got])
            return 0
        if not got:
            print(f"No photo is likely to be {args.name!r} beyond those tagged.", file=sys.stderr)
        for s in got:
            sys.stdout.write(f"{s.score:7.3f}  {_text(s.path)}\n")
        return 0
    if action == "export":
        from lookalike.core.learning.keywords import export_sidecars

        with _engine(args, writer=False) as engine:
            written, photos = export_sidecars(engine.learner().user_tags, args.names or None)
        if args.json:
            _write_json({"written": written, "photos": photos})
        else:
            print(f"wrote {written} sidecar{'s' if written != 1 else ''} for {photos} tagged photos")
        return 0
    with _engine(args, writer=True) as engine:
        user_tags = engine.learner().user_tags
        n = getattr(user_tags, action)(args.name, args.photos)
        out = _tag_json(user_tags, args.name)
    if args.json:
        _write_json(out | {"changed": n})
        return 0
    verb = {"add": "tagged", "remove": "untagged", "accept": "accepted", "reject": "rejected"}[action]
    print(f"{out['tag']}: {verb} {n} photo{'s' if n != 1 else ''}; {out['photos']} carry it")
    if action in ("add", "accept"):
        print(f"more like it: lookalike tag suggest {out['tag']!r}", file=sys.stderr)
    return 0


def cmd_tags(args: argparse.Namespace) -> int:
    with _engine(args, writer=False) as engine:
        learner = engine.learner()
        mine, auto = learner.user_tags.counts()
        if args.all:
            have = {t.name for t in auto}
            from lookalike.core.learning.user_tags import TagCount

            own = {t.name.lower() for t in mine}
            auto += [TagCount(t, 0, 0, False) for t, n in learner.tags.counts() if t not in have and t not in own]
        photos = engine.photo_count()
    if args.json:
        _write_json(
            [{"tag": t.name, "photos": t.photos, "user": t.user, "suggested": t.suggested} for t in (*mine, *auto)]
        )
        return 0
    if not mine and not auto:
        print(
            f"No tags yet ({counted(photos, 'photo')}): `lookalike tag add NAME PHOTO...`; "
            "`lookalike index` gives automatic tags as it indexes.",
            file=sys.stderr,
        )
    if mine:
        print("Your tags:")
        for t in mine:
            more = f"  ({t.suggested} more may be: lookalike tag suggest {t.name!r})" if t.suggested else ""
            print(f"{t.photos:>7}  {t.name}{more}")
    if auto:
        print("Automatic tags (Lookalike's suggestions):")
        for t in auto:
            print(f"{t.photos:>7}  {t.name}")
    return 0
