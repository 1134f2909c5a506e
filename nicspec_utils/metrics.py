"""Image-quality and rate metrics: PSNR, MS-SSIM, bits per pixel, Bjontegaard deltas.

Conventions
- Images are HxWx3 arrays, either ``uint8`` (0..255) or floats in [0, 1]; ``uint8`` inputs are
  converted to ``float32(k) / 255`` (the same values the classic codecs return).
- :func:`psnr` is "PSNR (RGB, 8-bit output)" by default: both images are rounded to the nearest
  of the 256 levels k/255 (after clipping to [0, 1]) before the mean squared error over all three
  channels is taken. This is what a viewer sees once a float reconstruction is saved as an 8-bit
  image. Pass ``eight_bit=False`` for the PSNR of the float values themselves (NIC's continuous
  reconstructions, as CompressAI reports them). Identical images give ``inf``.
  CompressAI's evaluation rounds the same way, so the numbers compare with its published curves.
- :func:`ms_ssim` is RGB MS-SSIM, data range 1, with the five default scales and weights of
  Wang et al. (2003) (``pytorch_msssim``), also on 8-bit rounded images by default.
- :func:`bd_rate` / :func:`bd_psnr` follow Bjontegaard (VCEG-M33): a cubic polynomial fitted
  through each rate-distortion curve with the rate on a log scale, integrated over the interval
  where both curves overlap. ``method="pchip"`` uses a monotone piecewise-cubic interpolant
  instead (the variant later recommended by VCEG/JVET). BD-rate is a fraction: ``-0.25`` means
  curve b needs 25 % less rate than curve a for the same PSNR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import DataError, UsageError

# pytorch_msssim needs min side > (win_size - 1) * 2**(scales - 1) = 10 * 16 with its defaults.
MS_SSIM_MIN_SIDE = 161


def to_float01(img: np.ndarray) -> np.ndarray:
    """An HxWx3 image as float64 in [0, 1] scale; uint8 goes through ``float32(k) / 255``."""
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / np.float32(255.0)
    elif not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"expected a uint8 or float image, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_float01(x), to_float01(y)
    if a.shape != b.shape:
        raise DataError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise DataError(f"expected HxWx3 images, got shape {a.shape}")
    return a, b


def quantise_8bit(x: np.ndarray) -> np.ndarray:
    """Round a [0, 1] image to the nearest level k/255 (clipping first)."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0


def mse(x: np.ndarray, y: np.ndarray, eight_bit: bool = False) -> float:
    """Mean squared error over all pixels and channels, in [0, 1] units."""
    a, b = _check_pair(x, y)
    if eight_bit:
        a, b = quantise_8bit(a), quantise_8bit(b)
    return float(np.mean((a - b) ** 2))


def mse_to_psnr(mse_value: float, data_range: float = 1.0) -> float:
    """PSNR in dB for a mean squared error (``inf`` for zero error)."""
    if mse_value < 0:
        raise UsageError(f"MSE must be non-negative, got {mse_value}")
    if mse_value == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse_value)


def psnr_to_mse(psnr_value: float, data_range: float = 1.0) -> float:
    """Mean squared error for a PSNR in dB (0 for ``inf``)."""
    return data_range**2 * 10.0 ** (-psnr_value / 10.0)


def psnr(x: np.ndarray, y: np.ndarray, data_range: float = 1.0, eight_bit: bool = True) -> float:
    """RGB PSNR in dB; by default both images are rounded to 8-bit levels first (see module doc)."""
    return mse_to_psnr(mse(x, y, eight_bit=eight_bit), data_range)


def ms_ssim(x: np.ndarray, y: np.ndarray, eight_bit: bool = True) -> float:
    """RGB MS-SSIM (data range 1, default 5 scales); images need a side of at least 161 px.

    As :func:`psnr`, both images are rounded to 8-bit levels first unless ``eight_bit=False``.
    """
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    a, b = _check_pair(x, y)
    if eight_bit:
        a, b = quantise_8bit(a), quantise_8bit(b)
    h, w = a.shape[:2]
    if min(h, w) < MS_SSIM_MIN_SIDE:
        raise DataError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} px a side (5 scales), got {w}x{h}"
        )
    ta = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]
    tb = torch.from_numpy(np.ascontiguousarray(b.transpose(2, 0, 1)))[None]
    with torch.no_grad():
        value = _ms_ssim(ta, tb, data_range=1.0, size_average=True)
    return float(value)


def bpp(bits: float, height: int, width: int) -> float:
    """Bits per pixel of a ``height`` x ``width`` image coded in ``bits`` bits."""
    if height <= 0 or width <= 0:
        raise UsageError(f"image size must be positive, got {width}x{height}")
    return float(bits) / (height * width)


def _rd_curve(rate: Sequence[float], quality: Sequence[float], name: str) -> tuple:
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.ndim != 1:
        raise DataError(f"curve {name}: rates and qualities must be 1-D and of equal length")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise DataError(f"curve {name}: rates and qualities must be finite (no lossless points)")
    if np.any(r <= 0):
        raise DataError(f"curve {name}: rates must be positive")
    order = np.argsort(r)
    return np.log(r[order]), q[order]


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str, name: str) -> float:
    """Integral over [lo, hi] of the curve y(x) fitted through the points."""
    if method == "cubic":
        if len(x) < 4:
            raise DataError(f"curve {name}: a cubic Bjontegaard fit needs at least 4 points")
        poly = np.polyint(np.polyfit(x, y, 3))
        return float(np.polyval(poly, hi) - np.polyval(poly, lo))
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        order = np.argsort(x)
        xs, ys = x[order], y[order]
        if len(xs) < 2 or np.any(np.diff(xs) <= 0):
            raise DataError(f"curve {name}: piecewise-cubic fit needs at least 2 distinct points")
        return float(PchipInterpolator(xs, ys).integrate(lo, hi))
    raise UsageError(f"unknown Bjontegaard method {method!r}; choose cubic or pchip")


def _overlap(a: np.ndarray, b: np.ndarray, what: str) -> tuple[float, float]:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if not hi > lo:
        raise DataError(f"the two rate-distortion curves do not overlap in {what}")
    return float(lo), float(hi)


def bd_rate(
    rate_a: Sequence[float],
    psnr_a: Sequence[float],
    rate_b: Sequence[float],
    psnr_b: Sequence[float],
    method: str = "cubic",
) -> float:
    """Bjontegaard delta rate of curve b against anchor a, as a fraction (-0.1 = 10 % saving)."""
    lr_a, q_a = _rd_curve(rate_a, psnr_a, "a")
    lr_b, q_b = _rd_curve(rate_b, psnr_b, "b")
    lo, hi = _overlap(q_a, q_b, "PSNR")
    # log-rate as a function of PSNR, averaged over the common PSNR interval
    int_a = _integral(q_a, lr_a, lo, hi, method, "a")
    int_b = _integral(q_b, lr_b, lo, hi, method, "b")
    return math.expm1((int_b - int_a) / (hi - lo))


def bd_psnr(
    rate_a: Sequence[float],
    psnr_a: Sequence[float],
    rate_b: Sequence[float],
    psnr_b: Sequence[float],
    method: str = "cubic",
) -> float:
    """Bjontegaard delta PSNR (dB) of curve b against anchor a at equal rate (+ = b better)."""
    lr_a, q_a = _rd_curve(rate_a, psnr_a, "a")
    lr_b, q_b = _rd_curve(rate_b, psnr_b, "b")
    lo, hi = _overlap(lr_a, lr_b, "rate")
    int_a = _integral(lr_a, q_a, lo, hi, method, "a")
    int_b = _integral(lr_b, q_b, lo, hi, method, "b")
    return (int_b - int_a) / (hi - lo)
