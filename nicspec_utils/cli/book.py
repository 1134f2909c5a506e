"""``nicspec book``: execute the chapters (papermill) and build the site (jupyter-book)."""

from __future__ import annotations

import argparse
from typing import Any

from . import args as shared


def _cmd_book(args: argparse.Namespace) -> int:
    from ..book import build

    chapters = [c for c in (args.chapters or "").split(",") if c] or None
    shared.apply_scheduler(args)
    result = build(args.profile, chapters, html=not args.no_html, overrides=args.set or ())
    print(f"book: site in {result['output']}")
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec book``."""
    p = subparsers.add_parser("book", help="execute the chapters (papermill) and build the site")
    p.add_argument("--profile", default="quick", help="smoke, quick (default), paper or protocol")
    p.add_argument("--chapters", help="comma-separated chapter names (default: all)")
    p.add_argument("--no-html", action="store_true", help="execute only; skip jupyter-book")
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="replace one of the profile's parameters in the chapters run (repeatable): a part "
        "of a long chapter, e.g. --set draws=1; its run record and bundle say so",
    )
    shared.add_scheduler(p)
    p.set_defaults(func=_cmd_book)
