"""Chapter 4's findings: the checks behind claim 4 and the shift prediction, and the sentences
that compare NIC with the linear models."""

from __future__ import annotations

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
