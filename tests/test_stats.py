"""The book's one statistical model: paired effects, bootstrap intervals, verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nicspec_utils import stats as S
from nicspec_utils.chapters import classification as cl

SIMS = 200


def _coverage(draw: object, interval: S.Interval = "percentile") -> float:
    """Share of SIMS seeded simulations whose interval covers the true effect."""
    hits = 0
    for i in range(SIMS):
        values, kwargs, true = draw(np.random.default_rng(10_000 + i))  # type: ignore[operator]
        est = S.paired_effect(*values, n_boot=1000, seed=i, interval=interval, **kwargs)
        hits += est.ci_low <= true <= est.ci_high
    return hits / SIMS


def _plain(rng: np.random.Generator) -> tuple:
    image = rng.normal(0, 1, 60)  # shared by both systems: pairing removes it
    a = image + 0.3 + rng.normal(0, 1, 60)
    b = image + rng.normal(0, 1, 60)
    return (a, b), {}, 0.3


def _crossed(rng: np.random.Generator) -> tuple:
    """30 images x 3 corruptions, an image effect shared by its corruptions (clustered)."""
    effect = np.array([0.1, 0.3, 0.5])
    diffs = effect + rng.normal(0, 1, (30, 1)) + rng.normal(0, 0.5, (30, 3))
    ids = np.repeat(np.arange(30), 3)
    strata = np.tile(["noise", "blur", "fog"], 30)
    return (diffs.ravel(),), {"cluster": ids, "strata": strata}, effect.mean()


def _nested(rng: np.random.Generator) -> tuple:
    """Two datasets (strata) of 60 and 40 images, 4 skewed values per image."""
    sizes, means = (60, 40), (0.2, -0.1)
    parts, ids, strata = [], [], []
    for h, (k, m) in enumerate(zip(sizes, means, strict=True)):
        image = rng.normal(0, 0.5, (k, 1))
        parts.append(m + image + rng.exponential(1.0, (k, 4)) - 1.0)
        ids.append(np.repeat(np.arange(k) + 100 * h, 4))
        strata.append(np.full(4 * k, h))
    true = (sizes[0] * means[0] + sizes[1] * means[1]) / sum(sizes)
    kwargs = {"cluster": np.concatenate(ids), "strata": np.concatenate(strata)}
    return (np.concatenate([p.ravel() for p in parts]),), kwargs, true


@pytest.mark.parametrize("draw", [_plain, _crossed, _nested], ids=["plain", "crossed", "nested"])
@pytest.mark.parametrize("interval", ["percentile", "bca"])
def test_interval_covers_known_effect(draw: object, interval: S.Interval) -> None:
    assert 0.90 <= _coverage(draw, interval) <= 0.99


def test_ignoring_clusters_undercovers() -> None:
    """The clustered data analysed as independent values: the interval is too narrow."""

    def flat(rng: np.random.Generator) -> tuple:
        (diffs,), _, true = _crossed(rng)
        return (diffs,), {}, true

    assert _coverage(flat) < 0.85


def test_identical_inputs_are_inconclusive() -> None:
    a = np.random.default_rng(0).random((20, 3))
    est = S.paired_effect(a, a.copy())
    assert est.mean == 0 and est.degenerate
    assert S.verdict(est, 1) == S.verdict(est, -1) == "inconclusive"
    assert S.images_needed(est) is None
    one = S.paired_effect([0.5], [0.1])
    assert one.n_clusters == 1 and S.verdict(one, 1) == "inconclusive"
    empty = S.paired_effect(np.array([]))
    assert empty.n == 0 and S.verdict(empty, 1) == "inconclusive"


def test_clear_effect_sides() -> None:
    rng = np.random.default_rng(3)
    est = S.paired_effect(rng.normal(1.0, 0.5, 50))
    assert est.ci_low > 0
    assert S.verdict(est, 1) == "reproduced"
    assert S.verdict(est, -1) == "contradicted"
    noise = S.paired_effect(rng.normal(0.0, 1.0, 50))
    assert noise.ci_low < 0 < noise.ci_high and S.verdict(noise, 1) == "inconclusive"
    with pytest.raises(ValueError, match="direction"):
        S.verdict(est, 0)


def test_deterministic_with_seed() -> None:
    x = np.random.default_rng(5).normal(0.1, 1, (40, 3))
    assert S.paired_effect(x, seed=7) == S.paired_effect(x, seed=7)
    assert S.paired_effect(x, seed=7).ci_low != S.paired_effect(x, seed=8).ci_low
    assert S.paired_effect(x, seed=7).mean == S.paired_effect(x, seed=8).mean == x.mean()


def test_matrix_is_images_by_conditions() -> None:
    x = np.random.default_rng(6).normal(0, 1, (12, 3))
    ids, strata = np.repeat(np.arange(12), 3), np.tile(np.arange(3), 12)
    assert S.paired_effect(x) == S.paired_effect(x.ravel(), cluster=ids, strata=strata)
    est = S.paired_effect(x)
    assert (est.n, est.n_clusters) == (36, 12)
    assert "cluster bootstrap over 12 images" in est.method and "percentile" in est.method
    # constant rows: every resample has the same mean although entries differ
    rows = np.array([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 6)
    assert S.paired_effect(rows).ci_low == S.paired_effect(rows).ci_high == 0.5


def test_nested_strata_keep_their_share() -> None:
    """Stratum means 0 and 1 without noise: every stratified resample has the estimate's mean."""
    x = np.r_[np.zeros(30), np.ones(10)]
    strata = np.r_[np.zeros(30), np.ones(10)]
    est = S.paired_effect(x, strata=strata, strata_label="dataset")
    assert est.ci_low == est.ci_high == 0.25
    assert "stratified by dataset (2)" in est.method
    free = S.paired_effect(x)
    assert free.ci_low < 0.25 < free.ci_high


def test_images_needed() -> None:
    rng = np.random.default_rng(8)
    base = rng.normal(0, 1, 60)
    needed = [S.images_needed(S.paired_effect(base + m)) for m in (0.2, 0.5, 1.0, 3.0)]
    assert all(n is not None for n in needed)
    assert needed == sorted(needed, reverse=True) and needed[0] > 60 > needed[-1] >= 2
    noisy = S.images_needed(S.paired_effect(3 * base + 0.5))
    assert noisy is not None and noisy > needed[1]
    # at that n the normal half-width is below the effect
    est = S.paired_effect(base + 0.5)
    n = S.images_needed(est)
    assert n is not None
    half = 1.959963984540054 * est.se * np.sqrt(est.n_clusters) / np.sqrt(n)
    assert half < 0.5 + base.mean()


def test_binary_pairs_per_image() -> None:
    rng = np.random.default_rng(9)
    b = rng.random((64, 3)) < 0.5
    a = b | (rng.random((64, 3)) < 0.3)
    cmp = S.paired_binary(a, b)
    assert cmp.estimate.mean == pytest.approx(a.mean() - b.mean())
    assert cmp.estimate.n_clusters == 64 and S.verdict(cmp.estimate, 1) == "reproduced"
    assert cmp.mcnemar["b_only"] == 0 and cmp.mcnemar["p"] < 1e-6
    assert cmp.clustered["clusters"] == 64 and cmp.clustered["p"] < 1e-6
    same = S.paired_binary(b, b)
    assert same.mcnemar["p"] == same.clustered["p"] == 1.0
    assert S.verdict(same.estimate, 1) == "inconclusive"


def test_clustered_mcnemar_is_more_cautious_with_correlated_pairs() -> None:
    """Ten images, each all-in for one system on 3 corruptions: 30 pooled pairs, 10 units."""
    a = np.array([[1, 1, 1]] * 7 + [[0, 0, 0]] * 3, dtype=bool)
    b = ~a
    pooled = S.mcnemar(a.ravel(), b.ravel())
    clustered = S.clustered_mcnemar(a, b, np.repeat(np.arange(10), 3))
    assert (pooled["a_only"], pooled["b_only"]) == (21, 9)
    assert clustered["p"] > pooled["p"]
    # Durkalski: (sum d)^2 / sum d^2 = (7*3 - 3*3)^2 / (10 * 9)
    assert clustered["statistic"] == pytest.approx(144 / 90)


def test_mcnemar_exact_values() -> None:
    """Chapter 5's exact McNemar, unchanged (also :func:`classify.mcnemar`)."""
    assert cl.mcnemar is S.mcnemar
    t = S.mcnemar([True] * 5 + [True, False, False], [False] * 5 + [True, False, False])
    assert (t["a_only"], t["b_only"]) == (5, 0) and t["p"] == pytest.approx(2 / 32)
    assert S.mcnemar([1, 1, 1, 0], [0, 0, 0, 1])["p"] == pytest.approx(10 / 16)
    with pytest.raises(ValueError):
        S.mcnemar([True], [True, False])


def test_chapter5_bootstrap_in_the_model() -> None:
    x = np.random.default_rng(11).random((20, 4))
    est = S.paired_effect(x, n_boot=500, seed=3)
    assert cl.bootstrap_ci(x, n_boot=500, seed=3) == (est.mean, est.ci_low, est.ci_high)


def test_combine() -> None:
    assert S.combine(["reproduced", "reproduced"]) == "reproduced"
    assert S.combine(["contradicted"]) == "contradicted"
    assert S.combine(["reproduced", "inconclusive"]) == "inconclusive"
    assert S.combine([]) == "not testable here"
    with pytest.raises(ValueError):
        S.combine(["partly"])


def test_effects_table() -> None:
    rng = np.random.default_rng(12)
    claims = [
        S.Claim("big", 1, rng.normal(1, 1, 30)),
        S.Claim("against", 1, rng.normal(-1, 1, 30)),
        S.Claim("none", -1, np.zeros(30)),
    ]
    table = S.effects_table(claims, n_boot=500, seed=1)
    assert list(table.columns) == S.TABLE_COLUMNS
    assert list(table["verdict"]) == ["reproduced", "contradicted", "inconclusive"]
    assert table["images_needed"].isna().tolist() == [False, False, True]
    assert (table["n"] == 30).all()
    again = S.effects_table([c.check(n_boot=500, seed=1) for c in claims])
    assert again.equals(table)
    with pytest.raises(ValueError, match="direction"):
        S.Claim("bad", 2, [1.0])


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        S.paired_effect([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        S.paired_effect([1.0, np.nan])
    with pytest.raises(ValueError, match="one label per value"):
        S.paired_effect([1.0, 2.0], cluster=[0])
    with pytest.raises(ValueError, match="level"):
        S.paired_effect([1.0, 2.0], level=95)


def test_classify_claim_table(tmp_path: Path) -> None:
    def result(flags: list[int]) -> cl.Result:
        per = [{"correct": bool(f), "agree": bool(f), "bpp": 0.5} for f in flags]
        data = {"per_image": per, "bpp": 0.5, "n_images": len(flags), "n_labelled": len(flags)}
        return cl.Result(tmp_path, data, True)

    ones, zeros = [1] * 20, [0] * 20
    grid = {
        ("clean", "NIC m"): result(ones),
        ("clean", "JPEG2000 @ m"): result(ones),
        ("gaussian_noise", "NIC m"): result(ones),
        ("gaussian_noise", "JPEG2000 @ m"): result(zeros),
        ("fog", "NIC m"): result(zeros),
        ("fog", "JPEG2000 @ m"): result(zeros),
    }
    table = cl.claim_table(grid, ["m"], n_boot=200)
    assert len(table) == 3 and (table["verdict"] == "reproduced").all()
    assert table.iloc[0]["effect"] == 1.0 and table.iloc[0]["n_clusters"] == 20
    paired = cl.paired_table(grid, ["m"], n_boot=200)
    high = paired[paired["group"] == "high"].iloc[0]
    assert high["images"] == 20 and high["clustered_p"] < 1e-4


def test_fewer_than_min_images_are_inconclusive() -> None:
    """A clear effect on 5 images: the interval excludes 0, the verdict does not follow it."""
    x = np.array([1.0, 1.2, 0.9, 1.1, 1.05, 0.95])
    few = S.paired_effect(x[: S.MIN_IMAGES - 1])
    assert few.ci_low > 0 and S.verdict(few, 1) == S.verdict(few, -1) == "inconclusive"
    assert f"fewer than the {S.MIN_IMAGES}" in few.note
    enough = S.paired_effect(x[: S.MIN_IMAGES])
    assert S.verdict(enough, 1) == "reproduced" and enough.note == ""
    assert S.verdict(few, 1, min_images=2) == "reproduced"
    two = S.paired_effect([1.0, 1.1])
    assert S.verdict(two, 1) == "inconclusive" and "2 images" in two.note
    assert S.images_needed(enough) == S.MIN_IMAGES
    check = S.Claim("c", 1, x[:3]).check()
    assert S.effects_table([check])["note"].iloc[0] == check.estimate.note


def test_stratum_of_one_image_is_not_stratified() -> None:
    """Strata of one image each would give a zero-width interval: resampled unstratified."""
    x = np.array([0.1, 0.5, 0.9, 1.3, 0.2, 0.7])
    est = S.paired_effect(x, strata=np.arange(6), strata_label="corruption")
    assert est.ci_high - est.ci_low > 0.3 and "not stratified" in est.note
    assert "stratified by" not in est.method


def test_t_guard_covers_at_small_n() -> None:
    """At n = MIN_IMAGES the guarded interval covers a normal mean about 95 % of the time."""

    def small(rng: np.random.Generator) -> tuple:
        return (rng.normal(0.3, 1, S.MIN_IMAGES),), {}, 0.3

    assert _coverage(small) >= 0.91
    x = np.random.default_rng(1).normal(0, 1, S.MIN_IMAGES)
    est = S.paired_effect(x)
    half = 2.570581835636314 * x.std(ddof=1) / np.sqrt(S.MIN_IMAGES)  # t(0.975, 5)
    assert est.ci_high - est.ci_low >= 2 * half * 0.97
