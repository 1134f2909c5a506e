"""Chapter 3's study helpers: band-share tables, verdict logic, one tiny real run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nicspec_utils.chapters.spectral_analysis import claims, plots, settings, study, widgets
from nicspec_utils.engines.evaluate import Point, run_point
from nicspec_utils.errors import UsageError
from nicspec_utils.findings import verdict
from nicspec_utils.spectral import BAND_NAMES, radial_frequency


def band_spectrum(band: str, shape: tuple[int, int] = (64, 96)) -> np.ndarray:
    """A synthetic magnitude spectrum with energy only in one band (DC set too, to be ignored)."""
    rho = radial_frequency(shape)
    masks = {"low": (rho > 0) & (rho < 1 / 32), "medium": (rho >= 1 / 32) & (rho < 1 / 3)}
    masks["high"] = rho >= 1 / 3
    spec = masks[band].astype(np.float64)
    spec[shape[0] // 2, shape[1] // 2] = 100.0
    return spec


def point(spectra: dict[str, np.ndarray], **metrics: float) -> Point:
    """A Point with synthetic spectra."""
    return Point({"bpp": 0.5, **metrics}, spectra)


def test_shares_sum_to_one_and_pick_the_band() -> None:
    for band in BAND_NAMES:
        shares = study.shares(band_spectrum(band))
        assert sum(shares.values()) == pytest.approx(1.0)
        assert shares[band] == pytest.approx(1.0)
    mixed = band_spectrum("low") + 2 * band_spectrum("high")
    assert sum(study.shares(mixed).values()) == pytest.approx(1.0)


def test_share_table_shape_and_energy() -> None:
    rows = [
        {"model": "m", "codec": c, "point": point({"D": band_spectrum(b)})}
        for c, b in (("NIC", "high"), ("JPEG2000", "medium"))
    ]
    table = study.share_table(rows, "D")
    assert list(table.columns) == ["model", "codec", *BAND_NAMES, "energy"]
    assert table.shape == (2, 6)
    np.testing.assert_allclose(table[list(BAND_NAMES)].sum(axis=1), 1.0)
    assert (table["energy"] > 0).all()
    assert table["energy"].iloc[0] == study.energy(band_spectrum("high"))  # DC excluded


def test_tv_distance() -> None:
    a = {"low": 1.0, "medium": 0.0, "high": 0.0}
    b = {"low": 0.0, "medium": 0.0, "high": 1.0}
    assert study.tv_distance(a, a) == 0.0
    assert study.tv_distance(a, b) == 1.0


def test_verdict_words() -> None:
    assert verdict([]) == "not testable here"
    assert verdict([True, True]) == "reproduced"
    assert verdict([True, False]) == "partly reproduced"
    assert verdict([False]) == "not reproduced"


def test_claim1() -> None:
    table = pd.DataFrame(
        [
            {"model": "a", "codec": "NIC", "high": 0.6},
            {"model": "a", "codec": "JPEG2000", "high": 0.4},
            {"model": "b", "codec": "NIC", "high": 0.3},
            {"model": "b", "codec": "JPEG2000", "high": 0.5},
        ]
    )
    assert claims.claim1_checks(table) == [True, False]


def corrupted_table(values: dict[tuple[str, str], float], column: str) -> pd.DataFrame:
    """Rows of (corruption, codec) -> value for one model; groups from the corruption names."""
    groups = {"fog": "low", "defocus_blur": "medium", "gaussian_noise": "high"}
    return pd.DataFrame(
        [
            {"model": "m", "corruption": c, "group": groups[c], "codec": k, column: v}
            for (c, k), v in values.items()
        ]
    )


def test_claim2_compares_gaps_by_group() -> None:
    good = {
        ("fog", "NIC"): 30.0, ("fog", "JPEG2000"): 29.0,
        ("gaussian_noise", "NIC"): 15.0, ("gaussian_noise", "JPEG2000"): 17.0,
    }  # fmt: skip
    assert claims.claim2_checks(corrupted_table(good, "psnr")) == [True]
    bad = {**good, ("gaussian_noise", "NIC"): 20.0}
    assert claims.claim2_checks(corrupted_table(bad, "psnr")) == [False]
    only_high = {k: v for k, v in good.items() if k[0] == "gaussian_noise"}
    assert claims.claim2_checks(corrupted_table(only_high, "psnr")) == []


def test_claim3_checks_high_corruptions_only() -> None:
    values = {
        ("fog", "NIC"): 9.0, ("fog", "JPEG2000"): 1.0,
        ("gaussian_noise", "NIC"): 1.0, ("gaussian_noise", "JPEG2000"): 2.0,
    }  # fmt: skip
    assert claims.claim3_checks(corrupted_table(values, "energy")) == [True]


def test_plots_run() -> None:
    import matplotlib

    matplotlib.use("Agg")
    spectra = {b: band_spectrum(b) + 0.01 for b in BAND_NAMES}
    assert plots.plot_maps(spectra, title="t") is not None
    assert plots.plot_profiles(spectra, title="t") is not None


def test_claim1_table_per_dataset() -> None:
    table = pd.DataFrame(
        [
            {"dataset": d, "model": "a", "codec": c, "bpp": 0.3, "high": h}
            for d, c, h in (
                ("kodak", "NIC", 0.6), ("kodak", "JPEG2000", 0.4),
                ("clic", "NIC", 0.2), ("clic", "JPEG2000", 0.5),
            )
        ]
    )  # fmt: skip
    t = claims.claim1_table(table)
    assert list(t["dataset"]) == ["kodak", "clic"]
    assert list(t["holds"]) == [True, False]
    np.testing.assert_allclose(t["high gap"], [0.2, -0.3])
    assert claims.claim1_checks(table) == [True, False]


def test_claim2_table_group_means() -> None:
    values = {
        ("fog", "NIC"): 30.0, ("fog", "JPEG2000"): 29.0,
        ("defocus_blur", "NIC"): 28.0, ("defocus_blur", "JPEG2000"): 29.0,
        ("gaussian_noise", "NIC"): 15.0, ("gaussian_noise", "JPEG2000"): 16.0,
    }  # fmt: skip
    t = claims.claim2_table(corrupted_table(values, "psnr"))
    row = t.iloc[0]
    assert row["low gap"] == pytest.approx(1.0)
    assert row["medium gap"] == pytest.approx(-1.0)
    assert row["high gap"] == pytest.approx(-1.0)
    assert row["low/medium gap"] == pytest.approx(0.0)
    assert bool(row["holds"]) is True
    worse = {**values, ("gaussian_noise", "NIC"): 17.0}
    assert claims.claim2_checks(corrupted_table(worse, "psnr")) == [False]


def test_claim3_table_ratios() -> None:
    rows = []
    for name, group, e_nic, e_j2k in (
        ("fog", "low", 4.0, 2.0), ("gaussian_noise", "high", 1.0, 4.0)
    ):  # fmt: skip
        for codec, e in (("NIC", e_nic), ("JPEG2000", e_j2k)):
            rows.append({"model": "m", "corruption": name, "group": group, "codec": codec,
                         "energy": e, "low": 0.0, "medium": 0.5, "high": 0.5})  # fmt: skip
    t = claims.claim3_table(pd.DataFrame(rows))
    np.testing.assert_allclose(t["ratio"], [2.0, 0.25])
    np.testing.assert_allclose(t["high ratio"], [2.0, 0.25])
    assert list(t["holds"]) == [None, True]


def gr_point(g: np.ndarray, r: np.ndarray, bpp: float) -> Point:
    """A corrupted-input Point with synthetic G and R spectra."""
    return Point({"bpp": bpp, "psnr": 20.0, "psnr_wrt_clean": 18.0}, {"G": g, "R": r})


def trend_rows(r_scale_nic: float) -> list[dict]:
    """Rows of one model over two corruptions x two severities; NIC's G is twice JPEG2000's on
    the noise and equal on fog; NIC's R is ``r_scale_nic`` times JPEG2000's."""
    rows = []
    for name, group in (("fog", "low"), ("gaussian_noise", "high")):
        for sev in (1, 3):
            base = band_spectrum("high" if group == "high" else "low") * sev
            for codec in ("NIC", "JPEG2000"):
                g = base * (np.sqrt(2.0) if codec == "NIC" and group == "high" else 1.0)
                r = base * (np.sqrt(r_scale_nic) if codec == "NIC" else 1.0)
                rows.append({"dataset": "kodak", "model": "m", "codec": codec,
                             "corruption": name, "group": group, "severity": sev, "bpp": 0.4,
                             "psnr": 20.0, "psnr_wrt_clean": 18.0,
                             "point": gr_point(g, r, 0.4)})  # fmt: skip
    return rows


def test_trend_table_ratios_and_checks() -> None:
    trend = study.trend_table(trend_rows(0.5))
    assert set(trend["measure"]) == {"G", "R"}
    assert len(trend) == 2 * 8
    np.testing.assert_allclose(trend["high energy"], trend["high"] * trend["energy"])
    ratios = study.trend_ratios(trend)
    assert len(ratios) == 2 * 2 * 2  # corruption x severity x measure
    g = ratios[ratios["measure"] == "G"].set_index(["corruption", "severity"])["ratio"]
    assert g[("gaussian_noise", 3)] == pytest.approx(2.0)
    assert g[("fog", 1)] == pytest.approx(1.0)
    c2, c3 = claims.trend_checks(ratios)
    assert c2 == [True, True]
    assert c3 == [True, True]
    _, c3_bad = claims.trend_checks(study.trend_ratios(study.trend_table(trend_rows(2.0))))
    assert c3_bad == [False, False]


def test_interpolate_shares_in_log_bpp() -> None:
    ladder = pd.DataFrame([
        {"bpp": 0.1, "low": 0.2, "medium": 0.6, "high": 0.2},
        {"bpp": 0.4, "low": 0.0, "medium": 0.4, "high": 0.6},
    ])  # fmt: skip
    mid, inside = study.interpolate_shares(ladder, 0.2)  # halfway in log bpp
    assert inside
    assert mid["high"] == pytest.approx(0.4)
    assert sum(mid.values()) == pytest.approx(1.0)
    low, inside = study.interpolate_shares(ladder, 0.05)
    assert not inside
    assert low["high"] == pytest.approx(0.2)


def variant_rows() -> list[dict]:
    """Synthetic variant_study rows: base, a pruned and an MS-SSIM model, clean and noisy."""
    specs = {
        # model: (kind, bpp, D spectrum NIC, R scale vs JPEG2000 on noise)
        "base": ("base", 0.4, band_spectrum("high"), 0.5),
        "pruned": ("SH pruned 95% (MSE)", 0.5, band_spectrum("high"), 0.25),
        "msssim": ("SH (MS-SSIM)", 0.4, band_spectrum("low"), 1.0),
    }
    rows = []
    for model, (kind, bpp, d_nic, r_scale) in specs.items():
        for codec in ("NIC", "JPEG2000"):
            d = d_nic if codec == "NIC" else band_spectrum("medium")
            r = band_spectrum("high") * (np.sqrt(r_scale) if codec == "NIC" else 1.0)
            common = {"dataset": "kodak", "model": model, "codec": codec, "group": None,
                      "bpp": bpp, "psnr": 30.0, "kind": kind}  # fmt: skip
            rows.append(
                {
                    **common,
                    "corruption": None,
                    "severity": None,
                    "psnr_wrt_clean": None,
                    "point": point({"D": d}, bpp=bpp),
                }
            )
            rows.append({**common, "corruption": "gaussian_noise", "severity": 3,
                         "psnr_wrt_clean": 20.0,
                         "point": point({"G": r, "R": r}, bpp=bpp)})  # fmt: skip
    return rows


def test_variant_table_and_claim5() -> None:
    ladder = pd.DataFrame([{"bpp": 0.4, "low": 0.0, "medium": 0.0, "high": 1.0}])
    vt = study.variant_table(variant_rows(), "base", ladder)
    assert list(vt["model"]) == ["base", "pruned", "msssim"]
    v = vt.set_index("model")
    assert v.loc["pruned", "bpp vs base"] == pytest.approx(0.25)
    assert v.loc["base", "R high / JPEG2000"] == pytest.approx(0.5)
    assert v.loc["pruned", "R high / JPEG2000"] == pytest.approx(0.25)
    assert v.loc["msssim", "TV vs MSE at bpp"] == pytest.approx(1.0)
    assert v.loc["base", "TV vs base"] == 0.0
    c5 = claims.claim5_checks(vt, "base")
    assert list(c5["model"]) == ["pruned", "msssim"]
    assert list(c5["holds"]) == [True, True]
    # a pruned model that denoises less for its rate fails, whatever its raw energy
    rows = variant_rows()
    for r in rows:
        if r["model"] == "pruned" and r["codec"] == "NIC" and r["corruption"]:
            r["point"] = point({"G": band_spectrum("high"), "R": band_spectrum("high")})
    c5_bad = claims.claim5_checks(study.variant_table(rows, "base", ladder), "base")
    assert list(c5_bad["holds"]) == [False, True]


def test_parse_variant_and_label() -> None:
    assert settings.parse_variant("sh-vr-mse@0.01") == ("sh-vr-mse", 0.01)
    assert settings.parse_variant("sh-vr-mse", 0.0067) == ("sh-vr-mse", 0.0067)
    assert settings.parse_variant("nic:sh-pruned95-mse-0.0067", 0.0067) == (
        "sh-pruned95-mse-0.0067", None
    )  # fmt: skip
    with pytest.raises(UsageError):
        settings.parse_variant("sh-vr-mse")
    with pytest.raises(UsageError):
        settings.parse_variant("sh-msssim-14@0.1")
    assert settings.model_label("sh-vr-mse", 0.0067) == "sh-vr-mse λ=0.0067"
    assert settings.model_label("m") == "m"


def test_run_point_passes_the_vr_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    from nicspec_utils.engines import evaluate as ev

    seen = {}

    def fake(codec: str, dataset: str, **kw: object) -> str:
        seen.update(kw, codec=codec)
        raise RuntimeError("stop")

    monkeypatch.setattr(ev, "evaluate", fake)
    with pytest.raises(RuntimeError):
        run_point("nic:sh-vr-mse", "kodak", ["kodim01"], lmbda=0.0067, estimate=True)
    assert seen["codec_options"] == {"lmbda": 0.0067}
    assert seen["estimate"] is True and seen["bpp"] is None
    with pytest.raises(RuntimeError):
        run_point("jpeg2000", "kodak", ["kodim01"], bpp=0.3, estimate=True)
    assert seen["codec_options"] is None
    assert seen["estimate"] is False and seen["bpp"] == 0.3


def test_select_rows() -> None:
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "x"}]
    assert study.select(rows, b="x") == [rows[0], rows[2]]
    assert study.select(rows, a=[2, 3], b="x") == [rows[2]]


def test_block_mean_and_render_map() -> None:
    a = np.arange(16, dtype=float).reshape(4, 4)
    np.testing.assert_allclose(plots.block_mean(a, 2), [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_allclose(plots.block_mean(a, 1), a)
    from io import BytesIO

    from PIL import Image

    spec = band_spectrum("medium", (64, 96)) + 0.1
    png = plots.render_map(spec, 0.1, 1.0, block=4, levels=16)
    img = Image.open(BytesIO(png))
    assert img.size == (24, 16) and img.mode == "P"
    assert len(set(np.asarray(img).ravel())) <= 16
    assert plots.colour_range([spec]) == (pytest.approx(0.1), pytest.approx(1.1))


def browser_rows() -> list[dict]:
    """Clean rows on two datasets and corrupted rows at two severities."""
    rows = []
    for ds in ("kodak", "clic2025-val"):
        for codec in ("NIC", "JPEG2000"):
            rows.append({"dataset": ds, "model": "m", "codec": codec, "corruption": None,
                         "group": None, "severity": None, "bpp": 0.3, "psnr": 30.0,
                         "psnr_wrt_clean": None,
                         "point": point({"D": band_spectrum("high") + 0.01})})  # fmt: skip
    return rows + trend_rows(0.5)


def test_browser_panels_and_widget() -> None:
    b = widgets.browser_panels(browser_rows(), block=4)
    assert b.conditions == [
        ("kodak", None), ("clic2025-val", None), ("kodak", "fog"), ("kodak", "gaussian_noise")
    ]  # fmt: skip
    assert b.severities == [1, 3]
    assert set(b.scales) == {"D", "G", "R"}
    clean = b.panel("kodak", None, 3, "m", "NIC")
    assert clean is not None and clean["measures"] == ["D"]  # severity ignored when clean
    noisy = b.panel("kodak", "gaussian_noise", 3, "m", "JPEG2000")
    assert noisy is not None and noisy["measures"] == ["G", "R"]
    assert "JPEG2000 at the bpp of m" in noisy["caption"]
    assert b.panel("kodak", "fog", 5, "m", "NIC") is None
    assert len(b.panels) == 4 + 8
    assert b.nbytes > 0
    assert b.fmt == "webp" and noisy["image"][8:12] == b"WEBP"  # a quarter of the PNG's bytes
    png = widgets.browser_panels(browser_rows(), block=4, fmt="png")
    assert png.panels[next(iter(png.panels))]["image"][:4] == b"\x89PNG"
    small = widgets.browser_panels(browser_rows(), block=2, max_bytes=1)
    assert small.block == 16  # re-rendered with coarser tiles until the cap
    pytest.importorskip("ipywidgets")
    import ipywidgets as w

    box = widgets.spectra_browser(b)
    pickers = box.children[1].children
    assert [len(p.options) for p in pickers] == [4, 2, 1, 2]
    top = box.children[2]
    assert isinstance(top, w.Stack) and len(top.children) == 4
    # a clean input has no severity and there is one model: its branch collapses to the stack
    # of its two codec cards (no stack of copies per severity)
    clean_branch = top.children[0]
    assert [type(c) for c in clean_branch.children] == [w.VBox, w.VBox]
    fog = top.children[2]
    assert isinstance(fog, w.Stack) and len(fog.children) == 2  # severities 1 and 3


def test_render_maps_side_by_side() -> None:
    from io import BytesIO

    from PIL import Image

    spec = band_spectrum("high", (64, 96)) + 0.1
    png = plots.render_maps([(spec, 0.1, 1.1), (spec, 0.1, 1.1)], block=4, gap=5)
    assert Image.open(BytesIO(png)).size == (24 + 5 + 24, 16)


def test_findings() -> None:
    table = claims.findings_table({"1": [True, False], "2": []})
    assert list(table["verdict"]) == ["partly reproduced", "not testable here"]
    assert list(table["passed"]) == [1, 0]
    c1 = pd.DataFrame([{"dataset": "kodak", "model": "m", "high NIC": 0.5,
                        "high JPEG2000": 0.4, "holds": True}])  # fmt: skip
    empty = pd.DataFrame()
    text = claims.findings_markdown(c1, empty, empty, empty, empty)
    assert text.startswith("- **Claim 1 (D).**") and "1 of 1" in text and "50 % vs 40 %" in text


def test_tiny_real_run(mirror: Path, tmp_path: Path) -> None:
    """JPEG2000 on one Kodak image, clean and corrupted: the keys chapter 3 reads are there."""
    clean = run_point("jpeg2000", "kodak", ["kodim01"], bpp=0.5, out=tmp_path)
    assert {"D", "D_rounded"} <= set(clean.spectra)
    assert clean.bpp == pytest.approx(0.5, rel=0.1)
    noisy = study.rate_matched_j2k(
        clean, "kodak", ["kodim01"], corruption="gaussian_noise", severity=1, out=tmp_path
    )
    assert {"G", "R", "C"} <= set(noisy.spectra)
    assert sum(study.shares(noisy.spectra["R"]).values()) == pytest.approx(1.0)


# --- verdicts with weight (#16): per-image paired effects ----------------------------------------
def _records(ids: list[str], high: np.ndarray, psnr: np.ndarray, bpp: float = 0.5) -> list[dict]:
    return [
        {"id": i, "bpp": bpp, "psnr": float(p), "psnr_wrt_clean": None,
         "bands": {m: {"low": 0.2, "medium": 0.8 - float(h), "high": float(h)}
                   for m in ("D", "D_rounded")}}
        for i, h, p in zip(ids, high, psnr, strict=True)
    ]  # fmt: skip


def d_rows(effect: float, n: int = 12, seed: int = 1, miss: int = 0) -> list[dict]:
    """Synthetic D rows of one model on ``n`` Kodak images: NIC's high-band share exceeds
    JPEG2000's by ``effect`` per image (plus paired noise); ``miss`` PSNR-matched images are
    off target."""
    rng = np.random.default_rng(seed)
    ids = [f"kodim{k:02d}" for k in range(1, n + 1)]
    base = 0.4 + 0.05 * rng.standard_normal(n)
    nic_high = base + effect + 0.02 * rng.standard_normal(n)
    psnr = 28 + rng.standard_normal(n)
    off = psnr.copy()
    off[:miss] += 1.0
    nic = Point({"bpp": 0.5, "per_image": _records(ids, nic_high, psnr)}, {})
    j2k = Point({"bpp": 0.5, "per_image": _records(ids, base, psnr + 0.5)}, {})
    jpsnr = Point({"bpp": 0.5, "per_image": _records(ids, base, off)}, {})
    common = {"dataset": "kodak", "model": "m", "corruption": None, "group": None,
              "severity": None}  # fmt: skip
    return [
        {**common, "codec": settings.NIC, "point": nic, settings.PSNR_KEY: jpsnr},
        {**common, "codec": settings.JPEG2000, "point": j2k},
    ]


def _claim1(checks: pd.DataFrame, matching: str = "bpp", rounding: str = "none") -> pd.Series:
    sel = checks[(checks["claim"] == "1") & (checks["matching"] == matching)
                 & (checks["rounding"] == rounding)]  # fmt: skip
    assert len(sel) == 1
    return sel.iloc[0]


def test_identical_inputs_are_inconclusive() -> None:
    rows = d_rows(0.0)
    rows[1]["point"] = rows[0]["point"]  # JPEG2000 = NIC: every paired difference is 0
    rows[0][settings.PSNR_KEY] = rows[0]["point"]
    checks = claims.claim_checks({"d": rows}, n_boot=200)
    for m in settings.MATCHINGS:
        for r in settings.ROUNDINGS:
            row = _claim1(checks, m, r)
            assert row["verdict"] == "inconclusive" and row["effect"] == 0.0
            assert row["n"] == 12 and row["n_images"] == 12


def test_known_effect_is_reproduced_and_reversed_contradicted() -> None:
    checks = claims.claim_checks({"d": d_rows(0.1)}, n_boot=500)
    row = _claim1(checks)
    assert row["verdict"] == "reproduced"
    assert row["effect"] == pytest.approx(0.1, abs=0.02) and row["ci_low"] > 0
    assert row["images_needed"] is not pd.NA and row["images_needed"] <= 12
    assert _claim1(checks, "psnr", "reference")["verdict"] == "reproduced"
    assert (
        _claim1(claims.claim_checks({"d": d_rows(-0.1)}, n_boot=500))["verdict"] == "contradicted"
    )
    # seeded: the same call gives the same interval
    again = _claim1(claims.claim_checks({"d": d_rows(0.1)}, n_boot=500))
    assert (again["ci_low"], again["ci_high"]) == (row["ci_low"], row["ci_high"])
    # claims without rows are not testable; the grid has one verdict per (matching, rounding)
    other = checks[~checks["claim"].isin(["1", "1 (JPEG2000)"])]
    assert set(other["verdict"]) == {"not testable here"}
    # claim 1's second half: no energies recorded (not testable), JPEG2000's own band split
    # (low 0.2 + medium 0.8 - h against high h ~ 0.4: above 0) is reproduced
    second = checks[checks["claim"] == "1 (JPEG2000)"]
    energy = second[second["measure"] == claims.CLAIM1_J2K.measure]
    assert set(energy["verdict"]) == {"not testable here"}
    assert set(second[second["measure"] == claims.CLAIM1_J2K_SPLIT.measure]["verdict"]) == {
        "reproduced"
    }
    grid = claims.verdict_grid(checks)
    assert list(grid.columns[:2]) == ["claim", "measure"]
    assert "matched psnr, rounded" in grid


def test_unmatched_psnr_images_are_left_out_and_reported() -> None:
    rows = d_rows(0.1, miss=3)
    checks = claims.claim_checks({"d": rows}, n_boot=200)
    assert _claim1(checks, "bpp")["n"] == 12
    assert _claim1(checks, "psnr")["n"] == 9
    lines = study.psnr_report(rows)
    assert len(lines) == 3 and lines[0].startswith("kodak m clean, kodim01: target")


def test_changes_markdown_names_old_and_new() -> None:
    checks = claims.claim_checks({"d": d_rows(0.1)}, n_boot=200)
    text = claims.changes_markdown(checks, claims.old_verdicts({"1": [True, False]}))
    assert "Claim 1: was **partly reproduced (1 of 2)** (point estimates), now **reproduced**" in (
        text
    )


def test_run_point_psnr_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    from nicspec_utils.engines import evaluate as ev

    seen = {}

    def fake(codec: str, dataset: str, **kw: object) -> str:
        seen.update(kw, codec=codec)
        raise RuntimeError("stop")

    monkeypatch.setattr(ev, "evaluate", fake)
    with pytest.raises(RuntimeError):
        run_point("jpeg2000", "kodak", ["kodim01"], target_psnr=[("kodim01", 30.0)])
    assert seen["codec_options"] == {"target_psnr": [["kodim01", 30.0]]} and seen["bpp"] is None
    with pytest.raises(RuntimeError):  # a placeholder's NaN: wait for the next round
        run_point("jpeg2000", "kodak", ["kodim01"], target_psnr=[("kodim01", math.nan)])
    assert seen["codec_options"] is None and math.isnan(seen["bpp"])


def d_rows_energy(log2_lm: float, j2k_high: float = 0.3, n: int = 12, zero: int = 0) -> list[dict]:
    """Synthetic D rows with per-image band energies: NIC's low+medium-band energy is JPEG2000's
    times ``2 ** log2_lm`` (plus paired noise), JPEG2000's high-band share is ``j2k_high``;
    ``zero`` images have no low/medium energy on the NIC side."""
    rng = np.random.default_rng(3)
    ids = [f"kodim{k:02d}" for k in range(1, n + 1)]
    lm = np.exp(rng.standard_normal(n))  # JPEG2000's low+medium energy, image by image
    ratio = 2.0 ** (log2_lm + 0.1 * rng.standard_normal(n))

    def recs(lm_energy: np.ndarray, high: float, zeros: int = 0) -> list[dict]:
        out = []
        for k, (i, e) in enumerate(zip(ids, lm_energy, strict=True)):
            e = 0.0 if k < zeros else float(e)
            bands = {"low": (1 - high) / 2, "medium": (1 - high) / 2, "high": high}
            energy = {"total": 2 * e + 1, "low": e / 2, "medium": e / 2, "high": 1.0}
            out.append({"id": i, "bpp": 0.5, "psnr": 30.0, "psnr_wrt_clean": None,
                        "bands": {"D": bands, "D_rounded": bands},
                        "energy": {"D": energy, "D_rounded": energy}})  # fmt: skip
        return out

    nic = Point({"bpp": 0.5, "per_image": recs(lm * ratio, 0.6, zero)}, {})
    j2k = Point({"bpp": 0.5, "per_image": recs(lm, j2k_high)}, {})
    common = {"dataset": "kodak", "model": "m", "corruption": None, "group": None,
              "severity": None}  # fmt: skip
    return [
        {**common, "codec": settings.NIC, "point": nic, settings.PSNR_KEY: j2k},
        {**common, "codec": settings.JPEG2000, "point": j2k},
    ]


def _second(checks: pd.DataFrame, spec, matching: str, rounding: str = "none") -> pd.Series:
    sel = checks[(checks["claim"] == spec.claim) & (checks["measure"] == spec.measure)
                 & (checks["matching"] == matching) & (checks["rounding"] == rounding)]  # fmt: skip
    assert len(sel) == 1
    return sel.iloc[0]


def test_claim1_second_half_jpeg2000_does_the_opposite() -> None:
    """Claim 1's second half: JPEG2000's low+medium D energy above NIC's (log2 ratio below 0),
    and JPEG2000's own D more at low/medium than at high frequencies; both matchings and
    roundings, verdicts from the interval."""
    specs = [(s, c) for s, c in claims.CLAIMS if c.claim == "1 (JPEG2000)"]
    assert [c for _, c in specs] == [claims.CLAIM1_J2K, claims.CLAIM1_J2K_SPLIT]
    checks = claims.claim_checks({"d": d_rows_energy(-1.0)}, n_boot=500)
    for m in settings.MATCHINGS:
        for r in settings.ROUNDINGS:
            row = _second(checks, claims.CLAIM1_J2K, m, r)
            assert row["verdict"] == "reproduced" and row["n_images"] == 12
            assert row["effect"] == pytest.approx(-1.0, abs=0.1) and row["ci_high"] < 0
            split = _second(checks, claims.CLAIM1_J2K_SPLIT, m, r)
            assert split["verdict"] == "reproduced"
            assert split["effect"] == pytest.approx(0.4)  # 0.7 at low/medium minus 0.3 at high
    # the opposite data: NIC's low/medium error the larger, JPEG2000's mostly at high frequencies
    rev = claims.claim_checks({"d": d_rows_energy(1.0, j2k_high=0.7)}, n_boot=500)
    assert _second(rev, claims.CLAIM1_J2K, "bpp")["verdict"] == "contradicted"
    assert _second(rev, claims.CLAIM1_J2K_SPLIT, "psnr")["verdict"] == "contradicted"
    # pairs without low/medium energy drop out, and the note says how many
    zero = claims.claim_checks({"d": d_rows_energy(-1.0, zero=2)}, n_boot=200)
    row = _second(zero, claims.CLAIM1_J2K, "bpp")
    assert row["n"] == 10 and "2 pair(s) without low/medium-band energy" in row["note"]
    text = claims.claim1_j2k_markdown(checks)
    assert text.count("\n- ") == 1 and "matched psnr, rounded: **reproduced** (-" in text
    assert "matched bpp, unrounded: **reproduced** (+0.4 [+0.4, +0.4]" in text
    assert claims.claim1_j2k_markdown(checks.iloc[0:0]).startswith("- Claim 1's second half")
    # published to the ledger with the rest: its rows are in the findings table
    from nicspec_utils.findings import findings_table

    table = findings_table(checks)
    assert (table["claim"] == "1 (JPEG2000)").sum() == 2 * 2 * 2


@pytest.fixture
def tiny_set(tmp_path: Path) -> str:
    """A one-image dataset: a 64x96 crop of kodim01 (or a smooth synthetic image)."""
    from nicspec_utils.io import write_png_atomic

    kodim = Path(__file__).resolve().parent.parent / "data" / "kodak" / "kodim01.png"
    if kodim.exists():
        from nicspec_utils.io import read_image

        img = read_image(kodim)[100:164, 200:296]
    else:
        y, x = np.mgrid[0:64, 0:96]
        img = np.stack([x * 2, y * 3, x + y], axis=-1).astype(np.uint8)
    folder = tmp_path / "tiny"
    write_png_atomic(folder / "img0.png", np.ascontiguousarray(img))
    return f"folder:{folder}"


def test_vtm_study_with_a_fake_vtm(fake_vtm: Path, tiny_set: str, tmp_path: Path) -> None:
    """D, G and R of VTM (a stub build that codes losslessly) against JPEG2000 at VTM's bpp."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="MS-SSIM needs")
        rows = study.vtm_study([37], tiny_set, ["img0"], ["gaussian_noise"], 2,
                               out=tmp_path / "r")  # fmt: skip
    assert [(r["codec"], r["corruption"]) for r in rows] == [
        (settings.VTM, None), (settings.JPEG2000, None),
        (settings.VTM, "gaussian_noise"), (settings.JPEG2000, "gaussian_noise"),
    ]  # fmt: skip
    vtm, j2k = rows[0]["point"], rows[1]["point"]
    # JPEG2000 asked for VTM's bpp (the stub's lossless rate is more than JPEG2000 spends)
    asked = j2k.metrics["config"]["codec"]["quality"]
    assert asked == pytest.approx(24.0 / round(vtm.bpp, 4)) and "D" in vtm.spectra
    assert {"G", "R"} <= set(rows[2]["point"].spectra)
    t = study.vtm_table(rows)
    assert list(t["measure"]) == ["D", "G", "R"] and set(t["model"]) == {"VTM QP 37"}
    assert {"high VTM", "high JPEG2000", "energy ratio"} <= set(t.columns)
    assert (t["energy ratio"] > 0).all() and t["high VTM"].between(0, 1).all()
    # R (reference: the clean image) holds the noise both codecs kept: nearly the same energy
    assert t.loc[t["measure"] == "R", "energy ratio"].iloc[0] == pytest.approx(1.0, rel=0.2)
    assert study.vtm_table([]).empty
