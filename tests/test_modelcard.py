"""Quality bars of the shipped family (``modelcard.quality_bars``) on synthetic rows."""

from __future__ import annotations

import math
from typing import Any

import pytest

from nicspec_utils.nic.modelcard import VR_EVAL_LAMBDAS, quality_bars


def _row(model: str, bpp: float, psnr: float, ms_ssim: float, lmbda: float | None = None,
         **meta: Any) -> dict[str, Any]:  # fmt: skip
    base = {"architecture": "scale-hyperprior", "metric": "mse", "recipe": {}, "steps": 1}
    return {
        "model": model, "lmbda_eval": lmbda, "meta": {**base, **meta}, "bpp": bpp,
        "psnr": psnr, "ms_ssim": ms_ssim, "jpeg2000_psnr": psnr - 1, "n_images": 24,
    }  # fmt: skip


def _family(msssim_bpp: float, msssim_value: float) -> dict[str, dict[str, Any]]:
    rows = {
        "a": _row("a", 0.2, 28.0, 0.950),
        "b": _row("b", 0.4, 30.0, 0.970),
        "c": _row("c", 0.6, 31.5, 0.980),
        "ms": _row("ms", msssim_bpp, 25.0, msssim_value, metric="ms-ssim"),
    }
    ladder = zip(
        VR_EVAL_LAMBDAS, (0.2, 0.4, 0.6, 0.8), (28, 30, 31.5, 33), (0.95, 0.97, 0.98, 0.985),
        strict=True,
    )  # fmt: skip
    for lmbda, bpp, psnr, ms in ladder:
        rows[f"vr@{lmbda}"] = _row("vr", bpp, psnr, ms, lmbda, architecture="scale-hyperprior-vr")
    return rows


def _checks(bars: dict[str, Any], word: str) -> list[dict[str, Any]]:
    return [c for c in bars["checks"] if c["check"].startswith(word)]


def test_msssim_bar_interpolates_inside_the_mse_curve() -> None:
    (check,) = _checks(quality_bars(_family(0.3, 0.968)), "ms:")  # curve at 0.3: 0.9617
    assert check["pass"] and check["value"] == pytest.approx(0.968 - 0.9617, abs=1e-3)
    (check,) = _checks(quality_bars(_family(0.3, 0.955)), "ms:")
    assert not check["pass"] and check["value"] < 0


def test_msssim_bar_below_the_curve_needs_dominance() -> None:
    # fewer bits than the lowest MSE point (0.2 bpp, 0.950) and a higher MS-SSIM: conclusive
    (check,) = _checks(quality_bars(_family(0.18, 0.955)), "ms:")
    assert check["pass"] and check["value"] == pytest.approx(0.005)
    # fewer bits and a lower MS-SSIM: the curve at 0.18 bpp is unknown, so no verdict (fails)
    (check,) = _checks(quality_bars(_family(0.18, 0.945)), "ms:")
    assert not check["pass"] and math.isnan(check["value"])


def test_vr_bar_only_at_the_ladder_lambdas() -> None:
    bars = quality_bars(_family(0.3, 0.99))
    vr = _checks(bars, "vr@")
    assert len(vr) == len(VR_EVAL_LAMBDAS)  # no bar for the extension point (0.0018)
    # vr@0.0483 at 0.8 bpp lies outside the fixed curve (0.2-0.6): not measurable, fails
    outside = [c for c in vr if c["check"].startswith("vr@0.0483")][0]
    assert outside["value"] is None or math.isnan(outside["value"])
    assert not outside["pass"]
    assert all(c["pass"] for c in vr if c is not outside)


# --- candidates: a continued checkpoint judged against the bars before it is shipped ---------


def _tiny_named_checkpoint(path: Any, name: str) -> Any:
    from compressai.models import ScaleHyperprior

    from nicspec_utils.nic.models import save_checkpoint

    meta = {"name": name, "architecture": "scale-hyperprior", "N": 16, "M": 24, "metric": "mse"}
    meta |= {"recipe": {}, "steps": 1}
    save_checkpoint(ScaleHyperprior(16, 24), path, meta)
    return path


def test_candidate_names_need_a_shipped_namesake(tmp_path: Any) -> None:
    from nicspec_utils.errors import UsageError
    from nicspec_utils.nic.modelcard import candidate_names

    good = _tiny_named_checkpoint(tmp_path / "a.safetensors", "sh-mse-0.018")
    assert candidate_names([good]) == {"sh-mse-0.018": good}
    ghost = _tiny_named_checkpoint(tmp_path / "g.safetensors", "ghost")
    with pytest.raises(UsageError, match="ghost, which is not a shipped model"):
        candidate_names([ghost])
    twin = _tiny_named_checkpoint(tmp_path / "b.safetensors", "sh-mse-0.018")
    with pytest.raises(UsageError, match="two candidates for sh-mse-0.018"):
        candidate_names([good, twin])


def test_candidates_replace_their_namesakes_and_write_nothing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nicspec_utils.nic.modelcard as mc

    codecs: list[str] = []

    def fake_metrics(codec: str, *args: Any, **kw: Any) -> dict[str, Any]:
        codecs.append(codec)
        return {"bpp": 0.4, "psnr": 30.0, "ms_ssim": 0.97, "n_images": 1}

    def no_writes(*args: Any, **kw: Any) -> None:
        raise AssertionError("a candidates' report wrote the shipped record")

    monkeypatch.setattr(mc, "_kodak_metrics", fake_metrics)
    monkeypatch.setattr(mc, "write_manifest", no_writes)
    cand = _tiny_named_checkpoint(tmp_path / "c.safetensors", "sh-mse-0.018")
    result = mc.report(progress=False, candidates={"sh-mse-0.018": cand})
    assert f"checkpoint:{cand}" in codecs and "nic:sh-mse-0.018" not in codecs
    assert "nic:sh-mse-0.0067" in codecs
    assert result["rows"]["sh-mse-0.018"]["meta"]["N"] == 16  # the candidate's own metadata


def test_bar_changes_lists_changed_values_and_verdicts() -> None:
    from nicspec_utils.nic.modelcard import bar_changes

    before = [
        {"check": "x", "pass": False, "value": -1.6},
        {"check": "y", "pass": True, "value": 1},
    ]
    now = [{"check": "x", "pass": True, "value": -1.4}, {"check": "y", "pass": True, "value": 1}]
    text = bar_changes(now, before)
    assert "x: -1.600 (fail) -> -1.400 (pass)  <- verdict changes" in text and "y:" not in text
    closer = [{"check": "x", "pass": False, "value": -1.55}, before[1]]
    assert "x: -1.600 (fail) -> -1.550 (fail)\n" in bar_changes(closer, before) + "\n"
    assert bar_changes(before, before).endswith("no bar changes")


def test_elic_rows_are_listed_as_not_available(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ELIC recipe without a checkpoint is a 'not available' row with its reason and the
    command that trains it, in the card's table and in `nicspec models list`; a trained one is
    not."""
    from nicspec_utils.nic import modelcard, models

    monkeypatch.setattr(models, "MODELS_DIR", tmp_path)
    rows = modelcard.not_available()
    names = [r["model"] for r in rows]
    lambdas = ("0.0025", "0.0067", "0.018", "0.0483")
    assert sorted(names) == [f"elic-mse-{lmbda}" for lmbda in lambdas]
    for r in rows:
        assert r["status"] == "not available" and (r["N"], r["M"]) == (192, 320)
        assert r["command"] == f"nicspec train --recipe {r['model']} --device cuda"
        assert "GPU" in r["reason"] and "NICSPEC_FAMILY=elic" in r["gpu_command"]
    table = modelcard.not_available_table(rows)
    assert table.count("| not available |") == 4 and "ELIC (He et al. 2022" in table
    family_rows = modelcard.not_available_rows()
    assert len(family_rows) == 4 and all(row.count("|") == 9 for row in family_rows)
    (tmp_path / "elic-mse-0.0067.safetensors").write_bytes(b"trained elsewhere")
    assert "elic-mse-0.0067" not in [r["model"] for r in modelcard.not_available()]


def test_models_list_shows_the_elic_rows(capsys: pytest.CaptureFixture[str]) -> None:
    from nicspec_utils.cli import main
    from nicspec_utils.nic import modelcard

    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for r in modelcard.not_available():
        (line,) = [line for line in lines if line.startswith(r["model"] + " ")]
        assert "not available" in line and r["command"] in line
    assert any(line.startswith("sh-mse-0.0067 ") for line in lines)


def test_replot_draws_the_manifest_in_the_books_colours(tmp_path: Any) -> None:
    """nicspec models report --replot: the RD figure from the manifest alone, each curve in the
    colour labels gives it in the chapters; a manifest without numbers is a one-line DataError."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex
    from PIL import Image

    from nicspec_utils.errors import DataError
    from nicspec_utils.labels import CURVE_LADDER, CURVE_VR, colour
    from nicspec_utils.nic import modelcard

    def entry(arch: str, points: dict[str, float]) -> dict[str, Any]:
        kodak = {k: {"bpp": b, "psnr": 25 + 10 * b, "ms_ssim": 0.9, "jpeg2000_psnr": 26 + 8 * b}
                 for k, b in points.items()}  # fmt: skip
        return {"architecture": arch, "metric": "mse", "kodak_real_coding": kodak}

    models = {
        "sh-mse-0.0067": entry("scale-hyperprior", {"default": 0.4}),
        "sh-mse-0.018": entry("scale-hyperprior", {"default": 0.6}),
        "sh-vr-mse": entry("scale-hyperprior-vr", {"0.0067": 0.38}),
    }
    rows = modelcard.rows_from_manifest({"models": models})
    assert sorted(rows) == ["sh-mse-0.0067", "sh-mse-0.018", "sh-vr-mse@0.0067"]
    fig = modelcard.rd_figure(rows)
    drawn = {ln.get_label(): to_hex(ln.get_color()) for ln in fig.axes[0].get_lines()}
    plt.close(fig)
    assert drawn["ours: fixed-rate mse"] == colour(CURVE_LADDER)
    assert drawn["ours: variable-rate"] == colour(CURVE_VR)
    assert drawn["ours: JPEG2000 (OpenJPEG)"] == colour("jpeg2000")
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"models": models}))
    out = modelcard.replot(path, tmp_path / "rd.png")
    with Image.open(out) as image:
        assert image.size[0] > 800
    path.write_text(json.dumps({"models": {}}))
    with pytest.raises(DataError, match="no Kodak numbers"):
        modelcard.replot(path, tmp_path / "rd.png")
