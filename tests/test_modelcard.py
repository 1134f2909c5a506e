"""Quality bars of the shipped family (``modelcard.quality_bars``) on synthetic rows."""

from __future__ import annotations

import math
from typing import Any

import pytest

from nicspec_utils.modelcard import VR_EVAL_LAMBDAS, quality_bars


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
        "vr@0.0018": _row("vr", 0.15, 27.0, 0.940, 0.0018, architecture="scale-hyperprior-vr"),
        "ms": _row("ms", msssim_bpp, 25.0, msssim_value, metric="ms-ssim"),
    }
    ladder = zip(VR_EVAL_LAMBDAS, (0.2, 0.4, 0.6, 0.8), (28, 30, 31.5, 33), strict=True)
    for lmbda, bpp, psnr in ladder:
        rows[f"vr@{lmbda}"] = _row("vr", bpp, psnr, 0.96, lmbda, architecture="scale-hyperprior-vr")
    return rows


def _checks(bars: dict[str, Any], word: str) -> list[dict[str, Any]]:
    return [c for c in bars["checks"] if c["check"].startswith(word)]


def test_msssim_model_below_the_fixed_ladder_is_compared_with_the_vr_extension() -> None:
    bars = quality_bars(_family(0.175, 0.950))  # the MSE curve there: 0.940..0.950 -> 0.945
    (check,) = _checks(bars, "ms:")
    assert check["value"] == pytest.approx(0.950 - 0.945, abs=2e-3) and check["pass"]
    bars = quality_bars(_family(0.175, 0.930))
    (check,) = _checks(bars, "ms:")
    assert not check["pass"]


def test_vr_bar_only_at_the_ladder_lambdas() -> None:
    bars = quality_bars(_family(0.3, 0.99))
    vr = _checks(bars, "vr@")
    assert len(vr) == len(VR_EVAL_LAMBDAS)  # no bar for the extension point (0.0018)
    # vr@0.0483 at 0.8 bpp lies outside the fixed curve (0.2-0.6): not measurable, fails
    outside = [c for c in vr if c["check"].startswith("vr@0.0483")][0]
    assert outside["value"] is None or math.isnan(outside["value"])
    assert not outside["pass"]
    assert all(c["pass"] for c in vr if c is not outside)
