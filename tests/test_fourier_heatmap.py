"""Fourier heat maps: bases, perturbation, mirroring, caching, batching, CLI (tiny sizes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nicspec_utils.errors import UsageError
from nicspec_utils.fourier_heatmap import (
    fourier_basis,
    heatmap,
    map_axis,
    mirror_table,
    perturb,
    table_bases,
)

TINY = {"grid": 4, "crop": 64, "limit": 2, "progress": False}


@pytest.mark.parametrize(("size", "i", "j"), [(16, 8, 8), (16, 5, 11), (32, 0, 3), (33, 20, 7)])
def test_basis_unit_norm_single_frequency(size: int, i: int, j: int) -> None:
    b = fourier_basis(size, i, j)
    assert b.shape == (size, size) and b.dtype == np.float64
    assert np.linalg.norm(b) == pytest.approx(1.0)
    mag = np.abs(np.fft.fftshift(np.fft.fft2(b)))
    peaks = {tuple(p) for p in np.argwhere(mag > 1e-9 * mag.max()).tolist()}
    c = size // 2
    assert peaks == {(i, j), ((2 * c - i) % size, (2 * c - j) % size)}


def test_basis_rejects_out_of_range() -> None:
    with pytest.raises(UsageError):
        fourier_basis(8, 8, 0)


def test_perturb_signs_and_clipping() -> None:
    imgs = np.full((3, 16, 16, 3), 128, np.uint8)
    basis = fourier_basis(16, 8, 8)  # DC: a constant image
    out = perturb(imgs, basis, eps=4.0, rng=np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == imgs.shape
    step = round(4.0 / 16 * 255)
    assert set(np.unique(out).tolist()) <= {128 - step, 128 + step}
    clipped = perturb(np.full((1, 16, 16, 3), 250, np.uint8), basis, 4.0, np.random.default_rng(1))
    assert clipped.max() <= 255


def test_mirrored_map_point_symmetric() -> None:
    table = np.random.default_rng(0).normal(size=(8, 5))
    m = mirror_table(table)
    assert m.shape == (7, 7)
    np.testing.assert_array_equal(m, m[::-1, ::-1])
    np.testing.assert_array_equal(m[:, :3], table[1:, 1:4])  # v < 0 straight from the table
    assert list(map_axis(8)) == [-3, -2, -1, 0, 1, 2, 3]


def test_none_codec_lossless(tmp_path: Path) -> None:
    r = heatmap("none", "kodak", cache_dir=tmp_path, **TINY)
    assert r.map_perturbed.shape == (3, 3)
    assert np.all(np.isposinf(r.map_perturbed))
    assert np.all(np.isfinite(r.map_clean)) and np.all(r.map_clean > 15)
    r.save(tmp_path / "out")
    meta = json.loads((tmp_path / "out" / "heatmap.json").read_text())
    assert meta["mean_psnr_perturbed"] is None  # inf is not JSON
    rec = json.loads(next((tmp_path / r.key / "bases").glob("*.json")).read_text())
    assert rec["psnr_perturbed"] == [None, None]


def test_jpeg_high_frequencies_hurt_more(tmp_path: Path) -> None:
    r = heatmap("jpeg", "kodak", quality=5, cache_dir=tmp_path, **{**TINY, "crop": 32})
    m = r.map_perturbed
    corners = m[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.all(np.isfinite(m))
    assert m[1, 1] > corners.max()  # DC (centre) beats the highest frequencies (corners)


def test_cache_resume(tmp_path: Path) -> None:
    first = heatmap("jpeg", "kodak", quality=30, cache_dir=tmp_path, **TINY)
    assert first.timing["computed"] == len(table_bases(4)) == 12
    again = heatmap("jpeg", "kodak", quality=30, cache_dir=tmp_path, **TINY)
    assert again.timing["computed"] == 0 and again.timing["cached"] == 12
    files = sorted((tmp_path / first.key / "bases").glob("*.json"))
    files[5].unlink()
    third = heatmap("jpeg", "kodak", quality=30, cache_dir=tmp_path, **TINY)
    assert third.timing["computed"] == 1
    np.testing.assert_array_equal(third.table_perturbed, first.table_perturbed)


def test_process_pool_matches_serial(tmp_path: Path) -> None:
    serial = heatmap("jpeg", "kodak", quality=30, cache_dir=tmp_path / "a", **TINY)
    pooled = heatmap("jpeg", "kodak", quality=30, jobs=2, cache_dir=tmp_path / "b", **TINY)
    np.testing.assert_array_equal(serial.table_clean, pooled.table_clean)


def test_nic_batched_equals_per_image(tmp_path: Path) -> None:
    nic = "nic:sh-mse-0.0067"
    batched = heatmap(nic, "kodak", batch_size=16, cache_dir=tmp_path / "a", **TINY)
    single = heatmap(nic, "kodak", batch_size=1, cache_dir=tmp_path / "b", **TINY)
    assert batched.key == single.key  # batching is not part of the configuration
    np.testing.assert_allclose(batched.table_perturbed, single.table_perturbed, atol=1e-4)
    np.testing.assert_allclose(batched.table_clean, single.table_clean, atol=1e-4)
    assert np.all(np.isfinite(batched.table_bpp)) and np.all(batched.table_bpp > 0)


def test_bad_sizes(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        heatmap("none", "kodak", grid=5, crop=64, limit=1, cache_dir=tmp_path)
    with pytest.raises(UsageError):
        heatmap("none", "kodak", grid=4, crop=64, limit=1, cache_dir=tmp_path, bases=[(9, 0)])


def test_cli_writes_outputs(tmp_path: Path) -> None:
    from nicspec_utils.cli import main

    out = tmp_path / "fhm"
    argv = ["fhm", "--codec", "jpeg", "--quality", "20", "--dataset", "kodak", "--limit", "2"]
    argv += ["--grid", "4", "--crop", "64", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    data = np.load(out / "heatmap.npz")
    assert data["map_perturbed"].shape == data["map_clean"].shape == (3, 3)
    assert list(data["freq_u"]) == [-1, 0, 1]
    meta = json.loads((out / "heatmap.json").read_text())
    assert meta["config"]["grid"] == 4 and meta["timing"]["computed"] == 12
    assert math.isfinite(meta["mean_psnr_clean"])
    assert (out / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert main([*argv[:-1], "--grid", "5"]) == 2
