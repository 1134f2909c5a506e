"""The store's map encoding: float16 within 2**-11 of every cell, Hermitian maps by half,
plain arrays untouched, old float32 files still readable, bad files one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nicspec_utils import store
from nicspec_utils.data import KODAK_NORM
from nicspec_utils.errors import DataError
from nicspec_utils.spectral import error_spectrum


def _spectrum(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = rng.random((*shape, 3)), rng.random((*shape, 3))
    return error_spectrum(a, b, KODAK_NORM).astype(np.float32)


@pytest.mark.parametrize("shape", [(64, 96), (63, 97), (64, 97), (33, 32)])
def test_a_spectrum_comes_back_within_float16_precision(
    tmp_path: Path, shape: tuple[int, int]
) -> None:
    m = _spectrum(shape)
    store.save_maps(tmp_path / "m.npz", {"D": m})
    back = store.load_maps(tmp_path / "m.npz")["D"]
    assert back.dtype == np.float32 and back.shape == m.shape
    np.testing.assert_allclose(back, m, rtol=2.0**-11, atol=0)
    with np.load(tmp_path / "m.npz") as raw:  # the Hermitian half only
        assert raw["D"].dtype == np.float16 and raw["D"].shape == (shape[0], shape[1] // 2 + 1)


def test_maps_that_are_not_hermitian_are_kept_whole(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    m = rng.random((40, 50)).astype(np.float32) * 1e6  # beyond float16's range before scaling
    nan = np.full((32, 32), np.nan, np.float32)
    store.save_maps(tmp_path / "m.npz", {"H": m, "nan": nan})
    back = store.load_maps(tmp_path / "m.npz")
    np.testing.assert_allclose(back["H"], m, rtol=2.0**-11)
    assert np.isnan(back["nan"]).all() and back["nan"].shape == (32, 32)
    with np.load(tmp_path / "m.npz") as raw:
        assert raw["H"].shape == (40, 50)


def test_small_and_integer_arrays_pass_through_exactly(tmp_path: Path) -> None:
    arrays = {"n_images": np.asarray(3), "radius": np.linspace(0, 0.5, 7),
              "radial_D": np.arange(7.0) / 3, "counts": np.arange(400).reshape(20, 20)}  # fmt: skip
    store.save_maps(tmp_path / "m.npz", arrays)
    back = store.load_maps(tmp_path / "m.npz")
    assert set(back) == set(arrays)
    for name, value in arrays.items():
        assert np.array_equal(back[name], value) and back[name].dtype == value.dtype


def test_a_plain_float32_file_of_an_older_store_still_reads(tmp_path: Path) -> None:
    m = _spectrum((32, 48))
    np.savez(tmp_path / "old.npz", D=m, n_images=np.asarray(2))
    back = store.load_maps(tmp_path / "old.npz")
    assert np.array_equal(back["D"], m) and int(back["n_images"]) == 2


def test_the_encoding_shrinks_a_map_at_least_fourfold(tmp_path: Path) -> None:
    m = _spectrum((128, 192))
    np.savez(tmp_path / "plain.npz", D=m)
    store.save_maps(tmp_path / "m.npz", {"D": m})
    assert (tmp_path / "m.npz").stat().st_size * 4 <= (tmp_path / "plain.npz").stat().st_size


def test_an_unreadable_map_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "spectra.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="delete it to recompute"):
        store.load_maps(bad)


def test_a_peak_just_under_a_power_of_two_stays_finite(tmp_path: Path) -> None:
    """The encoding scales a map's peak below float16's largest value (65504): a peak of
    1.9995 * 2**k used to be scaled to 65519 and come back as inf."""
    m = np.full((32, 32), 0.25, np.float32)
    m[3, 5] = 1.9995
    m[7, 9] = -np.inf  # a non-finite cell is kept as it is, without a warning
    with np.errstate(all="raise"):
        store.save_maps(tmp_path / "m.npz", {"D": m})
    back = store.load_maps(tmp_path / "m.npz")["D"]
    assert np.isfinite(back[3, 5]) and abs(back[3, 5] - 1.9995) <= 1.9995 * 2.0**-11
    assert back[7, 9] == -np.inf
