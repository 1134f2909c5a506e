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
  Wang et al. (2003), also on 8-bit rounded images by default: ``pytorch_msssim``'s formulas
  in float32 NumPy/OpenCV (within 1e-7 of the library in float64, ~15x faster, no torch);
  :func:`ms_ssim_many` compares one image with several references, sharing its filtering.
- :func:`bd_rate` / :func:`bd_psnr` follow Bjontegaard (VCEG-M33): a cubic polynomial fitted
  through each rate-distortion curve with the rate on a log scale, integrated over the interval
  where both curves overlap. ``method="pchip"`` uses a monotone piecewise-cubic interpolant
  instead (the variant later recommended by VCEG/JVET). BD-rate is a fraction: ``-0.25`` means
  curve b needs 25 % less rate than curve a for the same PSNR.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

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


def levels_8bit(img: np.ndarray) -> np.ndarray:
    """The 8-bit levels k (uint8) that :func:`quantise_8bit` rounds an image to (k/255).

    ``uint8`` is returned as it is. A float32 image whose values are all ``float32(k) / 255`` (a
    classic codec's reconstruction) is read back without float64 arithmetic; any other float
    image is rounded in float64 exactly as :func:`quantise_8bit` does.
    """
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"expected a uint8 or float image, got dtype {arr.dtype}")
    exact = exact_levels(arr)
    if exact is not None:
        return exact
    return np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def exact_levels(img: np.ndarray) -> np.ndarray | None:
    """uint8 levels k when every value of ``img`` is exactly ``float32(k) / 255``, else None."""
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype != np.float32:
        return None
    k = np.rint(np.clip(arr, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    back = k.astype(np.float32)
    back /= np.float32(255.0)
    return k if np.array_equal(back, arr) else None


def _check_shapes(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise DataError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise DataError(f"expected HxWx3 images, got shape {a.shape}")


def mse(x: np.ndarray, y: np.ndarray, eight_bit: bool = False) -> float:
    """Mean squared error over all pixels and channels, in [0, 1] units."""
    if eight_bit:
        a, b = levels_8bit(x), levels_8bit(y)
        _check_shapes(a, b)
        d = (a.astype(np.int16) - b).astype(np.float64).ravel()
        return float(d @ d) / (d.size * 255.0**2)
    a, b = _check_pair(x, y)
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


# --- MS-SSIM --------------------------------------------------------------------------------------
# pytorch_msssim's ms_ssim (data range 1, win 11, sigma 1.5, K = (0.01, 0.03), five scales) in
# float32 NumPy: the separable Gaussian is two OpenCV filter2D passes ("valid" part kept, as the
# library's unpadded conv2d), the downsampling its avg_pool2d (kernel 2, zero padding of
# size % 2, padding counted). One 512x768 pair, one thread: about 0.8 s in float64 torch, 0.19 s
# in float32 torch, 0.05 s here (CPU time on a busy machine); within 1e-7 of the float64 library.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN_SIZE = 11
_K1, _K2 = 0.01, 0.03


# pytorch_msssim's float32 window (its _fspecial_gauss_1d(11, 1.5), bit for bit: torch's exp
# and sum round differently from NumPy's, and the library's variances depend on the last bit)
_WINDOW_HALF = ("0.0010283804", "0.007598758", "0.036000773", "0.10936069", "0.21300553")
_WINDOW_MID = "0.26601171"


@functools.lru_cache(maxsize=1)
def _gauss_window() -> np.ndarray:
    """The 11-tap Gaussian window (sigma 1.5) of pytorch_msssim, float32."""
    half = [np.float32(v) for v in _WINDOW_HALF]
    return np.array([*half, np.float32(_WINDOW_MID), *half[::-1]], dtype=np.float32)


@contextlib.contextmanager
def _one_cv2_thread() -> Iterator[Any]:
    """OpenCV with one thread inside the block (workers give the parallelism); restored after."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield cv2
    finally:
        cv2.setNumThreads(before)


def _planar(img: np.ndarray, eight_bit: bool) -> np.ndarray:
    """A 3xHxW float32 copy in [0, 1]: 8-bit levels k as ``float32(k) / 255``, else the values."""
    src = levels_8bit(img) if eight_bit else to_float01(img)
    out = src.transpose(2, 0, 1).astype(np.float32, order="C")
    if src.dtype == np.uint8:
        out /= np.float32(255.0)
    return out


def _pool(p: np.ndarray) -> np.ndarray:
    """avg_pool2d(kernel 2, padding size % 2, zeros counted) of a CxHxW array."""
    ph, pw = p.shape[1] % 2, p.shape[2] % 2
    if ph or pw:
        p = np.pad(p, ((0, 0), (ph, ph), (pw, pw)))
    h2, w2 = p.shape[1] // 2, p.shape[2] // 2
    p = p[:, : 2 * h2, : 2 * w2]
    out = p[:, 0::2, 0::2] + p[:, 0::2, 1::2]
    out += p[:, 1::2, 0::2]
    out += p[:, 1::2, 1::2]
    out *= np.float32(0.25)
    return out


def _ms_ssim_planar(x: np.ndarray, refs: Sequence[np.ndarray]) -> list[float]:
    """MS-SSIM of a 3xHxW float32 image against each reference; x's blurs are shared."""
    g = _gauss_window()
    row, col = g[None, :], g[:, None]
    r = _WIN_SIZE // 2
    half = np.float32(0.5)
    # blur(x - 0.5), not blur(x), keeps float32's E[x^2] - E[x]^2 accurate. The 2-D window sums to
    # S = 1 - 6e-8, so the library's variances differ from the centred ones by
    # kappa = (1 - S)(mu_x' + mu_y' + 0.5 S) in both (sigma_x + sigma_y) and 2 sigma_xy: added back.
    s2 = float(g.sum(dtype=np.float64)) ** 2
    offset = np.float32(0.5 * s2)  # blur(x) - blur(x - 0.5)
    k1, k0 = np.float32(1.0 - s2), np.float32((1.0 - s2) * 0.5 * s2)
    c1, c2 = np.float32(_K1**2), np.float32(_K2**2)
    levels = len(MS_SSIM_WEIGHTS)
    values = np.empty((len(refs), levels, x.shape[0]), dtype=np.float64)
    ys = list(refs)
    with _one_cv2_thread() as cv2:

        def blur(plane: np.ndarray) -> np.ndarray:
            # two 1-D filter2D passes sum in the library's order (sepFilter2D is ~1e-7 off)
            out = cv2.filter2D(plane, -1, row, borderType=cv2.BORDER_CONSTANT)
            out = cv2.filter2D(out[:, r:-r], -1, col, borderType=cv2.BORDER_CONSTANT)
            return out[r:-r]

        for level in range(levels):
            last = level == levels - 1
            for c in range(x.shape[0]):
                xc = x[c] - half
                mu_x = blur(xc)
                sigma_x = blur(xc * xc)
                sigma_x -= mu_x * mu_x
                for k, y in enumerate(ys):
                    yc = y[c] - half
                    mu_y = blur(yc)
                    kappa = mu_x + mu_y
                    kappa *= k1
                    kappa += k0 + c2
                    den = blur(yc * yc)
                    den -= mu_y * mu_y
                    den += sigma_x
                    den += kappa
                    cs_map = blur(xc * yc)
                    cs_map -= mu_x * mu_y
                    cs_map *= np.float32(2.0)
                    cs_map += kappa
                    cs_map /= den
                    if last:  # luminance (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
                        mx, my = mu_x + offset, mu_y + offset
                        lum = mx * my
                        lum *= np.float32(2.0)
                        lum += c1
                        mx *= mx
                        my *= my
                        mx += my
                        mx += c1
                        lum /= mx
                        cs_map *= lum
                    values[k, level, c] = cs_map.mean(dtype=np.float64)
            if not last:
                x = _pool(x)
                ys = [_pool(y) for y in ys]
    values = np.maximum(values, 0.0) ** np.asarray(MS_SSIM_WEIGHTS)[None, :, None]
    return [float(v) for v in np.prod(values, axis=1).mean(axis=1)]


def ms_ssim_many(x: np.ndarray, refs: Sequence[np.ndarray], eight_bit: bool = True) -> list[float]:
    """:func:`ms_ssim` of ``x`` against each of ``refs`` (x's share of the work done once)."""
    a = np.asarray(x)
    for ref in refs:
        _check_shapes(a, np.asarray(ref))
    h, w = a.shape[:2]
    if min(h, w) < MS_SSIM_MIN_SIDE:
        raise DataError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} px a side (5 scales), got {w}x{h}"
        )
    return _ms_ssim_planar(_planar(a, eight_bit), [_planar(ref, eight_bit) for ref in refs])


def ms_ssim(x: np.ndarray, y: np.ndarray, eight_bit: bool = True) -> float:
    """RGB MS-SSIM (data range 1, default 5 scales); images need a side of at least 161 px.

    As :func:`psnr`, both images are rounded to 8-bit levels first unless ``eight_bit=False``.
    Computed in float32 (see the MS-SSIM section above); ``pytorch_msssim`` gives the same value.
    """
    return ms_ssim_many(x, [y], eight_bit=eight_bit)[0]


def bpp(bits: float, height: int, width: int) -> float:
    """Bits per pixel of a ``height`` x ``width`` image coded in ``bits`` bits."""
    if height <= 0 or width <= 0:
        raise UsageError(f"image size must be positive, got {width}x{height}")
    return float(bits) / (height * width)


def _rd_curve(rate: ArrayLike, quality: ArrayLike, name: str) -> tuple:
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
    rate_a: ArrayLike,
    psnr_a: ArrayLike,
    rate_b: ArrayLike,
    psnr_b: ArrayLike,
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
    rate_a: ArrayLike,
    psnr_a: ArrayLike,
    rate_b: ArrayLike,
    psnr_b: ArrayLike,
    method: str = "cubic",
) -> float:
    """Bjontegaard delta PSNR (dB) of curve b against anchor a at equal rate (+ = b better)."""
    lr_a, q_a = _rd_curve(rate_a, psnr_a, "a")
    lr_b, q_b = _rd_curve(rate_b, psnr_b, "b")
    lo, hi = _overlap(lr_a, lr_b, "rate")
    int_a = _integral(lr_a, q_a, lo, hi, method, "a")
    int_b = _integral(lr_b, q_b, lo, hi, method, "b")
    return (int_b - int_a) / (hi - lo)
