"""Chapter 3: D, G, R spectra of NIC vs rate-matched JPEG2000, band shares, verdicts.

Every point is one cached :func:`evaluate.evaluate` run; :func:`run_point` returns its metrics
and the mean spectra of its ``spectra.npz`` (``D`` for a clean input; ``G``, ``R``, ``C`` for a
corrupted one; each also ``*_rounded``). Band shares are those of :func:`spectral.band_energies`
applied to the mean magnitude spectrum, so they describe the maps that are drawn.

The studies return *rows*: dicts with the keys of :data:`ROW_KEYS` plus ``point`` (a
:class:`Point`); :func:`share_table` turns rows into band-share tables, the ``claim*_table``
functions into the tables that test the paper's claims, :func:`spectra_browser` into a
kernel-free widget of pre-rendered maps.

Verdicts (issue #16) come from :mod:`nicspec_utils.stats`: every claim is an effect computed
*per image* and paired (NIC and JPEG2000 on the same image, corruption and severity, read from
the evaluations' per-image records), under two matchings: JPEG2000 at the NIC's mean bpp
(``bpp``) and JPEG2000 at each image's NIC PSNR w.r.t. the codec's input within
:data:`ratematch.PSNR_TOL` dB (``psnr``: the NIC row's ``psnr_matched`` point), and for the
spectral measures with and without the reference code's rounding. :func:`unit_table` collects
the per-image values, :func:`claim_checks` the effects, seeded cluster-bootstrap intervals over
images and verdicts, :func:`verdict_grid` and :func:`changes_markdown` what the chapter prints.
Every NIC point is entropy coded for real (its bpp is the coded size, not the likelihood
estimate), so a bpp match compares like with like.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from .. import findings
from ..codecs.ratematch import PSNR_TOL, psnr_misses
from ..engines.evaluate import Point, run_point
from ..engines.scheduler import sweep
from ..errors import UsageError
from ..findings import verdict
from ..spectral import BAND_NAMES, band_energies, radial_profile, zero_dc

J2K = "jpeg2000"
NIC = "NIC"
JPEG2000 = "JPEG2000"
# band shares of two D spectra that differ by more than this (total variation) count as different
ARTEFACT_TV = 0.05
ROW_KEYS = (
    "dataset", "model", "codec", "corruption", "group", "severity", "bpp", "psnr", "psnr_wrt_clean",
)  # fmt: skip
# a NIC row's JPEG2000 matched in PSNR image by image (a Point; not a table column)
PSNR_KEY = "psnr_matched"
MATCHINGS = ("bpp", "psnr")
UNMATCHED_PSNR = 99.0  # the target of a lossless NIC image: out of JPEG2000's reach, unmatched


def rate_matched_j2k(nic: Point, dataset: str, ids: Sequence[str], **kw: Any) -> Point:
    """JPEG2000 at the NIC point's mean bpp (rounded to 4 decimals) on the same inputs."""
    return run_point(J2K, dataset, ids, bpp=round(nic.bpp, 4), **kw)


def psnr_targets(nic: Point) -> list[tuple[str, float]]:
    """(image id, PSNR w.r.t. the codec's input) of each image of a NIC point, in its order
    (a lossless image: :data:`UNMATCHED_PSNR`)."""
    out = []
    for rec in nic.metrics.get("per_image", []):
        p = rec.get("psnr")
        out.append((str(rec["id"]), UNMATCHED_PSNR if p is None else float(p)))
    return out


def psnr_matched_j2k(nic: Point, dataset: str, **kw: Any) -> Point:
    """JPEG2000 on the NIC point's images, each at the compression ratio that gives the NIC's
    PSNR on that image within :data:`ratematch.PSNR_TOL` dB (targets in the codec's
    configuration, so the store keys them). A target JPEG2000 cannot reach is coded at the
    nearest ratio and reported by :func:`psnr_report`."""
    targets = psnr_targets(nic)
    return run_point(J2K, dataset, [i for i, _ in targets], target_psnr=targets, **kw)


def psnr_report(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per image whose PSNR-matched JPEG2000 missed the NIC's PSNR by more than the
    tolerance (which image, which NIC row and why); empty when all are matched."""
    lines = []
    for row in rows:
        match = row.get(PSNR_KEY)
        if match is None:
            continue
        where = f"{row['dataset']} {row['model']}" + (
            f" {row['corruption']}-{row['severity']}" if row.get("corruption") else " clean"
        )
        misses = psnr_misses(
            match.metrics.get("per_image", []), psnr_targets(row["point"]), PSNR_TOL
        )
        lines += [f"{where}, {m}" for m in misses]
    return lines


# --- studies --------------------------------------------------------------------------------------


def parse_variant(spec: str, default_lmbda: float | None = None) -> tuple[str, float | None]:
    """``"sh-vr-mse@0.0067"`` -> ``("sh-vr-mse", 0.0067)``; a variable-rate model named without
    ``@`` takes ``default_lmbda``; a fixed-rate model takes none."""
    from ..labels import CURVE_VR, nic_kind

    name, sep, lam = spec.strip().partition("@")
    name = name.strip().removeprefix("nic:")
    variable = nic_kind(name) == CURVE_VR
    if sep:
        if not variable:
            raise UsageError(f"{name} is a fixed-rate model; it takes no @lambda")
        try:
            return name, float(lam)
        except ValueError:
            raise UsageError(f"lambda of {name} must be a number, got {lam!r}") from None
    if variable and default_lmbda is None:
        raise UsageError(f"{name} is variable-rate: write {name}@LAMBDA")
    return name, (float(default_lmbda) if variable and default_lmbda is not None else None)


def model_label(model: str, lmbda: float | None = None) -> str:
    """A model's name in tables (a variable-rate model with its lambda)."""
    return model if lmbda is None else f"{model} λ={lmbda:g}"


def model_lmbda(model: str) -> float | None:
    """The training lambda of a shipped fixed-rate model (manifest), None if unknown."""
    from ..nic.models import shipped_models

    value = shipped_models().get(model, {}).get("lmbda")
    return None if value is None else float(value)


def pair_rows(
    model: str,
    dataset: str,
    ids: Sequence[str],
    *,
    lmbda: float | None = None,
    corruption: str | None = None,
    severity: int | None = None,
    psnr_match: bool = True,
    **kw: Any,
) -> list[dict[str, Any]]:
    """One NIC model (real entropy coding) and JPEG2000 at its bpp on the same inputs: two rows
    (:data:`ROW_KEYS`); with ``psnr_match`` the NIC row also holds, under :data:`PSNR_KEY`,
    JPEG2000 matched to its PSNR image by image (:func:`psnr_matched_j2k`)."""
    from ..corruptions import group_of

    ckw = {"corruption": corruption, "severity": severity if corruption else None, **kw}
    nic = run_point(f"nic:{model}", dataset, ids, lmbda=lmbda, estimate=False, **ckw)
    j2k = rate_matched_j2k(nic, dataset, ids, **ckw)
    rows = []
    for codec, p in ((NIC, nic), (JPEG2000, j2k)):
        rows.append({
            "dataset": dataset, "model": model_label(model, lmbda), "codec": codec,
            "corruption": corruption, "group": group_of(corruption) if corruption else None,
            "severity": int(severity) if corruption and severity is not None else None,
            "bpp": p.bpp, "psnr": p.metrics.get("psnr"),
            "psnr_wrt_clean": p.metrics.get("psnr_wrt_clean"), "point": p,
        })  # fmt: skip
    if psnr_match:
        rows[0][PSNR_KEY] = psnr_matched_j2k(nic, dataset, **ckw)
    return rows


@sweep
def d_study(
    models: Sequence[str], datasets: Mapping[str, Sequence[str]], **kw: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    """D rows of every (dataset, model), each with its rate- and PSNR-matched JPEG2000
    (:func:`pair_rows`, keywords too); datasets without images are skipped."""
    rows = []
    for dataset, ids in datasets.items():
        if not ids:
            continue
        for model in models:
            rows += pair_rows(model, dataset, ids, **kw)
    return rows


@sweep
def gr_study(
    models: Sequence[str],
    dataset: str,
    ids: Sequence[str],
    corruptions: Sequence[str],
    severities: Sequence[int],
    **kw: Any,
) -> list[dict[str, Any]]:
    """G/R rows of every (model, corruption, severity), each with JPEG2000 rate-matched to the
    NIC model's bpp (and PSNR-matched image by image) on that very corrupted input."""
    rows = []
    for model in models:
        for name in corruptions:
            for sev in severities:
                rows += pair_rows(model, dataset, ids, corruption=name, severity=int(sev), **kw)
    return rows


def select(rows: Sequence[Mapping[str, Any]], **match: Any) -> list[Mapping[str, Any]]:
    """The rows whose keys equal every ``match`` value (a list or tuple value: any of those)."""

    def ok(row: Mapping[str, Any]) -> bool:
        return all(
            row.get(k) in v if isinstance(v, (list, tuple, set)) else row.get(k) == v
            for k, v in match.items()
        )

    return [r for r in rows if ok(r)]


# --- tables ---------------------------------------------------------------------------------------


def shares(spectrum: np.ndarray) -> dict[str, float]:
    """Low / medium / high shares of a mean magnitude spectrum's energy (DC excluded)."""
    return band_energies(spectrum)


def energy(spectrum: np.ndarray) -> float:
    """Total energy ``sum |F|**2`` of a magnitude spectrum, DC excluded."""
    return float((zero_dc(spectrum) ** 2).sum())


def share_table(
    rows: Sequence[Mapping[str, Any]], measure: str, drop: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per entry of ``rows`` (its keys other than ``point`` and ``drop``, plus the band
    shares of ``point.spectra[measure]`` and the total energy of that spectrum, DC excluded)."""
    skip = {"point", PSNR_KEY, *drop}
    out = []
    for row in rows:
        point: Point = row["point"]
        spec = point.spectra[measure]
        rec = {k: v for k, v in row.items() if k not in skip}
        rec.update(shares(spec))
        rec["energy"] = energy(spec)
        out.append(rec)
    cols = [*(k for k in (rows[0] if rows else {}) if k not in skip), *BAND_NAMES, "energy"]
    return pd.DataFrame(out, columns=cols)


def tv_distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Total variation distance between two band-share vectors (0: same, 1: disjoint)."""
    return 0.5 * sum(abs(float(a[k]) - float(b[k])) for k in BAND_NAMES)


def _keys(table: pd.DataFrame, *candidates: str) -> list[str]:
    """The candidate columns that ``table`` has and that are not all missing."""
    return [c for c in candidates if c in table and table[c].notna().any()]


def paired(table: pd.DataFrame, values: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
    """NIC and JPEG2000 side by side: one row per ``keys``, columns ``<value> NIC`` and
    ``<value> JPEG2000`` for each of ``values``."""
    wide = table.pivot_table(index=list(keys), columns="codec", values=list(values),
                             observed=True, sort=False)  # fmt: skip
    wide.columns = [f"{v} {c}" for v, c in wide.columns]
    return wide.reset_index()


def interpolate_shares(ladder: pd.DataFrame, bpp: float) -> tuple[dict[str, float], bool]:
    """Band shares of an MSE ladder (rows with ``bpp`` and the shares) at ``bpp``, linear in
    log bpp between the two nearest rungs; the second value says whether ``bpp`` lies inside the
    ladder's range (outside: the nearest rung's shares, clamped)."""
    if ladder.empty:
        raise UsageError("no ladder points to interpolate")
    lad = ladder.sort_values("bpp")
    x = np.log(lad["bpp"].to_numpy(dtype=float))
    t = math.log(float(bpp))
    inside = bool(x[0] <= t <= x[-1])
    out = {b: float(np.interp(t, x, lad[b].to_numpy(dtype=float))) for b in BAND_NAMES}
    total = sum(out.values())
    return ({k: v / total for k, v in out.items()} if total else out), inside


# --- verdicts -----------------------------------------------------------------------------------


def claim1_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset,) model: the high-band share of D for NIC and for JPEG2000 at its bpp, their
    difference and whether NIC's is larger (``holds``, claim 1).

    ``table`` has columns ``model``, ``codec`` (``NIC`` / ``JPEG2000``), ``high`` and optionally
    ``dataset`` and ``bpp``.
    """
    keys = _keys(table, "dataset", "model")
    values = ["high", *(["bpp"] if "bpp" in table else [])]
    wide = paired(table, values, keys)
    if not {"high NIC", "high JPEG2000"} <= set(wide):
        return wide.assign(**{"high gap": [], "holds": []}) if wide.empty else wide
    wide = wide.dropna(subset=["high NIC", "high JPEG2000"])
    wide["high gap"] = wide["high NIC"] - wide["high JPEG2000"]
    wide["holds"] = wide["high gap"] > 0
    cols = [*keys, *(["bpp NIC"] if "bpp NIC" in wide else []), "high NIC", "high JPEG2000"]
    return wide[[*cols, "high gap", "holds"]].reset_index(drop=True)


def claim1_checks(table: pd.DataFrame) -> list[bool]:
    """Per (dataset,) NIC model: its D puts a larger share of energy in the high band than
    JPEG2000's at the same bpp (see :func:`claim1_table`)."""
    t = claim1_table(table)
    return [bool(v) for v in t["holds"]] if "holds" in t else []


def group_gap(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """NIC minus JPEG2000 of ``value`` per (dataset, model, corruption, group, severity: those
    present), with the corruption's group."""
    idx = _keys(table, "dataset", "model", "corruption", "group", "severity")
    wide = table.pivot_table(index=idx, columns="codec", values=value, observed=True, sort=False)
    wide = wide.reset_index()
    wide["gap"] = wide["NIC"] - wide["JPEG2000"]
    return wide[[*idx, "gap"]]


def claim2_table(table: pd.DataFrame, value: str = "psnr") -> pd.DataFrame:
    """Per model: the mean NIC − JPEG2000 gap of ``value`` (PSNR w.r.t. the corrupted input)
    over the corruptions of each group, and whether the high group's gap is below the mean gap
    of the low/medium corruptions (``holds``, claim 2)."""
    gaps = group_gap(table, value)
    out = []
    for model, g in gaps.groupby("model", sort=False):
        rec: dict[str, Any] = {"model": model}
        for grp in BAND_NAMES:
            sel = g.loc[g["group"] == grp, "gap"]
            rec[f"{grp} gap"] = float(sel.mean()) if len(sel) else float("nan")
        high = g.loc[g["group"] == "high", "gap"]
        rest = g.loc[g["group"] != "high", "gap"]
        rec["low/medium gap"] = float(rest.mean()) if len(rest) else float("nan")
        rec["holds"] = bool(high.mean() < rest.mean()) if len(high) and len(rest) else None
        out.append(rec)
    cols = ["model", *(f"{b} gap" for b in BAND_NAMES), "low/medium gap", "holds"]
    return pd.DataFrame(out, columns=cols)


def claim2_checks(table: pd.DataFrame) -> list[bool]:
    """Per model: NIC's PSNR w.r.t. its (corrupted) input, relative to JPEG2000, is lower on the
    high-frequency corruptions than on the low/medium ones (its G grows for high frequencies).

    ``table``: columns model, corruption, group, codec, psnr. Needs a high and a low/medium one.
    """
    t = claim2_table(table)
    return [bool(v) for v in t["holds"] if v is not None]


def claim3_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, corruption): R energy (and high-band R energy) of NIC and of JPEG2000 at its
    bpp, the ratio NIC / JPEG2000, and for high-frequency corruptions whether NIC's R energy is
    the lower (``holds``, claim 3; None for the other groups)."""
    t = table.copy()
    t["high energy"] = t["high"] * t["energy"]
    keys = _keys(t, "dataset", "model", "corruption", "group", "severity")
    values = ["energy", "high energy", *(["psnr_wrt_clean"] if "psnr_wrt_clean" in t else [])]
    wide = paired(t, values, keys)
    wide["ratio"] = wide["energy NIC"] / wide["energy JPEG2000"]
    wide["high ratio"] = wide["high energy NIC"] / wide["high energy JPEG2000"]
    wide["holds"] = [
        bool(r < 1) if g == "high" else None
        for r, g in zip(wide["ratio"], wide["group"], strict=True)
    ]
    return wide


def claim3_checks(table: pd.DataFrame) -> list[bool]:
    """Per (model, high-frequency corruption): NIC's R energy is below JPEG2000's.

    ``table``: columns model, corruption, group, codec, energy (of R).
    """
    gaps = group_gap(table, "energy")
    return [bool(g < 0) for g in gaps.loc[gaps["group"] == "high", "gap"]]


# --- severity trends ----------------------------------------------------------------------------


def trend_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """G and R band shares and energies of corrupted rows, long form (column ``measure``), with
    the high-band energy ``high energy``."""
    parts = []
    for m in ("G", "R"):
        t = share_table(rows, m, drop=("dataset",))
        t.insert(t.columns.get_loc("low"), "measure", m)
        parts.append(t)
    out = pd.concat(parts, ignore_index=True)
    out["high energy"] = out["high"] * out["energy"]
    return out


def trend_ratios(trend: pd.DataFrame) -> pd.DataFrame:
    """Per (model, corruption, group, severity, measure): energy and high-band share of NIC and of
    JPEG2000 at its bpp, and the energy ratio NIC / JPEG2000."""
    keys = ["model", "corruption", "group", "severity", "measure"]
    wide = paired(trend, ["bpp", "energy", "high"], keys)
    wide["ratio"] = wide["energy NIC"] / wide["energy JPEG2000"]
    wide = wide.drop(columns=["bpp JPEG2000"]).rename(columns={"bpp NIC": "bpp"})
    return wide.sort_values(keys).reset_index(drop=True)


def trend_checks(ratios: pd.DataFrame) -> tuple[list[bool], list[bool]]:
    """Claims 2 and 3 at each severity of the trend study.

    Claim 2, per (model, severity): the NIC / JPEG2000 ratio of G energy on the high-frequency
    corruptions is above its geometric mean over the low/medium ones. Claim 3, per (model,
    high-frequency corruption, severity): NIC's R energy below JPEG2000's (ratio < 1).
    """
    c2: list[bool] = []
    g = ratios[ratios["measure"] == "G"]
    for _, s in g.groupby(["model", "severity"], sort=True):
        high = np.log(s.loc[s["group"] == "high", "ratio"].to_numpy(dtype=float))
        rest = np.log(s.loc[s["group"] != "high", "ratio"].to_numpy(dtype=float))
        if high.size and rest.size:
            c2.append(bool(high.mean() > rest.mean()))
    r = ratios[(ratios["measure"] == "R") & (ratios["group"] == "high")]
    c3 = [bool(v < 1) for v in r["ratio"]]
    return c2, c3


def plot_trend(trend: pd.DataFrame, title: str = "") -> Any:
    """Energy (log) and high-band share of G and R against severity, one column per corruption:
    NIC solid, JPEG2000 at the NIC's bpp dashed; G blue, R orange."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(trend["corruption"]))
    fig, axes = plt.subplots(2, len(names), figsize=(3.4 * len(names), 5.6), squeeze=False)
    colours = {"G": "tab:blue", "R": "tab:orange"}
    styles = {NIC: "-", JPEG2000: "--"}
    for j, name in enumerate(names):
        sub = trend[trend["corruption"] == name]
        for (m, codec), s in sub.groupby(["measure", "codec"], sort=False):
            s = s.sort_values("severity")
            kw = {"color": colours[str(m)], "ls": styles.get(str(codec), ":"), "marker": "o",
                  "ms": 3, "label": f"{m} {codec}"}  # fmt: skip
            axes[0, j].plot(s["severity"], s["energy"], **kw)
            axes[1, j].plot(s["severity"], s["high"], **kw)
        group = sub["group"].iloc[0] if len(sub) else ""
        axes[0, j].set_title(f"{name.replace('_', ' ')} ({group})", fontsize=9)
        axes[0, j].set_yscale("log")
        axes[1, j].set_ylim(0, 1)
        axes[1, j].set_xlabel("severity")
        for ax in axes[:, j]:
            ax.tick_params(labelsize=7)
            ax.set_xticks(sorted(set(sub["severity"])))
    axes[0, 0].set_ylabel("energy (DC excluded)")
    axes[1, 0].set_ylabel("high-band share")
    axes[0, -1].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- variants -----------------------------------------------------------------------------------


@sweep
def variant_study(
    base: str,
    variants: Sequence[tuple[str, float | None]],
    dataset: str,
    ids: Sequence[str],
    noise: str,
    severity: int,
    **kw: Any,
) -> list[dict[str, Any]]:
    """The base model and each ``(model, lmbda)`` variant on clean and on ``noise`` inputs, each
    with JPEG2000 rate-matched to *that* model's bpp; rows also carry the model's ``kind``."""
    from ..labels import nic_kind

    rows = []
    for model, lam in [(base, None), *variants]:
        for corruption in (None, noise):
            got = pair_rows(
                model, dataset, ids, lmbda=lam, corruption=corruption, severity=severity, **kw,
            )  # fmt: skip
            for r in got:
                r["kind"] = "base" if model == base and lam is None else nic_kind(model)
            rows += got
    return rows


def variant_table(
    rows: Sequence[Mapping[str, Any]], base: str, ladder: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per model of :func:`variant_study`: its clean bpp (and relative to the base
    model's), D energy and high-band share next to JPEG2000 at the model's own bpp, the high-band
    R energy on the noise with its ratio to JPEG2000's, and how far its D band shares lie (total
    variation) from the base model's and from the MSE ladder's at the same bpp (``ladder``: NIC
    rows of the ladder's D table, see :func:`interpolate_shares`)."""
    clean = [r for r in rows if r["corruption"] is None]
    noisy = [r for r in rows if r["corruption"] is not None]
    d = share_table(clean, "D")
    r = share_table(noisy, "R")
    r["high energy"] = r["high"] * r["energy"]
    out = []
    base_d = d[(d["model"] == base) & (d["codec"] == NIC)].iloc[0]
    for label in dict.fromkeys(d["model"]):
        dn = d[(d["model"] == label) & (d["codec"] == NIC)].iloc[0]
        dj = d[(d["model"] == label) & (d["codec"] == JPEG2000)].iloc[0]
        rn = r[(r["model"] == label) & (r["codec"] == NIC)].iloc[0]
        rj = r[(r["model"] == label) & (r["codec"] == JPEG2000)].iloc[0]
        rec = {
            "model": label, "kind": dn["kind"], "bpp": dn["bpp"],
            "bpp vs base": dn["bpp"] / base_d["bpp"] - 1, "PSNR": dn["psnr"],
            "PSNR JPEG2000": dj["psnr"], "D energy / JPEG2000": dn["energy"] / dj["energy"],
            "D high": dn["high"], "D high JPEG2000": dj["high"],
            "noise bpp": rn["bpp"], "R high energy": rn["high energy"],
            "R high / JPEG2000": rn["high energy"] / rj["high energy"],
            "PSNR clean": rn["psnr_wrt_clean"], "PSNR clean JPEG2000": rj["psnr_wrt_clean"],
            "TV vs base": tv_distance(dn, base_d),
        }  # fmt: skip
        if ladder is not None and not ladder.empty:
            at, inside = interpolate_shares(ladder, float(dn["bpp"]))
            rec["TV vs MSE at bpp"] = tv_distance(dn, at)
            rec["within ladder"] = inside
        out.append(rec)
    return pd.DataFrame(out)


def claim5_checks(table: pd.DataFrame, base: str) -> pd.DataFrame:
    """Claim 5 on :func:`variant_table`, each check at matched bpp.

    Pruned models: the high-band R energy on the noise relative to JPEG2000 at the model's own bpp
    is below the same ratio of the base model. MS-SSIM models: the D band shares differ by more
    than :data:`ARTEFACT_TV` (total variation) from the MSE ladder's at the same bpp (from the base
    model's when no ladder column is there). Columns: model, check, value, threshold, holds.
    """
    from ..labels import CURVE_MSSSIM, CURVE_PRUNED

    b = table[table["model"] == base].iloc[0]
    out = []
    for _, v in table.iterrows():
        if v["kind"] == CURVE_PRUNED:
            out.append({
                "model": v["model"], "check": "high-band R energy / JPEG2000's, vs the base's",
                "value": v["R high / JPEG2000"], "threshold": b["R high / JPEG2000"],
                "holds": bool(v["R high / JPEG2000"] < b["R high / JPEG2000"]),
            })  # fmt: skip
        elif v["kind"] == CURVE_MSSSIM:
            col = "TV vs MSE at bpp" if "TV vs MSE at bpp" in table else "TV vs base"
            out.append({
                "model": v["model"], "check": f"D band shares: {col}", "value": v[col],
                "threshold": ARTEFACT_TV, "holds": bool(v[col] > ARTEFACT_TV),
            })  # fmt: skip
    return pd.DataFrame(out, columns=["model", "check", "value", "threshold", "holds"])


def findings_table(checks: Mapping[str, Sequence[bool]]) -> pd.DataFrame:
    """One row per claim: number of checks, passed, verdict."""
    return pd.DataFrame(
        [{"claim": k, "checks": len(v), "passed": int(sum(v)), "verdict": verdict(list(v))}
         for k, v in checks.items()]
    )  # fmt: skip


# --- plots --------------------------------------------------------------------------------------


def colour_range(spectra: Sequence[np.ndarray]) -> tuple[float, float]:
    """Shared logarithmic colour range of DC-zeroed maps: 1st percentile of the positive values
    to the maximum ((1, 10) when there are none)."""
    positive = np.concatenate(
        [zero_dc(m)[zero_dc(m) > 0].ravel() for m in spectra] or [np.empty(0)]
    )
    if not positive.size:
        return 1.0, 10.0
    return float(np.percentile(positive, 1)), float(positive.max())


def plot_maps(
    spectra: Mapping[str, np.ndarray],
    title: str = "",
    ncols: int = 4,
    block: int = 1,
    levels: int | None = None,
) -> Any:
    """Mean |F| maps (DC zeroed) on one shared logarithmic colour scale, one panel each.

    ``block`` > 1 averages each map over ``block`` x ``block`` frequency tiles; ``levels`` draws
    it with that many colours (None: continuous).
    """
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    maps = {k: block_mean(zero_dc(v), block) for k, v in spectra.items()}
    vmin, vmax = colour_range(list(maps.values()))
    cmap = colormaps["viridis"] if levels is None else colormaps["viridis"].resampled(levels)
    n = len(maps)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.4 * ncols + 1, 3.0 * nrows), squeeze=False, layout="constrained"
    )
    image = None
    for k, (ax, (label, m)) in enumerate(zip(axes.ravel(), maps.items(), strict=False)):
        h, w = m.shape
        extent = (-0.5, 0.5 - 1 / w, 0.5 - 1 / h, -0.5)
        image = ax.imshow(
            np.maximum(m, vmin), norm=LogNorm(vmin=vmin, vmax=vmax), cmap=cmap, extent=extent
        )
        ax.set_title(label, fontsize=8)
        if k // ncols == nrows - 1 or k + ncols >= n:
            ax.set_xlabel("fx (cycles/px)", fontsize=8)
        if k % ncols == 0:
            ax.set_ylabel("fy (cycles/px)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="mean |F|")
    if title:
        fig.suptitle(title)
    return fig


def figure_bytes(fig: Any, fmt: str = "jpeg", quality: int = 85, dpi: int = 100) -> bytes:
    """A matplotlib figure as JPEG (``quality``) or PNG bytes; the figure is closed. Maps of
    mean |F| are noisy images that PNG hardly compresses: as JPEG they weigh about a sixth."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    if fmt == "png":
        return buf.getvalue()
    out = io.BytesIO()
    Image.open(io.BytesIO(buf.getvalue())).convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def show_figure(fig: Any, fmt: str = "jpeg", quality: int = 85) -> int:
    """Display a figure (see :func:`figure_bytes`) in the notebook; return its size in bytes."""
    from IPython.display import Image, display

    data = figure_bytes(fig, fmt=fmt, quality=quality)
    display(Image(data=data, format=fmt))
    return len(data)


def plot_profiles(
    spectra: Mapping[str, np.ndarray],
    title: str = "",
    styles: Mapping[str, Mapping[str, Any]] | None = None,
    ax: Any = None,
) -> Any:
    """Radial profiles of mean |F| (DC excluded), log scale, with the band edges marked;
    ``styles`` maps a label to matplotlib line options; ``ax``: draw there."""
    import matplotlib.pyplot as plt

    from ..spectral import BAND_EDGES

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
    else:
        fig = ax.figure
    for label, spec in spectra.items():
        radius, profile = radial_profile(zero_dc(spec))
        ax.plot(radius, profile, label=label, **dict((styles or {}).get(label, {})))
    for edge in BAND_EDGES:
        ax.axvline(edge, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("radial frequency (cycles/px)")
    ax.set_ylabel("mean |F|")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_d_profiles(rows: Sequence[Mapping[str, Any]]) -> Any:
    """D radial profiles, one panel per dataset: a colour per model, NIC solid, JPEG2000 at the
    model's bpp dashed."""
    import matplotlib.pyplot as plt

    from ..labels import dataset_label

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 3.8), squeeze=False)
    for ax, ds in zip(axes.ravel(), datasets, strict=True):
        spectra, styles = {}, {}
        for r in select(rows, dataset=ds):
            label = f"{r['codec']} {r['model']} ({r['bpp']:.3f} bpp)"
            spectra[label] = r["point"].spectra["D"]
            styles[label] = {"color": f"C{models.index(r['model'])}",
                             "ls": "-" if r["codec"] == NIC else "--", "lw": 1.2}  # fmt: skip
        plot_profiles(spectra, title=f"D, {dataset_label(ds)}", styles=styles, ax=ax)
    fig.tight_layout()
    return fig


# --- kernel-free browser of the maps --------------------------------------------------------------


def block_mean(a: np.ndarray, block: int) -> np.ndarray:
    """Mean over ``block`` x ``block`` tiles (the edges that do not fill a tile are dropped)."""
    if block <= 1:
        return np.asarray(a, dtype=np.float64)
    h, w = (a.shape[0] // block) * block, (a.shape[1] // block) * block
    t = np.asarray(a[:h, :w], dtype=np.float64).reshape(h // block, block, w // block, block)
    return t.mean(axis=(1, 3))


def render_maps(
    maps: Sequence[tuple[np.ndarray, float, float]],
    block: int = 4,
    levels: int = 64,
    gap: int = 6,
) -> bytes:
    """DC-zeroed |F| maps side by side (``gap`` white px apart) as one small palette PNG; each
    ``(spectrum, vmin, vmax)`` is averaged over tiles of ``block`` px and log-scaled between its
    ``vmin`` and ``vmax`` onto ``levels`` viridis colours."""
    from matplotlib import colormaps
    from PIL import Image

    parts = []
    for spectrum, vmin, vmax in maps:
        m = block_mean(zero_dc(spectrum), block)
        lo, hi = math.log10(max(vmin, 1e-12)), math.log10(max(vmax, vmin * 1.0001, 1e-12))
        t = (np.log10(np.maximum(m, vmin)) - lo) / max(hi - lo, 1e-12)
        parts.append(np.clip(np.round(t * (levels - 1)), 0, levels - 1).astype(np.uint8))
    height = max(a.shape[0] for a in parts)
    white = np.full((height, gap), levels, dtype=np.uint8)  # palette entry `levels` is white
    row = []
    for i, a in enumerate(parts):
        pad = np.full((height - a.shape[0], a.shape[1]), levels, dtype=np.uint8)
        row += [white] if i else []
        row.append(np.vstack([a, pad]))
    cmap = colormaps["viridis"].resampled(levels)
    colours = [cmap(i)[:3] for i in range(levels)] + [(1.0, 1.0, 1.0)]
    palette = (np.asarray(colours) * 255).round().astype(np.uint8)
    img = Image.fromarray(np.hstack(row), mode="P")
    img.putpalette(palette.ravel().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def render_map(
    spectrum: np.ndarray, vmin: float, vmax: float, block: int = 4, levels: int = 64
) -> bytes:
    """One map as a palette PNG (see :func:`render_maps`)."""
    return render_maps([(spectrum, vmin, vmax)], block=block, levels=levels)


@dataclass
class MapBrowser:
    """Pre-rendered D/G/R maps of chapter 3's rows, by condition (dataset and corruption),
    severity, model and codec (see :func:`browser_panels`)."""

    conditions: list[tuple[str, str | None]]  # (dataset, corruption or None for clean)
    severities: list[int]
    models: list[str]
    codecs: list[str]
    scales: dict[str, tuple[float, float]]  # per measure: shared colour range
    panels: dict[tuple[str, str | None, int | None, str, str], dict[str, Any]]
    block: int = 4

    @property
    def nbytes(self) -> int:
        """PNG bytes the widget embeds (before base64)."""
        return sum(len(p["image"]) for p in self.panels.values())

    def panel(
        self, dataset: str, corruption: str | None, severity: int | None, model: str, codec: str
    ) -> dict[str, Any] | None:
        """The panel of one combination (clean conditions ignore the severity); None if absent."""
        sev = None if corruption is None else severity
        return self.panels.get((dataset, corruption, sev, model, codec))


def _caption(row: Mapping[str, Any], measures: Sequence[str]) -> str:
    p: Point = row["point"]
    who = f"{row['codec']} at the bpp of {row['model']}" if row["codec"] != NIC else row["model"]
    text = f"{who}: {row['bpp']:.3f} bpp, PSNR {row['psnr']:.2f} dB"
    if row.get("psnr_wrt_clean") is not None:
        text += f" ({row['psnr_wrt_clean']:.2f} dB w.r.t. clean)"
    for m in measures:
        s = shares(p.spectra[m])
        text += (f"<br>{m}: low / medium / high {100 * s['low']:.0f} / {100 * s['medium']:.0f} / "
                 f"{100 * s['high']:.0f} %, energy {energy(p.spectra[m]):.3g}")  # fmt: skip
    return text


def browser_panels(
    rows: Sequence[Mapping[str, Any]], block: int = 4, max_bytes: int | None = 2_000_000
) -> MapBrowser:
    """Render every row's maps (D for a clean row, G and R for a corrupted one) on one colour
    range per measure shared by all rows, so any two panels compare; duplicates (the same
    combination twice) keep the first. Over ``max_bytes`` of PNG, the maps are rendered again
    with twice the tile size (down to 16 px tiles)."""
    browser = _browser_panels(rows, block)
    while max_bytes is not None and browser.nbytes > max_bytes and browser.block < 16:
        browser = _browser_panels(rows, browser.block * 2)
    return browser


def _browser_panels(rows: Sequence[Mapping[str, Any]], block: int) -> MapBrowser:
    from ..corruptions import corruption_info

    measures_of = {True: ("D",), False: ("G", "R")}
    scales = {}
    for m in ("D", "G", "R"):
        specs = [r["point"].spectra[m] for r in rows if m in measures_of[r["corruption"] is None]]
        if specs:
            scales[m] = colour_range(specs)
    clean = list(dict.fromkeys((r["dataset"], None) for r in rows if r["corruption"] is None))
    corrupted = sorted(
        {(r["dataset"], r["corruption"]) for r in rows if r["corruption"] is not None},
        key=lambda c: (c[0], corruption_info(str(c[1]))[0]),
    )
    panels: dict[tuple[str, str | None, int | None, str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["dataset"], r["corruption"], r["severity"], r["model"], r["codec"])
        if key in panels:
            continue
        measures = measures_of[r["corruption"] is None]
        specs = [(r["point"].spectra[m], *scales[m]) for m in measures]
        panels[key] = {
            "measures": list(measures),
            "image": render_maps(specs, block=block),
            "caption": _caption(r, measures),
        }
    severities = sorted({int(r["severity"]) for r in rows if r["corruption"] is not None})
    return MapBrowser(
        conditions=[*clean, *corrupted],
        severities=severities,
        models=list(dict.fromkeys(r["model"] for r in rows)),
        codecs=list(dict.fromkeys(r["codec"] for r in rows)),
        scales=scales,
        panels=panels,
        block=block,
    )


def _condition_label(dataset: str, corruption: str | None) -> str:
    from ..corruptions import corruption_info
    from ..labels import dataset_label

    ds = dataset_label(dataset).split(" (")[0]
    if corruption is None:
        return f"{ds}: clean"
    number, group = corruption_info(corruption)
    return f"{ds}: {number}. {corruption.replace('_', ' ')} ({group})"


def _stack_or_one(
    children: Sequence[Any], picker: Any, memo: dict[tuple[int, ...], Any] | None = None
) -> Any:
    """:func:`widgets.linked_stack` of ``children``, or the child itself when all are one widget
    (a clean map under every severity, a combination missing for every codec); with ``memo``,
    the same children under the same picker give the same stack. Fewer widgets to embed."""
    from ..widgets import linked_stack

    if all(c is children[0] for c in children):
        return children[0]
    if memo is None:
        return linked_stack(children, picker)
    key = (id(picker), *map(id, children))
    if key not in memo:
        memo[key] = linked_stack(children, picker)
    return memo[key]


def spectra_browser(browser: MapBrowser, map_width: int = 330) -> Any:
    """Dropdowns (input, severity, model, codec) switching ``Stack``s of the pre-rendered maps,
    linked in the browser (:func:`widgets.linked_stack`), so the page needs no kernel; each map
    is shown ``map_width`` px wide. Widgets share their layouts and identical branches collapse,
    which keeps the embedded widget state small."""
    try:
        import ipywidgets as w
    except ImportError:
        raise UsageError(
            "the browser needs ipywidgets (pip install 'nicspec-utils[book]')"
        ) from None

    b = browser
    plain = w.Layout()
    wide = w.Layout(width="max-content")
    picture = {n: w.Layout(width=f"{n * map_width}px") for n in (1, 2, 3)}
    pick_cond = w.Dropdown(
        options=[_condition_label(*c) for c in b.conditions], description="input", layout=wide
    )
    sev_options = [f"severity {s}" for s in b.severities] or ["(clean only)"]
    pick_sev = w.Dropdown(options=sev_options, description="severity", layout=wide)
    pick_model = w.Dropdown(options=b.models, description="rate of", layout=wide)
    codec_names = [c if c == NIC else f"{c} at the model's bpp" for c in b.codecs]
    pick_codec = w.Dropdown(options=codec_names, description="codec", layout=wide)
    missing = w.HTML("<i>not computed in this profile</i>", layout=plain)

    def card(panel: dict[str, Any] | None) -> Any:
        if panel is None:
            return missing
        measures = panel["measures"]
        head = " | ".join(f"<b>{m}</b>" for m in measures)
        img = w.Image(value=panel["image"], format="png", layout=picture[min(len(measures), 3)])
        text = w.HTML(f"{head} (left to right)<br><small>{panel['caption']}</small>", layout=plain)
        return w.VBox([img, text], layout=plain)

    cards: dict[tuple[str, str | None, int | None, str, str], Any] = {}

    def cached_card(ds: str, corr: str | None, sev: int | None, model: str, codec: str) -> Any:
        key = (ds, corr, None if corr is None else sev, model, codec)
        if key not in cards:  # a clean card appears under every severity: one widget
            cards[key] = card(b.panel(*key))
        return cards[key]

    sevs: list[int | None] = list(b.severities) or [None]
    memo: dict[tuple[int, ...], Any] = {}
    by_cond = []
    for ds, corr in b.conditions:
        by_sev = []
        for sev in sevs:
            by_model = [
                _stack_or_one(
                    [cached_card(ds, corr, sev, m, c) for c in b.codecs], pick_codec, memo
                )
                for m in b.models
            ]
            by_sev.append(_stack_or_one(by_model, pick_model, memo))
        by_cond.append(_stack_or_one(by_sev, pick_sev, memo))
    maps = _stack_or_one(by_cond, pick_cond, memo)
    ranges = "; ".join(f"{m}: {lo:.3g} to {hi:.3g}" for m, (lo, hi) in b.scales.items())
    note = (
        "Mean |F| (DC zeroed), centre = lowest frequency, axes ±0.5 cycles/px; averaged over "
        f"{b.block}x{b.block} frequency tiles. One logarithmic viridis scale per measure for every "
        f"panel ({ranges}). Clean inputs have no severity."
    )
    box = w.VBox(
        [
            w.HTML("<style>.nicspec-spectra img {image-rendering: pixelated;}</style>"),
            w.HBox([pick_cond, pick_sev, pick_model, pick_codec], layout={"flex_flow": "row wrap"}),
            maps,
            w.HTML(f"<small>{note}</small>", layout=plain),
        ]
    )
    box.add_class("nicspec-spectra")
    return box


# --- findings text --------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * float(x):.0f} %"


def findings_markdown(
    c1: pd.DataFrame,
    c2: pd.DataFrame,
    c3: pd.DataFrame,
    ratios: pd.DataFrame,
    c5: pd.DataFrame,
) -> str:
    """Markdown bullets stating the executed numbers behind each claim's verdict (inputs: the
    ``claim*_table`` results, :func:`trend_ratios` and :func:`claim5_checks`)."""
    from ..labels import dataset_label

    lines = []
    if len(c1):
        parts = [
            f"{dataset_label(r['dataset']).split(' (')[0] + ' ' if 'dataset' in r else ''}"
            f"{r['model']}: {_pct(r['high NIC'])} vs {_pct(r['high JPEG2000'])}"
            for _, r in c1.iterrows()
        ]
        lines.append(
            f"**Claim 1 (D).** NIC's high-band share of D exceeds JPEG2000's at the same bpp in "
            f"{int(c1['holds'].sum())} of {len(c1)} cases (NIC vs JPEG2000): {'; '.join(parts)}."
        )
    if len(c2):
        parts = [
            f"{r['model']}: {r['high gap']:+.2f} dB on high vs {r['low/medium gap']:+.2f} dB on "
            "low/medium corruptions"
            for _, r in c2.iterrows()
        ]
        lines.append(
            "**Claim 2 (G).** NIC − JPEG2000 PSNR w.r.t. the corrupted input, mean per group: "
            + "; ".join(parts)
            + "."
        )
    high = c3[c3["group"] == "high"] if len(c3) else c3
    if len(high):
        parts = [f"{r['model']} {r['corruption']}: {r['ratio']:.2f}" for _, r in high.iterrows()]
        lines.append(
            "**Claim 3 (R).** R energy of NIC / JPEG2000 at the same bpp on high-frequency "
            f"corruptions (below 1: NIC closer to the clean image): {'; '.join(parts)}."
        )
    if len(ratios):
        parts = []
        for (name, m), s in ratios.groupby(["corruption", "measure"], sort=False):
            s = s.sort_values("severity")
            seq = ", ".join(f"{v:.2f}" for v in s["ratio"])
            parts.append(f"{name} {m}: {seq}")
        sevs = ", ".join(str(v) for v in sorted(set(ratios["severity"])))
        lines.append(
            f"**Severity trend.** Energy ratio NIC / JPEG2000 (each at the NIC's bpp) at "
            f"severities {sevs}: {'; '.join(parts)}."
        )
    if len(c5):
        parts = [
            f"{r['model']}: {r['check']} = {r['value']:.3f} (threshold {r['threshold']:.3f}): "
            f"{'holds' if r['holds'] else 'fails'}"
            for _, r in c5.iterrows()
        ]
        lines.append("**Claim 5 (variants, at matched bpp).** " + "; ".join(parts) + ".")
    return "\n".join(f"- {line}" for line in lines)


# --- verdicts with weight (issue #16): per-image paired effects -----------------------------------

SIDES = (NIC, "bpp", "psnr")  # the NIC, JPEG2000 at its bpp, JPEG2000 at its PSNR (per image)
UNIT_KEYS = findings.UNIT_KEYS
ROUNDINGS = findings.ROUNDINGS
N_BOOT = 2000


def _records(point: Point) -> dict[str, Mapping[str, Any]]:
    return {str(r["id"]): r for r in point.metrics.get("per_image", [])}


def unit_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per-image values of every pair of a study, long form: one row per (dataset, model, kind,
    corruption, group, severity, image, side), ``side`` one of :data:`SIDES`, with the values of
    :func:`findings.unit_values` (bpp, psnr, psnr_wrt_clean, band shares ``<map>.<band>``,
    energies ``<map>.energy`` and ``<map>.energy_<band>``) and ``matched`` (for the ``psnr``
    side: within the tolerance of the NIC's PSNR on that image)."""
    out: list[dict[str, Any]] = []
    nic_rows = [r for r in rows if r["codec"] == NIC]
    for nic in nic_rows:
        key = {k: nic.get(k) for k in ("dataset", "model", "corruption", "severity")}
        j2k = [r for r in select(rows, codec=JPEG2000, **key)]
        points = {NIC: nic["point"], "bpp": j2k[0]["point"] if j2k else None,
                  "psnr": nic.get(PSNR_KEY)}  # fmt: skip
        nic_recs = _records(nic["point"])
        for side, p in points.items():
            if p is None:
                continue
            for image, rec in _records(p).items():
                unit = {**key, "kind": nic.get("kind"), "group": nic.get("group"), "image": image}
                unit["side"] = side
                unit.update(findings.unit_values(rec))
                ref = nic_recs.get(image, {}).get("psnr")
                got = rec.get("psnr")
                unit["matched"] = side != "psnr" or (
                    got is not None and ref is not None and abs(got - ref) <= PSNR_TOL + 1e-6
                )
                out.append(unit)
    return pd.DataFrame(out)


def paired_units(units: pd.DataFrame, matching: str, columns: Sequence[str]) -> pd.DataFrame:
    """NIC and JPEG2000 (``matching``: "bpp" or "psnr") side by side per unit (see
    :func:`findings.pair_units`); PSNR-matched pairs out of tolerance dropped."""
    return findings.pair_units(units, matching, columns)


def _m(name: str, rounded: bool) -> str:
    return f"{name}_rounded" if rounded else name


def _effect_claim1(w: pd.DataFrame, matching: str, rounded: bool) -> pd.DataFrame:
    col = f"{_m('D', rounded)}.high"
    return w.assign(value=w[f"{col} NIC"] - w[f"{col} JPEG2000"])


def _effect_claim5_msssim(units: pd.DataFrame, matching: str, rounded: bool) -> pd.DataFrame:
    """Per (MS-SSIM model, image): TV distance of its D band shares from the MSE ladder's at its
    own bpp on that image (ladder interpolated in log bpp), minus :data:`ARTEFACT_TV`."""
    from ..labels import CURVE_LADDER, CURVE_MSSSIM, nic_kind

    m = _m("D", rounded)
    cols = [f"{m}.{b}" for b in BAND_NAMES]
    nic = units[(units["side"] == NIC) & units["corruption"].isna()]
    if nic.empty or not set(cols) <= set(nic):
        return pd.DataFrame()
    out = []
    kinds = nic["model"].map(lambda s: nic_kind(str(s).split(" ")[0]))
    ladder = nic[kinds == CURVE_LADDER]
    for _, v in nic[nic["kind"] == CURVE_MSSSIM].iterrows():
        lad = ladder[(ladder["dataset"] == v["dataset"]) & (ladder["image"] == v["image"])]
        lad = lad.drop_duplicates("model")
        if len(lad) < 1:
            continue
        lad = lad.rename(columns=dict(zip(cols, BAND_NAMES, strict=True)))
        at, _ = interpolate_shares(lad[["bpp", *BAND_NAMES]], float(v["bpp"]))
        own = {b: v[c] for b, c in zip(BAND_NAMES, cols, strict=True)}
        out.append({"dataset": v["dataset"], "image": v["image"], "model": v["model"],
                    "value": tv_distance(own, at) - ARTEFACT_TV})  # fmt: skip
    return pd.DataFrame(out)


CLAIM1 = findings.Contrast(
    "1", "high-band share of D, NIC − JPEG2000", 1,
    "above 0: NIC's D more at high frequencies than JPEG2000's", "clean",
    lambda r: [f"{_m('D', r)}.high"], _effect_claim1, True, "dataset",
)  # fmt: skip
CLAIM5_MSSSIM = findings.Contrast(
    "5 (MS-SSIM)", f"TV of D band shares from the MSE ladder at the same bpp, minus "
    f"{ARTEFACT_TV:g}", 1, "above 0: MS-SSIM NIC's artefacts differ from MSE NIC's", "clean",
    lambda r: [], _effect_claim5_msssim, True,
)  # fmt: skip


def _trend(c: findings.Contrast, what: str) -> findings.Contrast:
    return replace(c, claim=f"{c.claim} (trend)", measure=f"as claim {c.claim} ({what}), every "
                   "severity of the trend study")  # fmt: skip


# (study, contrast): the shared contrasts of claims 2, 3, 5 (findings) and this chapter's own
CLAIMS: tuple[tuple[str, findings.Contrast], ...] = (
    ("d", CLAIM1),
    ("gr", findings.CLAIM2_PSNR),
    ("gr", findings.CLAIM2_SHARE),
    ("gr", findings.CLAIM2_ENERGY),
    ("gr", findings.CLAIM2_HIGH_ENERGY),
    ("trend", _trend(findings.CLAIM2_PSNR, "PSNR / bpp")),
    ("trend", _trend(findings.CLAIM2_ENERGY, "G energy")),
    ("gr", findings.CLAIM3_PSNR),
    ("gr", findings.CLAIM3_SHARE),
    ("gr", findings.CLAIM3_ENERGY),
    ("gr", findings.CLAIM3_HIGH_ENERGY),
    ("trend", _trend(findings.CLAIM3_PSNR, "PSNR w.r.t. clean")),
    ("trend", _trend(findings.CLAIM3_HIGH_ENERGY, "high-band R energy")),
    ("variants", findings.CLAIM5_PSNR),
    ("variants", findings.CLAIM5_SHARE),
    ("variants", findings.CLAIM5_HIGH_ENERGY),
    ("variants+d", CLAIM5_MSSSIM),
)


def claim_checks(
    studies: Mapping[str, Sequence[Mapping[str, Any]]],
    specs: Sequence[tuple[str, findings.Contrast]] = CLAIMS,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Every claim check of :data:`CLAIMS` under both matchings and, for spectral measures, both
    roundings (:func:`findings.check_contrast`): mean paired effect, seeded cluster-bootstrap
    95 % interval over images (strata: dataset for claim 1, corruption for claim 3), n (paired
    values) and images, verdict (interval only, at least :data:`stats.MIN_IMAGES` images),
    images needed, the paper's side, a note (why inconclusive) and the method.

    ``studies`` maps "d", "gr", "trend", "variants" to the rows of those studies (missing or
    empty: the claim is not testable here). The MS-SSIM check compares a NIC with the MSE
    ladder of "d" (no JPEG2000), so it has one matching ("–").
    """
    units = {k: unit_table(v) for k, v in studies.items() if v}
    out = []
    for study, spec in specs:
        parts = [units[k] for k in study.split("+") if k in units]
        u = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        own = spec is CLAIM5_MSSSIM
        for matching in ("–",) if own else findings.MATCHINGS:
            for rounding in ROUNDINGS if spec.spectral else ("n/a",):
                if own:
                    eff = spec.effect(u, "bpp", rounding == "reference") if len(u) else None
                    row = findings.check(
                        spec.claim, spec.measure, spec.direction, eff, matching=matching,
                        rounding=rounding, paper=spec.paper, n_boot=n_boot, seed=seed,
                    )  # fmt: skip
                else:
                    row = findings.check_contrast(spec, u, matching, rounding, n_boot, seed)
                out.append(row)
    cols = ["claim", "measure", "matching", "rounding", "effect", "ci_low", "ci_high", "n",
            "n_images", "verdict", "images_needed", "paper", "note", "method"]  # fmt: skip
    table = pd.DataFrame(out).reindex(columns=cols)
    table["images_needed"] = table["images_needed"].astype("Int64")
    return table


def verdict_grid(checks: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, measure), one verdict column per (matching, rounding) present."""
    if checks.empty:
        return checks
    t = checks.assign(col=checks["matching"].map(lambda m: f"matched {m}" if m != "–" else "")
                      + checks["rounding"].map({"none": ", unrounded", "reference":
                                                ", rounded", "n/a": ""}))  # fmt: skip
    t["col"] = t["col"].str.strip(", ").replace("", "NIC vs NIC")
    wide = t.pivot_table(index=["claim", "measure"], columns="col", values="verdict",
                         aggfunc="first", sort=False)  # fmt: skip
    order = [c for c in ("matched bpp, unrounded", "matched bpp, rounded", "matched bpp",
                         "matched psnr, unrounded", "matched psnr, rounded", "matched psnr",
                         "NIC vs NIC") if c in wide]  # fmt: skip
    return wide[order].reset_index().fillna("–")


def old_verdicts(checks: Mapping[str, Sequence[bool]]) -> dict[str, str]:
    """The point-estimate verdicts the chapter gave before issue #16 (``findings.verdict`` of
    each claim's checks), with how many checks passed."""
    return {k: f"{verdict(list(v))} ({int(sum(v))} of {len(v)})" for k, v in checks.items()}


def _fmt_effect(r: Mapping[str, Any]) -> str:
    if not (isinstance(r.get("effect"), float) and math.isfinite(r["effect"])):
        return "no paired values"
    lo, hi = r["ci_low"], r["ci_high"]
    ci = f"[{lo:+.3g}, {hi:+.3g}]" if math.isfinite(lo) else "(no interval)"
    return f"{r['effect']:+.3g} {ci}, {r['n']} values on {r['n_images']} image(s)"


def changes_markdown(checks: pd.DataFrame, old: Mapping[str, str]) -> str:
    """Bullets: where a claim's verdict at matched bpp without rounding (the chapter's former
    setting) differs from its former point-estimate verdict (``old``: claim -> words, see
    :func:`old_verdicts`, keyed like :data:`CLAIMS`' claims), where matched PSNR and matched
    bpp disagree, and where the rounding changes the verdict."""
    lines = []
    primary = {c: checks.loc[checks["claim"] == c, "measure"].iloc[0] for c in checks["claim"]}
    former = checks[(checks["matching"].isin(["bpp", "–"])) & (checks["rounding"] != "reference")]
    for _, r in former.iterrows():
        was = old.get(str(r["claim"]))
        if was is None or r["measure"] != primary[r["claim"]]:
            continue
        same = was.split(" (")[0] == r["verdict"]
        lines.append(
            f"Claim {r['claim']}: was **{was}** (point estimates), now **{r['verdict']}** "
            f"({r['measure']}, {_fmt_effect(r)})" + ("; unchanged." if same else ".")
        )
    keys = ["claim", "measure", "rounding"]
    both = checks[checks["matching"].isin(MATCHINGS)]
    for _, g in both.groupby(keys, sort=False):
        if g["matching"].nunique() < 2:
            continue
        b = g[g["matching"] == "bpp"].iloc[0]
        p = g[g["matching"] == "psnr"].iloc[0]
        if b["verdict"] != p["verdict"]:
            rnd = {"n/a": "", "none": ", unrounded", "reference": ", rounded"}[b["rounding"]]
            lines.append(
                f"Claim {b['claim']} ({b['measure']}{rnd}): **{b['verdict']}** at matched bpp "
                f"({_fmt_effect(b)}) but **{p['verdict']}** at matched PSNR ({_fmt_effect(p)}): "
                "the bpp comparison also carries the two codecs' different coding efficiency; "
                "at the same PSNR only where the error goes (or what the same fidelity costs) "
                "is compared."
            )
    spectral = checks[checks["rounding"].isin(ROUNDINGS)]
    for _, g in spectral.groupby(["claim", "measure", "matching"], sort=False):
        if g["rounding"].nunique() < 2:
            continue
        a = g[g["rounding"] == "none"].iloc[0]
        c = g[g["rounding"] == "reference"].iloc[0]
        if a["verdict"] != c["verdict"]:
            lines.append(
                f"Claim {a['claim']} ({a['measure']}, matched {a['matching']}): "
                f"**{a['verdict']}** unrounded ({_fmt_effect(a)}), **{c['verdict']}** with the "
                f"reference code's rounding ({_fmt_effect(c)})."
            )
    return "\n".join(f"- {line}" for line in lines) or "- No verdict changes."
