"""`lookalike text PHOTO`: the text read in a photo of the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lookalike.commands import Handler, SharedOptions
from lookalike.core.errors import UsageError


def register(sub: argparse._SubParsersAction, opts: SharedOptions) -> dict[str, Handler]:
    sp = sub.add_parser(
        "text",
        help="print the text read in a photo (search it with text:WORD)",
        description=(
            "Prints the text that indexing read in a photo of the library, a line of the photo a line. "
            'Search by it with text:WORD or text:"two words".'
        ),
    )
    opts.library(sp)
    sp.add_argument("photo", type=Path, help="a photo in the library")
    sp.add_argument(
        "--json", action="store_true", help='print JSON: {"path", "text", "lines": [{"text", "score", "box"}]}'
    )
    return {"text": cmd_text}


def cmd_text(args: argparse.Namespace) -> int:
    from lookalike.core.search import SearchEngine

    path = args.photo.expanduser().absolute()
    if not path.is_file():
        raise UsageError(f"lookalike text: no such file: {args.photo}")
    with SearchEngine.open(args.library, writer=False) as engine:
        read = engine.photo_text(path)
    if read is None:
        print(f"{args.photo}: its text has not been read yet (the next `lookalike index` reads it)", file=sys.stderr)
        return 1
    if args.json:
        lines = [{"text": x.text, "score": round(x.score, 3), "box": [list(p) for p in x.box]} for x in read.lines]
        json.dump(
            {"path": os.fsdecode(os.fspath(path)), "text": read.text, "lines": lines}, sys.stdout, ensure_ascii=False
        )
        sys.stdout.write("\n")
    elif read.text:
        print(read.text)
    else:
        print(f"{args.photo}: no text found in it", file=sys.stderr)
    return 0
