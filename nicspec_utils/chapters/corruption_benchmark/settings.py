"""Chapter 1's settings: cache schema, ring grid, band-edge grids, folders, and how names
and severity spans are written."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ... import corruptions as C
from ...cache import project_root
from ...data import Dataset
from ...errors import UsageError
from ...spectral import MAX_RADIUS

SCHEMA = 2  # 2: entries hold each image's band shares (#16)
# Rings of radial frequency for the stored energy profile: 1/384 cycles/pixel, so that 1/64,
# 1/32, 1/16 (low edges) and 1/4, 1/3, 5/12 (high edges) fall exactly on ring boundaries.
RING_STEP = 1.0 / 384.0
N_RINGS = int(np.ceil(MAX_RADIUS / RING_STEP)) + 1
LOW_EDGE_GRID = (1.0 / 64.0, 1.0 / 32.0, 1.0 / 16.0)
HIGH_EDGE_GRID = (1.0 / 4.0, 1.0 / 3.0, 5.0 / 12.0)
GROUP_COLOURS = {"low": "Blues", "medium": "Greens", "high": "Reds"}
VERDICTS = ("reproduced", "partly reproduced", "not reproduced")


def _safe(name: str) -> str:
    """A dataset name as a folder name (``folder:/x/y`` -> ``folder_x_y``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "dataset"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The chapter's cache folder: ``<results>/corrupted`` (the store's one location rule) when
    ``cache_dir`` is None; a relative one is taken from the project root, so a notebook run
    from ``notebooks/`` or from the root uses the same cache."""
    return C.corrupted_root(cache_dir)


def display_path(path: str | os.PathLike[str]) -> str:
    """A path relative to the project root when it lies inside it, else absolute."""
    p = Path(path).resolve()
    root = project_root()
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)


def set_dir(cache_dir: str | os.PathLike[str] | None, dataset_name: str) -> Path:
    """Where the corrupted set of a dataset lives: ``<cache_dir>/<dataset>``."""
    return C.corrupted_set_dir(cache_dir, dataset_name)


def select_image_ids(dataset: Dataset, count: int | None) -> list[str]:
    """The first ``count`` image ids of a dataset (``None``: all; more than there are: all)."""
    if count is None:
        return list(dataset.image_ids)
    if int(count) < 0:
        raise UsageError(f"image count must be 0 or more (None for all), got {count}")
    return list(dataset.image_ids[: int(count)])


def severity_span(values: Sequence[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    runs: list[list[int]] = []
    for v in sorted(set(values)):
        if runs and runs[-1][-1] == v - 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _fmt_name(name: str) -> str:
    return name.replace("_", " ")
