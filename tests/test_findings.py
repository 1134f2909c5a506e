"""The one findings model: the boolean rule, the shared claim contrasts, the findings table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nicspec_utils import findings as F
from nicspec_utils import stats as S
from nicspec_utils.engines.evaluate import Point
from nicspec_utils.findings import verdict


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([True, True], "reproduced"),
        ([True, False], "partly reproduced"),
        ([False, False], "not reproduced"),
        ([], "not testable here"),
    ],
)
def test_verdict(checks: list[bool], expected: str) -> None:
    assert verdict(checks) == expected


def test_verdict_with_other_words() -> None:
    words = ("observed", "partly observed", "not observed")
    assert verdict([True], words) == "observed"
    assert verdict([False, True], words) == "partly observed"
    assert verdict([False], words) == "not observed"
    assert verdict([], words) == "not testable here"


# --- the shared claims (#16): one contrast, one verdict in chapters 2 and 3 -------------------


def _record(image: str, psnr: float, g: float, r: float, clean: float) -> dict:
    energy = {m: {"total": e, "low": 0.2 * e, "medium": 0.3 * e, "high": 0.5 * e}
              for m, e in (("G", g), ("R", r), ("G_rounded", g), ("R_rounded", 0.0))}  # fmt: skip
    bands = {m: {"low": 0.2, "medium": 0.3, "high": 0.5} for m in energy}
    return {"id": image, "bpp": 0.5, "psnr": psnr, "psnr_wrt_clean": clean, "bands": bands,
            "energy": energy}  # fmt: skip


def _per_image(codec: str, corruption: str, n: int) -> list[dict]:
    """NIC: 2 dB worse than JPEG2000 on the noise, 1 dB better elsewhere, G energy 4x on the
    noise, R energy half JPEG2000's there; paired per-image noise."""
    rng = np.random.default_rng(abs(hash((codec, corruption))) % 2**32)
    high = corruption == "gaussian_noise"
    out = []
    for k in range(n):
        e = 0.2 * np.sin(k + 1)
        if codec == "NIC":
            p, g, r = (28.0 - 2 * high + e, 4.0 if high else 1.0, 0.5 if high else 1.0)
        else:
            p, g, r = (28.0 - 1 * (not high) + e, 1.0, 1.0)
        out.append(_record(f"kodim{k + 1:02d}", p, g * (1 + 0.01 * rng.random()), r, 25.0 + e))
    return out


def _chapter_inputs(n: int) -> tuple[pd.DataFrame, list[dict]]:
    """The same per-image records as chapter 2's corrupted study and chapter 3's G/R rows."""
    from nicspec_utils.chapters.spectral_analysis import settings

    study, rows = [], []
    for corruption, group in (("fog", "low"), ("gaussian_noise", "high")):
        for codec, label in (("NIC", settings.NIC), ("JPEG2000", settings.JPEG2000)):
            recs = _per_image(codec, corruption, n)
            study.append({"dataset": "kodak", "corruption": corruption, "group": group,
                          "severity": 3, "operating_point": "sh-mse-0.0067", "codec": label,
                          "per_image": recs})  # fmt: skip
            rows.append({"dataset": "kodak", "model": "sh-mse-0.0067", "codec": label,
                         "corruption": corruption, "group": group, "severity": 3,
                         "point": Point({"bpp": 0.5, "per_image": recs}, {})})  # fmt: skip
    return pd.DataFrame(study), rows


@pytest.mark.parametrize("n", [3, 8])
def test_claim2_same_verdict_in_chapters_2_and_3(n: int) -> None:
    from nicspec_utils.chapters import rate_distortion as rd
    from nicspec_utils.chapters.spectral_analysis import claims

    study, rows = _chapter_inputs(n)
    two = rd.claims.claim_checks(rd.study.corrupted_units(study), n_boot=300).set_index("claim")
    three = claims.claim_checks({"gr": rows}, n_boot=300)
    three = three[(three["matching"] == "bpp") & (three["rounding"] == "n/a")]
    for claim in ("2", "3"):
        a, b = two.loc[claim], three[three["claim"] == claim].iloc[0]
        assert (a["effect"], a["ci_low"], a["ci_high"], a["verdict"]) == (
            b["effect"], b["ci_low"], b["ci_high"], b["verdict"]
        )  # fmt: skip
    assert two.loc["2", "effect"] == pytest.approx(-3.0)  # -2 - (+1) dB
    assert two.loc["2", "verdict"] == ("reproduced" if n >= S.MIN_IMAGES else "inconclusive")


def test_energy_contrasts_and_zero_energy_pairs() -> None:
    from nicspec_utils.chapters.spectral_analysis import claims

    _, rows = _chapter_inputs(8)
    checks = claims.claim_checks({"gr": rows}, n_boot=300)
    energy = checks[checks["measure"] == F.CLAIM2_ENERGY.measure]
    plain = energy[(energy["matching"] == "bpp") & (energy["rounding"] == "none")].iloc[0]
    assert plain["effect"] == pytest.approx(2.0, abs=0.02)  # log2 4 on the noise, 0 on fog
    assert plain["verdict"] == "reproduced"
    high_r = checks[checks["measure"] == F.CLAIM3_HIGH_ENERGY.measure]
    plain = high_r[(high_r["matching"] == "bpp") & (high_r["rounding"] == "none")].iloc[0]
    assert plain["effect"] == pytest.approx(-1.0) and plain["verdict"] == "reproduced"
    rounded = high_r[(high_r["matching"] == "bpp") & (high_r["rounding"] == "reference")].iloc[0]
    assert rounded["verdict"] == "not testable here" or "zero energy" in rounded["note"]


def test_findings_table_reads_like_the_book() -> None:
    rows = [
        F.check("2", "gap (dB)", -1, pd.DataFrame({"dataset": "kodak", "image": list("abcdefg"),
                "value": [-1.0, -1.2, -0.9, -1.1, -1.0, -0.8, -1.3]}), paper="below 0: x"),
        F.check("3", "gap (dB)", 1, pd.DataFrame({"dataset": "kodak", "image": ["a", "b"],
                "value": [1.0, 2.0]})),
        F.check("5", "gap (dB)", 1, None),
    ]  # fmt: skip
    table = F.findings_table(rows, was={"2": "not reproduced"})
    names = [*F.TABLE_COLUMNS.values()]
    after = names.index("verdict") + 1
    assert list(table.columns) == names[:after] + ["was"] + names[after:]
    assert names[:4] == ["claim", "verdict", "effect", "95 % interval"]  # in view, first
    assert list(table["verdict"]) == ["reproduced", "inconclusive", "not testable here"]
    assert table["95 % interval"].iloc[0].startswith("[-") and table["was"].iloc[0] != "–"
    assert "fewer than the 6" in table["note"].iloc[1]
    assert table["images needed"].iloc[2] == "–"
