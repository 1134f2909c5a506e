"""Chapter 3's study helpers: band-share tables, verdict logic, one tiny real run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nicspec_utils import spectral_study as ss
from nicspec_utils.spectral import BAND_NAMES, radial_frequency


def band_spectrum(band: str, shape: tuple[int, int] = (64, 96)) -> np.ndarray:
    """A synthetic magnitude spectrum with energy only in one band (DC set too, to be ignored)."""
    rho = radial_frequency(shape)
    masks = {"low": (rho > 0) & (rho < 1 / 32), "medium": (rho >= 1 / 32) & (rho < 1 / 3)}
    masks["high"] = rho >= 1 / 3
    spec = masks[band].astype(np.float64)
    spec[shape[0] // 2, shape[1] // 2] = 100.0
    return spec


def point(spectra: dict[str, np.ndarray], **metrics: float) -> ss.Point:
    """A Point with synthetic spectra."""
    return ss.Point({"bpp": 0.5, **metrics}, spectra)


def test_shares_sum_to_one_and_pick_the_band() -> None:
    for band in BAND_NAMES:
        shares = ss.shares(band_spectrum(band))
        assert sum(shares.values()) == pytest.approx(1.0)
        assert shares[band] == pytest.approx(1.0)
    mixed = band_spectrum("low") + 2 * band_spectrum("high")
    assert sum(ss.shares(mixed).values()) == pytest.approx(1.0)


def test_share_table_shape_and_energy() -> None:
    rows = [
        {"model": "m", "codec": c, "point": point({"D": band_spectrum(b)})}
        for c, b in (("NIC", "high"), ("JPEG2000", "medium"))
    ]
    table = ss.share_table(rows, "D")
    assert list(table.columns) == ["model", "codec", *BAND_NAMES, "energy"]
    assert table.shape == (2, 6)
    np.testing.assert_allclose(table[list(BAND_NAMES)].sum(axis=1), 1.0)
    assert (table["energy"] > 0).all()
    assert table["energy"].iloc[0] == ss.energy(band_spectrum("high"))  # DC excluded


def test_tv_distance() -> None:
    a = {"low": 1.0, "medium": 0.0, "high": 0.0}
    b = {"low": 0.0, "medium": 0.0, "high": 1.0}
    assert ss.tv_distance(a, a) == 0.0
    assert ss.tv_distance(a, b) == 1.0


def test_verdict_words() -> None:
    assert ss.verdict([]) == "not testable here"
    assert ss.verdict([True, True]) == "reproduced"
    assert ss.verdict([True, False]) == "partly reproduced"
    assert ss.verdict([False]) == "not reproduced"


def test_claim1() -> None:
    table = pd.DataFrame(
        [
            {"model": "a", "codec": "NIC", "high": 0.6},
            {"model": "a", "codec": "JPEG2000", "high": 0.4},
            {"model": "b", "codec": "NIC", "high": 0.3},
            {"model": "b", "codec": "JPEG2000", "high": 0.5},
        ]
    )
    assert ss.claim1_checks(table) == [True, False]


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
    assert ss.claim2_checks(corrupted_table(good, "psnr")) == [True]
    bad = {**good, ("gaussian_noise", "NIC"): 20.0}
    assert ss.claim2_checks(corrupted_table(bad, "psnr")) == [False]
    only_high = {k: v for k, v in good.items() if k[0] == "gaussian_noise"}
    assert ss.claim2_checks(corrupted_table(only_high, "psnr")) == []


def test_claim3_checks_high_corruptions_only() -> None:
    values = {
        ("fog", "NIC"): 9.0, ("fog", "JPEG2000"): 1.0,
        ("gaussian_noise", "NIC"): 1.0, ("gaussian_noise", "JPEG2000"): 2.0,
    }  # fmt: skip
    assert ss.claim3_checks(corrupted_table(values, "energy")) == [True]


def test_plots_run() -> None:
    import matplotlib

    matplotlib.use("Agg")
    spectra = {b: band_spectrum(b) + 0.01 for b in BAND_NAMES}
    assert ss.plot_maps(spectra, title="t") is not None
    assert ss.plot_profiles(spectra, title="t") is not None


def test_tiny_real_run(mirror: Path, tmp_path: Path) -> None:
    """JPEG2000 on one Kodak image, clean and corrupted: the keys chapter 3 reads are there."""
    clean = ss.run_point("jpeg2000", "kodak", ["kodim01"], bpp=0.5, out=tmp_path)
    assert {"D", "D_rounded"} <= set(clean.spectra)
    assert clean.bpp == pytest.approx(0.5, rel=0.1)
    noisy = ss.rate_matched_j2k(
        clean, "kodak", ["kodim01"], corruption="gaussian_noise", severity=1, out=tmp_path
    )
    assert {"G", "R", "C"} <= set(noisy.spectra)
    assert sum(ss.shares(noisy.spectra["R"]).values()) == pytest.approx(1.0)
