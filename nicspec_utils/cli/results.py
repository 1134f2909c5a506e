"""``nicspec results bundle`` / ``verify``: export finished store entries as a bundle that the
repository ships (``data/results/<profile>/``), and recompute a sample of one to check it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def _cmd_bundle(args: argparse.Namespace) -> int:
    from ..bundle import SIZE_BUDGET_MB, check_name, finished_keys, write_bundle
    from ..cache import results_dir

    check_name(args.profile)
    results = Path(args.results).expanduser() if args.results else results_dir()
    keys = finished_keys(results) if args.all else None
    manifest = write_bundle(
        args.profile, args.out, keys, results, args.map_factor, merge=not args.replace
    )
    out = Path(args.out).expanduser() if args.out else None
    from ..store import bundles_root

    where = out or bundles_root() / args.profile
    size = manifest["size_bytes"]
    print(
        f"bundle {where}: {manifest['n_entries']} entries, {manifest['n_records']} records, "
        f"{_mb(size)}, maps at 1/{manifest['map_factor']} resolution "
        f"(code {str(manifest['code']['commit'])[:12]})"
    )
    missing = manifest.get("missing_chapters") or []
    partial = manifest.get("partial_chapters") or {}
    held = [
        f"{name} (part: {', '.join(f'{k}={v}' for k, v in partial[name].items())})"
        if name in partial
        else name
        for name in missing
    ]
    print(
        f"bundle {where}: "
        + (f"{len(missing)} chapters still to run: {', '.join(held)}" if missing else "complete")
    )
    if size > SIZE_BUDGET_MB * 1e6:
        print(
            f"nicspec: warning: the bundle is {_mb(size)}, above the {SIZE_BUDGET_MB:.0f} MB "
            "budget of a bundle the repository ships",
            file=sys.stderr,
        )
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from ..bundle import Checked, all_bundles, default_seed, verify
    from ..errors import DataError

    bundles = [Path(args.bundle)] if args.bundle else all_bundles()
    if not bundles:
        raise DataError("no bundle under data/results; name one with --bundle DIR")
    seed = default_seed() if args.seed is None else args.seed

    def show(c: Checked) -> None:
        detail = f": {c.detail}" if c.detail else ""
        print(f"  {c.status:8s} {c.key} {c.label} ({c.seconds:.1f} s){detail}", flush=True)

    failed = 0
    for bundle in bundles:
        print(f"verify {bundle} (sample {args.sample}, seed {seed})", flush=True)
        report = verify(bundle, args.sample, seed, args.max_seconds, on_entry=show)
        n_ok = len(report.verified) - len(report.mismatches)
        skipped = len(report.sampled) - len(report.verified)
        line = (
            f"{bundle}: {n_ok} of {len(report.verified)} recomputed entries match "
            f"({skipped} skipped, {report.n_entries} in the bundle) in {report.seconds:.1f} s"
        )
        if report.mismatches:
            first = report.mismatches[0]
            print(f"nicspec: error: {line}; {first.key} differs: {first.detail}", file=sys.stderr)
            failed += 1
        elif not report.verified:
            print(f"nicspec: error: {line}: none could be recomputed here", file=sys.stderr)
            failed += 1
        else:
            print(line)
    return 1 if failed else 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec results bundle`` and ``nicspec results verify``."""
    p = subparsers.add_parser(
        "results",
        help="export store entries as a results bundle; verify a bundle by recomputing it",
        description="A bundle (data/results/<profile>/) holds finished store entries, their "
        "per-image records (Parquet and CSV) and a manifest (code version, configurations, "
        "sha256 of every file, machine, wall times). The store serves its entries where the "
        "results folder lacks them, unless NICSPEC_FRESH=1.",
    )
    sub = p.add_subparsers(dest="results_command", required=True, metavar="ACTION")
    b = sub.add_parser(
        "bundle",
        help="write data/results/<profile>/ from the results folder",
        description="Export the entries the profile's chapters used in their last "
        "`nicspec book --profile P` (or --all: every finished entry of the results folder).",
    )
    b.add_argument("--profile", required=True, help="the profile (names the bundle)")
    b.add_argument("--out", help="the bundle folder (default data/results/<profile>)")
    b.add_argument("--all", action="store_true", help="every finished entry, not the profile's")
    b.add_argument("--results", help="the results folder to read (default the store's)")
    b.add_argument(
        "--map-factor",
        type=int,
        help="keep maps as the mean of FxF tiles, shares and energies at full resolution "
        "beside them (1, 2, 4, 8, 16, 32; default: the smallest within the size budget)",
    )
    b.add_argument(
        "--replace",
        action="store_true",
        help="hold only the chapters of this build (default: keep the target bundle's other "
        "chapters, so a long profile is bundled chapter by chapter)",
    )
    b.set_defaults(func=_cmd_bundle)
    v = sub.add_parser(
        "verify",
        help="check a bundle's files and recompute a random sample of its entries",
        description="Check every file against the manifest's sha256, then recompute --sample "
        "entries from their stored configurations in a temporary folder and compare: bits and "
        "bpp exact (classic codecs), PSNR and MS-SSIM within 1e-6 relative, other numbers "
        "1e-5, maps within float16 precision. Entries whose inputs are not on this machine "
        "are skipped with a note. Exit 1 on a mismatch or when nothing could be recomputed.",
    )
    v.add_argument("--bundle", help="the bundle folder (default: every bundle in data/results)")
    v.add_argument("--sample", type=int, default=5, help="entries to recompute (default 5)")
    v.add_argument("--seed", type=int, help="the sample's seed (default: today, YYYYMMDD)")
    v.add_argument(
        "--max-seconds",
        type=float,
        help="draw only entries whose stored wall time is at most this (cheap ones)",
    )
    v.set_defaults(func=_cmd_verify)
