"""Fourier heat maps: the engine (bases, perturbation, mirroring, caching, batching, draws, CLI)
and chapter 3b's analysis (baselines, rate matching, standard errors, bands, claims, figures)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nicspec_utils import stats
from nicspec_utils.chapters import fourier_heatmaps as ch
from nicspec_utils.engines import heatmap as fh
from nicspec_utils.engines.heatmap import (
    DrawSet,
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
    assert rec["bpp_payload"] == rec["bpp"] == [24.0, 24.0]  # raw RGB: no header to leave out
    assert r.images["psnr_perturbed"].shape == (2, 4, 3) and r.image_maps("bpp").shape == (2, 3, 3)


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
    # every basis is also in one packed file (what a results bundle carries): it alone serves
    packed = tmp_path / first.key / "bases.json"
    files = sorted((tmp_path / first.key / "bases").glob("*.json"))
    assert len(json.loads(packed.read_text())) == 12
    for f in files:
        f.unlink()
    assert heatmap("jpeg", "kodak", quality=30, cache_dir=tmp_path, **TINY).timing["computed"] == 0
    # a basis missing from both is computed again, and the packed file completed
    again_packed = json.loads(packed.read_text())
    del again_packed["r001_c001"]
    packed.write_text(json.dumps(again_packed))
    third = heatmap("jpeg", "kodak", quality=30, cache_dir=tmp_path, **TINY)
    assert third.timing["computed"] == 1 and len(json.loads(packed.read_text())) == 12
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
    with pytest.raises(SystemExit) as exc:  # argparse: one line, exit 2
        main([*argv, "--draws", "0"])
    assert exc.value.code == 2


def test_cli_draws_write_means_and_standard_errors(tmp_path: Path) -> None:
    from nicspec_utils.cli import main

    out = tmp_path / "fhm"
    argv = ["fhm", "--codec", "jpeg", "--quality", "20", "--dataset", "kodak", "--limit", "2"]
    argv += ["--grid", "4", "--crop", "64", "--draws", "3", "--seed", "5", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    data = np.load(out / "heatmap.npz")
    assert data["map_clean"].shape == data["se_clean"].shape == data["se_draws_clean"].shape
    assert np.all(np.isfinite(data["se_clean"])) and np.all(data["se_clean"] >= 0)
    meta = json.loads((out / "heatmap.json").read_text())
    assert meta["config"]["seeds"] == [5, 6, 7] and meta["timing"]["computed"] == 36
    assert sorted(p.name for p in out.glob("draw_*")) == ["draw_5", "draw_6", "draw_7"]


# --- sign draws ----------------------------------------------------------------------------------
def test_draws_are_independent_and_deterministic(tmp_path: Path) -> None:
    cleans = np.full((4, 32, 32, 3), 128, np.uint8)
    a = fh.perturbed_inputs(cleans, 4, 2, 8, 1.0, seed=0)
    assert np.array_equal(a, fh.perturbed_inputs(cleans, 4, 2, 8, 1.0, seed=0))
    b = fh.perturbed_inputs(cleans, 4, 2, 8, 1.0, seed=1)
    assert not np.array_equal(a, b)  # another seed draws other signs
    # the signs (pixel (0, 0), where each cosine basis peaks) of every basis and channel under two
    # seeds agree about half of the time: independent draws
    same = np.concatenate([
        fh.perturbed_inputs(cleans[:1], r, c, 8, 1.0, 0)[0, 0, 0]
        == fh.perturbed_inputs(cleans[:1], r, c, 8, 1.0, 1)[0, 0, 0]
        for r, c in table_bases(8)
    ])  # fmt: skip
    assert same.size == 120
    assert 0.35 < np.mean(same) < 0.65
    assert fh.draw_seeds(3, 3) == [3, 4, 5]
    with pytest.raises(UsageError):
        fh.draw_seeds(0, 0)
    kw = {"quality": 30, **TINY}
    one = fh.heatmap_draws("jpeg", "kodak", draws=2, cache_dir=tmp_path / "a", **kw)
    two = fh.heatmap_draws("jpeg", "kodak", draws=2, cache_dir=tmp_path / "b", **kw)
    assert one.seeds == [0, 1] and [r.key for r in one.results] == [r.key for r in two.results]
    np.testing.assert_array_equal(one.image_maps("psnr_clean"), two.image_maps("psnr_clean"))
    d0, d1 = one.image_maps("psnr_perturbed")[:, 0], one.image_maps("psnr_perturbed")[:, 1]
    assert not np.array_equal(d0, d1)  # the two draws measure different perturbations
    assert one.image_maps("psnr_perturbed").shape == (2, 2, 3, 3)
    with pytest.raises(UsageError):
        DrawSet([one.results[0], fh.heatmap("jpeg", "kodak", cache_dir=tmp_path / "a",
                                            **{**kw, "quality": 40})])  # fmt: skip


def test_payload_leaves_the_jpeg2000_headers_out() -> None:
    from nicspec_utils.codecs import get_codec
    from nicspec_utils.codecs.classic import j2k_header_bytes
    from nicspec_utils.errors import DataError

    img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    small, big = (get_codec("jpeg2000", bpp=b).compress(img) for b in (0.5, 2.0))
    h = j2k_header_bytes(small.bitstream)
    assert h == j2k_header_bytes(big.bitstream) and 100 < h < len(small.bitstream)
    assert fh.payload_bits(small) == 8 * (len(small.bitstream) - h) < small.bits
    with pytest.raises(DataError):
        j2k_header_bytes(b"not a codestream")
    jpeg = get_codec("jpeg", quality=50).compress(img)
    assert fh.payload_bits(jpeg) == jpeg.bits


# --- chapter 3b: synthetic heat maps --------------------------------------------------------------
def synthetic(
    grid: int, crop: int, fn: object, eps: float = 1.0, images: int = 2, draws: int = 1,
    clean: float = 1.0, noise: float = 0.0, seed: int = 0,
) -> DrawSet:  # fmt: skip
    """A DrawSet whose table entry (u, v) of every image and draw holds ``fn(radius in
    cycles/crop)`` (PSNR w.r.t. the perturbed input; ``clean`` dB lower w.r.t. the clean one),
    plus Gaussian ``noise`` (dB) drawn from ``seed``."""
    rows, cols = grid, grid // 2 + 1
    u = np.arange(rows)[:, None] - grid // 2
    v = np.arange(cols)[None, :] - grid // 2
    table = np.vectorize(fn)(np.hypot(u, v)).astype(float)
    rng = np.random.default_rng(seed)
    ids = [f"im{k}" for k in range(images)]
    results = []
    for d in range(draws):
        cfg = {"crop": crop, "eps": eps, "grid": grid, "codec": {"codec": "synthetic"},
               "dataset": "x", "seed": d, "image_ids": ids}  # fmt: skip
        pert = table[None] + noise * rng.normal(size=(images, *table.shape))
        per = {"psnr_perturbed": pert, "psnr_clean": pert - clean,
               "bpp": np.full_like(pert, 0.5), "bpp_payload": np.full_like(pert, 0.4)}  # fmt: skip
        results.append(HeatmapResult(pert.mean(0), pert.mean(0) - clean, per["bpp"].mean(0),
                                     cfg, f"key{d}", images=per))  # fmt: skip
    return DrawSet(results)


def maps_of(draws: DrawSet, psnr: float = 30.0, label: str = "x") -> ch.CodecMaps:
    n = len(draws.config["image_ids"])
    base = ch.Baseline(np.full(n, psnr), np.full(n, 1.0), np.full(n, 0.9))
    return ch.CodecMaps(label, draws, base)


def test_map_frequency_and_eps_scaling() -> None:
    rho = ch.map_frequency(8, 64)
    assert rho.shape == (7, 7) and rho[3, 3] == 0.0
    assert rho[0, 0] == pytest.approx(math.sqrt(18) / 64) and rho[3, 6] == pytest.approx(3 / 64)
    assert ch.scaled_eps(128) == 1.0 and ch.scaled_eps(512) == 4.0
    # the same relative frequency has the same per-pixel amplitude on both crops
    small = ch.scaled_eps(128) * fourier_basis(128, 64 + 3, 64 - 2)
    big = ch.scaled_eps(512) * fourier_basis(512, 256 + 12, 256 - 8)
    assert np.abs(small).max() == pytest.approx(np.abs(big).max(), rel=1e-6)
    assert ch.full_drop(40.0, 0.01 * 64, 64) == pytest.approx(10 * math.log10(2))


def test_excess_share_recovers_passed_fraction() -> None:
    crop, eps, base = 64, 1.0, 30.0
    m, q = 10 ** (-base / 10), (eps / crop) ** 2
    for a in (0.0, 0.3, 1.0):  # an output passing a fraction a of the perturbation
        g = -10 * math.log10(m + (1 - a) ** 2 * q)
        r = -10 * math.log10(m + a**2 * q)
        assert ch.excess_share(g, base, eps, crop) == pytest.approx((1 - a) ** 2)
        assert ch.excess_share(r, base, eps, crop) == pytest.approx(a**2)
    full = base - ch.full_drop(base, eps, crop)
    assert ch.excess_share(full, base, eps, crop) == pytest.approx(1.0)
    with pytest.raises(UsageError):
        ch.excess_share(30.0, base, 0.0, crop)
    maps = maps_of(synthetic(8, 64, lambda r: 30.0, eps=eps))
    np.testing.assert_allclose(maps.mean_map("G"), 0.0, atol=1e-12)
    assert np.all(maps.mean_map("R") > 0)  # the clean PSNR is 1 dB lower
    s = maps.band_values("G")
    assert s["low"].shape == (2, 1) and np.allclose(s["low"], 0.0)
    assert maps.band_values("R")["low"][0, 0] == pytest.approx(float(maps.mean_map("R")[3, 3]))
    np.testing.assert_allclose(maps.values("R", "drop"), 1.0)
    with pytest.raises(UsageError):
        maps.values("X")
    with pytest.raises(UsageError):
        maps.values("G", "nonsense")


def test_bands_and_band_table_means_counts() -> None:
    masks = ch.bands(16, 128)  # 1/32 cycles/px = 4 cycles per 128 px
    a = map_axis(16)
    radius = np.hypot(a[:, None], a[None, :])
    assert list(masks) == ["low", "medium"]  # no high-band entry in the window
    n_low = int((radius < 4).sum())
    assert masks["low"].sum() == n_low == 45 and masks["medium"].sum() == 225 - n_low
    assert set(ch.bands(16, 128, (2 / 128, 5 / 128))) == {"low", "medium", "high"}
    maps = maps_of(synthetic(16, 128, lambda r: 30.0 if r < 4 else 20.0, images=3), psnr=31.0)
    drops = ch.band_table([({"codec": "x"}, maps)], "drop", n_boot=200)
    g = drops[drops["measure"] == "G"].set_index("band")
    assert g.loc["low", "mean"] == pytest.approx(1.0) and g.loc["medium", "mean"] == 11.0
    assert g.loc["low", "se"] == 0.0 and g.loc["low", "images"] == 3
    r = drops[drops["measure"] == "R"].set_index("band")
    assert r.loc["medium", "mean"] == pytest.approx(12.0)


# --- standard errors and the grey-out -------------------------------------------------------------
def test_cell_estimate_finds_a_known_effect() -> None:
    rng = np.random.default_rng(1)
    effect = np.zeros((7, 7))
    effect[:3] = 1.0  # a known effect in the top rows, 10 noise SDs
    values = effect + 0.1 * rng.normal(size=(12, 3, 7, 7))  # images x draws x cells
    est = stats.cell_estimate(values)
    assert est.n_images == 12 and est.n_draws == 3
    np.testing.assert_allclose(est.se, 0.1 / math.sqrt(36), rtol=0.5)
    np.testing.assert_allclose(est.se_draws, 0.1 / math.sqrt(36), rtol=0.5)
    grey = est.indistinct(2.0)
    assert not grey[:3].any()  # the effect stands out everywhere
    assert grey[3:].mean() > 0.8  # the null cells are greyed, up to ~5 % false positives
    # an image-level shift (every draw alike) is in se, not in se_draws
    shifted = values + rng.normal(size=(12, 1, 1, 1))
    est2 = stats.cell_estimate(shifted)
    assert np.all(est2.se > 3 * est2.se_draws)
    assert stats.draw_correlation(values) > 0.9  # the effect repeats draw after draw
    assert abs(stats.draw_correlation(0.1 * rng.normal(size=(12, 3, 7, 7)))) < 0.3


def test_identical_codecs_are_inconclusive_and_fully_greyed() -> None:
    ds = synthetic(8, 64, lambda r: 30.0 - r, images=8, draws=3, noise=0.2)
    a, b = maps_of(ds, label="NIC"), maps_of(ds, label="JPEG2000")
    for m in ("G", "R"):
        d = ch.difference(a, b, m)
        assert np.all(d.mean == 0) and np.all(d.indistinct(ch.SE_K))
    checks = ch.claim_checks({"r": (a, b)}, n_boot=200)
    vs = checks[checks["key"].isin(["g_vs_j2k", "r_vs_j2k", "r_rise_vs_j2k"])]
    assert len(vs) == 6 and set(vs["verdict"]) == {"inconclusive"}
    assert all("every difference is 0" in n for n in vs["note"])
    diff = ch.difference_table({"r": (a, b)}, n_boot=200)
    assert (diff["cells beyond 2 SE"] == 0).all() and (diff["mean"] == 0).all()
    floor = ch.noise_floor(a, b)
    assert math.isnan(floor["corr_G"]) and floor["distinct_G"] == 0.0  # no difference at all
    assert floor["cell_se_G"] == floor["band_se_R"] == 0.0
    assert floor["corr_nic_G"] == floor["corr_j2k_G"] > 0.9  # the radial signal repeats
    assert floor["rate_jitter_nic"] == pytest.approx(0.0, abs=1e-12)  # constant payloads


def test_difference_greys_noise_and_keeps_a_known_effect() -> None:
    images, draws = 8, 3
    nic = synthetic(8, 64, lambda r: 30.0 - 0.3 * r, images=images, draws=draws, noise=0.02)
    j2k = synthetic(8, 64, lambda r: 30.0, images=images, draws=draws, noise=0.02, seed=9)
    a, b = maps_of(nic, label="NIC"), maps_of(j2k, label="JPEG2000")
    d = ch.difference(a, b, "G", "drop")
    grey = d.indistinct(ch.SE_K)
    floor = ch.noise_floor(a, b, "drop")
    assert floor["corr_G"] > 0.9 and floor["distinct_G"] > 0.8  # the effect repeats every draw
    rho = ch.map_frequency(8, 64) * 64
    assert not grey[rho >= 2].any()  # 0.6 dB and more against a noise of 0.02 dB
    assert grey[rho == 0].all()  # the DC cell has no effect
    checks = ch.claim_checks({"r": (a, b)}, n_boot=500).set_index(["key", "metric"])
    assert checks.loc[("g_nic", "drop"), "verdict"] == "reproduced"  # NIC's G drop rises
    assert checks.loc[("g_vs_j2k", "drop"), "verdict"] == "reproduced"
    assert checks.loc[("g_nic", "drop"), "n_images"] == images
    assert checks.loc[("g_nic", "drop"), "n"] == images * draws
    # R: the same rise, so NIC passes on *more* at the top band: contradicted (direction -1)
    assert checks.loc[("r_vs_j2k", "drop"), "verdict"] == "contradicted"
    assert checks.loc[("r_rise_vs_j2k", "drop"), "verdict"] == "contradicted"
    few = ch.claim_checks({"r": (maps_of(synthetic(8, 64, lambda r: 30.0 - r, images=3)),
                                 maps_of(synthetic(8, 64, lambda r: 30.0, images=3)))},
                          n_boot=200)  # fmt: skip
    assert set(few["verdict"]) == {"inconclusive"}  # fewer than MIN_IMAGES images
    fig = ch.plot_differences({"r": (a, b)}, "drop")
    shown = fig.axes[0].get_images()[0].get_array()
    assert np.ma.is_masked(shown) and shown.mask[3, 3]  # the greyed DC cell is masked
    lo, hi = fig.axes[0].get_images()[0].get_clim()
    assert lo == -hi  # diverging colours about zero
    import matplotlib.pyplot as plt

    plt.close("all")


def test_pruned_claim_and_combined_verdicts() -> None:
    dense = synthetic(8, 64, lambda r: 30.0, images=6, draws=2, noise=0.02)
    pruned = synthetic(8, 64, lambda r: 30.0 + 0.2 * r, images=6, draws=2, noise=0.02, seed=4)
    j2k = synthetic(8, 64, lambda r: 30.0, images=6, draws=2, noise=0.02, seed=5)
    base, p = maps_of(dense), maps_of(pruned)
    checks = ch.claim_checks({"r": (base, maps_of(j2k))}, {"pruned95": p, "msssim": p}, base,
                             metrics=("drop",), n_boot=300)  # fmt: skip
    row = checks[checks["key"] == "pruned"]
    assert len(row) == 1 and row.iloc[0]["verdict"] == "reproduced"  # passes on less at the top
    assert ch.combined_verdicts(checks, "drop")["pruned"] == "reproduced"
    assert ch.combined_verdicts(checks, "share")["pruned"] == "not testable here"
    assert ch.combined_verdicts(checks.iloc[0:0])["g_nic"] == "not testable here"


def test_radial_profile_follows_radius() -> None:
    maps = maps_of(synthetic(16, 128, lambda r: 40.0 - r, images=3), psnr=40.0)
    f, est, counts = ch.radial_profile(maps, "G", "drop")
    assert counts.sum() == 15 * 15 and counts[0] == 1
    np.testing.assert_allclose(f * 128, np.arange(len(f)))
    assert est.mean[0] == 0.0 and np.all(np.abs(est.mean - f * 128) < 0.5)
    assert np.all(np.diff(est.mean) > 0) and np.allclose(est.se, 0.0, atol=1e-12)


def test_plot_maps_share_scale_per_row() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo = maps_of(synthetic(8, 64, lambda r: 20.0 + r)).draws.mean_map("psnr_perturbed")
    hi = maps_of(synthetic(8, 64, lambda r: 30.0 + 2 * r)).draws.mean_map("psnr_perturbed")
    rho = ch.map_frequency(8, 64) * 64
    nan = np.where(rho > 2, np.nan, 25.0 + rho)
    fig = ch.plot_maps({"row1": {"A": lo, "B": hi}, "row2": {"A": nan}}, 64)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 3
    assert images[0].get_clim() == images[1].get_clim()
    assert images[0].get_clim() == pytest.approx((20.0, float(hi.max())))
    assert images[2].get_clim() == pytest.approx((25.0, 27.0))  # NaN entries ignored
    assert images[0].get_extent()[1] == pytest.approx(3.5 / 64)  # axes in cycles/px
    fig2 = ch.plot_maps({"r": {"A": np.ones((7, 7)), "B": np.zeros((7, 7))}}, 64, unit="x")
    assert fig2.axes[0].get_images()[0].get_clim() == (0.0, 1.0)
    with pytest.raises(UsageError):
        ch.plot_maps({}, 64)
    a = maps_of(synthetic(8, 64, lambda r: 20.0 + r, images=3))
    b = maps_of(synthetic(8, 64, lambda r: 30.0 + r, images=3))
    prof = ch.plot_radial_profiles({"A: x": a, "A: y": b})
    first, second = prof.axes[0].get_lines()[:2]
    assert first.get_color() == second.get_color()
    assert first.get_linestyle() != second.get_linestyle()
    assert fig.axes[0].get_ylabel().startswith("row1\n")
    plt.close("all")


# --- chapter 3b on real codecs ------------------------------------------------------------------
def test_clean_baseline_matches_direct_compression(tmp_path: Path) -> None:
    from nicspec_utils.codecs import get_codec
    from nicspec_utils.data import get_dataset
    from nicspec_utils.metrics import psnr

    base = ch.clean_baseline("jpeg2000", "kodak", 64, limit=2, bpp=1.0, cache_dir=tmp_path)
    ds = get_dataset("kodak").select(None, 2)
    crops = [fh.centre_crop(ds.load(i), 64) for i in ds.image_ids]
    done = [get_codec("jpeg2000", bpp=1.0).compress(c) for c in crops]
    psnrs = [psnr(d.reconstruction, c) for d, c in zip(done, crops, strict=True)]
    np.testing.assert_allclose(base.psnrs, psnrs)
    assert base.bpp == pytest.approx(np.mean([d.bpp for d in done]))
    assert base.payload_bpp == pytest.approx(np.mean([fh.payload_bits(d) for d in done]) / 64**2)
    assert base.payload_bpp < base.bpp


def test_rate_matched_pair_matches_payloads(tmp_path: Path) -> None:
    ids = ["kodim01"]
    nic, j2k, match = ch.rate_matched_pair("sh-mse-0.0067", "kodak", ids, 4, 64, 1.0, draws=2,
                                           cache_dir=tmp_path)  # fmt: skip
    assert (nic.label, j2k.label) == ("NIC", "JPEG2000")
    assert nic.draws.seeds == j2k.draws.seeds == [0, 1]
    assert abs(match.mismatch) <= 0.05  # JPEG2000's payload lands near the NIC's
    assert match.j2k_header_bytes > 100 and 0 < match.header_share < 1
    # the whole JPEG2000 file is the payload plus the header
    hdr_bpp = 8 * match.j2k_header_bytes / 64**2
    assert match.j2k_total_bpp == pytest.approx(match.j2k_payload_bpp + hdr_bpp)
    assert j2k.draws.config["codec"]["quality"] == pytest.approx(24 / match.j2k_setting_bpp)
    assert match.nic_payload_bpp == pytest.approx(nic.baseline.payload_bpp)
    assert match.nic_estimate_bpp != match.nic_payload_bpp  # coded for real, not estimated
    assert nic.eps == 1.0 and nic.draws.timing["computed"] == 24
    assert ch.rate_jitter(j2k) > 0  # its payload moves with the perturbation
    table = ch.rate_table({"m": match}, {"m": (nic, j2k)}, ["medium"])
    assert table.loc[0, "rate"] == "medium" and table.loc[0, "JPEG2000 header (bytes)"] > 100
    assert table.loc[0, "NIC PSNR clean (dB)"] == pytest.approx(nic.baseline.psnr)
    band = ch.band_table([({"codec": "NIC"}, nic)], n_boot=100)
    assert set(band["measure"]) == {"G", "R"} and np.isfinite(band["mean"]).all()


# --- per-image settings and PSNR matching --------------------------------------------------------
def test_per_image_settings_code_each_image_at_its_own(tmp_path: Path) -> None:
    from nicspec_utils.codecs import get_codec
    from nicspec_utils.data import get_dataset
    from nicspec_utils.metrics import psnr

    ds = get_dataset("kodak").select(None, 2)
    ids = ds.image_ids
    settings = {ids[0]: 12.0, ids[1]: 60.0}
    kw = {"grid": 4, "crop": 32, "images": ids, "progress": False, "cache_dir": tmp_path}
    r = heatmap("jpeg2000", "kodak", settings=settings, **kw)
    assert r.config["codec"]["quality"] == [12.0, 60.0]
    assert r.config["codec"]["rate_control"] == "per-image setting"
    crops = np.stack([fh.centre_crop(ds.load(i), 32) for i in ids])
    inputs = fh.perturbed_inputs(crops, 1, 1, 4, 4.0, 0)  # table entry (1, 1)
    for k, i in enumerate(ids):
        done = get_codec("jpeg2000", quality=settings[i]).compress(inputs[k])
        assert r.images["psnr_perturbed"][k, 1, 1] == pytest.approx(psnr(done.reconstruction,
                                                                          inputs[k]))  # fmt: skip
        assert r.images["bpp"][k, 1, 1] == pytest.approx(done.bpp)
    same = heatmap("jpeg2000", "kodak", quality=12.0, **kw)
    assert same.key != r.key
    np.testing.assert_array_equal(same.images["bpp"][0], r.images["bpp"][0])  # image 0 alike
    assert np.all(same.images["bpp"][1] > r.images["bpp"][1])  # image 1 coded at ratio 60
    one = r.select([ids[1]])
    assert one.config["image_ids"] == [ids[1]] and one.images["bpp"].shape[0] == 1
    np.testing.assert_array_equal(one.table_bpp, r.images["bpp"][1])
    with pytest.raises(UsageError):
        r.select(["kodim99"])
    with pytest.raises(UsageError):
        heatmap("jpeg2000", "kodak", settings={ids[0]: 12.0}, **kw)  # an image lacks one
    with pytest.raises(UsageError):
        heatmap("jpeg2000", "kodak", settings=settings, quality=12.0, **kw)
    with pytest.raises(UsageError):
        heatmap("nic:sh-mse-0.0067", "kodak", settings=settings, **kw)
    with pytest.raises(UsageError):
        heatmap("jpeg2000", "kodak", settings={ids[0]: 12.0, ids[1]: 0.1}, **kw)  # out of range


def test_psnr_match_reports_and_drops_misses() -> None:
    m = ch.PsnrMatch(("a", "b", "c"), np.array([30.0, 31.0, 45.0]),
                     np.array([30.03, 30.96, 41.2]), np.array([20.0, 18.0, 1.0]),
                     np.array([20.0, 17.0, 1.0]), np.array([1.0, 0.4, 1.0]),
                     np.array([30.03, 30.8, 41.2]),
                     np.array([0.5, 0.6, 3.0]), np.array([0.3, 0.4, 4.0]),
                     np.array([0.6, 0.7, 4.3]))  # fmt: skip
    assert list(m.matched) == [True, True, False] and m.matched_ids == ["a", "b"]
    assert list(m.shared) == [False, True, False]
    assert m.nearest_gaps[1] == pytest.approx(-0.2)
    assert m.max_gap == pytest.approx(0.04)
    assert m.payload_ratio == pytest.approx(0.7 / 1.1)
    lines = m.misses()
    assert len(lines) == 1 and lines[0].startswith("c: target 45.00 dB, reached 41.20 dB")
    table = ch.psnr_table({"model": m}, ["high"])
    assert table.loc[0, "images matched"] == "2 of 3"
    assert table.loc[0, "largest |gap| (dB)"] == pytest.approx(0.04)
    assert ch.psnr_models("all", ["x", "y"]) == ["x", "y"] and ch.psnr_models("none", ["x"]) == []
    assert ch.psnr_models("y", ["x", "y"]) == ["y"]
    with pytest.raises(UsageError):
        ch.psnr_models("z", ["x", "y"])


def test_time_share_hits_the_target_mse() -> None:
    w = ch.share_weight(30.0, 31.0, 30.4)
    assert 0 < w < 1
    assert ch.mix_psnr(30.0, 31.0, w) == pytest.approx(30.4)
    assert ch.share_weight(30.0, 30.0, 30.0) == 1.0 and ch.mix_psnr(30.0, 31.0, 1.0) == 30.0
    assert ch.share_weight(30.0, 31.0, 29.0) == 1.0  # clipped to the bracket
    assert ch.mix_psnr(math.inf, math.inf, 0.5) == math.inf  # lossless on both sides
    a = maps_of(synthetic(8, 64, lambda r: 30.0, images=3, draws=2), psnr=30.0, label="J")
    b = maps_of(synthetic(8, 64, lambda r: 32.0, images=3, draws=2), psnr=32.0, label="J")
    ids = a.image_ids
    mixed = ch.mix_maps(a, b.select(ids[1:2]), {ids[0]: 1.0, ids[1]: 0.5, ids[2]: 1.0})
    assert mixed.image_ids == ids and mixed.draws.seeds == a.draws.seeds
    np.testing.assert_allclose(mixed.baseline.psnrs, [30.0, ch.mix_psnr(30.0, 32.0, 0.5), 30.0])
    g = mixed.draws.image_maps("psnr_perturbed")
    np.testing.assert_allclose(g[1], ch.mix_psnr(30.0, 32.0, 0.5))
    np.testing.assert_allclose(g[[0, 2]], 30.0)
    np.testing.assert_allclose(mixed.draws.image_maps("bpp")[1], 0.5)  # bpp mixes linearly
    # the excess share of a time-share is the weighted mean of the two codings' excess MSEs
    np.testing.assert_allclose(
        mixed.values("R")[1], 0.5 * a.values("R")[1] + 0.5 * b.values("R")[1]
    )
    assert ch.mix_maps(a, None, dict.fromkeys(ids, 1.0)) is a
    with pytest.raises(UsageError):
        ch.mix_maps(a, None, {ids[0]: 0.5, ids[1]: 1.0, ids[2]: 1.0})


def test_both_matchings_in_the_findings_table() -> None:
    from nicspec_utils.findings import findings_table
    from nicspec_utils.ledger import normalise

    images, draws = 8, 2
    nic = maps_of(synthetic(8, 64, lambda r: 30.0 - 0.3 * r, images=images, draws=draws,
                            noise=0.02), label="NIC")  # fmt: skip
    j2k_bits = maps_of(synthetic(8, 64, lambda r: 30.0, images=images, draws=draws, noise=0.02,
                                 seed=9), label="JPEG2000")  # fmt: skip
    # at equal PSNR JPEG2000 behaves like the NIC: the effect is gone there
    j2k_psnr = maps_of(nic.draws, label="JPEG2000")
    bits = ch.claim_checks({"r": (nic, j2k_bits)}, metrics=("drop",), n_boot=300)
    same = ch.claim_checks({"r": (nic, j2k_psnr)}, metrics=("drop",), n_boot=300,
                           matching=ch.PSNR)  # fmt: skip
    both = pd.concat([bits, same], ignore_index=True)
    table = findings_table(both)
    assert set(table["JPEG2000 matched in"]) == {ch.BPP, ch.PSNR}
    assert set(normalise(table)["matching"]) == {"payload bpp", "psnr"}
    vs = ch.matching_table(both, "drop").set_index("claim")
    assert len(vs) == 4  # g_nic, g_vs_j2k, r_vs_j2k, r_rise_vs_j2k under both
    row = vs.loc["3b G (NIC vs JPEG2000)"]
    assert row[f"verdict ({ch.BPP})"] == "reproduced"
    assert row[f"verdict ({ch.PSNR})"] == "inconclusive" and not row["agree"]
    assert vs.loc["3b G (NIC)", "agree"]  # NIC alone: the same under both
    lines = ch.disagreements(ch.matching_table(both, "drop"))
    assert len(lines) == 3 and all("at equal clean PSNR" in line for line in lines)
    text = ch.matching_sentence(ch.matching_table(both, "drop"), "PSNR drops")
    assert "same verdict on 1 of 4 checks" in text and text.count("\n- ") == 3
    assert "No check" in ch.matching_sentence(ch.matching_table(bits, "drop"), "PSNR drops")
    assert ch.combined_verdicts(both, "drop", ch.PSNR)["g_vs_j2k"] == "inconclusive"
    assert ch.combined_verdicts(both, "drop", ch.BPP)["g_vs_j2k"] == "reproduced"
    with pytest.raises(UsageError):
        ch.claim_checks({"r": (nic, j2k_psnr)}, matching="bits")
    diff = ch.difference_table({"r": (nic, j2k_psnr)}, "drop", n_boot=100, matching=ch.PSNR)
    assert set(diff["matching"]) == {ch.PSNR} and (diff["mean"] == 0).all()


def test_pruned_against_jpeg2000_under_a_matching() -> None:
    kw = {"images": 6, "draws": 2, "noise": 0.02}
    dense = maps_of(synthetic(8, 64, lambda r: 30.0, **kw))
    pruned = maps_of(synthetic(8, 64, lambda r: 30.0 + 0.2 * r, seed=4, **kw))
    j2k = maps_of(synthetic(8, 64, lambda r: 30.0, seed=5, **kw))
    sticks = {"dense": (dense, j2k), "pruned95": (pruned, j2k)}
    checks = ch.claim_checks({}, {"pruned95": pruned}, dense, metrics=("drop",), n_boot=300,
                             matching=ch.PSNR, yardsticks=sticks, base_model="dense")  # fmt: skip
    by = checks.set_index("key")
    assert by.loc["pruned", "matching"] == ch.UNMATCHED  # NIC against NIC: no JPEG2000
    assert by.loc["pruned_vs_j2k", "matching"] == ch.PSNR
    assert by.loc["pruned_vs_j2k", "verdict"] == "reproduced"  # passes on less at the top
    # the pruned pair on fewer images: the check runs on the images both pairs hold
    few = {"dense": sticks["dense"], "pruned95": (pruned.select(pruned.image_ids[:5]), j2k)}
    row = ch.claim_checks({}, metrics=("drop",), n_boot=100, yardsticks=few, base_model="dense")
    assert row.iloc[0]["n_images"] == 5


def test_psnr_matched_pair_is_within_tolerance(tmp_path: Path) -> None:
    ids = ["kodim01", "kodim02"]
    kw = {"cache_dir": tmp_path, "progress": False}
    nic, _, _ = ch.rate_matched_pair("sh-mse-0.0067", "kodak", ids, 4, 64, 1.0, draws=2, **kw)
    a, j2k, match = ch.psnr_matched_pair(nic, "kodak", **kw)
    assert match.matched_ids == ids and match.misses() == []
    # the clean PSNRs of the JPEG2000 heat maps (the engine's, time-shared where needed)
    gaps = j2k.baseline.psnrs - nic.baseline.psnrs
    assert np.all(np.abs(gaps) <= ch.PSNR_TOL) and match.max_gap <= ch.PSNR_TOL
    assert a.image_ids == j2k.image_ids == ids and j2k.draws.seeds == nic.draws.seeds
    found = ch.j2k_psnr_settings("kodak", ids, 64, list(nic.baseline.psnrs), cache_dir=tmp_path)
    for i, target in zip(ids, nic.baseline.psnrs, strict=True):
        f = found[i]
        if f["w"] < 1:  # two ratios either side of the target, none within the tolerance
            assert f["psnr_a"] < target < f["psnr_b"] and f["a"] > f["b"]
            assert abs(f["nearest"] - target) > ch.PSNR_TOL
        else:
            assert abs(f["psnr_a"] - target) <= ch.PSNR_TOL and f["a"] == f["b"]
    direct = ch.clean_baseline("jpeg2000", "kodak", 64, ids, cache_dir=tmp_path,
                               settings={i: found[i]["a"] for i in ids})  # fmt: skip
    np.testing.assert_allclose(direct.psnrs, [found[i]["psnr_a"] for i in ids])
    again = ch.psnr_matched_pair(nic, "kodak", **kw)[1]
    assert again.draws.timing["computed"] == 0  # cached per basis under their own keys
    assert len(list((tmp_path / "psnr_settings").glob("*.json"))) == 1
