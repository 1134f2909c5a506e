"""Spectral measures: properties of D / G / R, bands, profiles, an independent DFT."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from nicspec_utils.data import KODAK_NORM, Normalisation, get_dataset
from nicspec_utils.errors import DataError
from nicspec_utils.spectral import (
    BAND_EDGES,
    LUMA,
    SpectrumAccumulator,
    band_energies,
    error_spectrum,
    mean_error_spectrum,
    radial_frequency,
    radial_profile,
    spectra_dgr,
    zero_dc,
)

RNG = np.random.default_rng(1)


@pytest.fixture(scope="module")
def kodak_crop() -> np.ndarray:
    """A 256x384 crop of a real photograph (kodim05, lots of detail)."""
    return get_dataset("kodak").load("kodim05")[128:384, 192:576]


def jpeg(img: np.ndarray, quality: int = 10) -> np.ndarray:
    """A real compression: Pillow JPEG, decoded to float32 k/255 like the codecs do."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB")).astype(np.float32) / np.float32(255)


def as_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / np.float32(255)


def test_identity_reconstruction_gives_exactly_zero(kodak_crop: np.ndarray) -> None:
    d = error_spectrum(as_float(kodak_crop), kodak_crop, KODAK_NORM)
    assert d.shape == kodak_crop.shape[:2] and d.dtype == np.float64
    assert np.all(d == 0)
    assert np.all(spectra_dgr(kodak_crop, None, as_float(kodak_crop), KODAK_NORM)["D"] == 0)


def test_identity_corruption_gives_g_equal_r_equal_d(kodak_crop: np.ndarray) -> None:
    x_hat = jpeg(kodak_crop)
    d = spectra_dgr(kodak_crop, None, x_hat, KODAK_NORM)
    gr = spectra_dgr(kodak_crop, kodak_crop.copy(), x_hat, KODAK_NORM)
    assert set(d) == {"D"} and set(gr) == {"G", "R"}
    assert d["D"].max() > 0
    np.testing.assert_array_equal(gr["G"], d["D"])
    np.testing.assert_array_equal(gr["R"], d["D"])


def test_g_and_r_use_their_references(kodak_crop: np.ndarray) -> None:
    noisy = np.clip(kodak_crop + RNG.normal(0, 20, kodak_crop.shape), 0, 255).astype(np.uint8)
    x_hat = jpeg(noisy, 30)
    gr = spectra_dgr(kodak_crop, noisy, x_hat, KODAK_NORM)
    np.testing.assert_array_equal(gr["G"], error_spectrum(x_hat, noisy, KODAK_NORM))
    np.testing.assert_array_equal(gr["R"], error_spectrum(x_hat, kodak_crop, KODAK_NORM))


@pytest.mark.parametrize("shape", [(256, 384), (63, 95)])
def test_point_symmetry_of_real_error(kodak_crop: np.ndarray, shape: tuple[int, int]) -> None:
    h, w = shape
    img = np.ascontiguousarray(kodak_crop[:h, :w])
    s = error_spectrum(jpeg(img), img, KODAK_NORM)
    # S[c + k] == S[c - k] about the centre c = (H // 2, W // 2); for even sizes the first row and
    # column (the Nyquist frequency -1/2) have no partner and are left out
    sy, sx = (1 if h % 2 == 0 else 0), (1 if w % 2 == 0 else 0)
    part = s[sy:, sx:]
    tol = 1e-10 * s.max()
    np.testing.assert_allclose(part, part[::-1, ::-1], rtol=0, atol=tol)
    if h % 2 == 0:  # spelled out once: S[H/2 + i, W/2 + j] == S[H/2 - i, W/2 - j]
        for i, j in [(1, 2), (5, -7), (h // 2 - 1, w // 2 - 1), (-3, 0)]:
            assert s[h // 2 + i, w // 2 + j] == pytest.approx(s[h // 2 - i, w // 2 - j], abs=tol)


@pytest.mark.parametrize(
    "band, ky, kx",
    [("low", 2, 3), ("low", 0, 5), ("medium", 20, 30), ("medium", 60, 0), ("high", 100, 150)],
)
def test_cosine_error_lands_in_its_band(
    kodak_crop: np.ndarray, band: str, ky: int, kx: int
) -> None:
    h, w = kodak_crop.shape[:2]
    rho = math.hypot(ky / h, kx / w)
    lo, hi = BAND_EDGES
    assert {"low": rho < lo, "medium": lo <= rho < hi, "high": rho >= hi}[band]
    y, x = np.mgrid[:h, :w]
    wave = 0.05 * np.cos(2 * np.pi * (ky * y / h + kx * x / w))
    x_hat = as_float(kodak_crop) + wave[..., None]
    s = error_spectrum(x_hat, kodak_crop, KODAK_NORM)
    shares = band_energies(s)
    assert shares[band] > 0.99
    assert sum(shares.values()) == pytest.approx(1.0)
    peak = np.unravel_index(np.argmax(zero_dc(s)), s.shape)
    assert {peak} <= {(h // 2 + ky, w // 2 + kx), (h // 2 - ky, w // 2 - kx)}


def test_white_noise_shares_follow_area() -> None:
    noise = RNG.normal(0, 0.05, (512, 512, 3))
    s = error_spectrum(0.5 + noise, np.full((512, 512, 3), 0.5), KODAK_NORM)
    shares = band_energies(s)
    lo, hi = BAND_EDGES
    assert shares["low"] == pytest.approx(math.pi * lo**2, abs=0.01)
    assert shares["high"] == pytest.approx(1 - math.pi * hi**2, abs=0.01)


def test_matches_explicit_dft() -> None:
    h, w = 16, 24
    x_hat = RNG.uniform(0, 1, (h, w, 3))
    ref = RNG.uniform(0, 1, (h, w, 3))
    norm = Normalisation((0.4, 0.5, 0.6), (0.2, 0.25, 0.3))
    # independent route: per-channel loops, explicit DFT matrices, explicit re-indexing
    luma = np.zeros((h, w))
    for c in range(3):
        a = (x_hat[..., c] - norm.mean[c]) / norm.std[c]
        b = (ref[..., c] - norm.mean[c]) / norm.std[c]
        luma += LUMA[c] * (a - b)
    wy = np.exp(-2j * np.pi * np.outer(np.arange(h), np.arange(h)) / h)
    wx = np.exp(-2j * np.pi * np.outer(np.arange(w), np.arange(w)) / w)
    f = wy @ luma @ wx.T
    expected = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            expected[i, j] = abs(f[(i - h // 2) % h, (j - w // 2) % w])
    got = error_spectrum(x_hat, ref, norm)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    # Parseval: energy of the spectrum = H * W * energy of the luma error
    assert np.sum(got**2) == pytest.approx(h * w * np.sum(luma**2))


def test_rounding_switch_zeroes_errors_below_half_a_std() -> None:
    h, w = 32, 48
    ref = np.full((h, w, 3), 0.5)
    std = np.asarray(KODAK_NORM.std)
    signs = RNG.choice([-1.0, 1.0], (h, w, 3))
    small = ref + 0.45 * std * signs
    assert error_spectrum(small, ref, KODAK_NORM).max() > 1
    assert np.all(error_spectrum(small, ref, KODAK_NORM, round_like_reference=True) == 0)
    # 1.6 std rounds to 2 std: the rounded spectrum is that of the rounded error
    big = ref + 1.6 * std * signs
    rounded = error_spectrum(big, ref, KODAK_NORM, round_like_reference=True)
    exact = error_spectrum(ref + 2.0 * std * signs, ref, KODAK_NORM)
    np.testing.assert_allclose(rounded, exact, atol=1e-9)


def test_accumulator_is_the_mean(kodak_crop: np.ndarray) -> None:
    a = kodak_crop
    b = np.ascontiguousarray(kodak_crop[::-1])
    pairs = [(jpeg(a, 10), a), (jpeg(b, 40), b)]
    acc = SpectrumAccumulator(KODAK_NORM)
    spectra = [acc.add(x, r) for x, r in pairs]
    assert acc.count == 2
    np.testing.assert_allclose(acc.result(), (spectra[0] + spectra[1]) / 2)
    np.testing.assert_allclose(acc.result_power(), (spectra[0] ** 2 + spectra[1] ** 2) / 2)
    stream = (p for p in pairs)  # a generator: one pass
    np.testing.assert_allclose(mean_error_spectrum(stream, KODAK_NORM), acc.result())
    with pytest.raises(DataError, match="size"):
        acc.add(as_float(kodak_crop[:64, :64]), kodak_crop[:64, :64])
    with pytest.raises(DataError, match="no images"):
        SpectrumAccumulator(KODAK_NORM).result()


def test_zero_dc_and_frequency_grid() -> None:
    for h, w in [(8, 12), (7, 9)]:
        s = np.ones((h, w))
        z = zero_dc(s)
        assert z[h // 2, w // 2] == 0 and z.sum() == h * w - 1 and s.sum() == h * w
        rho = radial_frequency((h, w))
        assert rho[h // 2, w // 2] == 0 and np.argmin(rho) == (h // 2) * w + w // 2
    assert radial_frequency((8, 12))[0, 0] == pytest.approx(0.5 * math.sqrt(2))
    assert radial_frequency((8, 12))[4, 0] == pytest.approx(0.5)


def test_dc_is_a_constant_error() -> None:
    ref = np.full((16, 24, 3), 0.5)
    s = error_spectrum(ref + 0.1, ref, KODAK_NORM)
    assert s[8, 12] > 0 and np.allclose(zero_dc(s), 0)
    assert band_energies(s) == {"low": 0.0, "medium": 0.0, "high": 0.0}


def test_radial_profile() -> None:
    radius, profile = radial_profile(np.ones((512, 768)))
    assert len(radius) == 256 and np.all(np.diff(radius) > 0)
    assert radius[0] > 0 and radius[-1] < 0.5
    np.testing.assert_allclose(profile, 1.0)  # no empty ring with the default bins
    # a spectrum that equals its own radial frequency gives a profile close to the bin centres
    rho = radial_frequency((256, 384))
    radius, profile = radial_profile(rho, n_bins=32)
    np.testing.assert_allclose(profile, radius, atol=0.5 / 32)
    # a ring at one frequency shows up in the right bin
    ring = np.where(np.abs(rho - 0.2) < 0.004, 1.0, 0.0)
    radius, profile = radial_profile(ring, n_bins=50)
    assert radius[np.argmax(profile)] == pytest.approx(0.2, abs=0.01)


def test_band_energies_power_and_edges() -> None:
    s = RNG.uniform(0, 1, (64, 96))
    assert band_energies(s) == band_energies(s**2, power=True)
    with pytest.raises(DataError, match="edges"):
        band_energies(s, edges=(0.3, 0.1))


def test_corruption_groups_match_bands() -> None:
    corruptions = pytest.importorskip("nicspec_utils.corruptions")
    pytest.importorskip("imagecorruptions")
    # shares depend on content (contrast's error is the image itself): a typical photograph
    img = get_dataset("kodak").load("kodim03")[:256, :384]
    mismatched = []
    for c in corruptions.CORRUPTIONS:
        x = corruptions.corrupt(img, c.name, 3, seed=0)
        shares = band_energies(error_spectrum(x, img, KODAK_NORM))
        if max(shares, key=shares.get) != c.group:
            mismatched.append(c.name)
    # module doc: snow, zoom blur and mild JPEG are the known borderline cases
    assert set(mismatched) <= {"snow", "zoom_blur", "jpeg_compression"}, mismatched


# --- float32 fast path against the float64 protocol ---------------------------------------------


def _close_to_float64(got: np.ndarray, want: np.ndarray) -> None:
    """float32 maps within 1e-5 of the float64 map's maximum; band shares within 1e-6."""
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * want.max()
    shares_got, shares_want = band_energies(got), band_energies(want)
    assert all(abs(shares_got[k] - shares_want[k]) < 1e-6 for k in shares_want)


@pytest.mark.parametrize("image_id", ["kodim01", "kodim04"])
def test_image_spectra_float32_agree_with_float64(image_id: str) -> None:
    from nicspec_utils.corruptions import corrupt
    from nicspec_utils.spectral import image_spectra

    clean = get_dataset("kodak").load(image_id)
    noisy = corrupt(clean, "gaussian_noise", 3, seed=0)
    x_hat = jpeg(noisy, quality=50)
    got = image_spectra(clean, noisy, x_hat, KODAK_NORM)
    assert sorted(got) == sorted(f"{m}{s}" for m in "GRC" for s in ("", "_rounded"))
    pairs = {"G": (x_hat, noisy), "R": (x_hat, clean), "C": (noisy, clean)}
    for name, (a, b) in pairs.items():
        _close_to_float64(got[name], error_spectrum(a, b, KODAK_NORM))
        _close_to_float64(got[name + "_rounded"], error_spectrum(a, b, KODAK_NORM, True))
    clean_run = image_spectra(clean, None, jpeg(clean), KODAK_NORM)
    assert sorted(clean_run) == ["D", "D_rounded"]
    _close_to_float64(clean_run["D"], error_spectrum(jpeg(clean), clean, KODAK_NORM))


@pytest.mark.parametrize("shape", [(256, 384), (101, 75), (64, 63)])
def test_error_spectrum_float32_odd_sizes_and_float_reconstructions(
    kodak_crop: np.ndarray, shape: tuple[int, int]
) -> None:
    ref = kodak_crop[: shape[0], : shape[1]]
    # a reconstruction off the 8-bit levels (a NIC's): the rounded error takes the float64 path
    x_hat = np.clip(jpeg(ref) + RNG.normal(0, 0.02, ref.shape).astype(np.float32), 0, 1)
    for rounded in (False, True):
        want = error_spectrum(x_hat, ref, KODAK_NORM, rounded)
        _close_to_float64(error_spectrum(x_hat, ref, KODAK_NORM, rounded, np.float32), want)
    with pytest.raises(DataError, match="float32 or float64"):
        error_spectrum(x_hat, ref, KODAK_NORM, dtype=np.float16)


def test_rounded_table_is_the_float64_rounding_exactly(kodak_crop: np.ndarray) -> None:
    """8-bit images: the table's rounded error is the float64 path's, element for element."""
    from nicspec_utils.spectral import _rounded_luma_table, normalised_difference

    x_hat = jpeg(kodak_crop)
    table = _rounded_luma_table(KODAK_NORM.mean, KODAK_NORM.std)
    k = np.rint(x_hat * 255).astype(np.uint16)
    index = (k << 8) | kodak_crop
    got = sum(table[c][index[..., c]].astype(np.float64) for c in range(3))
    diff = np.round(normalised_difference(x_hat, kodak_crop, KODAK_NORM))
    np.testing.assert_allclose(got, diff @ np.asarray(LUMA), rtol=0, atol=1e-6)
