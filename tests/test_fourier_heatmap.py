"""Fourier heat maps: bases, perturbation, mirroring, caching, batching, CLI (tiny sizes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nicspec_utils.engines import heatmap as fh
from nicspec_utils.engines.heatmap import (
    Baseline,
    HeatmapResult,
    fourier_basis,
    heatmap,
    map_axis,
    mirror_table,
    perturb,
    table_bases,
)
from nicspec_utils.errors import UsageError

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


# --- analysis (synthetic heat maps) --------------------------------------------------------------
def synthetic(grid: int, crop: int, fn: object, eps: float = 1.0) -> HeatmapResult:
    """A HeatmapResult whose table entry (u, v) holds ``fn(radius in cycles/crop)``."""
    rows, cols = grid, grid // 2 + 1
    u = np.arange(rows)[:, None] - grid // 2
    v = np.arange(cols)[None, :] - grid // 2
    table = np.vectorize(fn)(np.hypot(u, v)).astype(float)
    cfg = {"crop": crop, "eps": eps, "grid": grid, "codec": {"codec": "synthetic"}, "dataset": "x"}
    return HeatmapResult(table, table - 1.0, np.full_like(table, 0.5), cfg, "key")


def test_map_frequency_and_eps_scaling() -> None:
    rho = fh.map_frequency(8, 64)
    assert rho.shape == (7, 7) and rho[3, 3] == 0.0
    assert rho[0, 0] == pytest.approx(math.sqrt(18) / 64) and rho[3, 6] == pytest.approx(3 / 64)
    assert fh.scaled_eps(128) == 1.0 and fh.scaled_eps(512) == 4.0
    # the same relative frequency has the same per-pixel amplitude on both crops
    small = fh.scaled_eps(128) * fourier_basis(128, 64 + 3, 64 - 2)
    big = fh.scaled_eps(512) * fourier_basis(512, 256 + 12, 256 - 8)
    assert np.abs(small).max() == pytest.approx(np.abs(big).max(), rel=1e-6)
    assert fh.full_drop(40.0, 0.01 * 64, 64) == pytest.approx(10 * math.log10(2))


def test_excess_share_recovers_passed_fraction() -> None:
    crop, eps, base = 64, 1.0, 30.0
    m, q = 10 ** (-base / 10), (eps / crop) ** 2
    for a in (0.0, 0.3, 1.0):  # an output passing a fraction a of the perturbation
        g = -10 * math.log10(m + (1 - a) ** 2 * q)
        r = -10 * math.log10(m + a**2 * q)
        assert fh.excess_share(g, base, eps, crop) == pytest.approx((1 - a) ** 2)
        assert fh.excess_share(r, base, eps, crop) == pytest.approx(a**2)
    full = base - fh.full_drop(base, eps, crop)
    assert fh.excess_share(full, base, eps, crop) == pytest.approx(1.0)
    with pytest.raises(UsageError):
        fh.excess_share(30.0, base, 0.0, crop)
    res = synthetic(8, 64, lambda r: 30.0, eps=eps)
    maps = fh.CodecMaps("x", res, Baseline(psnr=30.0, bpp=1.0))
    np.testing.assert_allclose(maps.share_map("perturbed"), 0.0, atol=1e-12)
    assert np.all(maps.share_map("clean") > 0)  # table_clean is 1 dB lower
    s = maps.bands()
    assert s["low"]["share_perturbed"] == pytest.approx(0.0, abs=1e-12)
    assert s["low"]["share_clean"] == pytest.approx(float(maps.share_map("clean")[3, 3]))


def test_band_summary_means_counts_and_drops() -> None:
    res = synthetic(16, 128, lambda r: 30.0 if r < 4 else 20.0)  # 1/32 cycles/px = 4 per 128
    s = fh.band_summary(res, Baseline(psnr=31.0, bpp=0.4))
    a = map_axis(16)
    radius = np.hypot(a[:, None], a[None, :])
    assert s["low"]["n"] == int((radius < 4).sum()) and s["medium"]["n"] == 225 - s["low"]["n"]
    assert s["high"]["n"] == 0 and math.isnan(s["high"]["psnr_perturbed"])
    assert s["low"]["psnr_perturbed"] == 30.0 and s["medium"]["psnr_perturbed"] == 20.0
    assert s["low"]["drop_perturbed"] == 1.0 and s["medium"]["drop_clean"] == 12.0
    assert s["medium"]["bpp"] == 0.5 and s["medium"]["rho_max"] == pytest.approx(7 * 2**0.5 / 128)
    assert fh.top_band(s) == "medium"
    custom = fh.band_summary(res, edges=(2 / 128, 5 / 128))
    assert custom["high"]["n"] == int((radius >= 5).sum()) and custom["high"]["psnr_clean"] == 19.0
    assert fh.top_band(custom) == "high" and "drop_perturbed" not in custom["low"]


def test_radial_profile_follows_radius() -> None:
    res = synthetic(16, 128, lambda r: 40.0 - r)
    f, drop, counts = fh.radial_psnr_profile(res, "perturbed", Baseline(40.0, 1.0))
    assert counts.sum() == 15 * 15 and counts[0] == 1
    np.testing.assert_allclose(f * 128, np.arange(len(f)))
    assert drop[0] == 0.0 and np.all(np.abs(drop - f * 128) < 0.5)
    assert np.all(np.diff(drop) > 0)
    _, bpp, _ = fh.radial_psnr_profile(res, "bpp")
    assert np.all(bpp == 0.5)
    with pytest.raises(UsageError):
        fh.radial_psnr_profile(res, "bpp", Baseline(40.0, 1.0))
    with pytest.raises(UsageError):
        fh.radial_psnr_profile(res, "nonsense")


def _row(model: str, codec: str, g: tuple[float, float], r: tuple[float, float]) -> dict:
    """A band-table row with the same numbers as drops and as shares."""
    row = {"model": model, "codec": codec}
    for metric in ("drop", "share"):
        row.update({f"G {metric} low": g[0], f"G {metric} medium": g[1],
                    f"G {metric} high": math.nan, f"R {metric} low": r[0],
                    f"R {metric} medium": r[1]})  # fmt: skip
    return row


def test_band_table_and_checks_pass_and_fail() -> None:
    rows = [
        _row("a", "NIC", (0.1, 0.5), (0.1, 0.05)),  # NIC: G rises, removes high freq. (low R)
        _row("a", "JPEG2000", (0.1, 0.1), (0.1, 0.1)),
        _row("b", "NIC", (0.3, 0.2), (0.1, 0.3)),  # the opposite on every check
        _row("b", "JPEG2000", (0.1, 0.1), (0.1, 0.1)),
    ]
    table = fh.band_table(rows)
    assert "G drop high" not in table.columns and "G share high" not in table.columns
    assert fh.table_bands(table) == ["low", "medium"]
    expected = {"g_nic": [True, False], "g_vs_j2k": [True, False], "r_vs_j2k": [True, False]}
    assert fh.heatmap_checks(table) == fh.heatmap_checks(table, "drop") == expected
    table.loc[0, "R share medium"] = 0.2  # the shares alone now say NIC passes more at rate a
    assert fh.heatmap_checks(table)["r_vs_j2k"] == [False, False]
    assert fh.heatmap_checks(table, "drop")["r_vs_j2k"] == [True, False]
    one_band = fh.band_table([{k: v for k, v in rows[0].items() if "medium" not in k}])
    assert fh.heatmap_checks(one_band) == {"g_nic": [], "g_vs_j2k": [], "r_vs_j2k": []}
    variants = fh.band_table([
        _row("dense", "NIC", (0.1, 0.2), (0.1, 0.2)),
        _row("pruned-a", "NIC", (0.1, 0.2), (0.1, 0.1)),
        _row("pruned-b", "NIC", (0.1, 0.2), (0.1, 0.3)),
        _row("msssim", "NIC", (0.1, 0.2), (0.1, 0.0)),
    ])  # fmt: skip
    assert fh.variant_checks(variants, "dense") == {"pruned-a": True, "pruned-b": False}
    assert fh.variant_checks(variants, "missing") == {}


def test_plot_heatmaps_shares_scale_per_row() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo = synthetic(8, 64, lambda r: 20.0 + r)
    hi = synthetic(8, 64, lambda r: 30.0 + 2 * r)
    nan = synthetic(8, 64, lambda r: math.nan if r > 2 else 25.0 + r)
    fig = fh.plot_heatmaps({"row1": {"A": lo, "B": hi}, "row2": {"A": nan}}, "perturbed")
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 3
    assert images[0].get_clim() == images[1].get_clim()
    assert images[0].get_clim() == pytest.approx((20.0, float(hi.map_perturbed.max())))
    assert images[2].get_clim() == pytest.approx((25.0, 27.0))  # NaN entries ignored
    assert images[0].get_extent()[1] == pytest.approx(3.5 / 64)  # axes in cycles/px
    fig2 = fh.plot_maps({"r": {"A": np.ones((7, 7)), "B": np.zeros((7, 7))}}, 64, unit="x")
    assert fig2.axes[0].get_images()[0].get_clim() == (0.0, 1.0)
    with pytest.raises(UsageError):
        fh.plot_maps({}, 64)
    prof = fh.plot_radial_profiles(
        {"A: x": (lo, Baseline(21.0, 1.0)), "A: y": (hi, Baseline(31.0, 1.0))}
    )
    nic, j2k = prof.axes[0].get_lines()[:2]
    assert nic.get_color() == j2k.get_color() and nic.get_linestyle() != j2k.get_linestyle()
    assert fig.axes[0].get_ylabel().startswith("row1\n")
    plt.close("all")
    with pytest.raises(UsageError):
        fh.plot_heatmaps({"r": {"A": lo}}, "nonsense")


def test_clean_baseline_matches_direct_compression(tmp_path: Path) -> None:
    from nicspec_utils.codecs import get_codec
    from nicspec_utils.data import get_dataset
    from nicspec_utils.metrics import psnr

    base = fh.clean_baseline("jpeg", "kodak", 64, limit=2, quality=30, cache_dir=tmp_path,
                             progress=False)  # fmt: skip
    ds = get_dataset("kodak").select(None, 2)
    crops = [fh.centre_crop(ds.load(i), 64) for i in ds.image_ids]
    done = [get_codec("jpeg", quality=30).compress(c) for c in crops]
    psnrs = [psnr(d.reconstruction, c) for d, c in zip(done, crops, strict=True)]
    assert base.psnr == pytest.approx(np.mean(psnrs))
    assert base.bpp == pytest.approx(np.mean([d.bpp for d in done]))


def test_rate_matched_pair_sets_jpeg2000_rate(tmp_path: Path) -> None:
    nic, j2k = fh.rate_matched_pair("sh-mse-0.0067", "kodak", None, 4, 64, 1.0, limit=1,
                                    cache_dir=tmp_path)  # fmt: skip
    assert (nic.label, j2k.label) == ("NIC", "JPEG2000")
    assert j2k.result.config["codec"]["quality"] == pytest.approx(24 / round(nic.baseline.bpp, 4))
    assert nic.result.config["eps"] == 1.0 and nic.result.timing["computed"] == 12
    row = fh.summary_row(nic, model="m")
    assert row["model"] == "m" and row["full drop"] > 0 and math.isfinite(row["G drop low"])
