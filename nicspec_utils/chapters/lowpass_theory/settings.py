"""Chapter 4's settings: the cache schema and folder, the training datasets, the cut-off level."""

from __future__ import annotations

from pathlib import Path

from ...cache import results_dir

SCHEMA = 2
TRAIN_DATASETS = ("cid22-train", "gb82")
# a rank-k projection's cut-off: the radial frequency where its mean energy gain falls below this
CUTOFF_LEVEL = 0.5

# --- caching ------------------------------------------------------------------------------------


def _folder(out: str | Path | None) -> Path:
    return (Path(out) if out is not None else results_dir()) / "lowpass"
