"""Published rate–distortion curves (CompressAI's Kodak results) and log-bpp interpolation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "data" / "reference" / "compressai-kodak"

PUBLISHED = {
    "jpeg": "jpeg.json",
    "jpeg2000": "jpeg2000.json",
    "vtm": "vtm.json",
    "hm": "hm.json",
    "bpg": "bpg_444_x265_ycbcr.json",
    "av1": "av1.json",
    "bmshj2018-factorized": "compressai-bmshj2018-factorized_mse_cpu.json",
    "bmshj2018-hyperprior": "compressai-bmshj2018-hyperprior_mse_cpu.json",
    "bmshj2018-hyperprior-ms-ssim": "compressai-bmshj2018-hyperprior_ms-ssim_cpu.json",
    "mbt2018-mean": "compressai-mbt2018-mean_mse_cpu.json",
    "cheng2020-anchor": "compressai-cheng2020-anchor_mse_cpu.json",
}


@dataclass(frozen=True)
class RDCurve:
    """A rate–distortion curve sorted by rate."""

    name: str
    bpp: np.ndarray
    psnr: np.ndarray
    ms_ssim: np.ndarray

    def at(self, bpp: float, metric: str = "psnr") -> float:
        """The curve's value at ``bpp``, interpolated linearly in log-bpp (NaN outside it)."""
        values = self.psnr if metric == "psnr" else self.ms_ssim
        x = np.log(self.bpp)
        lb = float(np.log(bpp))
        if lb < x[0] - 1e-9 or lb > x[-1] + 1e-9:
            return float("nan")
        return float(np.interp(lb, x, values))


def published_curve(name: str) -> RDCurve:
    """CompressAI's published Kodak curve for a codec (see ``PUBLISHED``)."""
    if name not in PUBLISHED:
        raise UsageError(f"no published curve {name!r}; choose from {', '.join(PUBLISHED)}")
    path = REFERENCE_DIR / PUBLISHED[name]
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read published curve {path}: {exc}") from None
    return make_curve(
        f"{name} (published)", results["bpp"], results["psnr-rgb"], results["ms-ssim-rgb"]
    )


def make_curve(
    name: str, bpp: list[float], psnr: list[float], ms_ssim: list[float] | None = None
) -> RDCurve:
    """An RDCurve from unsorted points."""
    order = np.argsort(bpp)
    ms = np.asarray(ms_ssim if ms_ssim is not None else [np.nan] * len(bpp), dtype=float)
    return RDCurve(name, np.asarray(bpp, float)[order], np.asarray(psnr, float)[order], ms[order])
