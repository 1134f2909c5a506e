"""The ledger of verdicts: chapters publish, the summary page collects one profile at a time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nicspec_utils import ledger
from nicspec_utils.errors import DataError, UsageError
from nicspec_utils.findings import findings_table


def _checks(verdict: str = "reproduced") -> list[dict]:
    return [
        {"claim": "2", "measure": "PSNR (dB)", "matching": "bpp", "rounding": "none",
         "effect": -0.42, "ci_low": -0.61, "ci_high": -0.2, "n": 12, "n_images": 4,
         "verdict": verdict, "images_needed": 8.0, "paper": "below 0", "note": ""},
        {"claim": "3", "measure": "PSNR w.r.t. clean (dB)", "matching": "psnr",
         "rounding": "reference", "effect": 0.1, "ci_low": -0.3, "ci_high": 0.5, "n": 12,
         "n_images": 4, "verdict": "inconclusive", "images_needed": float("nan"),
         "paper": "above 0", "note": "few images"},
    ]  # fmt: skip


def test_a_published_table_comes_back_in_the_summary_columns(tmp_path: Path) -> None:
    path = ledger.publish("03_spectral_analysis", findings_table(_checks()), profile="quick",
                          root=tmp_path)  # fmt: skip
    assert path == tmp_path / "claims" / "quick" / "03_spectral_analysis.json"
    rows = ledger.collect("quick", root=tmp_path)
    assert list(rows.columns) == list(ledger.COLUMNS) and len(rows) == 2
    first = rows.iloc[0]
    assert first["chapter"] == "03_spectral_analysis" and first["claim"] == "2"
    assert first["verdict"] == "reproduced" and first["interval"] == "[-0.61, -0.2]"
    assert first["matching"] == "bpp" and first["images needed"] == "8"
    assert rows.iloc[1]["images needed"] == "–" and rows.iloc[1]["rounding"] == "with"


def test_a_raw_effects_table_is_normalised_too(tmp_path: Path) -> None:
    raw = pd.DataFrame([{"claim": "pruned denoises", "effect": 0.25, "ci_low": 0.1,
                         "ci_high": 0.4, "n": 30, "verdict": "reproduced",
                         "images_needed": 5}])  # fmt: skip
    ledger.publish("05_classification", raw, profile="smoke", root=tmp_path)
    row = ledger.collect("smoke", root=tmp_path).iloc[0]
    assert row["effect"] == "+0.25" and row["interval"] == "[+0.1, +0.4]"
    assert row["images needed"] == 5


def test_profiles_are_kept_apart_and_the_other_verdict_sits_beside(tmp_path: Path) -> None:
    ledger.publish("03_spectral_analysis", findings_table(_checks()), profile="paper",
                   root=tmp_path)  # fmt: skip
    ledger.publish("03_spectral_analysis", findings_table(_checks("inconclusive")),
                   profile="quick", root=tmp_path)  # fmt: skip
    paper, quick = ledger.collect("paper", root=tmp_path), ledger.collect("quick", root=tmp_path)
    both = ledger.summary_table(paper, quick)
    assert list(both["verdict"]) == ["reproduced", "inconclusive"]
    assert list(both["verdict (quick)"]) == ["inconclusive", "inconclusive"]
    assert list(both["changed"]) == ["yes", ""]
    assert ledger.collect("smoke", root=tmp_path).empty  # nothing published under smoke
    counts = ledger.verdict_counts(paper)
    assert counts.loc[0, "reproduced"] == 1 and counts.loc[0, "inconclusive"] == 1


def test_the_profile_comes_from_the_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ledger.PROFILE_ENV, "quick")
    path = ledger.publish("01_corruption_benchmark", findings_table(_checks()), root=tmp_path)
    assert path.parent.name == "quick"
    monkeypatch.delenv(ledger.PROFILE_ENV)
    assert ledger.current_profile() == "custom"


def test_bad_names_tables_and_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="chapter name"):
        ledger.publish("../evil", findings_table(_checks()), root=tmp_path)
    with pytest.raises(UsageError, match="profile name"):
        ledger.ledger_dir("a/b", root=tmp_path)
    with pytest.raises(UsageError, match="'claim' and 'verdict'"):
        ledger.publish("01_x", pd.DataFrame({"effect": [1.0]}), root=tmp_path)
    bad = tmp_path / "claims" / "quick" / "02_rate_distortion.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="rerun its chapter"):
        ledger.collect("quick", root=tmp_path)


def test_a_claim_two_chapters_test_gets_one_verdict(tmp_path: Path) -> None:
    ch2 = pd.DataFrame([{"claim": "2", "verdict": "reproduced"},
                        {"claim": "2", "verdict": "reproduced"},
                        {"claim": "3", "verdict": "not testable here"}])  # fmt: skip
    ch3 = pd.DataFrame([{"claim": "2", "verdict": "reproduced"},
                        {"claim": "2", "verdict": "inconclusive"},
                        {"claim": "3", "verdict": "contradicted"},
                        {"claim": "1", "verdict": "reproduced"}])  # fmt: skip
    ledger.publish("02_rate_distortion", ch2, profile="quick", root=tmp_path)
    ledger.publish("03_spectral_analysis", ch3, profile="quick", root=tmp_path)
    one = ledger.reconcile(ledger.collect("quick", root=tmp_path))
    assert list(one["claim"]) == ["2"]  # claim 3: chapter 2 could not test it; claim 1: one chapter
    row = one.iloc[0]
    assert row["verdict"] == "inconclusive" and row["checks"] == 4 and row["chapters"] == 2
    assert row["per chapter"] == (
        "02_rate_distortion: reproduced (2 checks); 03_spectral_analysis: inconclusive (2 checks)"
    )
    agree = ledger.reconcile(ledger.collect("quick", root=tmp_path).iloc[[0, 1, 3]])
    assert list(agree["verdict"]) == ["reproduced"]
    assert ledger.reconcile(ledger.collect("none", root=tmp_path)).empty
