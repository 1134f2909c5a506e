"""Argument groups that several ``nicspec`` commands share (codec, dataset, corruption,
output, scheduler), and the parsers of their values. A command adds the groups it needs, so
``--codec``, ``--images`` or ``--scheduler`` mean the same everywhere."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import UsageError

CODEC_HELP = "none, jpeg, jpeg2000, jpeg2000-ffmpeg, webp, avif, hevc, vtm, zoo:ARCH, "
CODEC_HELP += "checkpoint:PATH or nic:NAME"


def number(text: str) -> float | int:
    """Parse a number, keeping integers integral (``50`` -> 50, ``0.5`` -> 0.5)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value); the value is read as JSON when it parses, else a string."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--option needs key=value, got {text!r}")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return key, parsed


def image_list(text: str | None) -> list[str] | None:
    """``"a,b"`` -> ``["a", "b"]``; empty -> None (every image)."""
    return [i.strip() for i in (text or "").split(",") if i.strip()] or None


def codec_options(args: argparse.Namespace) -> dict[str, Any]:
    """The codec options a command line gives: ``--option``s, ``--lmbda``, ``--vtm-dir``."""
    options = dict(parse_option(o) for o in getattr(args, "option", None) or [])
    if getattr(args, "lmbda", None) is not None:
        options["lmbda"] = args.lmbda
    if getattr(args, "vtm_dir", None) is not None:
        options["vtm_dir"] = args.vtm_dir
    return options


def add_codec(
    p: argparse.ArgumentParser, lmbda_in_rate: bool = False, default: str | None = None
) -> Any:
    """``--codec``, its rate (``--quality`` or ``--bpp``), ``--lmbda``, ``--option``,
    ``--vtm-dir``. ``lmbda_in_rate``: ``--lmbda`` excludes the other two rate settings;
    ``default``: the codec when none is given (else ``--codec`` is required). Returns the rate
    group, for a command's own rate setting."""
    g = p.add_argument_group("codec")
    if default is None:
        g.add_argument("--codec", required=True, help=CODEC_HELP)
    else:
        g.add_argument("--codec", default=default, help=f"{CODEC_HELP} (default {default})")
    rate = g.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=number, help="the codec's rate setting")
    rate.add_argument("--bpp", type=float, help="target bits per pixel (rate matching)")
    (rate if lmbda_in_rate else g).add_argument(
        "--lmbda", type=float, help="lambda of a variable-rate NIC model"
    )
    g.add_argument("--option", action="append", metavar="KEY=VALUE", help="codec option (repeat)")
    g.add_argument(
        "--vtm-dir", help="VTM: folder with the encoder/decoder apps (default $NICSPEC_VTM_DIR)"
    )
    return rate


def add_dataset(p: argparse.ArgumentParser, limit: bool = True) -> None:
    """``--dataset``, ``--images`` and (``limit``) ``--limit``."""
    g = p.add_argument_group("images")
    g.add_argument("--dataset", required=True, help="dataset name (see `nicspec data list`)")
    g.add_argument("--images", help="comma-separated image ids (default: all)")
    if limit:
        g.add_argument("--limit", type=int, help="only the first N images")


def add_corruption(p: argparse.ArgumentParser) -> None:
    """``--corruption``, ``--severity`` and ``--seed``."""
    g = p.add_argument_group("corruption")
    g.add_argument("--corruption", help="corruption name or number (needs --severity)")
    g.add_argument("--severity", type=int, help="corruption severity 1..5")
    g.add_argument("--seed", type=int, default=0, help="corruption seed (default 0)")


def add_output(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``--out`` (default: the results folder) and ``--no-progress``."""
    g = p.add_argument_group("output")
    g.add_argument(
        "--out",
        required=required,
        help="output folder"
        if required
        else "results folder (default $NICSPEC_RESULTS, else results/ of the checkout)",
    )
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_scheduler(p: argparse.ArgumentParser, jobs: bool = False) -> None:
    """``--scheduler`` and ``--workers``: where the command's tasks run. ``jobs``: the
    command's older ``--jobs`` is accepted as ``--workers``."""
    g = p.add_argument_group("scheduler")
    g.add_argument(
        "--scheduler",
        help="Dask scheduler address (tcp://HOST:PORT), or 'serial' (default $NICSPEC_SCHEDULER, "
        "else a local cluster of one worker per core)",
    )
    names = ["--workers", "--jobs"] if jobs else ["--workers"]
    g.add_argument(
        *names, dest="workers", type=int, help="workers of the local cluster (default: cores)"
    )


def apply_scheduler(args: argparse.Namespace) -> None:
    """Make ``--scheduler`` / ``--workers`` the process's setting (the engines read them)."""
    import os

    from ..engines.scheduler import SCHEDULER_ENV, WORKERS_ENV

    if getattr(args, "scheduler", None):
        os.environ[SCHEDULER_ENV] = args.scheduler
    if getattr(args, "workers", None) is not None:
        if args.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {args.workers}")
        os.environ[WORKERS_ENV] = str(args.workers)
