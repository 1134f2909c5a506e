"""Chapter 4's findings: the checks behind claim 4 and the shift prediction, and the sentences
that compare NIC with the linear models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ...spectral import BAND_NAMES


def shift_checks(table: pd.DataFrame) -> dict[str, list[bool]]:
    """The prediction, per model: on each high-frequency corruption G grows more than R
    (``dG > dR``), on each low-frequency one R grows more than G (``dR > dG``), and the passed
    share ``dR`` falls from the low to the medium to the high group (group means)."""
    out: dict[str, list[bool]] = {}
    for model, g in table.groupby("model", sort=False):
        checks = [bool(r.dG > r.dR) for r in g.itertuples() if r.group == "high"]
        checks += [bool(r.dR > r.dG) for r in g.itertuples() if r.group == "low"]
        means = g.groupby("group")["dR"].mean()
        present = [b for b in BAND_NAMES if b in means.index]
        if len(present) >= 2:
            pairs = zip(present, present[1:], strict=False)
            checks.append(all(means[a] > means[b] for a, b in pairs))
        out[str(model)] = checks
    return out


def claim4_checks(
    power: pd.DataFrame,
    eigen: pd.DataFrame,
    closeness: pd.DataFrame,
    ae: pd.DataFrame,
    response: pd.DataFrame,
) -> pd.DataFrame:
    """The checks behind claim 4, one row each (``check``, ``value``, ``passed``).

    ``power``: :func:`power_spectrum_table`; ``eigen``: columns ``patch``, ``exponent``, ``R^2``;
    ``closeness``: :func:`closeness_summary`; ``ae``: :func:`ae_table`; ``response``:
    :func:`response_table`. Thresholds: a power law is a fit with R^2 >= 0.9 (and, for the
    spectrum, alpha > 1: power falls faster than the number of frequencies grows); leading
    components are low-frequency first when rank and radius correlate above 0.5; the AE has
    learned the top-k projection when its span holds >= 99 % of the top-k variance and its MSE is
    within 2 % of PCA's; a map is low-pass when its mean gain for rho >= 1/3 is below 0.1.
    """
    rows: list[tuple[str, str, bool]] = []
    for r in power.to_dict("records"):
        a, r2 = float(r["alpha"]), float(r["R^2"])
        rows.append((f"power spectrum of {r['images']} is a falling power law",
                     f"alpha {a:.2f}, R^2 {r2:.3f}", a > 1 and r2 >= 0.9))  # fmt: skip
    for r in eigen.to_dict("records"):
        b, r2 = float(r["exponent"]), float(r["R^2"])
        rows.append((f"PCA eigenvalues ({r['patch']}x{r['patch']}) follow a power law",
                     f"exponent {b:.2f}, R^2 {r2:.3f}", r2 >= 0.9))  # fmt: skip
    for r in closeness.to_dict("records"):
        rho = float(r["rank-radius correlation"])
        rows.append((f"leading components ({r['patch']}x{r['patch']}) go from low to high "
                     "frequency", f"rank-radius correlation {rho:.2f}", rho > 0.5))  # fmt: skip
    for r in ae.to_dict("records"):
        cap, ratio = float(r["variance captured / PCA"]), float(r["MSE / PCA optimum"])
        rows.append((f"trained AE (k={r['k']}) learns the top-k projection",
                     f"variance {cap:.4f} of PCA's, MSE {ratio:.3f} x optimum",
                     cap >= 0.99 and ratio <= 1.02))  # fmt: skip
    for kind in ("PCA", "AE"):
        high = response[f"{kind} gain, rho>=1/3"]
        rows.append(
            (
                f"{kind} rank-k maps are low-pass",
                f"gain at rho >= 1/3: {high.max():.3f} at most",
                bool((high < 0.1).all()),
            )
        )
        cut = response[f"{kind} cut-off"].to_numpy()
        rows.append((f"{kind} cut-off grows with k",
                     ", ".join(f"{c:.3f}" for c in cut),
                     bool(len(cut) > 1 and np.all(np.diff(cut) > 0))))  # fmt: skip
    return pd.DataFrame(rows, columns=["check", "value", "passed"])


def follow_lines(linear: pd.DataFrame, nic: pd.DataFrame) -> list[str]:
    """Sentences comparing, per corruption, the share of the shift that NIC models pass to R
    (``dR``) and add to G (``dG``) with the linear models' range (all from the tables)."""
    lines = []
    for name in dict.fromkeys(nic["corruption"]):
        lin = linear[linear["corruption"] == name]
        cur = nic[nic["corruption"] == name]
        if lin.empty or cur.empty:
            continue
        lo, hi = float(lin["dR"].min()), float(lin["dR"].max())
        parts = []
        for r in cur.itertuples(index=False):
            where = "within" if lo - 0.05 <= r.dR <= hi + 0.05 else (
                "above" if r.dR > hi else "below")  # fmt: skip
            parts.append(f"{r.model} passes {100 * r.dR:.0f} % and adds {100 * r.dG:.0f} % to G "
                         f"({where} the linear range)")  # fmt: skip
        group = cur["group"].iloc[0]
        lines.append(
            f"- **{name}** ({group}): the linear models pass {100 * lo:.0f}-{100 * hi:.0f} % of "
            f"the shift's energy to R; " + "; ".join(parts) + "."
        )
    return lines


# --- the claims in the one statistical model (#16) -----------------------------------------------


def _row(
    claim: str, measure: str, frame: pd.DataFrame, value: Any, paper: str, n_boot: int, seed: int
) -> dict[str, Any]:
    """One findings row: ``value`` per image of ``frame`` (dataset, image), direction +1 (the
    paper's side is above 0), a cluster bootstrap over images, stratified by dataset when
    there are several; images without a finite value drop out."""
    from ... import findings

    eff = frame[["dataset", "image"]].assign(value=np.asarray(value, dtype=float))
    eff = eff[np.isfinite(eff["value"])]
    strata = "dataset" if eff["dataset"].nunique() > 1 else None
    return findings.check(
        claim, measure, 1, eff, matching="n/a", strata=strata, paper=paper, n_boot=n_boot, seed=seed
    )


def claim4_claims(
    power: Mapping[str, pd.DataFrame],
    pca: pd.DataFrame,
    models: pd.DataFrame,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """The checks of :func:`claim4_checks` as claims with intervals over images (one findings
    row per effect; ``claim`` is the check's name there, so its former result lines up).

    ``power``: label -> :func:`study.image_power_fits` (of that label's images); ``pca``:
    :func:`study.image_pca_fits`; ``models``: :func:`study.image_model_table`. The per-image
    effect of each check is its measure minus the former threshold: ``alpha - 1`` and
    ``R^2 - 0.9`` for each spectrum, ``R^2 - 0.9`` and the rank-radius correlation ``- 0.5`` for
    each patch size's own PCA, ``AE variance / PCA variance - 0.99`` and ``1.02 - AE MSE / PCA
    MSE`` per rank, ``0.1 -`` the share of the image's high band each rank-k map passes
    (weighted by the image's own spectrum, not uniformly over frequencies as the former check),
    and the smallest growth of the cut-off on the image from one rank to the next."""
    rows = []
    for label, t in power.items():
        name = f"power spectrum of {label} is a falling power law"
        rows.append(
            _row(
                name,
                "alpha - 1 per image",
                t,
                t["alpha"] - 1,
                "above 0: power falls faster than 1/rho",
                n_boot,
                seed,
            )
        )
        rows.append(
            _row(
                name,
                "R^2 - 0.9 per image",
                t,
                t["R^2"] - 0.9,
                "above 0: a power law fits",
                n_boot,
                seed,
            )
        )
    for size, t in pca.groupby("patch", sort=True):
        rows.append(
            _row(
                f"PCA eigenvalues ({size}x{size}) follow a power law",
                "R^2 - 0.9 of the image's own PCA",
                t,
                t["R^2"] - 0.9,
                "above 0: a power law fits",
                n_boot,
                seed,
            )
        )
        rows.append(
            _row(
                f"leading components ({size}x{size}) go from low to high frequency",
                "rank-radius correlation - 0.5 of the image's own PCA",
                t,
                t["rank-radius correlation"] - 0.5,
                "above 0: low frequencies first",
                n_boot,
                seed,
            )
        )
    for k, t in models.groupby("k", sort=True):
        name = f"trained AE (k={k}) learns the top-k projection"
        rows.append(
            _row(
                name,
                "AE variance / PCA variance - 0.99 per image",
                t,
                t["AE variance"] / t["PCA variance"] - 0.99,
                "above 0: the AE keeps the top-k variance",
                n_boot,
                seed,
            )
        )
        rows.append(
            _row(
                name,
                "1.02 - AE MSE / PCA MSE per image",
                t,
                1.02 - t["AE MSE"] / t["PCA MSE"],
                "above 0: the AE's MSE is the optimum's",
                n_boot,
                seed,
            )
        )
    per_image = models.groupby(["dataset", "image"], sort=False)
    for kind in ("PCA", "AE"):
        for k, t in models.groupby("k", sort=True):
            rows.append(
                _row(
                    f"{kind} rank-k maps are low-pass",
                    f"k={k}: 0.1 - the share of the image's high band (rho >= 1/3) passed",
                    t,
                    0.1 - t[f"{kind} high pass"],
                    "above 0: the high band is stopped",
                    n_boot,
                    seed,
                )
            )
        growth = (
            per_image.apply(
                lambda g, kind=kind: (
                    float(np.min(np.diff(g.sort_values("k")[f"{kind} cut-off"])))
                    if len(g) > 1
                    else np.nan
                ),
                include_groups=False,
            )
            .rename("growth")
            .reset_index()
        )
        rows.append(
            _row(
                f"{kind} cut-off grows with k",
                "smallest cut-off growth from one rank to the next on the image",
                growth,
                growth["growth"],
                "above 0: the cut-off grows with k",
                n_boot,
                seed,
            )
        )
    return pd.DataFrame(rows)


# per group: the error that grows more, the other, and what the low-pass filter does
_SHIFT_SIDES = {"high": ("dG", "dR", "stops"), "low": ("dR", "dG", "passes")}


def shift_claims(images: pd.DataFrame, way: str, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The checks of :func:`shift_checks` per image (``images``: :func:`study.shift_images` or
    :func:`study.closed_form_images`): per model, ``dG - dR`` on each high-frequency corruption
    and ``dR - dG`` on each low-frequency one, and per image the fall of ``dR`` from the low to
    the medium and from the medium to the high group (group means within the image)."""
    rows = []
    for model, g in images.groupby("model", sort=False):
        claim = f"shift prediction, {way}: {model}"
        for name, t in g.groupby("corruption", sort=False):
            group = str(t["group"].iloc[0])
            if group in _SHIFT_SIDES:
                grows, other, what = _SHIFT_SIDES[group]
                rows.append(_row(claim, f"{name} ({group}): {grows} - {other} per image", t,
                                 t[grows] - t[other], f"above 0: the filter {what} the shift",
                                 n_boot, seed))  # fmt: skip
        means = g.pivot_table(index=["dataset", "image"], columns="group", values="dR")
        present = [b for b in BAND_NAMES if b in means.columns]
        for a, b in zip(present, present[1:], strict=False):
            t = means.reset_index()
            rows.append(
                _row(
                    claim,
                    f"dR {a} minus dR {b} group, per image",
                    t,
                    t[a] - t[b],
                    "above 0: the passed share falls with frequency",
                    n_boot,
                    seed,
                )
            )
    return pd.DataFrame(rows)


def combined(checks: pd.DataFrame) -> pd.DataFrame:
    """One verdict per claim: :func:`stats.combine` of its rows (``n`` rows, and how many of
    them are reproduced, contradicted, inconclusive)."""
    from ... import stats

    rows = []
    for claim, g in checks.groupby("claim", sort=False):
        words = [v for v in g["verdict"] if v in stats.VERDICTS]
        rows.append(
            {
                "claim": claim,
                "rows": len(g),
                **{v: words.count(v) for v in stats.VERDICTS},
                "verdict": stats.combine(words),
            }
        )
    return pd.DataFrame(rows)


def overall(checks: pd.DataFrame) -> str:
    """One word for every row of ``checks``: :func:`stats.combine` of their verdicts."""
    from ... import stats

    return stats.combine(v for v in checks["verdict"] if v in stats.VERDICTS)


def former_results(table: pd.DataFrame) -> dict[str, str]:
    """:func:`claim4_checks` as ``was`` entries: check -> "passed (value)" / "failed (value)"."""
    return {
        str(r.check): f"{'passed' if r.passed else 'failed'} ({r.value})"
        for r in table.itertuples()
    }


def change_sentence(
    name: str, former: str, former_counts: tuple[int, int], checks: pd.DataFrame
) -> str:
    """Markdown: a claim's former verdict (checks passed of run, a threshold on each point
    estimate) against its verdict from the intervals, with the numbers of both."""
    from ... import stats

    words = [v for v in checks["verdict"] if v in stats.VERDICTS]
    new = overall(checks)
    passed, run = former_counts
    counts = ", ".join(f"{words.count(v)} {v}" for v in stats.VERDICTS)
    text = (
        f"**{name}: {new}** (was *{former}*: {passed} of {run} checks passed on point "
        f"estimates). From the intervals over images: {counts} of {len(checks)} rows."
    )
    if new != former:
        text += f" The verdict changed from *{former}* to *{new}*."
    return text
