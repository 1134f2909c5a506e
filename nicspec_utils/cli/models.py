"""``nicspec`` command line: models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..nic.modelcard import (
    bar_changes,
    candidate_names,
    not_available,
    report,
    ship,
    shipped_bars,
)


def _cmd_report(args: argparse.Namespace) -> int:
    if args.replot:
        from ..nic.modelcard import replot

        print(f"redrew {replot()} from the manifest")
        return 0
    readme = Path(__file__).resolve().parents[2] / "README.md"
    candidates = candidate_names([Path(p) for p in args.candidate or []])
    result = report(
        limit=args.limit, progress=not args.no_progress, readme=readme, candidates=candidates
    )
    print(result["table"])
    checks = result["bars"]["checks"]
    print(f"{sum(c['pass'] for c in checks)} of {len(checks)} quality bars pass")
    if candidates:
        print(bar_changes(checks, shipped_bars()))
    return 0


def _cmd_ship(args: argparse.Namespace) -> int:
    path = ship(Path(args.checkpoint), Path(args.log) if args.log else None, args.replace)
    print(f"shipped {path}; now run `nicspec models report` to re-measure the family")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from ..nic.models import shipped_models

    for name, entry in shipped_models().items():
        kodak = entry.get("kodak_real_coding", {}).get("default") or {}
        extra = f"  Kodak {kodak['bpp']:.3f} bpp {kodak['psnr']:.2f} dB" if kodak else ""
        print(
            f"{name:28s} {entry.get('architecture', '?'):22s} {entry.get('metric', '?'):8s}{extra}"
        )
    for row in not_available():
        print(
            f"{row['model']:28s} {row['architecture']:22s} {row['metric']:8s}  not available: "
            f"train it with `{row['command']}`"
        )
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec models list|report|ship``."""
    p = subparsers.add_parser("models", help="the shipped NIC models: list, benchmark and report")
    sub = p.add_subparsers(dest="models_command", required=True)
    lst = sub.add_parser("list", help="list shipped models")
    lst.set_defaults(func=_cmd_list)
    rep = sub.add_parser(
        "report",
        help="benchmark on Kodak (real coding); write manifest, card figures, README table",
    )
    rep.add_argument("--limit", type=int, help="only the first N Kodak images (README left alone)")
    rep.add_argument(
        "--candidate",
        action="append",
        metavar="CHECKPOINT",
        help="benchmark this checkpoint in place of its shipped namesake and show which bars "
        "change (repeatable; writes nothing)",
    )
    rep.add_argument("--no-progress", action="store_true")
    rep.add_argument(
        "--replot",
        action="store_true",
        help="only redraw the Kodak RD figure from data/models/manifest.json (no benchmark)",
    )
    rep.set_defaults(func=_cmd_report)
    shp = sub.add_parser(
        "ship",
        help="put a continued checkpoint in data/models and extend its training log",
    )
    shp.add_argument("checkpoint", help="e.g. runs-cpu/models/sh-mse-0.018.safetensors")
    shp.add_argument("--log", help="the run's log.csv (default: beside the run's models folder)")
    shp.add_argument(
        "--replace",
        action="store_true",
        help="ship it even if it does not continue the shipped file",
    )
    shp.set_defaults(func=_cmd_ship)
