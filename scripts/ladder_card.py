"""Write the pruning ladder's bars into data/models/MODEL_CARD.md (between <!-- TABLE:ladder -->
and <!-- END -->) and data/models/ladder/bars.json: each rung's sparsity and its clean Kodak
PSNR against the dense family's curve (by default real entropy coding on every Kodak image; the
table says which images and which rate it used).

Usage: python scripts/ladder_card.py [--limit N] [--estimate] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from nicspec_utils.chapters import beyond_the_paper as bp
from nicspec_utils.errors import NicspecError
from nicspec_utils.io import atomic_write_bytes
from nicspec_utils.nic.modelcard import replace_between_marks
from nicspec_utils.nic.models import MODELS_DIR
from nicspec_utils.selection import first_ids

MARK = "<!-- TABLE:ladder -->"
LEVELS = (0, 50, 80, 90, 95)


def main(argv: list[str] | None = None) -> int:
    """Benchmark the ladder; write the card's table and the JSON (unless ``--dry-run``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="first N Kodak images only")
    parser.add_argument("--estimate", action="store_true", help="likelihood rate, not real coding")
    parser.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*")
    try:
        ids = first_ids("kodak", args.limit)
        bars = bp.ladder_bars(bp.ladder_models(LEVELS), "kodak", ids, estimate=args.estimate)
    except NicspecError as exc:
        print(f"ladder_card: error: {exc}", file=sys.stderr)
        return 1
    rate = "the likelihood estimate of the rate" if args.estimate else "real entropy coding"
    table = f"Measured on {len(ids)} Kodak image(s) with {rate}.\n\n" + bp.bars_markdown(bars)
    print(table)
    if args.dry_run:
        return 0
    card = MODELS_DIR / "MODEL_CARD.md"
    text = card.read_text()
    if MARK not in text:
        print(f"ladder_card: error: {card} has no {MARK}", file=sys.stderr)
        return 1
    atomic_write_bytes(card, replace_between_marks(text, MARK, table).encode())
    out = bp.ladder_dir() / "bars.json"
    record = {"images": ids, "rate": rate, "bars": bars.to_dict("records")}
    atomic_write_bytes(out, (json.dumps(record, indent=2) + "\n").encode())
    print(f"wrote {card} and {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
