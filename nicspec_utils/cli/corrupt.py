"""``nicspec corrupt``: a corrupted set (Kodak-C, CLIC-C) in the released sets' layout."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import args as shared


def _run_cli(args: argparse.Namespace) -> int:
    from ..corruptions import build_corrupted_set_stats, parse_corruptions, parse_severities
    from ..data import get_dataset
    from ..errors import UsageError
    from ..io import check_output_folder

    names = parse_corruptions(args.corruptions)
    severities = parse_severities(args.severities)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.workers}")
    check_output_folder(args.out)
    dataset = get_dataset(args.dataset)
    stats = build_corrupted_set_stats(
        dataset,
        names,
        severities,
        Path(args.out),
        image_ids=shared.image_list(args.images),
        jobs=args.workers,
        seed=args.seed,
        progress=not args.no_progress,
        scheduler=args.scheduler,
    )
    print(stats.manifest)
    print(
        f"corrupt: {stats.written} files written, {stats.skipped} skipped "
        f"({len(names)} corruptions x {len(severities)} severities) in {stats.seconds:.1f} s"
    )
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec corrupt``."""
    p = subparsers.add_parser(
        "corrupt",
        help="build a corrupted set (Kodak-C, CLIC-C): <out>/<corruption>/<severity>/<id>.png",
        description="Apply the 15 ImageNet-C corruptions (and any registered ones) "
        "deterministically and write the released sets' layout plus a manifest; a rerun "
        "skips finished files.",
    )
    shared.add_dataset(p, limit=False)
    g = p.add_argument_group("corruptions")
    g.add_argument(
        "--corruptions",
        default="all",
        help="all, low, medium, high, or comma-separated names/numbers (default: all)",
    )
    g.add_argument("--severities", default="1-5", help="e.g. 3, 1-5, 1,3,5 (default: 1-5)")
    g.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    shared.add_output(p, required=True)
    shared.add_scheduler(p, jobs=True)
    p.set_defaults(func=_run_cli)
