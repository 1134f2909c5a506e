"""``nicspec`` command line: data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..data import catalogue, get_dataset
from ..errors import DataError


def _cmd_list(args: argparse.Namespace) -> int:
    for name, description, source in catalogue():
        print(f"{name}\n    {description}\n    source: {source}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    ds = get_dataset(args.name)
    problems = ds.verify()
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        raise DataError(f"{ds.name}: {len(problems)} problem(s) against its SHA256SUMS manifest")
    print(f"OK: {len(ds)} images of {ds.name} match {ds.manifest}")
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec data list`` and ``nicspec data verify NAME``."""
    p = subparsers.add_parser("data", help="list datasets, verify them against their checksums")
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="dataset names, descriptions and where they come from")
    ls.set_defaults(func=_cmd_list)
    verify = sub.add_parser("verify", help="check a dataset against its SHA256SUMS manifest")
    verify.add_argument("name", help="dataset name (see `nicspec data list`) or folder:PATH")
    verify.set_defaults(func=_cmd_verify)
