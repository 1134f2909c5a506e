"""Chapter 4's theory: power laws, PCA of stationary processes, linear AE, low-pass, shifts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nicspec_utils.chapters.lowpass_theory import claims, study
from nicspec_utils.findings import verdict


@pytest.fixture(scope="module")
def field_images() -> list[np.ndarray]:
    """Eight 256x256 Gaussian fields with power spectrum rho**-2 (natural images' alpha)."""
    rng = np.random.default_rng(0)
    return [study.powerlaw_noise((256, 256), 2.0, rng) for _ in range(8)]


@pytest.fixture(scope="module")
def pca8(field_images: list[np.ndarray]) -> study.PCA:
    return study.patch_pca(study.sample_patches(field_images, 8, 1000, seed=0), 8)


def test_fit_power_law_exact() -> None:
    x = np.linspace(0.01, 0.5, 50)
    f = study.fit_power_law(x, 3.0 * x**-1.7)
    assert f.exponent == pytest.approx(1.7, abs=1e-9)
    assert f.amplitude == pytest.approx(3.0, rel=1e-9)
    assert f.r2 == pytest.approx(1.0)
    assert study.fit_power_law(x, 3.0 * x**-1.7, lo=0.1).lo >= 0.1


@pytest.mark.parametrize("alpha", [1.5, 2.0, 2.5])
def test_power_spectrum_recovers_alpha(alpha: float) -> None:
    rng = np.random.default_rng(1)
    profiles = []
    for _ in range(4):
        y = study.powerlaw_noise((256, 256), alpha, rng)
        profiles.append(study.image_power_profile(np.repeat(y[..., None], 3, axis=2), 256, 64))
    radius = (np.arange(64) + 0.5) * 0.5 / 64
    f = study.fit_power_law(radius, np.mean(profiles, axis=0), 0.01, 0.25)
    assert f.exponent == pytest.approx(alpha, abs=0.15)
    assert f.r2 > 0.98


def test_pca_eigenvalues_follow_half_the_spectral_exponent(pca8: study.PCA) -> None:
    # the n lowest frequencies fill a disc of area n, so lambda_n ~ S(sqrt(n)) ~ n**(-alpha/2)
    f = study.eigen_power_law(pca8.eigenvalues)
    assert f.exponent == pytest.approx(1.0, abs=0.25)
    assert f.r2 > 0.95
    assert np.all(np.diff(pca8.eigenvalues) <= 1e-12)


def test_components_of_periodic_stationary_process_are_fourier_modes() -> None:
    rng = np.random.default_rng(2)
    s = 8
    patches = np.stack([study.powerlaw_noise((s, s), 2.0, rng).ravel() for _ in range(4000)])
    c = study.fourier_closeness(study.patch_pca(patches, s).images(24))
    # circulant covariance: every component lives on one frequency magnitude
    assert c["ring_fraction"].min() > 0.9
    # and the order is by frequency (power falls with rho)
    assert study.spearman(c["rank"], c["radius"]) > 0.8


def test_windowed_stationary_components_are_low_frequency_first(pca8: study.PCA) -> None:
    c = study.fourier_closeness(pca8.images(32))
    assert c["centroid_radius"][0] < 0.01  # the first component is the patch mean (DC)
    assert study.spearman(c["rank"], c["centroid_radius"]) > 0.7
    assert c["ring_fraction"].median() > 0.6


def test_fourier_closeness_of_a_pure_cosine() -> None:
    yy, xx = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    wave = np.cos(2 * np.pi * (2 * yy + 3 * xx) / 16 + 0.4)
    half = np.cos(np.pi * (xx + 0.5) / 16)  # a DCT-like half cycle: off the DFT grid
    c = study.fourier_closeness(np.stack([wave, half]))
    assert c["pair_fraction"][0] == pytest.approx(1.0)
    assert c["radius"][0] == pytest.approx(np.hypot(2, 3) / 16)
    assert c["pair_fraction"][1] < 0.9 < c["sinusoid_fraction"][1]
    assert c["sinusoid_radius"][1] == pytest.approx(1 / 32)


def test_linear_ae_recovers_top_k_subspace() -> None:
    rng = np.random.default_rng(3)
    d, k = 16, 3
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = np.r_[3.0, 2.5, 2.0, 0.3 * np.ones(d - 3)]
    x = (rng.standard_normal((4000, d)) * scales) @ basis.T + 0.5
    pca = study.patch_pca(x, 4)
    ae = study.train_linear_ae(x, 4, k, steps=800, batch=128, lr=1e-2, seed=0)
    o = study.subspace_overlap(ae.decoder, pca.components[:k])
    assert o["overlap"] > 0.98
    assert o["max_angle"] < 10
    assert ae.final_mse == pytest.approx(pca.optimum_mse(k), rel=0.03)
    assert ae.losses[-1] < ae.losses[0]


def test_rank_k_projection_is_low_pass_with_cutoff_growing_with_k(pca8: study.PCA) -> None:
    cutoffs = []
    for k in (4, 16):
        r, g = study.radial_gain(*study.frequency_response(pca8.projection(k), 8), 8)
        assert g[0] == pytest.approx(1.0, abs=0.05)  # the patch mean passes
        assert g[r >= 1 / 3].mean() < 0.1  # high frequencies are stopped
        c = study.cutoff(r, g)
        # the isotropic disc guess is an upper bound of the right order (windowing leaks)
        assert 0.5 * study.predicted_cutoff(k, 8) < c < 1.1 * study.predicted_cutoff(k, 8)
        cutoffs.append(c)
    assert cutoffs[0] < cutoffs[1]
    # the identity passes everything: no cut-off
    r, g = study.radial_gain(*study.frequency_response(np.eye(64), 8), 8)
    assert np.allclose(g, 1.0) and np.isnan(study.cutoff(r, g))


def test_apply_patchwise_identity_and_full_rank(pca8: study.PCA) -> None:
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    out = study.apply_patchwise(img, pca8.projection(64), pca8.mean, 8)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.allclose(out, img / 255.0, atol=1e-5)


def _blocks(images: list[np.ndarray], s: int) -> np.ndarray:
    return np.concatenate(
        [im.reshape(im.shape[0] // s, s, -1, s).transpose(0, 2, 1, 3).reshape(-1, s * s)
         for im in images]
    )  # fmt: skip


def test_shift_prediction_high_frequency_is_filtered_low_passes(
    field_images: list[np.ndarray], pca8: study.PCA
) -> None:
    rng = np.random.default_rng(5)
    p = pca8.projection(8)
    clean = _blocks(field_images, 8)
    yy, xx = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    checker = 0.5 * (-1.0) ** (yy + xx)  # the Nyquist frequency: all high
    noise = rng.standard_normal(clean.shape) * 0.3  # white: mostly medium and high
    ramp = 0.5 + 0.3 * np.sin(2 * np.pi * yy / 256)  # a slow change of brightness: low
    high = study.shift_prediction(p, pca8.mean, clean, _blocks([checker] * 8, 8))
    white = study.shift_prediction(p, pca8.mean, clean, noise)
    low = study.shift_prediction(p, pca8.mean, clean, _blocks([ramp] * 8, 8))
    assert high["dR"] < 0.01 and high["dG"] > 0.99  # R stays at D, G grows by the shift
    assert high["mse_R"] == pytest.approx(high["mse_D"], rel=0.01)
    assert white["dR"] == pytest.approx(8 / 64, abs=0.01)  # white: k of d directions pass
    assert low["dR"] > 0.95 and low["dG"] < 0.05  # G stays at D, R grows
    # the measured errors of the patch-wise projection agree with the prediction
    img = np.stack([field_images[0]] * 3, axis=2) * 0.1 + 0.5
    bad = img + checker[..., None] * 0.1
    rec = study.apply_patchwise(bad, p, pca8.mean, 8).astype(np.float64)
    pred = study.shift_prediction(
        p, pca8.mean, study._channel_blocks(img, 8), study._channel_blocks(bad - img, 8)
    )
    assert ((rec - img) ** 2).mean() == pytest.approx(pred["mse_R"], rel=0.05)
    assert ((rec - bad) ** 2).mean() == pytest.approx(pred["mse_G"], rel=0.05)


def test_shift_checks_and_verdict() -> None:
    rows = [
        ("a", "fog", "low", 0.1, 0.9),
        ("a", "defocus_blur", "medium", 0.5, 0.5),
        ("a", "gaussian_noise", "high", 0.9, 0.1),
        ("b", "fog", "low", 0.9, 0.1),
        ("b", "gaussian_noise", "high", 0.9, 0.1),
    ]
    table = pd.DataFrame(rows, columns=["model", "corruption", "group", "dG", "dR"])
    checks = claims.shift_checks(table)
    assert checks["a"] == [True, True, True]
    assert checks["b"] == [True, False, False]
    assert verdict(checks["a"]) == "reproduced"
    assert verdict(checks["b"]) == "partly reproduced"


def test_cached_arrays_compute_once(tmp_path) -> None:
    calls = []

    def compute() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"x": np.arange(3)}

    a = study._cached_arrays("demo", {"n": 3}, compute, tmp_path)
    b = study._cached_arrays("demo", {"n": 3}, compute, tmp_path)
    assert len(calls) == 1 and np.array_equal(a["x"], b["x"])
    study._cached_arrays("demo", {"n": 4}, compute, tmp_path)
    assert len(calls) == 2


# --- claim 4 and the shift prediction in the one statistical model (#16) -----------------------


class _FieldTraining:
    """A stand-in for :class:`study.TrainingSet`: the Gaussian fields, four per 'dataset'."""

    seed = 0

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = images

    def config(self) -> dict:
        return {"fields": len(self.images)}

    def refs(self) -> list[tuple[str, str]]:
        return [(f"set{i // 4}", f"f{i}") for i in range(len(self.images))]

    def lumas(self) -> list[np.ndarray]:
        return self.images


def _exact_ae(pca: study.PCA, k: int) -> study.LinearAE:
    """The rank-k PCA projection written as a linear AE (what training should reach)."""
    u = pca.components[:k]
    return study.LinearAE(pca.size, k, pca.mean, u, u.T.copy(), np.zeros(1))


def test_image_transfer_stops_the_high_band(
    field_images: list[np.ndarray], pca8: study.PCA
) -> None:
    x = study.sample_patches(field_images[:1], 8, 400, seed=1)
    r, ratio, high = study.image_transfer(pca8.projection(8), x, pca8.mean, 8)
    assert high < 0.1 and ratio[0] == pytest.approx(1.0, abs=0.05)
    assert not np.isnan(study.cutoff(r, ratio))
    r, ratio, high = study.image_transfer(np.eye(64), x, pca8.mean, 8)
    assert high == pytest.approx(1.0) and np.isnan(study.cutoff(r, ratio))


def test_claim4_claims_from_per_image_effects(field_images: list[np.ndarray], tmp_path) -> None:
    training = _FieldTraining(field_images)
    pca = study.patch_pca(study.sample_patches(field_images, 8, 400, seed=0), 8)
    aes = {k: _exact_ae(pca, k) for k in (4, 16)}
    models = study.image_model_table(training, pca, aes, 400)
    assert len(models) == 8 * 2 and set(models["dataset"]) == {"set0", "set1"}
    np.testing.assert_allclose(models["AE MSE"], models["PCA MSE"], rtol=1e-9)
    pcas = study.image_pca_fits(training, [8], 400, out=tmp_path)
    assert len(pcas) == 8 and (pcas["R^2"] > 0.9).all()
    rng = np.random.default_rng(7)
    steep = pd.DataFrame({"dataset": "d", "image": [f"i{j}" for j in range(8)],
                          "alpha": 2.0 + 0.1 * rng.standard_normal(8), "R^2": 0.99})  # fmt: skip
    flat = steep.assign(alpha=1.0 + 0.1 * rng.standard_normal(8))
    checks = claims.claim4_claims({"steep": steep, "flat": flat}, pcas, models, n_boot=300)
    by = checks.set_index(["claim", "measure"])["verdict"]
    assert by[("power spectrum of steep is a falling power law", "alpha - 1 per image")] == (
        "reproduced"
    )
    assert by[("power spectrum of flat is a falling power law", "alpha - 1 per image")] == (
        "inconclusive"
    )
    name = "trained AE (k=4) learns the top-k projection"
    assert by[(name, "1.02 - AE MSE / PCA MSE per image")] == "reproduced"
    low_pass = checks[checks["claim"] == "PCA rank-k maps are low-pass"].set_index("measure")
    k4 = low_pass.loc["k=4: 0.1 - the share of the image's high band (rho >= 1/3) passed"]
    assert k4["verdict"] == "reproduced" and k4["n_images"] == 8
    assert "stratified by dataset" in k4["method"]
    # an identity passes the whole high band: 0.1 - 1 on every image
    ident = models.assign(**{"PCA high pass": 1.0})
    worse = claims.claim4_claims({}, pcas, ident, n_boot=300)
    assert set(worse[worse["claim"] == "PCA rank-k maps are low-pass"]["verdict"]) == {
        "contradicted"
    }
    assert checks.set_index("claim").loc["PCA cut-off grows with k", "verdict"] == "reproduced"
    summary = claims.combined(checks).set_index("claim")
    assert summary.loc["power spectrum of flat is a falling power law", "verdict"] == "inconclusive"
    assert summary.loc["PCA rank-k maps are low-pass", "reproduced"] == 2


def _shift_images(effects: dict[tuple[str, str, str], tuple[float, float]], n: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    rows = []
    for (model, name, group), (dg, dr) in effects.items():
        for i in range(n):
            e = 0.05 * rng.standard_normal(2)
            rows.append({"model": model, "corruption": name, "group": group, "dataset": "kodak",
                         "image": f"k{i}", "dG": dg + e[0], "dR": dr + e[1]})  # fmt: skip
    return pd.DataFrame(rows)


def test_shift_claims_per_image() -> None:
    effects = {
        ("a", "fog", "low"): (0.1, 0.9),
        ("a", "defocus_blur", "medium"): (0.5, 0.5),
        ("a", "gaussian_noise", "high"): (0.9, 0.1),
        ("b", "fog", "low"): (0.9, 0.1),  # the wrong way round
        ("b", "gaussian_noise", "high"): (0.5, 0.5),  # no effect
    }
    checks = claims.shift_claims(_shift_images(effects, 8), "test", n_boot=300)
    a = checks[checks["claim"] == "shift prediction, test: a"]
    assert list(a["verdict"]) == ["reproduced"] * 4  # fog, noise, low > medium > high
    b = checks[checks["claim"] == "shift prediction, test: b"].set_index("measure")["verdict"]
    assert b["fog (low): dR - dG per image"] == "contradicted"
    assert b["gaussian_noise (high): dG - dR per image"] == "inconclusive"
    summary = claims.combined(checks).set_index("claim")["verdict"]
    assert summary["shift prediction, test: a"] == "reproduced"
    assert summary["shift prediction, test: b"] == "inconclusive"
    # too few images: inconclusive whatever the interval
    few = claims.shift_claims(_shift_images(effects, 4), "test", n_boot=300)
    assert set(few["verdict"]) == {"inconclusive"}
    text = claims.change_sentence("shift, test", "partly reproduced", (4, 6), checks)
    assert "was *partly reproduced*: 4 of 6 checks" in text and "inconclusive" in text
