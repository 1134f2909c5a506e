"""``nicspec fhm``: the Fourier heat map of a codec (PSNR under single-frequency perturbations)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import args as shared


def _run_cli(args: argparse.Namespace) -> int:
    from ..engines.heatmap import heatmap_draws
    from ..io import check_output_folder

    out = check_output_folder(args.out)  # before any work: a file or unwritable folder fails
    if args.cache_dir:
        check_output_folder(args.cache_dir, "--cache-dir")
    result = heatmap_draws(
        args.codec,
        args.dataset,
        draws=args.draws,
        grid=args.grid,
        crop=args.crop,
        images=shared.image_list(args.images),
        limit=args.limit,
        eps=args.eps,
        seed=args.seed,
        quality=args.quality,
        bpp=args.bpp,
        codec_options=shared.codec_options(args),
        estimate=not args.real,
        batch_size=args.batch_size,
        jobs=args.workers,
        cache_dir=Path(args.cache_dir) if args.cache_dir else out / "bases",
        progress=not args.no_progress,
        scheduler=args.scheduler,
    )
    result.save(out)
    t = result.timing
    print(out / "heatmap.npz")
    print(
        f"{result.config['codec'].get('codec')} on {result.config['dataset']}, "
        f"{len(result.seeds)} sign draw(s): {t['computed']:.0f} bases computed, "
        f"{t['cached']:.0f} cached, {t['wall_s']:.1f} s"
    )
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec fhm``."""
    p = subparsers.add_parser(
        "fhm",
        help="Fourier heat map of a codec (PSNR under single-frequency perturbations)",
        description="Perturb centre crops with every Fourier basis of the central grid, "
        "compress, and map mean PSNR vs the perturbed and the clean input. Cached per basis.",
    )
    shared.add_codec(p, lmbda_in_rate=True)
    p.add_argument("--real", action="store_true", help="NIC: real entropy coding (not estimate)")
    shared.add_dataset(p)
    g = p.add_argument_group("heat map")
    g.add_argument("--grid", type=int, default=64, help="central window size G (default 64)")
    g.add_argument("--crop", type=int, default=512, help="centre crop side (default 512)")
    g.add_argument("--eps", type=float, default=4.0, help="L2 norm of the perturbation (4)")
    g.add_argument("--seed", type=int, default=0, help="sign seed of the first draw (default 0)")
    g.add_argument(
        "--draws",
        type=_positive,
        default=1,
        help="independent sign draws (seeds SEED, SEED+1, ...); with 2 or more, heatmap.npz "
        "holds the means and per-cell standard errors over images and draws (default 1)",
    )
    g.add_argument("--batch-size", type=int, default=16, help="NIC images per forward pass")
    shared.add_output(p, required=True)
    p.add_argument("--cache-dir", help="per-basis cache (default OUT/bases)")
    shared.add_scheduler(p, jobs=True)
    p.set_defaults(func=_run_cli)
