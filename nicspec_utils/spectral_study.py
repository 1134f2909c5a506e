"""Chapter 3: D, G, R spectra of NIC vs rate-matched JPEG2000, band shares, verdicts.

Every point is one cached :func:`evaluate.evaluate` run; :func:`run_point` returns its metrics
and the mean spectra of its ``spectra.npz`` (``D`` for a clean input; ``G``, ``R``, ``C`` for a
corrupted one; each also ``*_rounded``). Band shares are those of :func:`spectral.band_energies`
applied to the mean magnitude spectrum, so they describe the maps that are drawn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .spectral import BAND_NAMES, band_energies, radial_profile, zero_dc

J2K = "jpeg2000"
# band shares of two D spectra that differ by more than this (total variation) count as different
ARTEFACT_TV = 0.05


@dataclass
class Point:
    """One evaluation: its metrics and its mean spectra (keys of ``spectra.npz``)."""

    metrics: dict[str, Any]
    spectra: dict[str, np.ndarray] = field(repr=False)

    @property
    def bpp(self) -> float:
        """Mean bits per pixel."""
        return float(self.metrics["bpp"])


def load_point(metrics_path: str | Path) -> Point:
    """Read a finished evaluation (metrics.json and the spectra.npz beside it)."""
    path = Path(metrics_path)
    metrics = json.loads(path.read_text())
    with np.load(path.parent / metrics.get("spectra", "spectra.npz")) as z:
        spectra = {k: np.asarray(z[k]) for k in z.files}
    return Point(metrics, spectra)


def run_point(
    codec: str,
    dataset: str,
    ids: Sequence[str],
    *,
    corruption: str | None = None,
    severity: int | None = None,
    bpp: float | None = None,
    seed: int = 0,
    estimate: bool = False,
    out: str | Path | None = None,
) -> Point:
    """Evaluate (cached) one codec: a NIC model ``nic:<name>`` or JPEG2000 at ``bpp``."""
    from . import evaluate as ev

    is_nic = codec.startswith("nic:")
    path = ev.evaluate(
        codec,
        dataset,
        image_ids=list(ids),
        corruption=corruption,
        severity=severity if corruption else None,
        bpp=None if is_nic else bpp,
        seed=seed,
        out=out,
        estimate=bool(estimate) and is_nic,
        progress=False,
    )
    return load_point(path)


def rate_matched_j2k(nic: Point, dataset: str, ids: Sequence[str], **kw: Any) -> Point:
    """JPEG2000 at the NIC point's mean bpp (rounded to 4 decimals) on the same inputs."""
    return run_point(J2K, dataset, ids, bpp=round(nic.bpp, 4), **kw)


def shares(spectrum: np.ndarray) -> dict[str, float]:
    """Low / medium / high shares of a mean magnitude spectrum's energy (DC excluded)."""
    return band_energies(spectrum)


def energy(spectrum: np.ndarray) -> float:
    """Total energy ``sum |F|**2`` of a magnitude spectrum, DC excluded."""
    return float((zero_dc(spectrum) ** 2).sum())


def share_table(rows: Sequence[Mapping[str, Any]], measure: str) -> pd.DataFrame:
    """One row per entry of ``rows`` (its keys other than ``point``, plus the band shares of
    ``point.spectra[measure]`` and the total energy of that spectrum, DC excluded)."""
    out = []
    for row in rows:
        point: Point = row["point"]
        spec = point.spectra[measure]
        rec = {k: v for k, v in row.items() if k != "point"}
        rec.update(shares(spec))
        rec["energy"] = energy(spec)
        out.append(rec)
    cols = [*(k for k in (rows[0] if rows else {}) if k != "point"), *BAND_NAMES, "energy"]
    return pd.DataFrame(out, columns=cols)


def tv_distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Total variation distance between two band-share vectors (0: same, 1: disjoint)."""
    return 0.5 * sum(abs(float(a[k]) - float(b[k])) for k in BAND_NAMES)


# --- verdicts -----------------------------------------------------------------------------------


def verdict(checks: Sequence[bool]) -> str:
    """All checks pass -> reproduced, some -> partly, none -> not reproduced; none run -> n/a."""
    if not checks:
        return "not testable here"
    if all(checks):
        return "reproduced"
    return "partly reproduced" if any(checks) else "not reproduced"


def claim1_checks(table: pd.DataFrame) -> list[bool]:
    """Per NIC model: its D puts a larger share of energy in the high band than JPEG2000's.

    ``table`` has columns ``model``, ``codec`` (``NIC`` / ``JPEG2000``) and the band shares.
    """
    checks = []
    for _, g in table.groupby("model", sort=False):
        nic = g.loc[g["codec"] == "NIC", "high"]
        j2k = g.loc[g["codec"] == "JPEG2000", "high"]
        if len(nic) and len(j2k):
            checks.append(bool(nic.iloc[0] > j2k.iloc[0]))
    return checks


def group_gap(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """NIC minus JPEG2000 of ``value`` per (model, corruption), with the corruption's group."""
    idx = ["model", "corruption", "group"]
    wide = table.pivot_table(index=idx, columns="codec", values=value, observed=True)
    wide = wide.reset_index()
    wide["gap"] = wide["NIC"] - wide["JPEG2000"]
    return wide[[*idx, "gap"]]


def claim2_checks(table: pd.DataFrame) -> list[bool]:
    """Per model: NIC's PSNR w.r.t. its (corrupted) input, relative to JPEG2000, is lower on the
    high-frequency corruptions than on the low/medium ones (its G grows for high frequencies).

    ``table``: columns model, corruption, group, codec, psnr. Needs a high and a low/medium one.
    """
    gaps = group_gap(table, "psnr")
    checks = []
    for _, g in gaps.groupby("model", sort=False):
        high = g.loc[g["group"] == "high", "gap"]
        rest = g.loc[g["group"] != "high", "gap"]
        if len(high) and len(rest):
            checks.append(bool(high.mean() < rest.mean()))
    return checks


def claim3_checks(table: pd.DataFrame) -> list[bool]:
    """Per (model, high-frequency corruption): NIC's R energy is below JPEG2000's.

    ``table``: columns model, corruption, group, codec, energy (of R).
    """
    gaps = group_gap(table, "energy")
    return [bool(g < 0) for g in gaps.loc[gaps["group"] == "high", "gap"]]


# --- plots --------------------------------------------------------------------------------------


def plot_maps(spectra: Mapping[str, np.ndarray], title: str = "", ncols: int = 4) -> Any:
    """Mean |F| maps (DC zeroed) on one shared logarithmic colour scale, one panel each."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    maps = {k: zero_dc(v) for k, v in spectra.items()}
    positive = np.concatenate([m[m > 0].ravel() for m in maps.values()])
    vmin, vmax = (
        (float(np.percentile(positive, 1)), float(positive.max())) if positive.size else (1, 10)
    )
    n = len(maps)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False)
    image = None
    for ax, (label, m) in zip(axes.ravel(), maps.items(), strict=False):
        h, w = m.shape
        extent = (-0.5, 0.5 - 1 / w, 0.5 - 1 / h, -0.5)
        image = ax.imshow(
            np.maximum(m, vmin), norm=LogNorm(vmin=vmin, vmax=vmax), cmap="viridis", extent=extent
        )
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("fx (cycles/px)", fontsize=8)
        ax.set_ylabel("fy (cycles/px)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="mean |F|")
    if title:
        fig.suptitle(title)
    return fig


def plot_profiles(spectra: Mapping[str, np.ndarray], title: str = "") -> Any:
    """Radial profiles of mean |F| (DC excluded), log scale, with the band edges marked."""
    import matplotlib.pyplot as plt

    from .spectral import BAND_EDGES

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for label, spec in spectra.items():
        radius, profile = radial_profile(zero_dc(spec))
        ax.plot(radius, profile, label=label)
    for edge in BAND_EDGES:
        ax.axvline(edge, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("radial frequency (cycles/px)")
    ax.set_ylabel("mean |F|")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig
