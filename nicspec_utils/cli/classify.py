"""``nicspec classify``: classify codec outputs (optionally corrupted): top-1 and agreement."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import args as shared


def _run_cli(args: argparse.Namespace) -> int:
    from ..engines.classify import classify, load_result, summary_line
    from ..errors import UsageError

    bpp: float | dict[str, float] | None = args.bpp
    options = shared.codec_options(args)
    if args.bpp_from:
        bpp = load_result(args.bpp_from).bpp_by_image()
    if args.psnr_from:
        if args.codec != "jpeg2000":
            raise UsageError("--psnr-from matches JPEG2000 only (--codec jpeg2000)")
        options["target_psnr"] = load_result(args.psnr_from).psnr_targets()
    res = classify(
        args.codec,
        args.dataset,
        shared.image_list(args.images),
        limit=args.limit,
        quality=args.quality,
        bpp=bpp,
        corruption=args.corruption,
        severity=args.severity,
        seed=args.seed,
        classifier=args.classifier,
        estimate=args.estimate,
        codec_options=options,
        out=Path(args.out) if args.out else None,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    print(res.path)
    print(summary_line(res.data) + (" (cached)" if res.cached else ""))
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec classify``."""
    from ..engines.classify import CLASSIFIERS, DEFAULT_BATCH, DEFAULT_CLASSIFIER

    p = subparsers.add_parser(
        "classify",
        help="classify codec outputs (optionally corrupted): top-1 and agreement, cached",
        description="Make each image 256x256, optionally corrupt it, code it with one codec "
        "setting and classify the output; write <out>/<config key>/classify.json with top-1 "
        "accuracy (null without labels), agreement with the prediction on the clean "
        "uncompressed image, Wilson intervals and per-image predictions. Reruns read the cache.",
    )
    shared.add_dataset(p)
    rate = shared.add_codec(p, default="none")
    rate.add_argument(
        "--bpp-from",
        metavar="JSON",
        help="per-image bpp targets from another run's classify.json (rate matching per image)",
    )
    rate.add_argument(
        "--psnr-from",
        metavar="JSON",
        help="JPEG2000: per-image PSNR targets (w.r.t. its input) from another run's "
        "classify.json (PSNR matching per image)",
    )
    p.add_argument("--estimate", action="store_true", help="NIC: estimated instead of real bpp")
    shared.add_corruption(p)
    p.add_argument(
        "--classifier",
        default=DEFAULT_CLASSIFIER,
        help=f"{' or '.join(CLASSIFIERS)} (default {DEFAULT_CLASSIFIER})",
    )
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="images per batch")
    shared.add_output(p)
    p.set_defaults(func=_run_cli)
