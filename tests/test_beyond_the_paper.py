"""Chapter 6: the pruning ladder's models and measures, the input features, the codec-choice
rule, the oracle and the folds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nicspec_utils.chapters import beyond_the_paper as bp
from nicspec_utils.data import KODAK_NORM
from nicspec_utils.errors import DataError, UsageError

SHIPPED_LEVELS = (0, 50, 80, 90, 95)


def _natural(size: int = 256, alpha: float = 2.0, seed: int = 0) -> np.ndarray:
    """A random image whose power spectrum falls as rho**-alpha (uint8, grey replicated)."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    rho = np.hypot(fy, fx)
    rho[0, 0] = 1.0
    spectrum = rho ** (-alpha / 2) * np.exp(2j * np.pi * rng.random((size, size)))
    spectrum[0, 0] = 0
    field = np.real(np.fft.ifft2(spectrum))
    field = (field - field.mean()) / field.std()
    grey = np.clip(128 + 40 * field, 0, 255)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def test_levels_need_the_control_and_percent() -> None:
    assert bp.parse_levels("90, 0,50") == [0, 50, 90]
    for bad in ("50,90", "0,100", "0,x", ""):
        with pytest.raises(UsageError):
            bp.parse_levels(bad)


def test_a_missing_rung_is_one_line_saying_how_to_train_it(tmp_path) -> None:
    with pytest.raises(DataError, match="train_pruning_ladder.sh"):
        bp.ladder_models([0], folder=tmp_path)


def test_the_shipped_ladder_reached_its_sparsities() -> None:
    models = bp.ladder_models(SHIPPED_LEVELS)
    table = bp.ladder_reached(models)
    assert table["reached"].all(), table
    measured = table["measured"].to_numpy()
    assert measured[0] < 0.01  # the control is not pruned
    assert np.all(np.diff(measured) > 0)  # the ladder climbs


def test_reached_refuses_a_rung_below_or_far_above_its_target(tmp_path) -> None:
    rungs = [
        bp.LadderModel(0.9, "a", tmp_path, 0.899),
        bp.LadderModel(0.9, "b", tmp_path, 0.9),
        bp.LadderModel(0.9, "c", tmp_path, 0.95),
    ]
    assert bp.ladder_reached(rungs)["reached"].tolist() == [False, True, False]


def test_noise_lifts_the_excess_and_blur_lowers_it() -> None:
    from scipy.ndimage import gaussian_filter

    img = _natural()
    clean = bp.input_features(img, KODAK_NORM)
    assert abs(clean["alpha_fit"] - 2.0) < 0.5
    noise = np.random.default_rng(1).normal(0, 1, img.shape)
    excess = [
        bp.input_features(np.clip(img + s * noise, 0, 255).astype(np.uint8), KODAK_NORM)["excess"]
        for s in (10, 20, 40)
    ]
    assert clean["excess"] < excess[0] < excess[1] < excess[2]
    assert excess[2] > clean["excess"] + 0.4
    blurred = gaussian_filter(img.astype(float), sigma=(2, 2, 0)).astype(np.uint8)
    assert bp.input_features(blurred, KODAK_NORM)["excess"] < clean["excess"] - 1.0


def _table(excess, nic, j2k, images=None) -> pd.DataFrame:
    n = len(excess)
    return pd.DataFrame(
        {
            "excess": excess,
            "nic": nic,
            "j2k": j2k,
            "nic_bpp": [0.5] * n,
            "j2k_bpp": [0.5] * n,
            "image": images or [f"i{k % 6}" for k in range(n)],
            "condition": [f"c{k // 6}" for k in range(n)],
        }
    )


def test_the_rule_finds_the_threshold_where_the_winner_changes() -> None:
    excess = np.linspace(-1, 1, 12)
    nic = np.where(excess > 0.1, 30.0, 20.0)
    table = _table(excess, nic, np.full(12, 25.0))
    rule = bp.fit_rule(table)
    assert rule.side == +1
    assert excess[excess <= 0.1].max() < rule.threshold < excess[excess > 0.1].min()
    np.testing.assert_array_equal(bp.chosen(rule, table), bp.oracle(table))
    assert rule.describe().startswith("NIC when excess >")


def test_the_rule_flips_its_side_and_falls_back_to_a_fixed_choice() -> None:
    excess = np.linspace(-1, 1, 12)
    flipped = _table(excess, np.where(excess < 0, 30.0, 20.0), np.full(12, 25.0))
    assert bp.fit_rule(flipped).side == -1
    always_j2k = bp.fit_rule(_table(excess, np.full(12, 20.0), np.full(12, 25.0)))
    assert math.isinf(always_j2k.threshold)
    assert always_j2k.describe() == "always JPEG2000"
    always_nic = bp.fit_rule(_table(excess, np.full(12, 26.0), np.full(12, 25.0)))
    assert always_nic.describe() == "always NIC"


def test_the_oracle_is_never_below_any_strategy() -> None:
    rng = np.random.default_rng(0)
    table = _table(rng.normal(size=24), rng.normal(25, 2, 24), rng.normal(25, 2, 24))
    values = bp.strategy_values(bp.fit_rule(table), table)
    for name in ("rule", "always NIC", "always JPEG2000"):
        assert np.all(values["oracle"] >= values[name])


def test_choice_checks_say_the_rule_beats_both_fixed_choices_on_a_clear_case() -> None:
    excess = np.tile(np.linspace(-1, 1, 4), 6)
    images = [f"i{k // 4}" for k in range(24)]
    rng = np.random.default_rng(2)
    nic = np.where(excess > 0, 30.0, 20.0) + rng.normal(0, 0.1, 24)
    table = _table(excess, nic, 25.0 + rng.normal(0, 0.1, 24), images)
    table["condition"] = [f"c{k % 4}" for k in range(24)]
    rule = bp.fit_rule(table)
    checks = bp.choice_checks([("a", rule, "b", table)], n_boot=300)
    verdicts = {c.claim.split(": ", 1)[1]: c.verdict for c in checks}
    assert verdicts["rule − always NIC (dB)"] == "reproduced"
    assert verdicts["rule − always JPEG2000 (dB)"] == "reproduced"
    summary = bp.choice_summary([("a", rule, "b", table)])
    rule_row = summary[summary["strategy"] == "rule"].iloc[0]
    assert rule_row["NIC share"] == pytest.approx(0.5)


def test_one_dataset_is_split_in_halves_that_fit_each_other() -> None:
    table = _table(np.zeros(12), np.zeros(12), np.zeros(12))
    (fa, ta, fb, tb), (gb, ub, ga, ua) = bp.folds({"Kodak": table})
    assert fa == ga and fb == gb and fa != fb
    assert not set(ta["image"]) & set(tb["image"])
    assert set(ta["image"]) | set(tb["image"]) == set(table["image"])
    two = bp.folds({"A": table, "B": table.iloc[:6]})
    assert [(f[0], f[2]) for f in two] == [("A", "B"), ("B", "A")]


def test_a_gap_beyond_the_dense_curve_is_a_bound_from_its_last_point() -> None:
    from nicspec_utils.nic.reference import make_curve

    curve = make_curve("dense", [0.2, 0.4, 0.8], [28.0, 30.0, 32.0])
    assert bp.gap_to_curve(curve, 0.4, 29.0) == (pytest.approx(-1.0), False)
    assert bp.gap_to_curve(curve, 1.0, 20.0) == (pytest.approx(-12.0), True)
    assert bp.gap_to_curve(curve, 0.1, 27.0) == (pytest.approx(-1.0), True)


def test_slopes_against_sparsity_recover_a_linear_trend() -> None:
    rows = []
    for s in (0.0, 0.5, 0.9):
        for image in ("a", "b"):
            rows.append(
                {"model": f"m{s}", "sparsity": s, "image": image, "corruption": "noise",
                 "psnr_wrt_clean": 20 + 3 * s + (image == "b")}
            )  # fmt: skip
            rows.append({"model": f"m{s}", "sparsity": s, "image": image, "corruption": "clean",
                         "psnr_wrt_clean": 99.0})  # fmt: skip
    slopes = bp.per_unit_slopes(pd.DataFrame(rows), "psnr_wrt_clean")
    assert len(slopes) == 2
    np.testing.assert_allclose(slopes["slope"], 3.0)


def test_the_checks_table_says_which_side_was_expected_in_plain_words() -> None:
    from nicspec_utils.stats import ClaimCheck, paired_effect

    up = ClaimCheck("up", +1, paired_effect(np.linspace(1, 2, 8), cluster=list("abcdefgh")))
    down = ClaimCheck("down", -1, paired_effect(np.linspace(1, 2, 8), cluster=list("abcdefgh")))
    table = bp.checks_table([up, down])
    assert table["expected"].tolist() == ["> 0", "< 0"]
    assert table["verdict"].tolist() == ["as predicted", "the other way"]


def test_conclusions_set_broken_rungs_apart_and_read_the_choice_intervals() -> None:
    from nicspec_utils.stats import ClaimCheck, paired_effect

    table = pd.DataFrame(
        {"model": ["c", "p95"], "sparsity": [0.0, 0.95], "gap to dense (dB)": [0.0, -15.7]}
    )
    assert bp.recovered(table) == ["c"]
    # a gap that is only a bound (bpp beyond the dense curve) never counts as recovered
    bound = table.assign(**{"gap to dense (dB)": [0.0, 0.5], "gap is a bound": [False, True]})
    assert bp.recovered(bound) == ["c"]
    better = ClaimCheck(
        "fit A → test B: rule − always NIC (dB)",
        +1,
        paired_effect(np.linspace(0.5, 1.5, 8), cluster=list("abcdefgh")),
    )
    text = bp.conclusions(table, ["c"], [], [], [better], steps=200)
    assert "95 % (-15.70 dB)" in text and "did not recover" in text
    assert "No trend over the ladder" in text
    assert "the rule is better" in text


def test_a_ladder_codec_is_named_by_its_path_in_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one name (and one store key) on every checkout, and it loads from any working folder
    from nicspec_utils.codecs import get_codec

    rungs = [r for r in bp.ladder_models([50]) if not r.codec.startswith("nic:")]
    if not rungs:
        pytest.skip("no ladder checkpoint shipped")
    name = rungs[0].codec
    assert name.startswith("checkpoint:data/models/ladder/"), name
    monkeypatch.chdir(tmp_path)
    codec = get_codec(name)
    assert codec.name == name and codec.config()["checkpoint_sha256"]
