"""``nicspec`` command line: train."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..nic.train import RECIPES_FILE, _sources_first, load_recipes, train


def _cmd_train(args: argparse.Namespace) -> int:
    from ..nic.models import MODELS_DIR

    models_dir = Path(args.models_dir) if args.models_dir else MODELS_DIR
    recipes = load_recipes(Path(args.recipes))
    if args.init_weights and not args.recipe:
        raise UsageError("--init-weights goes with one --recipe")
    if args.missing:
        names = [
            n
            for n, r in recipes.items()
            if r.get("ship") and not (models_dir / f"{n}.safetensors").exists()
        ]
        # a recipe's source model trains first
        names = _sources_first(names, recipes)
    elif args.recipe:
        if args.recipe not in recipes:
            raise UsageError(f"unknown recipe {args.recipe!r}; choose from {', '.join(recipes)}")
        names = [args.recipe]
    else:
        raise UsageError("name a recipe (--recipe NAME) or use --missing")
    if not names:
        print("every shipped recipe has its checkpoint; nothing to train")
    for name in names:
        path = train(
            recipes[name],
            device=args.device,
            runs_dir=Path(args.runs_dir),
            models_dir=models_dir,
            steps=args.steps,
            time_budget_s=args.time_budget,
            progress=not args.no_progress,
            init_weights=Path(args.init_weights) if args.init_weights else None,
            checkpoint_every=args.checkpoint_every,
        )
        print(path)
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec train``."""
    p = subparsers.add_parser("train", help="train NIC models from the recipes file")
    p.add_argument("--recipe", help="recipe name (see data/models/recipes.yaml)")
    p.add_argument(
        "--missing", action="store_true", help="train every recipe whose checkpoint is absent"
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--steps", type=int, help="override the recipe's number of steps")
    p.add_argument(
        "--time-budget",
        type=float,
        help="stop after this many seconds of training in all (a resumed run counts its earlier "
        "time); the learning-rate schedule then follows the clock",
    )
    p.add_argument("--runs-dir", default="runs", help="resumable state and logs (default runs/)")
    p.add_argument("--models-dir", help="where checkpoints go (default data/models/)")
    p.add_argument("--recipes", default=str(RECIPES_FILE), help="recipes file")
    p.add_argument(
        "--init-weights",
        help="start a fresh run from this checkpoint instead of the recipe's init_from "
        "(the recipe's own shipped checkpoint continues it, carrying its steps over)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        help="steps between resumable states (default: the recipe's); SIGTERM or Ctrl-C "
        "also saves one and stops",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)
