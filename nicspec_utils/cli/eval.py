"""``nicspec eval``: one codec setting on a dataset (optionally corrupted) into the store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import args as shared


def _run_cli(args: argparse.Namespace) -> int:
    from ..engines.evaluate import evaluate_entry, summary_line

    path, metrics, cached = evaluate_entry(
        args.codec,
        args.dataset,
        shared.image_list(args.images),
        args.corruption,
        args.severity,
        args.quality,
        args.bpp,
        shared.codec_options(args),
        args.seed,
        Path(args.out) if args.out else None,
        args.estimate,
        args.limit,
        not args.no_progress,
        args.batch_size,
    )
    print(path)
    print(summary_line(metrics) + (" (cached)" if cached else ""))
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec eval``."""
    from ..engines.evaluate import DEFAULT_BATCH

    p = subparsers.add_parser(
        "eval",
        help="evaluate a codec on a dataset: metrics JSON + D/G/R spectra, cached",
        description="Compress every image of a dataset (optionally corrupted) with one codec "
        "setting; write <out>/<key>/records.parquet, spectra.npz and metrics.json. A rerun of "
        "the same configuration on the same image bytes is read from the store.",
    )
    shared.add_codec(p)
    p.add_argument("--estimate", action="store_true", help="NIC: estimated instead of real bpp")
    shared.add_dataset(p)
    shared.add_corruption(p)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="images per codec call")
    shared.add_output(p)
    p.set_defaults(func=_run_cli)
