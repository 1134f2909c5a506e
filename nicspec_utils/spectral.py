"""Fourier spectra of reconstruction errors: D, G, R (the paper's spectral measures).

For one image, with reconstruction ``x_hat`` and reference ``r`` (HxWx3, floats in [0, 1] or
uint8), :func:`error_spectrum` computes, exactly as the paper's protocol describes:

1. normalise both with the dataset's per-channel mean/std (:meth:`data.Normalisation.apply`),
2. subtract: ``d = norm(x_hat) - norm(r)`` (HxWx3),
3. [only with ``round_like_reference=True``: round ``d`` to integers, the reference code's
   quirk, which zeroes every error below half a standard deviation],
4. one channel with the luma weights ``LUMA = (0.2125, 0.7154, 0.0721)``,
5. ``numpy.fft.fft2`` (unnormalised), ``fftshift`` (DC moves to index ``(H // 2, W // 2)``),
6. the magnitude ``|F|`` (not squared), float64; ``dtype=np.float32`` (and
   :func:`image_spectra`, all maps of one image, as the evaluation uses) computes it in
   float32, within ~1e-6 of the float64 map's maximum.

The measures: **D** = spectrum of (x_hat vs x) for a clean input x; **G** = (x_hat vs x~) for a
corrupted input x~; **R** = (x_hat vs x) for a corrupted input. Spectra are averaged over the
images of a dataset (:class:`SpectrumAccumulator`); DC is set to 0 before plotting
(:func:`zero_dc`).

Frequencies. Element ``(i, j)`` of a shifted HxW spectrum has the frequency
``fy = (i - H // 2) / H`` and ``fx = (j - W // 2) / W`` in cycles per pixel (each in [-0.5, 0.5));
its radial frequency is ``rho = sqrt(fy**2 + fx**2)``, from 0 (DC) to ``0.5 * sqrt(2)`` (the
corners). Using cycles/pixel on each axis makes non-square images comparable: a 512x768 image
and a 512x512 crop put the same pattern at the same ``rho``.

Bands. :func:`band_energies` splits the error *energy* ``sum |F|**2`` (Parseval: proportional to
the error's sum of squares in the image plane; DC excluded, so a constant offset does not count)
into three bands of ``rho`` with the edges ``BAND_EDGES = (1/32, 1/3)`` cycles/pixel:

- low, ``rho < 1/32``: periods longer than 32 px;
- medium, ``1/32 <= rho < 1/3``: periods of 3 to 32 px;
- high, ``rho >= 1/3``: periods under 3 px (the top third of each axis up to Nyquist, and the
  corners). White noise spreads its energy evenly over the frequency plane, so ``1 - pi/9``
  (65 %) of it falls here and 34 % in the medium band.

Why these edges. They were chosen so that the band holding the largest share of the
(corrupted - clean) energy matches the paper's grouping of the 15 ImageNet-C corruptions.
Measured on Kodak (kodim01, 05, 15, 23; severities 1, 3, 5): fog, contrast, brightness and
frost put 59-87 % in low; defocus, glass and motion blur, elastic transform, zoom blur 1,
pixelation and JPEG from severity 3 put 51-89 % in medium; the three noises 60-65 % in high.
The exceptions are zoom blur at severities 3-5 (55-62 % low: the zoom shifts whole regions),
snow (46-72 % medium: its flakes are a few pixels wide) and the mildest JPEG and pixelate
(59 % high). Since natural images' power falls as ``1/rho**2``, an error that removes detail
(blur) is the image's spectrum high-passed at the kernel's cut-off, which lies in the medium
band for ImageNet-C's blur kernels. Shares depend on content: contrast's error is the image
itself, so a crop full of fine detail (kodim05's) puts most of it in the medium band.

The paper's Fourier heat maps probe the central 64x64 of a 512x512 spectrum,
``|fx|, |fy| <= 1/16``: the whole low band and the lowest part of the medium band (``rho`` up
to 0.088); they say nothing about the high band, which only the D/G/R maps and these band
shares cover.

The maps the paper shows are mean ``|F|``; band energies square the spectrum they are given,
which for a mean spectrum is the energy of the mean magnitude. ``SpectrumAccumulator`` also keeps
the mean ``|F|**2`` (:meth:`SpectrumAccumulator.result_power`), from which band energies are the
exact share of mean error energy (pass ``power=True``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import numpy as np

from .data import Normalisation
from .errors import DataError
from .metrics import exact_levels, to_float01

LUMA = (0.2125, 0.7154, 0.0721)
BAND_EDGES: tuple[float, float] = (1.0 / 32.0, 1.0 / 3.0)
BAND_NAMES = ("low", "medium", "high")
MAX_RADIUS = 0.5 * float(np.sqrt(2.0))


def _image(arr: np.ndarray, name: str) -> np.ndarray:
    img = to_float01(arr)
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"{name}: expected an HxWx3 image, got shape {img.shape}")
    return img


def _image_shape(arr: np.ndarray, name: str) -> tuple[int, ...]:
    """The shape of an HxWx3 uint8 or float image (checked as :func:`_image`, not converted)."""
    img = np.asarray(arr)
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise DataError(f"expected a uint8 or float image, got dtype {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"{name}: expected an HxWx3 image, got shape {img.shape}")
    return img.shape


def normalised_difference(
    x_hat: np.ndarray, reference: np.ndarray, normalisation: Normalisation
) -> np.ndarray:
    """``normalisation(x_hat) - normalisation(reference)`` as an HxWx3 float64 array."""
    a, b = _image(x_hat, "reconstruction"), _image(reference, "reference")
    if a.shape != b.shape:
        raise DataError(f"reconstruction {a.shape} and reference {b.shape} differ in shape")
    return normalisation.apply(a) - normalisation.apply(b)


def error_spectrum(
    x_hat: np.ndarray,
    reference: np.ndarray,
    normalisation: Normalisation,
    round_like_reference: bool = False,
    dtype: type = np.float64,
) -> np.ndarray:
    """Shifted DFT magnitude |F| (HxW) of the luma of the normalised error (module doc).

    ``dtype=np.float64`` follows the protocol step by step; ``np.float32`` is the fast path of
    :func:`image_spectra` (float32 FFT; the rounded error exactly as in float64).
    """
    if np.dtype(dtype) == np.float32:
        a, b = _image_shape(x_hat, "reconstruction"), _image_shape(reference, "reference")
        if a != b:
            raise DataError(f"reconstruction {a} and reference {b} differ in shape")
        name = "_rounded" if round_like_reference else ""
        return _spectra32({"": (x_hat, reference)}, normalisation, (name,))[name]
    if np.dtype(dtype) != np.float64:
        raise DataError(f"error spectra are float32 or float64, not {np.dtype(dtype)}")
    diff = normalised_difference(x_hat, reference, normalisation)
    if round_like_reference:
        diff = np.round(diff)
    luma = diff @ np.asarray(LUMA, dtype=np.float64)
    return np.abs(np.fft.fftshift(np.fft.fft2(luma)))


# --- float32 fast path ----------------------------------------------------------------------------
# Per image the evaluation needs 2 (clean) or 6 (corrupted) spectra. Here: the luma of the error
# is formed directly, (a - b) . (LUMA / std) in float32 (the means cancel); the rounded error of
# two 8-bit images (uint8, or float32 k/255 as the classic codecs return) comes from a table of
# round(norm(ka/255) - norm(kb/255)) built with the float64 formula, so it is exactly the float64
# path's (other images use that formula itself); the FFT is scipy's rfft2 on float32 (complex64,
# one thread), its other half filled in by Hermitian symmetry, then shifted.


def _float32_image(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32)
        out /= np.float32(255.0)
        return out
    return arr.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=8)
def _rounded_luma_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(3, 65536) float32: ``LUMA[c] * round(norm_c(ka) - norm_c(kb))`` at ``ka * 256 + kb``."""
    levels = (np.arange(256, dtype=np.float32) / np.float32(255.0)).astype(np.float64)
    normalisation = Normalisation(mean, std)  # type: ignore[arg-type]
    norm = normalisation.apply(np.repeat(levels[:, None], 3, axis=1))  # (256, 3)
    diff = np.round(norm[:, None, :] - norm[None, :, :])  # (ka, kb, c), as the float64 path
    table = (diff * np.asarray(LUMA, dtype=np.float64)).astype(np.float32)
    return np.ascontiguousarray(table.reshape(65536, 3).T)


@functools.lru_cache(maxsize=8)
def _unfold_index(shape: tuple[int, int]) -> np.ndarray:
    """Flat indices into ``|rfft2(x)|`` (Hx(W//2+1)) giving ``fftshift(|fft2(x)|)`` (HxW).

    A real image's spectrum is Hermitian, ``|F[k1, k2]| = |F[-k1, -k2]|``: the columns past
    W//2 are read from row -k1, column W - k2 of the half spectrum.
    """
    h, w = shape
    wh = w // 2 + 1
    k1 = (np.arange(h) - h // 2) % h
    k2 = (np.arange(w) - w // 2) % w
    k1, k2 = np.meshgrid(k1, k2, indexing="ij")
    mirror = k2 >= wh
    rows = np.where(mirror, (-k1) % h, k1)
    cols = np.where(mirror, w - k2, k2)
    index = (rows * wh + cols).ravel()
    index.setflags(write=False)
    return index


def _spectra32(
    pairs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    normalisation: Normalisation,
    suffixes: Iterable[str] = ("", "_rounded"),
) -> dict[str, np.ndarray]:
    """float32 spectra ``name + suffix`` of (x_hat, reference) pairs; each image prepared once."""
    import scipy.fft

    prepared: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

    def prepare(img: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if id(img) not in prepared:
            prepared[id(img)] = (_float32_image(img), exact_levels(img))
        return prepared[id(img)]

    scale = (np.asarray(LUMA) / np.asarray(normalisation.std)).astype(np.float32)
    table = None
    jobs = [(name + suffix, x_hat, reference) for name, (x_hat, reference) in pairs.items()
            for suffix in suffixes]  # fmt: skip
    shape = np.shape(jobs[0][1])[:2]
    lumas = np.empty((len(jobs), *shape), dtype=np.float32)
    for luma, (name, x_hat, reference) in zip(lumas, jobs, strict=True):
        (fa, la), (fb, lb) = prepare(x_hat), prepare(reference)
        if not name.endswith("_rounded"):
            np.matmul(fa - fb, scale, out=luma)
        elif la is not None and lb is not None:
            if table is None:
                mean, std = normalisation.mean, normalisation.std
                table = _rounded_luma_table(tuple(map(float, mean)), tuple(map(float, std)))
            index = (la.astype(np.uint16) << 8) | lb
            np.take(table[0], index[..., 0], out=luma)
            luma += np.take(table[1], index[..., 1])
            luma += np.take(table[2], index[..., 2])
        else:
            diff = np.round(normalised_difference(x_hat, reference, normalisation))
            luma[...] = diff @ np.asarray(LUMA, dtype=np.float64)
    halves = np.abs(scipy.fft.rfft2(lumas, workers=1)).reshape(len(jobs), -1)
    full = np.take(halves, _unfold_index(shape), axis=1).reshape(len(jobs), *shape)
    return {name: spectrum for (name, _, _), spectrum in zip(jobs, full, strict=True)}


def image_spectra(
    clean: np.ndarray,
    corrupted: np.ndarray | None,
    x_hat: np.ndarray,
    normalisation: Normalisation,
) -> dict[str, np.ndarray]:
    """All float32 spectra of one coded image: ``D``, ``D_rounded`` for a clean input, else
    ``G``, ``R``, ``C`` (corrupted vs clean, no codec) and their ``_rounded`` variants.

    As :func:`spectra_dgr` (plus C), in float32: within ~1e-6 of the float64 maps' maximum.
    """
    a = _image_shape(x_hat, "reconstruction")
    for ref in (clean,) if corrupted is None else (clean, corrupted):
        if _image_shape(ref, "reference") != a:
            raise DataError(f"reconstruction {a} and reference {np.shape(ref)} differ in shape")
    if corrupted is None:
        pairs = {"D": (x_hat, clean)}
    else:
        pairs = {"G": (x_hat, corrupted), "R": (x_hat, clean), "C": (corrupted, clean)}
    return _spectra32(pairs, normalisation)


class SpectrumAccumulator:
    """Running mean of error spectra over a stream of images of one size."""

    def __init__(self, normalisation: Normalisation, round_like_reference: bool = False) -> None:
        self.normalisation = normalisation
        self.round_like_reference = round_like_reference
        self.count = 0
        self._sum: np.ndarray | None = None
        self._sum_power: np.ndarray | None = None

    def add(self, x_hat: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Add one image's error spectrum; return that spectrum."""
        spectrum = error_spectrum(x_hat, reference, self.normalisation, self.round_like_reference)
        self.add_spectrum(spectrum)
        return spectrum

    def add_spectrum(self, spectrum: np.ndarray) -> None:
        """Add a precomputed magnitude spectrum."""
        if self._sum is None:
            self._sum = np.zeros(spectrum.shape, dtype=np.float64)
            self._sum_power = np.zeros(spectrum.shape, dtype=np.float64)
        elif spectrum.shape != self._sum.shape:
            raise DataError(
                f"image size {spectrum.shape} differs from earlier ones {self._sum.shape}; "
                "spectra can only be averaged over images of one size"
            )
        assert self._sum_power is not None
        self._sum += spectrum
        power = np.asarray(spectrum, dtype=np.float64)
        self._sum_power += power * power
        self.count += 1

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Spectrum shape (None before the first image)."""
        return None if self._sum is None else self._sum.shape

    def result(self) -> np.ndarray:
        """Mean magnitude |F| over the images added so far."""
        if self._sum is None:
            raise DataError("no images were added to the spectrum")
        return self._sum / self.count

    def result_power(self) -> np.ndarray:
        """Mean energy |F|**2 over the images added so far."""
        if self._sum_power is None:
            raise DataError("no images were added to the spectrum")
        return self._sum_power / self.count


def mean_error_spectrum(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    normalisation: Normalisation,
    round_like_reference: bool = False,
) -> np.ndarray:
    """Mean |F| over ``(x_hat, reference)`` pairs (a stream is fine)."""
    acc = SpectrumAccumulator(normalisation, round_like_reference)
    for x_hat, reference in pairs:
        acc.add(x_hat, reference)
    return acc.result()


def spectra_dgr(
    clean: np.ndarray,
    corrupted: np.ndarray | None,
    x_hat: np.ndarray,
    normalisation: Normalisation,
    round_like_reference: bool = False,
) -> dict[str, np.ndarray]:
    """``{"D": ...}`` for a clean input (``corrupted`` None), else ``{"G": ..., "R": ...}``.

    ``x_hat`` is the reconstruction of the codec's input: ``clean`` when ``corrupted`` is None,
    ``corrupted`` otherwise. G uses the corrupted input as reference, R the clean image.
    """
    if corrupted is None:
        return {"D": error_spectrum(x_hat, clean, normalisation, round_like_reference)}
    return {
        "G": error_spectrum(x_hat, corrupted, normalisation, round_like_reference),
        "R": error_spectrum(x_hat, clean, normalisation, round_like_reference),
    }


def zero_dc(spectrum: np.ndarray) -> np.ndarray:
    """A copy of a shifted spectrum with the DC element (``H // 2, W // 2``) set to 0."""
    out = np.array(spectrum, dtype=np.float64, copy=True)
    out[out.shape[0] // 2, out.shape[1] // 2] = 0.0
    return out


def frequency_grid(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(fy, fx)`` in cycles/pixel for every element of a shifted HxW spectrum (HxW each)."""
    h, w = shape[:2]
    fy = (np.arange(h) - h // 2) / h
    fx = (np.arange(w) - w // 2) / w
    gy, gx = np.meshgrid(fy, fx, indexing="ij")
    return gy, gx


def radial_frequency(shape: tuple[int, ...]) -> np.ndarray:
    """``rho = sqrt(fy**2 + fx**2)`` (cycles/pixel) for a shifted HxW spectrum."""
    fy, fx = frequency_grid(shape)
    return np.hypot(fy, fx)


def radial_profile(
    spectrum: np.ndarray, n_bins: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the spectrum over rings of radial frequency in [0, 0.5] cycles/pixel.

    Returns ``(radius, profile)``: the bin centres and the mean value in each bin. The bins are
    ``n_bins`` equal rings of ``rho`` over [0, 0.5] (default ``min(H, W) // 2``: one frequency
    step of the shorter axis each, so no ring is empty); the corners beyond 0.5 cycles/pixel,
    which exist only along diagonals, are left out, and so is the DC element. Empty rings are NaN.
    """
    s = np.asarray(spectrum, dtype=np.float64)
    if s.ndim != 2:
        raise DataError(f"expected a 2-D spectrum, got shape {s.shape}")
    h, w = s.shape
    if n_bins is None:
        n_bins = max(min(h, w) // 2, 1)
    if n_bins < 1:
        raise DataError(f"n_bins must be at least 1, got {n_bins}")
    rho = radial_frequency(s.shape)
    width = 0.5 / n_bins
    # a small tolerance so that frequencies on a ring's edge (k / min(H, W)) fall in the ring above
    index = np.floor(rho / width + 1e-9).astype(np.int64)
    index[(rho <= 0.5 + 1e-12) & (index >= n_bins)] = n_bins - 1
    keep = (index < n_bins) & (rho > 0)
    sums = np.bincount(index[keep], weights=s[keep], minlength=n_bins)
    counts = np.bincount(index[keep], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    radius = (np.arange(n_bins) + 0.5) * width
    return radius, profile


def band_masks(rho: np.ndarray, edges: tuple[float, float] = BAND_EDGES) -> dict[str, np.ndarray]:
    """Boolean masks of the low / medium / high bands of radial frequency ``rho`` (cycles/px):
    low ``rho < edges[0]``, medium ``edges[0] <= rho < edges[1]``, high ``rho >= edges[1]``."""
    lo, hi = edges
    masks = (rho < lo, (rho >= lo) & (rho < hi), rho >= hi)
    return dict(zip(BAND_NAMES, masks, strict=True))


def band_energies(
    spectrum: np.ndarray,
    edges: tuple[float, float] = BAND_EDGES,
    power: bool = False,
) -> dict[str, float]:
    """Shares of the error energy (DC excluded) in the low / medium / high bands of ``rho``.

    ``spectrum`` is a shifted magnitude |F| (squared here) or, with ``power=True``, already an
    energy |F|**2 (e.g. :meth:`SpectrumAccumulator.result_power`). The shares sum to 1; all are 0
    for an error-free spectrum. Bands: low ``rho < edges[0]``, medium ``edges[0] <= rho <
    edges[1]``, high ``rho >= edges[1]``.
    """
    s = np.asarray(spectrum, dtype=np.float64)
    if s.ndim != 2:
        raise DataError(f"expected a 2-D spectrum, got shape {s.shape}")
    lo, hi = edges
    if not 0 < lo < hi:
        raise DataError(f"band edges must satisfy 0 < low < high, got {edges}")
    energy = s if power else s * s
    sums = np.bincount(
        _band_labels(s.shape, (float(lo), float(hi))), weights=energy.ravel(), minlength=4
    )
    total = float(sums[:3].sum())
    if total == 0.0:
        return dict.fromkeys(BAND_NAMES, 0.0)
    return {band: float(v) / total for band, v in zip(BAND_NAMES, sums[:3], strict=True)}


@functools.lru_cache(maxsize=16)
def _band_labels(shape: tuple[int, ...], edges: tuple[float, float]) -> np.ndarray:
    """Flat band index (0 low, 1 medium, 2 high; 3 the DC element) of a shifted HxW spectrum."""
    labels = np.zeros(shape, dtype=np.intp)
    for i, mask in enumerate(band_masks(radial_frequency(shape), edges).values()):
        labels[mask] = i
    labels[shape[0] // 2, shape[1] // 2] = 3
    labels = labels.ravel()
    labels.setflags(write=False)
    return labels


def summarise(spectra: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Band energy shares of several magnitude spectra, keyed like the input."""
    return {name: band_energies(s) for name, s in spectra.items()}
